/**
 * STS AssumeRole without the AWS SDK: the Query API (a form-encoded POST, `Action=AssumeRole&
 * Version=2011-06-15`), signed with aws4fetch for service `sts` and the endpoint's region, one
 * attempt (the callers own retries), a timeout, and the XML answer read strictly
 * (partner-sources.md, "STS AssumeRole without the SDK").
 *
 * What comes back is a result, never a throw: the temporary credentials, or an error with STS's
 * code and what the relay should make of it (the same classes as an EventBridge call failing).
 * Neither the relay's secret nor the issued secret or session token ever appears in an error.
 */
import { AwsV4Signer } from "aws4fetch";
import type { CallErrorClass } from "../eventbridge/codes.ts";
import { normalizeErrorCode } from "../eventbridge/codes.ts";
import { STS_MAX_RESPONSE_BYTES } from "../limits.ts";
import { child, leafText, optionalChild, parseXml, type XmlElement, XmlError } from "./xml.ts";

/** The relay's own long-lived AWS identity (Worker secrets RELAY_AWS_ACCESS_KEY_ID / RELAY_AWS_SECRET_ACCESS_KEY). */
export interface RelayIdentity {
  accessKeyId: string;
  secretAccessKey: string;
}

export interface AssumeRoleInput {
  identity: RelayIdentity;
  /** STS's origin, no trailing slash: https://sts.<region>.amazonaws.com, or the tenant's override. */
  endpoint: string;
  region: string;
  roleArn: string;
  externalId: string;
  sessionName: string;
  durationSeconds: number;
  timeoutMs: number;
  /** aws4fetch's signing-key cache (kept by the caller between calls). */
  signingCache?: Map<string, ArrayBuffer>;
}

export interface AssumedCredentials {
  accessKeyId: string;
  secretAccessKey: string;
  sessionToken: string;
  /** When STS says they expire, in epoch ms. */
  expiresAt: number;
}

export type AssumeRoleResult =
  | { kind: "ok"; credentials: AssumedCredentials; requestId: string | null }
  | {
      kind: "error";
      errorClass: CallErrorClass;
      /** STS's code (AccessDenied, RegionDisabledException, Throttling, ...), or RequestTimeout / NetworkError / InvalidResponse. */
      code: string;
      /** STS's message, clipped; names ARNs at most, never a secret. */
      message: string;
      status: number;
      requestId: string | null;
    };

const FORM = "application/x-www-form-urlencoded; charset=utf-8";
const STS_VERSION = "2011-06-15";
/** STS RoleSessionName: 2-64 characters of [\w+=,.@-] (STS API reference). */
const SESSION_NAME_MAX = 64;
const MAX_MESSAGE_CHARS = 500;
const ACCESS_KEY_ID = /^\w{16,128}$/;
const encoder = new TextEncoder();

/** The STS endpoint of a region (the standard partition; the override serves local emulators). */
export function stsEndpoint(region: string): string {
  return `https://sts.${region}.amazonaws.com`;
}

/** A RoleSessionName naming the tenant, within STS's charset and 64 characters (shows in the partner's CloudTrail). */
export function sessionNameFor(tenantId: string): string {
  const name = `relay-${tenantId}`.replace(/[^\w+=,.@-]/g, "-").slice(0, SESSION_NAME_MAX);
  return name.length >= 2 ? name : `${name}--`.slice(0, 2);
}

export async function assumeRole(input: AssumeRoleInput): Promise<AssumeRoleResult> {
  const body = encoder.encode(
    new URLSearchParams({
      Action: "AssumeRole",
      Version: STS_VERSION,
      RoleArn: input.roleArn,
      RoleSessionName: input.sessionName,
      ExternalId: input.externalId,
      DurationSeconds: String(input.durationSeconds),
    }).toString(),
  );
  let response: Response;
  try {
    const signed = await new AwsV4Signer({
      url: `${input.endpoint}/`,
      method: "POST",
      headers: { "content-type": FORM },
      body,
      accessKeyId: input.identity.accessKeyId,
      secretAccessKey: input.identity.secretAccessKey,
      service: "sts",
      region: input.region,
      ...(input.signingCache ? { cache: input.signingCache } : {}),
      allHeaders: true,
    }).sign();
    response = await fetch(signed.url, {
      method: "POST",
      headers: signed.headers,
      body,
      signal: AbortSignal.timeout(input.timeoutMs),
    });
  } catch (e) {
    const timedOut = e instanceof Error && (e.name === "TimeoutError" || e.name === "AbortError");
    return failure(
      timedOut ? "timeout" : "network",
      timedOut ? "RequestTimeout" : "NetworkError",
      timedOut ? `STS did not answer within ${input.timeoutMs} ms` : "the connection to STS failed",
      0,
      null,
    );
  }
  const headerRequestId = response.headers.get("x-amzn-requestid");
  let text: string;
  try {
    text = await readBounded(response, STS_MAX_RESPONSE_BYTES);
  } catch (e) {
    return failure(
      e instanceof XmlError ? "server" : "network",
      e instanceof XmlError ? "InvalidResponse" : "NetworkError",
      e instanceof XmlError ? e.message : "the connection to STS failed while reading its answer",
      response.status,
      headerRequestId,
    );
  }
  if (response.ok) return parseSuccess(text, response.status, headerRequestId);
  return parseError(text, response.status, headerRequestId);
}

