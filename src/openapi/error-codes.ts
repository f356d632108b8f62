/**
 * The error codes as the OpenAPI document lists them, derived from the relay's catalog
 * (ERROR_CATALOG in src/errors.ts: code, status, AWS shape, front doors). What the catalog does
 * not hold is documentation only: a sentence on when each code happens (the README's tables) and
 * the response headers that come with it. A code added to the catalog appears in the document at
 * once (on every route of its front doors); one without a sentence here is described by its title.
 */
import { ERROR_CATALOG, type ErrorCode, type FrontDoor } from "../errors.ts";

export type ResponseHeaderName =
  | "Retry-After"
  | "RateLimit"
  | "RateLimit-Policy"
  | "WWW-Authenticate"
  | "Allow"
  | "Accept-Post"
  | "Date";

export interface ErrorCodeDoc {
  code: string;
  /** HTTP status on the JSON API (problem+json). */
  status: number;
  /** What the AWS front door answers instead (`__type`, HTTP status); null: never on that door. */
  aws: { type: string; status: number } | null;
  /** The AWS front door passes EventBridge's own `__type` (and 5xx status) through. */
  awsFromUpstream: boolean;
  doors: readonly FrontDoor[];
  /** When it happens, for the document's tables. */
  when: string;
  /** Response headers that come with it. */
  headers: readonly ResponseHeaderName[];
}

const WHEN: Partial<Record<ErrorCode, string>> = {
  invalid_json: "The body is not valid UTF-8 JSON.",
  invalid_request:
    "Wrong shape: not an object, no Entries, 0 or 21+ entries, an entry that is not an object, unknown top-level field.",
  invalid_authorization_header: "Authorization is not `Bearer <key>`.",
  invalid_idempotency_key: "Idempotency-Key is not 1-255 printable ASCII characters.",
  missing_api_key: "No credentials (`WWW-Authenticate: Bearer`).",
  malformed_api_key: "Not a relay key, or its checksum is wrong (no lookup is made).",
  invalid_api_key: "Unknown, revoked or expired key.",
  tenant_disabled: "The tenant is disabled.",
  not_found: "Unknown path, or an event id this tenant doesn't have.",
  method_not_allowed: "Wrong method (`Allow` says which).",
  idempotency_in_progress: "The same Idempotency-Key is still being processed.",
  payload_too_large: "The body is over the raw cap (6 × MAX_BATCH_BYTES + 64 KiB), counted as it arrives.",
  batch_too_large: "The entries are over MAX_BATCH_BYTES by AWS's size formula (`size`, `limit`).",
  unsupported_media_type: "Not `Content-Type: application/json` (AWS door: application/x-amz-json-1.1).",
  idempotency_key_reused: "The same Idempotency-Key with a different body.",
  buffer_full: "The tenant's buffer is full.",
  upstream_throttled: "EventBridge throttled and the buffer had no room (`upstreamCode`).",
  internal_error: "A bug; nothing internal is on the wire, the log has the reason.",
  upstream_unavailable:
    "EventBridge 5xx or connection failure and no room to queue (AWS door: EventBridge's own code and status).",
  upstream_auth_failed: "EventBridge refused the tenant's AWS credentials (`upstreamCode`).",
  upstream_rejected: "EventBridge refused the request (`upstreamCode`; AWS door: EventBridge's own `__type`).",
  tenant_misconfigured: "The tenant's record or credentials can't be read (reason in the log).",
  tenant_overloaded: "The tenant's Durable Object is overloaded.",
  tenant_gate_unavailable: "The tenant's Durable Object is unreachable.",
  upstream_timeout: "EventBridge did not answer in UPSTREAM_TIMEOUT_MS and there was no room to queue.",
  missing_signature: "No Authorization header (`--no-sign-request`).",
  malformed_signature: "Malformed Authorization or X-Amz-Date; host or x-amz-date not signed.",
  presigned_not_supported: "A presigned URL (query-string authentication).",
  signature_mismatch: "Wrong secret or tampered request.",
  content_sha256_mismatch: "x-amz-content-sha256 is not the body's hash.",
  unsigned_payload_not_supported: "UNSIGNED-PAYLOAD or a streaming payload.",
  signature_expired: "X-Amz-Date more than 5 minutes in the past.",
  signature_not_yet_current: "X-Amz-Date more than 5 minutes in the future.",
  invalid_credential_scope: "The credential scope's date, region, service (`events`) or terminator is wrong.",
  unknown_access_key: "Unknown or revoked access key id.",
  temporary_credentials_not_supported: "A session token (X-Amz-Security-Token) was sent.",
  unknown_operation: "Any X-Amz-Target other than AWSEvents.PutPartnerEvents.",
  source_not_owned: "The source name is outside this tenant's source rules (POST /v1/sources).",
  source_not_found: "This tenant has no such source (or the name is not one of its sources).",
  source_exists: "EventBridge already has the source for another account.",
  source_account_unknown: "The source exists but the relay cannot tell which account it is for.",
  too_many_sources: "The tenant tracks the most sources it may (1,000).",
  invalid_source: "EventBridge refused the source name or account (`detail` has its code).",
  control_plane_throttled:
    "EventBridge (or STS, for a role tenant) throttled the source call; retry after Retry-After.",
  control_plane_denied:
    "The tenant's AWS credentials may not make the source call, or STS would not give the role's session.",
  control_plane_not_implemented: "The upstream does not implement the source call.",
  control_plane_unavailable: "EventBridge (or STS) failed or did not answer the source call; retry.",
};

