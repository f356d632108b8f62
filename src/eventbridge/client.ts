/**
 * PutPartnerEvents over the wire: sign with aws4fetch's AwsV4Signer immediately before the attempt
 * (one attempt: the relay owns retry policy), send with a timeout, and parse what comes back into a
 * result the callers can act on without knowing HTTP.
 */
import { type AwsClient, AwsV4Signer } from "aws4fetch";
import type { WireEntry } from "../entries/schema.ts";
import { type CallErrorClass, classifyCallError, normalizeErrorCode } from "./codes.ts";

export type EntryResult = { eventId: string | null } | { code: string; message: string };

export type PutResult =
  | { kind: "ok"; entries: EntryResult[]; requestId: string | null }
  | {
      kind: "error";
      errorClass: CallErrorClass;
      /** EventBridge's code (normalised), or RequestTimeout / NetworkError for no answer. */
      code: string;
      /** EventBridge's message; never holds credentials (AWS doesn't echo them). */
      message: string;
      status: number;
      requestId: string | null;
      /** true when the events may have been accepted even though no answer arrived. */
      outcomeUnknown: boolean;
      /** "sts": the call never left: assuming the tenant's role failed (src/credentials/), `code` is STS's. */
      via?: "sts";
    };

export interface PutOptions {
  /** The tenant's static keys, or its assumed-role credentials with their session token (src/credentials/). */
  client: AwsClient;
  endpoint: string;
  region: string;
  /** The entries, or each entry already serialised (the buffer stores them so: no parse and re-stringify). */
  entries: readonly WireEntry[] | { json: readonly string[] };
  timeoutMs: number;
}

const TARGET = "AWSEvents.PutPartnerEvents";
const encoder = new TextEncoder();
const CONTENT_TYPE = "application/x-amz-json-1.1";

export async function putPartnerEvents(opts: PutOptions): Promise<PutResult> {
  // Encoded once: aws4fetch hashes these bytes and fetch sends them (a string would be encoded twice).
  const json =
    "json" in opts.entries ? `{"Entries":[${opts.entries.json.join(",")}]}` : JSON.stringify({ Entries: opts.entries });
  const body = encoder.encode(json);
  const count = "json" in opts.entries ? opts.entries.json.length : opts.entries.length;
  let response: Response;
  try {
    // The signer itself, not AwsClient.sign: that wraps the result in a Request which fetch would
    // copy into another one. The client's cache keeps the derived signing key between calls.
    const signed = await new AwsV4Signer({
      url: `${opts.endpoint}/`,
      method: "POST",
      headers: { "content-type": CONTENT_TYPE, "x-amz-target": TARGET },
      body,
      accessKeyId: opts.client.accessKeyId,
      secretAccessKey: opts.client.secretAccessKey,
      ...(opts.client.sessionToken ? { sessionToken: opts.client.sessionToken } : {}),
      service: "events",
      region: opts.region,
      cache: opts.client.cache,
      allHeaders: true,
    }).sign();
    response = await fetch(signed.url, {
      method: "POST",
      headers: signed.headers,
      body,
      signal: AbortSignal.timeout(opts.timeoutMs),
    });
  } catch (e) {
    const timedOut = e instanceof Error && (e.name === "TimeoutError" || e.name === "AbortError");
    return {
      kind: "error",
      errorClass: timedOut ? "timeout" : "network",
      code: timedOut ? "RequestTimeout" : "NetworkError",
      message: timedOut
        ? `EventBridge did not answer within ${opts.timeoutMs} ms`
        : "the connection to EventBridge failed",
      status: 0,
      requestId: null,
      outcomeUnknown: true,
    };
  }
  const requestId = response.headers.get("x-amzn-requestid");
  let text: string;
  try {
    text = await response.text();
  } catch {
    return {
      kind: "error",
      errorClass: "network",
      code: "NetworkError",
      message: "the connection to EventBridge failed while reading its answer",
      status: response.status,
      requestId,
      // A 2xx or 5xx whose body was lost: EventBridge may hold the entries (see parseFailure).
      outcomeUnknown: response.ok || response.status >= 500,
    };
  }
  if (response.ok) return parseSuccess(text, count, requestId, response.status);
  return parseFailure(text, response, requestId);
}

function parseSuccess(text: string, sent: number, requestId: string | null, status: number): PutResult {
  let json: { FailedEntryCount?: unknown; Entries?: unknown };
  try {
    json = JSON.parse(text) as typeof json;
  } catch {
    return unknownOutcome("EventBridge answered 2xx with a body that is not JSON", status, requestId);
  }
  const raw = Array.isArray(json.Entries) ? json.Entries : null;
  const failed = typeof json.FailedEntryCount === "number" ? json.FailedEntryCount : null;
  if (raw && raw.length === sent) {
    const entries: EntryResult[] = raw.map((r: unknown) => {
      const o = (r ?? {}) as { EventId?: unknown; ErrorCode?: unknown; ErrorMessage?: unknown };
      if (typeof o.ErrorCode === "string" && o.ErrorCode) {
        return { code: o.ErrorCode, message: typeof o.ErrorMessage === "string" ? o.ErrorMessage : "" };
      }
      return { eventId: typeof o.EventId === "string" ? o.EventId : null };
    });
    return { kind: "ok", entries, requestId };
  }
  // Some emulators (moto) answer {"Entries":[],"FailedEntryCount":0}: every entry accepted, no ids.
  if (failed === 0) {
    return { kind: "ok", entries: Array.from({ length: sent }, () => ({ eventId: null })), requestId };
  }
  return unknownOutcome(
    `EventBridge answered ${raw ? raw.length : "no"} results for ${sent} entries`,
    status,
    requestId,
  );
}

function unknownOutcome(message: string, status: number, requestId: string | null): PutResult {
  return {
    kind: "error",
    errorClass: "server",
    code: "InvalidResponse",
    message,
    status,
    requestId,
    outcomeUnknown: true,
  };
}

function parseFailure(text: string, response: Response, requestId: string | null): PutResult {
  let code = "";
  let message = "";
  try {
    const json = JSON.parse(text) as { __type?: unknown; code?: unknown; message?: unknown; Message?: unknown };
    const type = typeof json.__type === "string" ? json.__type : typeof json.code === "string" ? json.code : "";
    code = normalizeErrorCode(type);
    message = typeof json.message === "string" ? json.message : typeof json.Message === "string" ? json.Message : "";
  } catch {
    // Not JSON: XML from an emulator's auth layer, or an HTML error page.
    code = /<Code>([^<]{1,100})<\/Code>/.exec(text)?.[1] ?? "";
    message = /<Message>([^<]{1,500})<\/Message>/.exec(text)?.[1] ?? "";
  }
  const headerType = response.headers.get("x-amzn-errortype");
  if (!code && headerType) code = normalizeErrorCode(headerType);
  if (!code) code = response.status >= 500 ? "InternalFailure" : `HTTP${response.status}`;
  const errorClass = classifyCallError(response.status, code);
  return {
    kind: "error",
    errorClass,
    code,
    message: message || `EventBridge answered HTTP ${response.status}`,
    status: response.status,
    requestId,
    // A 5xx (InternalException, ServiceUnavailable, a gateway's 502/504) can come after EventBridge
    // accepted some or all of the entries: only throttling and 4xx refusals say nothing was taken.
    outcomeUnknown: errorClass === "server",
  };
}