function parseSuccess(text: string, status: number, headerRequestId: string | null): AssumeRoleResult {
  try {
    const root = parseXml(text);
    if (root.name !== "AssumeRoleResponse") throw new XmlError(`the root element is <${root.name}>`);
    const creds = child(child(root, "AssumeRoleResult"), "Credentials");
    const accessKeyId = leafText(child(creds, "AccessKeyId"));
    const secretAccessKey = leafText(child(creds, "SecretAccessKey"));
    const sessionToken = leafText(child(creds, "SessionToken"));
    const expiration = leafText(child(creds, "Expiration"));
    const expiresAt = Date.parse(expiration);
    if (!ACCESS_KEY_ID.test(accessKeyId)) throw new XmlError("AccessKeyId is not an access key id");
    if (!secretAccessKey || /\s/.test(secretAccessKey)) throw new XmlError("SecretAccessKey is empty or not one word");
    if (!sessionToken || /\s/.test(sessionToken)) throw new XmlError("SessionToken is empty or not one word");
    if (!/^\d{4}-\d{2}-\d{2}T/.test(expiration) || !Number.isFinite(expiresAt)) {
      throw new XmlError("Expiration is not an ISO-8601 time");
    }
    return {
      kind: "ok",
      credentials: { accessKeyId, secretAccessKey, sessionToken, expiresAt },
      requestId: requestIdOf(root) ?? headerRequestId,
    };
  } catch (e) {
    // The message names what is missing, never a value read (the secret may be in there).
    const why = e instanceof XmlError ? e.message : "unreadable";
    return failure(
      "server",
      "InvalidResponse",
      `STS answered ${status} with XML the relay cannot read (${why})`,
      status,
      headerRequestId,
    );
  }
}

function parseError(text: string, status: number, headerRequestId: string | null): AssumeRoleResult {
  let code = "";
  let message = "";
  let requestId = headerRequestId;
  try {
    const root = parseXml(text);
    // AWS: ErrorResponse/Error; some emulators: ErrorResponse/Errors/Error or Response/Errors/Error.
    const holder = optionalChild(root, "Errors") ?? root;
    const error = optionalChild(holder, "Error");
    if (error) {
      code = normalizeErrorCode(leafText(optionalChild(error, "Code") ?? { name: "Code", children: [], text: "" }));
      message = leafText(optionalChild(error, "Message") ?? { name: "Message", children: [], text: "" });
    }
    requestId = requestIdOf(root) ?? requestId;
  } catch {
    // Not XML (a proxy's HTML page): the status decides below.
  }
  if (!code) code = status >= 500 ? "InternalFailure" : `HTTP${status}`;
  return failure(classify(status, code), code, clip(message) || `STS answered HTTP ${status}`, status, requestId);
}

/** STS codes to the relay's classes: throttling and 5xx are retried; every other refusal needs a fix. */
function classify(status: number, code: string): CallErrorClass {
  if (code === "Throttling" || code === "ThrottlingException" || code === "RequestLimitExceeded" || status === 429) {
    return "throttled";
  }
  if (status >= 500) return "server";
  // AccessDenied (trust policy or external id), RegionDisabledException, InvalidClientTokenId /
  // SignatureDoesNotMatch (the relay's identity), ExpiredToken, ValidationError (e.g. a duration
  // over the role's maximum), MalformedPolicyDocument: the operator or the partner must act.
  return "credentials";
}

function requestIdOf(root: XmlElement): string | null {
  try {
    const direct = optionalChild(root, "RequestId") ?? optionalChild(root, "RequestID");
    if (direct) return leafText(direct) || null;
    const meta = optionalChild(root, "ResponseMetadata");
    const id = meta ? optionalChild(meta, "RequestId") : null;
    return id ? leafText(id) || null : null;
  } catch {
    return null;
  }
}

function failure(
  errorClass: CallErrorClass,
  code: string,
  message: string,
  status: number,
  requestId: string | null,
): AssumeRoleResult {
  return { kind: "error", errorClass, code, message, status, requestId };
}

function clip(s: string): string {
  return s.length > MAX_MESSAGE_CHARS ? `${s.slice(0, MAX_MESSAGE_CHARS)}…` : s;
}

/** The body as text, refusing (XmlError) one longer than `max` bytes. */
async function readBounded(response: Response, max: number): Promise<string> {
  const declared = Number(response.headers.get("content-length"));
  if (Number.isFinite(declared) && declared > max) {
    await response.body?.cancel();
    throw new XmlError(`STS's answer is larger than ${max} bytes`);
  }
  if (!response.body) return "";
  const reader = response.body.getReader();
  const chunks: Uint8Array[] = [];
  let total = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    total += value.byteLength;
    if (total > max) {
      await reader.cancel();
      throw new XmlError(`STS's answer is larger than ${max} bytes`);
    }
    chunks.push(value);
  }
  const all = new Uint8Array(total);
  let at = 0;
  for (const c of chunks) {
    all.set(c, at);
    at += c.byteLength;
  }
  try {
    return new TextDecoder("utf-8", { fatal: true, ignoreBOM: false }).decode(all);
  } catch {
    throw new XmlError("STS's answer is not UTF-8");
  }
}