const HEADERS: Partial<Record<ErrorCode, readonly ResponseHeaderName[]>> = {
  invalid_authorization_header: ["WWW-Authenticate"],
  missing_api_key: ["WWW-Authenticate"],
  malformed_api_key: ["WWW-Authenticate"],
  invalid_api_key: ["WWW-Authenticate"],
  method_not_allowed: ["Allow"],
  idempotency_in_progress: ["Retry-After"],
  unsupported_media_type: ["Accept-Post"],
  buffer_full: ["Retry-After", "RateLimit", "RateLimit-Policy"],
  upstream_throttled: ["Retry-After"],
  tenant_overloaded: ["Retry-After"],
  tenant_gate_unavailable: ["Retry-After"],
  invalid_credential_scope: ["WWW-Authenticate"],
  signature_expired: ["WWW-Authenticate", "Date"],
  signature_not_yet_current: ["WWW-Authenticate", "Date"],
  content_sha256_mismatch: ["WWW-Authenticate"],
  signature_mismatch: ["WWW-Authenticate"],
  unknown_access_key: ["WWW-Authenticate"],
  temporary_credentials_not_supported: ["WWW-Authenticate"],
  missing_signature: ["WWW-Authenticate"],
  control_plane_throttled: ["Retry-After"],
};

/** Every code a partner's front door (the JSON API or the AWS front door) can answer with. */
export const ERROR_CODES: readonly ErrorCodeDoc[] = ERROR_CATALOG.filter(
  (e) => e.doors.includes("json") || e.doors.includes("aws"),
).map((e) => ({
  code: e.code,
  status: e.status,
  aws: e.doors.includes("aws") ? { type: e.aws.type, status: e.aws.status } : null,
  awsFromUpstream: e.awsFromUpstream,
  doors: e.doors,
  when: WHEN[e.code] ?? e.title,
  headers: HEADERS[e.code] ?? [],
}));

/** The codes a front door can answer with. */
export function codesFor(door: "json" | "aws"): string[] {
  return ERROR_CODES.filter((e) => e.doors.includes(door)).map((e) => e.code);
}

export function errorCode(code: string): ErrorCodeDoc {
  const e = ERROR_CODES.find((x) => x.code === code);
  if (!e) throw new Error(`unknown error code ${code}`);
  return e;
}
