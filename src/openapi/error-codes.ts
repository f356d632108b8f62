/**
 * Every error code the public routes answer with, as the OpenAPI document lists them: the
 * problem+json status, the AWS front door's `__type` and status, and the response headers that
 * come with it. The errors themselves are built where they are thrown (src/errors.ts and its
 * callers); test/contract/error-codes.test.ts fails if a code appears in src/ that is not here,
 * or if this table disagrees with what src/errors.ts builds.
 *
 * TODO(h/errors): once src/errors.ts exports its catalog, this table is derived from it.
 */

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
  /** When it happens, for the document's tables. */
  when: string;
  /** Response headers that come with it. */
  headers?: ResponseHeaderName[];
  /** Only on the AWS front door (POST /): SigV4 refusals. */
  awsOnly?: boolean;
}

const BEARER_CHALLENGE: ResponseHeaderName[] = ["WWW-Authenticate"];

export const ERROR_CODES: readonly ErrorCodeDoc[] = [
  {
    code: "invalid_json",
    status: 400,
    aws: { type: "SerializationException", status: 400 },
    when: "The body is not valid UTF-8 JSON.",
  },
  {
    code: "invalid_request",
    status: 400,
    aws: { type: "ValidationException", status: 400 },
    when: "Wrong shape: not an object, no Entries, 0 or 21+ entries, an entry that is not an object, unknown top-level field.",
  },
  {
    code: "invalid_authorization_header",
    status: 400,
    aws: null,
    when: "Authorization is not `Bearer <key>`.",
    headers: BEARER_CHALLENGE,
  },
  {
    code: "invalid_idempotency_key",
    status: 400,
    aws: null,
    when: "Idempotency-Key is not 1-255 printable ASCII characters.",
  },
  {
    code: "missing_api_key",
    status: 401,
    aws: null,
    when: "No credentials (`WWW-Authenticate: Bearer`).",
    headers: BEARER_CHALLENGE,
  },
  {
    code: "malformed_api_key",
    status: 401,
    aws: null,
    when: "Not a relay key, or its checksum is wrong (no lookup is made).",
    headers: BEARER_CHALLENGE,
  },
  {
    code: "invalid_api_key",
    status: 401,
    aws: null,
    when: "Unknown, revoked or expired key.",
    headers: BEARER_CHALLENGE,
  },
  {
    code: "tenant_disabled",
    status: 403,
    aws: { type: "AccessDeniedException", status: 400 },
    when: "The tenant is disabled.",
  },
  {
    code: "not_found",
    status: 404,
    aws: null,
    when: "Unknown path, or an event id this tenant doesn't have.",
  },
  {
    code: "method_not_allowed",
    status: 405,
    aws: null,
    when: "Wrong method (`Allow` says which).",
    headers: ["Allow"],
  },
  {
    code: "idempotency_in_progress",
    status: 409,
    aws: { type: "ThrottlingException", status: 400 },
    when: "The same Idempotency-Key is still being processed.",
    headers: ["Retry-After"],
  },
  {
    code: "payload_too_large",
    status: 413,
    aws: { type: "ValidationException", status: 400 },
    when: "The body is over the raw cap (6 × MAX_BATCH_BYTES + 64 KiB), counted as it arrives.",
  },
  {
    code: "batch_too_large",
    status: 413,
    aws: { type: "ValidationException", status: 400 },
    when: "The entries are over MAX_BATCH_BYTES by AWS's size formula (`size`, `limit`).",
  },
  {
    code: "unsupported_media_type",
    status: 415,
    aws: { type: "SerializationException", status: 400 },
    when: "Not `Content-Type: application/json` (AWS door: application/x-amz-json-1.1).",
    headers: ["Accept-Post"],
  },
  {
    code: "idempotency_key_reused",
    status: 422,
    aws: { type: "ValidationException", status: 400 },
    when: "The same Idempotency-Key with a different body.",
  },
  {
    code: "buffer_full",
    status: 429,
    aws: { type: "ThrottlingException", status: 400 },
    when: "The tenant's buffer is full.",
    headers: ["Retry-After", "RateLimit", "RateLimit-Policy"],
  },
  {
    code: "upstream_throttled",
    status: 429,
    aws: { type: "ThrottlingException", status: 400 },
    when: "EventBridge throttled and the buffer had no room (`upstreamCode`).",
    headers: ["Retry-After"],
  },
  {
    code: "internal_error",
    status: 500,
    aws: { type: "InternalFailure", status: 500 },
    when: "A bug; nothing internal is on the wire, the log has the reason.",
  },
  {
    code: "upstream_unavailable",
    status: 502,
    aws: { type: "ServiceUnavailableException", status: 503 },
    when: "EventBridge 5xx or connection failure and no room to queue (AWS door: EventBridge's own code and status).",
  },
  {
    code: "upstream_auth_failed",
    status: 502,
    aws: { type: "InternalFailure", status: 500 },
    when: "EventBridge refused the tenant's AWS credentials (`upstreamCode`).",
  },
  {
    code: "upstream_rejected",
    status: 502,
    aws: { type: "ValidationException", status: 400 },
    when: "EventBridge refused the request (`upstreamCode`; AWS door: EventBridge's own `__type`).",
  },
  {
    code: "tenant_misconfigured",
    status: 503,
    aws: { type: "InternalFailure", status: 500 },
    when: "The tenant's record or credentials can't be read (reason in the log).",
  },
  {
    code: "tenant_overloaded",
    status: 503,
    aws: { type: "ServiceUnavailableException", status: 503 },
    when: "The tenant's Durable Object is overloaded.",
    headers: ["Retry-After"],
  },
  {
    code: "tenant_gate_unavailable",
    status: 503,
    aws: { type: "ServiceUnavailableException", status: 503 },
    when: "The tenant's Durable Object is unreachable.",
    headers: ["Retry-After"],
  },
  {
    code: "upstream_timeout",
    status: 504,
    aws: { type: "ServiceUnavailableException", status: 503 },
    when: "EventBridge did not answer in UPSTREAM_TIMEOUT_MS and there was no room to queue.",
  },
  // ---- The AWS front door only (SigV4) -----------------------------------------------------
  {
    code: "missing_signature",
    status: 401,
    aws: { type: "MissingAuthenticationTokenException", status: 403 },
    when: "No Authorization header (`--no-sign-request`).",
    awsOnly: true,
  },
  {
    code: "malformed_signature",
    status: 400,
    aws: { type: "IncompleteSignatureException", status: 400 },
    when: "Malformed Authorization or X-Amz-Date; host or x-amz-date not signed.",
    awsOnly: true,
  },
  {
    code: "presigned_not_supported",
    status: 400,
    aws: { type: "IncompleteSignatureException", status: 400 },
    when: "A presigned URL (query-string authentication).",
    awsOnly: true,
  },
  {
    code: "signature_mismatch",
    status: 401,
    aws: { type: "InvalidSignatureException", status: 400 },
    when: "Wrong secret or tampered request.",
    awsOnly: true,
  },
  {
    code: "content_sha256_mismatch",
    status: 401,
    aws: { type: "InvalidSignatureException", status: 400 },
    when: "x-amz-content-sha256 is not the body's hash.",
    awsOnly: true,
  },
  {
    code: "unsigned_payload_not_supported",
    status: 400,
    aws: { type: "InvalidSignatureException", status: 400 },
    when: "UNSIGNED-PAYLOAD or a streaming payload.",
    awsOnly: true,
  },
  {
    code: "signature_expired",
    status: 401,
    aws: { type: "InvalidSignatureException", status: 400 },
    when: "X-Amz-Date more than 5 minutes in the past.",
    awsOnly: true,
  },
  {
    code: "signature_not_yet_current",
    status: 401,
    aws: { type: "InvalidSignatureException", status: 400 },
    when: "X-Amz-Date more than 5 minutes in the future.",
    awsOnly: true,
  },
  {
    code: "invalid_credential_scope",
    status: 401,
    aws: { type: "InvalidSignatureException", status: 400 },
    when: "The credential scope's date, region, service (`events`) or terminator is wrong.",
    awsOnly: true,
  },
  {
    code: "unknown_access_key",
    status: 401,
    aws: { type: "UnrecognizedClientException", status: 400 },
    when: "Unknown or revoked access key id.",
    awsOnly: true,
  },
  {
    code: "temporary_credentials_not_supported",
    status: 401,
    aws: { type: "UnrecognizedClientException", status: 400 },
    when: "A session token (X-Amz-Security-Token) was sent.",
    awsOnly: true,
  },
  {
    code: "unknown_operation",
    status: 400,
    aws: { type: "UnknownOperationException", status: 400 },
    when: "Any X-Amz-Target other than AWSEvents.PutPartnerEvents.",
    awsOnly: true,
  },
];

/** Every code on the JSON API (problem+json `code`). */
export const PROBLEM_CODES: readonly string[] = ERROR_CODES.filter((e) => !e.awsOnly).map((e) => e.code);

export function errorCode(code: string): ErrorCodeDoc {
  const e = ERROR_CODES.find((x) => x.code === code);
  if (!e) throw new Error(`unknown error code ${code}`);
  return e;
}
