/**
 * EventBridge's partner control plane over the wire (JSON 1.1, `X-Amz-Target: AWSEvents.<Op>`):
 * the calls that create, list, describe and delete partner event sources and read their state.
 * Signed with aws4fetch like client.ts, one attempt per call (the caller owns retry and backoff:
 * these APIs share a 50 requests/s per-account quota, partner-sources.md), with a timeout, and
 * every failure mapped to a small set of kinds a caller can act on without knowing HTTP.
 *
 * Never logs or returns credentials: error messages are EventBridge's (AWS does not echo keys).
 */
import { type AwsClient, AwsV4Signer } from "aws4fetch";
import { normalizeErrorCode } from "./codes.ts";

const CONTENT_TYPE = "application/x-amz-json-1.1";
const encoder = new TextEncoder();

/** What a caller can do about a failed control-plane call. */
export type ControlPlaneErrorKind =
  /** ThrottlingException / 429 / LimitExceeded for rate: back off. */
  | "throttled"
  /** The credentials may not call this API (AccessDenied), or are refused: the tenant must fix IAM. */
  | "denied"
  /** ResourceNotFoundException. */
  | "not-found"
  /** ResourceAlreadyExistsException. */
  | "exists"
  /** The upstream does not implement the operation (moto lacks ListPartnerEventSourceAccounts). */
  | "not-implemented"
  /** ValidationException and other 4xx the request itself caused: resending won't help. */
  | "invalid"
  /** 5xx, a timeout, a dropped connection, an answer that does not parse: retry later. */
  | "unavailable";

export class ControlPlaneError extends Error {
  readonly kind: ControlPlaneErrorKind;
  /** EventBridge's code (normalised), or RequestTimeout / NetworkError / InvalidResponse. */
  readonly code: string;
  readonly status: number;
  readonly requestId: string | null;
  constructor(kind: ControlPlaneErrorKind, code: string, message: string, status: number, requestId: string | null) {
    super(message);
    this.name = "ControlPlaneError";
    this.kind = kind;
    this.code = code;
    this.status = status;
    this.requestId = requestId;
  }
}

export interface ControlPlane {
  client: AwsClient;
  /** https://events.<region>.amazonaws.com, or the tenant's override (no trailing slash). */
  endpoint: string;
  region: string;
  timeoutMs: number;
}

export type SourceState = "PENDING" | "ACTIVE" | "DELETED";

export interface SourceAccount {
  account: string;
  /** Epoch ms, as AWS reports them (null when absent). */
  creationTime: number | null;
  expirationTime: number | null;
  state: SourceState;
}

/** Codes that mean the credentials may not make this call, or are not valid at all. */
const DENIED = new Set([
  "AccessDeniedException",
  "AccessDenied",
  "UnauthorizedOperation",
  "UnrecognizedClientException",
  "InvalidSignatureException",
  "IncompleteSignatureException",
  "MissingAuthenticationTokenException",
  "ExpiredTokenException",
  "InvalidClientTokenId",
  "SignatureDoesNotMatch",
]);

/** Maps a whole-call failure to its kind (exported for the unit test). */
export function classifyControlPlaneError(status: number, code: string, message: string): ControlPlaneErrorKind {
  if (code === "ThrottlingException" || code === "TooManyRequestsException" || status === 429) return "throttled";
  if (DENIED.has(code) || status === 403) return "denied";
  if (code === "ResourceNotFoundException") return "not-found";
  if (code === "ResourceAlreadyExistsException") return "exists";
  if (
    status === 501 ||
    code === "UnknownOperationException" ||
    code === "NotImplemented" ||
    code === "InvalidAction" ||
    /has not been implemented|not yet implemented/i.test(message)
  ) {
    return "not-implemented";
  }
  if (status >= 500) return "unavailable";
  return "invalid";
}

/** One signed call; the parsed JSON answer, or a ControlPlaneError. */
export async function callControlPlane<T = Record<string, unknown>>(
  cp: ControlPlane,
  operation: string,
  input: Record<string, unknown>,
): Promise<T> {
  const body = encoder.encode(JSON.stringify(input));
  let response: Response;
  try {
    const signed = await new AwsV4Signer({
      url: `${cp.endpoint}/`,
      method: "POST",
      headers: { "content-type": CONTENT_TYPE, "x-amz-target": `AWSEvents.${operation}` },
      body,
      accessKeyId: cp.client.accessKeyId,
      secretAccessKey: cp.client.secretAccessKey,
      ...(cp.client.sessionToken ? { sessionToken: cp.client.sessionToken } : {}),
      service: "events",
      region: cp.region,
      cache: cp.client.cache,
      allHeaders: true,
    }).sign();
    response = await fetch(signed.url, {
      method: "POST",
      headers: signed.headers,
      body,
      signal: AbortSignal.timeout(cp.timeoutMs),
    });
  } catch (e) {
    const timedOut = e instanceof Error && (e.name === "TimeoutError" || e.name === "AbortError");
    throw new ControlPlaneError(
      "unavailable",
      timedOut ? "RequestTimeout" : "NetworkError",
      timedOut
        ? `EventBridge did not answer ${operation} within ${cp.timeoutMs} ms`
        : `the connection to EventBridge failed (${operation})`,
      0,
      null,
    );
  }
  const requestId = response.headers.get("x-amzn-requestid");
  let text = "";
  try {
    text = await response.text();
  } catch {
    throw new ControlPlaneError(
      "unavailable",
      "NetworkError",
      `reading EventBridge's answer to ${operation} failed`,
      response.status,
      requestId,
    );
  }
  if (response.ok) {
    try {
      const json: unknown = text === "" ? {} : JSON.parse(text);
      if (typeof json !== "object" || json === null || Array.isArray(json)) throw new Error("not an object");
      return json as T;
    } catch {
      throw new ControlPlaneError(
        "unavailable",
        "InvalidResponse",
        `EventBridge answered ${operation} with a body that is not a JSON object`,
        response.status,
        requestId,
      );
    }
  }
  let code = "";
  let message = "";
  try {
    const json = JSON.parse(text) as { __type?: unknown; code?: unknown; message?: unknown; Message?: unknown };
    const type = typeof json.__type === "string" ? json.__type : typeof json.code === "string" ? json.code : "";
    code = normalizeErrorCode(type);
    message = typeof json.message === "string" ? json.message : typeof json.Message === "string" ? json.Message : "";
  } catch {
    // XML from an emulator's auth layer, an HTML error page, or moto's plain-text traceback.
    code = /<Code>([^<]{1,100})<\/Code>/.exec(text)?.[1] ?? "";
    message =
      /<Message>([^<]{1,500})<\/Message>/.exec(text)?.[1] ??
      (/has not been implemented/.exec(text) ? text.slice(0, 300) : "");
  }
  const headerType = response.headers.get("x-amzn-errortype");
  if (!code && headerType) code = normalizeErrorCode(headerType);
  if (!code) code = response.status >= 500 ? "InternalFailure" : `HTTP${response.status}`;
  const kind = classifyControlPlaneError(response.status, code, message);
  throw new ControlPlaneError(
    kind,
    code,
    message || `EventBridge answered ${operation} with HTTP ${response.status}`,
    response.status,
    requestId,
  );
}

/** CreatePartnerEventSource: the source's ARN (moto answers `{}`: the ARN is then built). */
export async function createPartnerEventSource(cp: ControlPlane, name: string, account: string): Promise<string> {
  const out = await callControlPlane<{ EventSourceArn?: unknown }>(cp, "CreatePartnerEventSource", {
    Name: name,
    Account: account,
  });
  return typeof out.EventSourceArn === "string"
    ? out.EventSourceArn
    : `arn:aws:events:${cp.region}::event-source/${name}`;
}

export async function deletePartnerEventSource(cp: ControlPlane, name: string, account: string): Promise<void> {
  await callControlPlane(cp, "DeletePartnerEventSource", { Name: name, Account: account });
}

export async function describePartnerEventSource(
  cp: ControlPlane,
  name: string,
): Promise<{ arn: string; name: string }> {
  const out = await callControlPlane<{ Arn?: unknown; Name?: unknown }>(cp, "DescribePartnerEventSource", {
    Name: name,
  });
  return { arn: typeof out.Arn === "string" ? out.Arn : "", name: typeof out.Name === "string" ? out.Name : name };
}

/** One page of ListPartnerEventSources under `prefix`. */
export async function listPartnerEventSources(
  cp: ControlPlane,
  prefix: string,
  nextToken: string | null,
  limit = 100,
): Promise<{ sources: { arn: string; name: string }[]; nextToken: string | null }> {
  const out = await callControlPlane<{ PartnerEventSources?: unknown; NextToken?: unknown }>(
    cp,
    "ListPartnerEventSources",
    {
      NamePrefix: prefix,
      Limit: limit,
      ...(nextToken ? { NextToken: nextToken } : {}),
    },
  );
  const list = Array.isArray(out.PartnerEventSources) ? out.PartnerEventSources : [];
  return {
    sources: list
      .map((s: unknown) => s as { Arn?: unknown; Name?: unknown })
      .filter((s) => typeof s.Name === "string")
      .map((s) => ({ arn: typeof s.Arn === "string" ? s.Arn : "", name: s.Name as string })),
    nextToken: typeof out.NextToken === "string" && out.NextToken ? out.NextToken : null,
  };
}

/** Every account of a source (all pages, at most `maxPages` calls), with the state of each. */
export async function listPartnerEventSourceAccounts(
  cp: ControlPlane,
  name: string,
  maxPages = 5,
): Promise<{ accounts: SourceAccount[]; calls: number }> {
  const accounts: SourceAccount[] = [];
  let token: string | null = null;
  let calls = 0;
  do {
    const out: { PartnerEventSourceAccounts?: unknown; NextToken?: unknown } = await callControlPlane(
      cp,
      "ListPartnerEventSourceAccounts",
      { EventSourceName: name, Limit: 100, ...(token ? { NextToken: token } : {}) },
    );
    calls++;
    const list = Array.isArray(out.PartnerEventSourceAccounts) ? out.PartnerEventSourceAccounts : [];
    for (const raw of list) {
      const a = raw as { Account?: unknown; CreationTime?: unknown; ExpirationTime?: unknown; State?: unknown };
      if (typeof a.Account !== "string" || (a.State !== "PENDING" && a.State !== "ACTIVE" && a.State !== "DELETED")) {
        continue;
      }
      accounts.push({
        account: a.Account,
        creationTime: epochMs(a.CreationTime),
        expirationTime: epochMs(a.ExpirationTime),
        state: a.State,
      });
    }
    token = typeof out.NextToken === "string" && out.NextToken ? out.NextToken : null;
  } while (token && calls < maxPages);
  return { accounts, calls };
}

/** JSON 1.1 timestamps are epoch seconds (a number); tolerate an ISO string too. */
function epochMs(v: unknown): number | null {
  if (typeof v === "number" && Number.isFinite(v)) return Math.round(v * 1000);
  if (typeof v === "string") {
    const t = Date.parse(v);
    return Number.isNaN(t) ? null : t;
  }
  return null;
}
