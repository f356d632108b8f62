/**
 * The relay's error types and the one place error responses are built.
 *
 * Every refusal is a RelayError with a stable machine-readable code. The JSON API writes it as
 * RFC 9457 problem+json; the AWS front door writes it as AWS JSON 1.1 (`__type` + `message`), so
 * the AWS CLI prints `An error occurred (<Code>) when calling the PutPartnerEvents operation`.
 * Internal reasons (stack traces, upstream bodies, anything secret) go to the log, never the wire.
 */

export type ErrorFormat = "problem" | "aws";

export interface AwsErrorShape {
  /** `__type` on the wire, e.g. "ValidationException". */
  type: string;
  /** HTTP status AWS uses for it. */
  status: number;
}

export interface RelayErrorInit {
  status: number;
  code: string;
  /** A human sentence for the partner. Never holds secrets. */
  detail: string;
  /** How the AWS front door writes it; defaults from the status. */
  aws?: AwsErrorShape;
  headers?: Record<string, string>;
  /** Extra members for problem+json (e.g. upstreamCode). */
  extra?: Record<string, unknown>;
  /** What the log gets beyond the detail (never secrets). */
  logReason?: string;
}

export class RelayError extends Error {
  readonly status: number;
  readonly code: string;
  readonly detail: string;
  readonly aws: AwsErrorShape;
  readonly headers: Record<string, string>;
  readonly extra: Record<string, unknown>;
  readonly logReason: string | undefined;

  constructor(init: RelayErrorInit) {
    super(`${init.code}: ${init.detail}`);
    this.name = "RelayError";
    this.status = init.status;
    this.code = init.code;
    this.detail = init.detail;
    this.aws = init.aws ?? defaultAwsShape(init.status);
    this.headers = init.headers ?? {};
    this.extra = init.extra ?? {};
    this.logReason = init.logReason;
  }
}

function defaultAwsShape(status: number): AwsErrorShape {
  if (status === 429) return { type: "ThrottlingException", status: 400 };
  if (status === 401) return { type: "UnrecognizedClientException", status: 400 };
  if (status === 403) return { type: "AccessDeniedException", status: 400 };
  if (status >= 500) return { type: "InternalFailure", status: 500 };
  return { type: "ValidationException", status: 400 };
}

/** Problem titles by status (RFC 9457 `title`: the same for every occurrence of the status). */
const TITLES: Record<number, string> = {
  400: "Bad Request",
  401: "Unauthorized",
  403: "Forbidden",
  404: "Not Found",
  405: "Method Not Allowed",
  409: "Conflict",
  413: "Content Too Large",
  415: "Unsupported Media Type",
  422: "Unprocessable Content",
  429: "Too Many Requests",
  500: "Internal Server Error",
  502: "Bad Gateway",
  503: "Service Unavailable",
  504: "Gateway Timeout",
};

const BASE_HEADERS = { "cache-control": "no-store" } as const;

/** The response header carrying the relay's request id, by format (AWS's own name on its door). */
export const REQUEST_ID_HEADERS = { aws: "x-amzn-requestid", problem: "x-request-id" } as const;

/** Builds the wire response for an error, in the front door's format. */
export function errorResponse(err: RelayError, format: ErrorFormat, requestId?: string): Response {
  if (format === "aws") {
    const headers = new Headers({
      ...BASE_HEADERS,
      ...err.headers,
      "content-type": "application/x-amz-json-1.1",
    });
    if (requestId) headers.set(REQUEST_ID_HEADERS.aws, requestId);
    headers.set("x-amzn-errortype", err.aws.type);
    const body = JSON.stringify({ __type: err.aws.type, message: err.detail });
    return new Response(body, { status: err.aws.status, headers });
  }
  const headers = new Headers({
    ...BASE_HEADERS,
    ...err.headers,
    "content-type": "application/problem+json",
  });
  if (requestId) headers.set(REQUEST_ID_HEADERS.problem, requestId);
  const body = JSON.stringify({
    type: `urn:eventbridge-relay:problem:${err.code}`,
    title: TITLES[err.status] ?? "Error",
    status: err.status,
    code: err.code,
    detail: err.detail,
    ...err.extra,
    ...(requestId ? { requestId } : {}),
  });
  return new Response(body, { status: err.status, headers });
}

// ---- The catalog: every code the relay answers with ---------------------------------------------

/**
 * Where a code can be answered: `json` the JSON API (`/v1/*`, problem+json), `aws` the AWS front
 * door (`POST /`, AWS JSON 1.1), `admin` the admin API (`/admin/v1/*`, problem+json).
 */
export type FrontDoor = "json" | "aws" | "admin";

interface CatalogSpec {
  status: number;
  /** How the AWS front door writes it. */
  aws: AwsErrorShape;
  /** True when the AWS front door passes EventBridge's own `__type` (and 5xx status) through. */
  awsFromUpstream?: true;
  doors: readonly FrontDoor[];
}

const JSON_ONLY = ["json"] as const;
const AWS_ONLY = ["aws"] as const;
const ADMIN_ONLY = ["admin"] as const;
const PARTNER = ["json", "aws"] as const;
const ALL_DOORS = ["json", "aws", "admin"] as const;
const PROBLEM_DOORS = ["json", "admin"] as const;

const VALIDATION = { type: "ValidationException", status: 400 } as const;
const SERIALIZATION = { type: "SerializationException", status: 400 } as const;
const THROTTLING = { type: "ThrottlingException", status: 400 } as const;
const INCOMPLETE_SIGNATURE = { type: "IncompleteSignatureException", status: 400 } as const;
const INVALID_SIGNATURE = { type: "InvalidSignatureException", status: 400 } as const;
const UNRECOGNIZED_CLIENT = { type: "UnrecognizedClientException", status: 400 } as const;
const MISSING_TOKEN = { type: "MissingAuthenticationTokenException", status: 403 } as const;
const INTERNAL_FAILURE = { type: "InternalFailure", status: 500 } as const;
const SERVICE_UNAVAILABLE = { type: "ServiceUnavailableException", status: 503 } as const;

/**
 * Every code, its HTTP status, its AWS shape and the front doors that can answer it. The named
 * constructors below (`errors`) are the only way to build these; test/unit/error-catalog.test.ts
 * checks the source, the constructors and the README's tables against this list.
 */
const CATALOG = {
  // Request syntax and shape
  invalid_json: { status: 400, aws: SERIALIZATION, doors: ALL_DOORS },
  invalid_request: { status: 400, aws: VALIDATION, doors: ALL_DOORS },
  invalid_authorization_header: { status: 400, aws: VALIDATION, doors: JSON_ONLY },
  invalid_idempotency_key: { status: 400, aws: VALIDATION, doors: JSON_ONLY },
  body_incomplete: { status: 400, aws: SERIALIZATION, doors: PARTNER },
  payload_too_large: { status: 413, aws: VALIDATION, doors: PARTNER },
  batch_too_large: { status: 413, aws: VALIDATION, doors: PARTNER },
  unsupported_media_type: { status: 415, aws: SERIALIZATION, doors: PARTNER },
  unknown_operation: { status: 400, aws: { type: "UnknownOperationException", status: 400 }, doors: AWS_ONLY },
  not_found: { status: 404, aws: VALIDATION, doors: PROBLEM_DOORS },
  method_not_allowed: { status: 405, aws: VALIDATION, doors: PROBLEM_DOORS },
  // API keys (JSON API)
  missing_api_key: { status: 401, aws: MISSING_TOKEN, doors: JSON_ONLY },
  malformed_api_key: { status: 401, aws: UNRECOGNIZED_CLIENT, doors: JSON_ONLY },
  invalid_api_key: { status: 401, aws: UNRECOGNIZED_CLIENT, doors: JSON_ONLY },
  // Signature V4 (AWS front door)
  missing_signature: { status: 401, aws: MISSING_TOKEN, doors: AWS_ONLY },
  malformed_signature: { status: 400, aws: INCOMPLETE_SIGNATURE, doors: AWS_ONLY },
  presigned_not_supported: { status: 400, aws: INCOMPLETE_SIGNATURE, doors: AWS_ONLY },
  invalid_credential_scope: { status: 401, aws: INVALID_SIGNATURE, doors: AWS_ONLY },
  signature_expired: { status: 401, aws: INVALID_SIGNATURE, doors: AWS_ONLY },
  signature_not_yet_current: { status: 401, aws: INVALID_SIGNATURE, doors: AWS_ONLY },
  unsigned_payload_not_supported: { status: 400, aws: INVALID_SIGNATURE, doors: AWS_ONLY },
  content_sha256_mismatch: { status: 401, aws: INVALID_SIGNATURE, doors: AWS_ONLY },
  signature_mismatch: { status: 401, aws: INVALID_SIGNATURE, doors: AWS_ONLY },
  unknown_access_key: { status: 401, aws: UNRECOGNIZED_CLIENT, doors: AWS_ONLY },
  temporary_credentials_not_supported: { status: 401, aws: UNRECOGNIZED_CLIENT, doors: AWS_ONLY },
  // The tenant
  tenant_disabled: { status: 403, aws: { type: "AccessDeniedException", status: 400 }, doors: PARTNER },
  tenant_misconfigured: { status: 503, aws: INTERNAL_FAILURE, doors: PARTNER },
  tenant_overloaded: { status: 503, aws: SERVICE_UNAVAILABLE, doors: ALL_DOORS },
  tenant_gate_unavailable: { status: 503, aws: SERVICE_UNAVAILABLE, doors: ALL_DOORS },
  // Idempotency-Key (JSON API only: the AWS front door has no such header)
  idempotency_in_progress: { status: 409, aws: THROTTLING, doors: JSON_ONLY },
  idempotency_key_reused: { status: 422, aws: VALIDATION, doors: JSON_ONLY },
  // Admission and EventBridge
  buffer_full: { status: 429, aws: THROTTLING, doors: PARTNER },
  upstream_throttled: { status: 429, aws: THROTTLING, doors: PARTNER },
  upstream_unavailable: { status: 502, aws: SERVICE_UNAVAILABLE, awsFromUpstream: true, doors: PARTNER },
  upstream_auth_failed: { status: 502, aws: INTERNAL_FAILURE, doors: PARTNER },
  upstream_rejected: { status: 502, aws: VALIDATION, awsFromUpstream: true, doors: PARTNER },
  upstream_timeout: { status: 504, aws: SERVICE_UNAVAILABLE, doors: PARTNER },
  // The admin API
  admin_disabled: { status: 503, aws: INTERNAL_FAILURE, doors: ADMIN_ONLY },
  missing_admin_token: { status: 401, aws: MISSING_TOKEN, doors: ADMIN_ONLY },
  invalid_admin_token: { status: 401, aws: UNRECOGNIZED_CLIENT, doors: ADMIN_ONLY },
  invalid_tenant_id: { status: 400, aws: VALIDATION, doors: ADMIN_ONLY },
  events_queued: { status: 409, aws: VALIDATION, doors: ADMIN_ONLY },
  fan_out_incomplete: { status: 503, aws: INTERNAL_FAILURE, doors: ADMIN_ONLY },
  // A bug
  internal_error: { status: 500, aws: INTERNAL_FAILURE, doors: ALL_DOORS },
  // Partner event sources (/v1/sources, /admin/v1/tenants/{id}/sources; docs/sources.md)
  source_not_owned: { status: 403, aws: { type: "AccessDeniedException", status: 400 }, doors: PROBLEM_DOORS },
  source_not_found: { status: 404, aws: VALIDATION, doors: PROBLEM_DOORS },
  tenant_not_found: { status: 404, aws: VALIDATION, doors: ADMIN_ONLY },
  source_exists: { status: 409, aws: VALIDATION, doors: PROBLEM_DOORS },
  source_account_unknown: { status: 409, aws: VALIDATION, doors: PROBLEM_DOORS },
  too_many_sources: { status: 409, aws: VALIDATION, doors: PROBLEM_DOORS },
  invalid_source: { status: 400, aws: VALIDATION, doors: PROBLEM_DOORS },
  control_plane_throttled: { status: 429, aws: THROTTLING, doors: PROBLEM_DOORS },
  control_plane_denied: { status: 502, aws: INTERNAL_FAILURE, doors: PROBLEM_DOORS },
  control_plane_not_implemented: { status: 502, aws: INTERNAL_FAILURE, doors: PROBLEM_DOORS },
  control_plane_unavailable: { status: 502, aws: SERVICE_UNAVAILABLE, doors: PROBLEM_DOORS },
} as const satisfies Record<string, CatalogSpec>;

export type ErrorCode = keyof typeof CATALOG;

export interface CatalogEntry {
  code: ErrorCode;
  status: number;
  /** problem+json `title` (by status, RFC 9457). */
  title: string;
  aws: AwsErrorShape;
  awsFromUpstream: boolean;
  doors: readonly FrontDoor[];
}

/** The catalog as a list, in the order above. */
export const ERROR_CATALOG: readonly CatalogEntry[] = Object.entries(CATALOG).map(([code, spec]) => {
  const s: CatalogSpec = spec;
  return {
    code: code as ErrorCode,
    status: s.status,
    title: TITLES[s.status] ?? "Error",
    aws: s.aws,
    awsFromUpstream: s.awsFromUpstream === true,
    doors: s.doors,
  };
});

/** The one place a RelayError is made: status and AWS shape come from the catalog. */
function make(
  code: ErrorCode,
  detail: string,
  opts: Omit<RelayErrorInit, "status" | "code" | "detail"> = {},
): RelayError {
  const spec: CatalogSpec = CATALOG[code];
  return new RelayError({ ...opts, status: spec.status, code, detail, aws: opts.aws ?? spec.aws });
}

/** An upstream whole-call failure, as src/eventbridge/client.ts reports it. */
export interface UpstreamFailure {
  code: string;
  message: string;
  status: number;
  requestId: string | null;
  outcomeUnknown: boolean;
  /** "sts": nothing was sent; assuming the tenant's role failed and `code` is STS's (src/credentials/). */
  via?: "sts";
}

function upstreamExtra(u: UpstreamFailure): Record<string, unknown> {
  return {
    upstreamCode: u.code,
    ...(u.requestId ? { upstreamRequestId: u.requestId } : {}),
    ...(u.via ? { upstreamService: u.via } : {}),
  };
}

/** Who failed: EventBridge, or STS when the tenant's role could not be assumed. */
function upstreamName(u: UpstreamFailure): string {
  return u.via === "sts" ? "AWS STS (assuming this tenant's role)" : "EventBridge";
}

const SIGNATURE_MISMATCH =
  "The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method. Consult the service documentation for details.";

/** Signature V4 refusals' challenge (the algorithm, as AWS sends none but a client needs one). */
const SIGV4_CHALLENGE = { "www-authenticate": "AWS4-HMAC-SHA256" } as const;

// ---- The named constructors: one per code ------------------------------------------------------

export const errors = {
  // Request syntax and shape
  invalidJson(): RelayError {
    return make("invalid_json", "The request body is not valid JSON.");
  },
  invalidRequest(detail: string): RelayError {
    return make("invalid_request", detail);
  },
  invalidAuthorizationHeader(challenge: string): RelayError {
    return make("invalid_authorization_header", "The Authorization header must be `Bearer <api key>`.", {
      headers: { "www-authenticate": `${challenge}, error="invalid_request"` },
    });
  },
  invalidIdempotencyKey(maxChars: number): RelayError {
    return make(
      "invalid_idempotency_key",
      `Idempotency-Key must be 1-${maxChars} printable ASCII characters without spaces.`,
    );
  },
  /** The body ended before it was complete; `logReason`: what the runtime said, or the byte counts. */
  bodyIncomplete(logReason: string): RelayError {
    return make(
      "body_incomplete",
      "The request body ended before it was complete (the connection closed early, or the Content-Length or chunked framing was wrong). Nothing was accepted; send the request again.",
      { logReason },
    );
  },
  payloadTooLarge(limit: number): RelayError {
    return make("payload_too_large", `The request body is larger than ${limit} bytes.`);
  },
  batchTooLarge(size: number, limit: number): RelayError {
    return make(
      "batch_too_large",
      `The entries total ${size} bytes by EventBridge's size formula; the limit is ${limit} bytes.`,
      { extra: { size, limit } },
    );
  },
  unsupportedMediaType(expected: string): RelayError {
    return make("unsupported_media_type", `Send the body with Content-Type: ${expected}.`, {
      headers: { "accept-post": expected },
    });
  },
  /** `target`: the X-Amz-Target sent, already made safe to echo (src/auth/echo.ts), or null when none. */
  unknownOperation(served: string, target: string | null): RelayError {
    return make(
      "unknown_operation",
      target
        ? `The relay only serves ${served}; ${target} is not supported.`
        : `X-Amz-Target is required; the relay serves ${served}.`,
    );
  },
  notFound(detail = "There is nothing at this path."): RelayError {
    return make("not_found", detail);
  },
  methodNotAllowed(allow: string): RelayError {
    return make("method_not_allowed", `This path accepts ${allow}.`, { headers: { allow } });
  },

  // API keys
  missingApiKey(challenge: string): RelayError {
    return make("missing_api_key", "Send the API key as `Authorization: Bearer <key>` or `X-Api-Key: <key>`.", {
      headers: { "www-authenticate": challenge },
    });
  },
  malformedApiKey(challenge: string): RelayError {
    return make(
      "malformed_api_key",
      "The API key is not in the relay's key format (ebr_...), or its checksum is wrong.",
      { headers: { "www-authenticate": `${challenge}, error="invalid_token"` } },
    );
  },
  invalidApiKey(challenge: string): RelayError {
    return make("invalid_api_key", "The API key is unknown, revoked or expired.", {
      headers: { "www-authenticate": `${challenge}, error="invalid_token"` },
    });
  },

  // Signature V4 (AWS's wording where AWS has one)
  /** No Authorization header (AWS's answer, e.g. to `aws --no-sign-request`). */
  missingSignature(): RelayError {
    return make("missing_signature", "Missing Authentication Token", { headers: SIGV4_CHALLENGE });
  },
  /** `detail` must not echo anything secret (src/auth/sigv4.ts `echo`). */
  malformedSignature(detail: string, logReason?: string): RelayError {
    return make("malformed_signature", detail, logReason ? { logReason } : {});
  },
  presignedNotSupported(): RelayError {
    return make(
      "presigned_not_supported",
      "The relay accepts Signature Version 4 in the Authorization header only; query-string (presigned URL) authentication with X-Amz-Algorithm is not supported.",
    );
  },
  invalidCredentialScope(detail: string): RelayError {
    return make("invalid_credential_scope", detail, { headers: SIGV4_CHALLENGE });
  },
  /** `date`: the relay's clock as an HTTP date (the JS SDK v3 corrects its clock offset from it). */
  signatureExpired(detail: string, date: string): RelayError {
    return make("signature_expired", detail, { headers: { ...SIGV4_CHALLENGE, date } });
  },
  signatureNotYetCurrent(detail: string, date: string): RelayError {
    return make("signature_not_yet_current", detail, { headers: { ...SIGV4_CHALLENGE, date } });
  },
  unsignedPayloadNotSupported(detail: string): RelayError {
    return make("unsigned_payload_not_supported", detail);
  },
  contentSha256Mismatch(): RelayError {
    return make(
      "content_sha256_mismatch",
      "The provided x-amz-content-sha256 header does not match what was computed.",
      { headers: SIGV4_CHALLENGE },
    );
  },
  /** The signature does not verify. `logReason` must never hold the secret or what was expected. */
  signatureMismatch(logReason?: string): RelayError {
    return make("signature_mismatch", SIGNATURE_MISMATCH, {
      headers: SIGV4_CHALLENGE,
      ...(logReason ? { logReason } : {}),
    });
  },
  /**
   * The access key id is not one the relay issued (or it was revoked). `relayFormat`: it has the
   * relay's format (RLY…). `logReason` says which id without holding anything a caller may have
   * misplaced there (src/auth/sigv4.ts `describeAccessKeyId`).
   */
  unknownAccessKey(relayFormat: boolean, logReason: string): RelayError {
    const hint = relayFormat
      ? "The relay does not know this access key id, or it was revoked."
      : "This is not a relay-issued access key id (those start with RLY): configure the key pair the relay issued, not AWS credentials.";
    return make("unknown_access_key", `The security token included in the request is invalid. ${hint}`, {
      headers: SIGV4_CHALLENGE,
      logReason,
    });
  },
  temporaryCredentialsNotSupported(): RelayError {
    return make(
      "temporary_credentials_not_supported",
      "The relay issues long-term key pairs and does not accept temporary credentials (an X-Amz-Security-Token was sent). Unset AWS_SESSION_TOKEN (or remove aws_session_token from the profile) and sign with the relay-issued access key id and secret only.",
      { headers: SIGV4_CHALLENGE },
    );
  },

  // The tenant
  tenantDisabled(): RelayError {
    return make("tenant_disabled", "This tenant is disabled. Contact the relay's operator.");
  },
  tenantMisconfigured(logReason: string): RelayError {
    return make(
      "tenant_misconfigured",
      "The relay cannot use this tenant's configuration right now. Nothing was accepted; the operator has been told in the logs.",
      { logReason },
    );
  },
  tenantOverloaded(logReason?: string): RelayError {
    return make(
      "tenant_overloaded",
      "This tenant is receiving more requests than the relay can admit right now. Retry after the Retry-After delay.",
      { headers: { "retry-after": "1" }, ...(logReason ? { logReason } : {}) },
    );
  },
  tenantGateUnavailable(logReason?: string): RelayError {
    return make(
      "tenant_gate_unavailable",
      "The relay could not reach this tenant's admission gate. The request may not have been accepted; retry it (with an Idempotency-Key to avoid duplicates).",
      { headers: { "retry-after": "1" }, ...(logReason ? { logReason } : {}) },
    );
  },

  // Idempotency-Key
  idempotencyInProgress(retryAfterS: number): RelayError {
    return make(
      "idempotency_in_progress",
      "A request with this Idempotency-Key is still being processed; retry after it completes.",
      { headers: { "retry-after": String(retryAfterS) } },
    );
  },
  idempotencyKeyReused(): RelayError {
    return make(
      "idempotency_key_reused",
      "This Idempotency-Key was used with a different request body in the last 24 hours.",
    );
  },

  // Admission and EventBridge
  bufferFull(retryAfterS: number, rate: { limit: number; windowS: number }): RelayError {
    return make(
      "buffer_full",
      `This tenant's buffer is full; nothing in this request was accepted. Retry after ${retryAfterS} s.`,
      {
        headers: {
          "retry-after": String(retryAfterS),
          "ratelimit-policy": `"eventbridge";q=${rate.limit};w=${rate.windowS}`,
          ratelimit: `"eventbridge";r=0;t=${retryAfterS}`,
        },
      },
    );
  },
  upstreamThrottled(u: UpstreamFailure): RelayError {
    return make(
      "upstream_throttled",
      `${upstreamName(u)} throttled the request (${u.code}) and the relay's buffer is full. Nothing was accepted; retry later.`,
      { headers: { "retry-after": "1" }, extra: upstreamExtra(u) },
    );
  },
  upstreamTimeout(u: UpstreamFailure): RelayError {
    return make(
      "upstream_timeout",
      `${u.message}. The relay's buffer is full, so the entries were not accepted${u.via === "sts" ? "" : "; they may have reached EventBridge"}. Retry later.`,
      { extra: upstreamExtra(u) },
    );
  },
  /**
   * When the outcome is unknown (the answer was lost, or a 5xx that may follow acceptance) the
   * partner is told the entries may have reached EventBridge, as for upstream_timeout; the relay
   * counts them in duplicatesPossible.
   */
  upstreamUnavailable(u: UpstreamFailure): RelayError {
    return make(
      "upstream_unavailable",
      u.outcomeUnknown
        ? `EventBridge failed (${u.code}${u.status ? `, HTTP ${u.status}` : ""}) and the relay's buffer is full, so the entries were not accepted; they may have reached EventBridge before it failed, so a resend may deliver them twice. Retry later.`
        : `${upstreamName(u)} failed (${u.code}) and the relay's buffer is full. Nothing was accepted; retry later.`,
      {
        aws: {
          type: u.code === "NetworkError" ? CATALOG.upstream_unavailable.aws.type : u.code,
          status: u.status >= 500 ? u.status : CATALOG.upstream_unavailable.aws.status,
        },
        extra: upstreamExtra(u),
      },
    );
  },
  upstreamAuthFailed(u: UpstreamFailure): RelayError {
    return make(
      "upstream_auth_failed",
      u.via === "sts"
        ? `AWS STS refused to let the relay assume this tenant's role (${u.code}): ${u.message}. Nothing was accepted; the role's trust policy, its external id or the relay's AWS identity must be fixed (docs/credentials.md).`
        : `EventBridge refused this tenant's AWS credentials (${u.code}). Nothing was accepted; the relay's operator must fix the tenant's credentials.`,
      { extra: upstreamExtra(u) },
    );
  },
  upstreamRejected(u: UpstreamFailure): RelayError {
    return make("upstream_rejected", `EventBridge rejected the request: ${u.code}: ${u.message}`, {
      aws: { type: u.code, status: 400 },
      extra: upstreamExtra(u),
    });
  },

  // The admin API
  adminDisabled(): RelayError {
    return make("admin_disabled", "The admin API is off: ADMIN_TOKEN is not set.");
  },
  missingAdminToken(challenge: string): RelayError {
    return make("missing_admin_token", "Send `Authorization: Bearer <ADMIN_TOKEN>`.", {
      headers: { "www-authenticate": challenge },
    });
  },
  invalidAdminToken(challenge: string): RelayError {
    return make("invalid_admin_token", "The admin token is wrong.", {
      headers: { "www-authenticate": `${challenge}, error="invalid_token"` },
    });
  },
  invalidTenantId(detail: string): RelayError {
    return make("invalid_tenant_id", detail);
  },
  eventsQueued(tenantId: string, queued: number): RelayError {
    return make(
      "events_queued",
      `Tenant ${tenantId} still has ${queued} queued events; wait for them to drain or pass force=true to drop them.`,
      { extra: { queued } },
    );
  },
  /** An admin change recorded by the tenant's control object that some shards have not confirmed yet. */
  fanOutIncomplete(pendingShards: readonly number[]): RelayError {
    return make(
      "fan_out_incomplete",
      `The change is recorded, but shard(s) ${pendingShards.join(", ")} have not confirmed it yet. It is retried automatically; re-run the command to finish it now.`,
      { headers: { "retry-after": "1" }, extra: { pendingShards: [...pendingShards] } },
    );
  },

  // A bug
  /** What every unexpected exception becomes: nothing internal reaches the wire (`logReason` is logged). */
  internalError(logReason?: string): RelayError {
    return make(
      "internal_error",
      "The relay failed to process the request. It was not accepted; retry it.",
      logReason ? { logReason } : {},
    );
  },

  // Partner event sources (src/sources/; the detail of the gate-made ones is written there)
  sourceNotOwned(name: string, rules: readonly string[]): RelayError {
    return make("source_not_owned", `${name} is not under this tenant's partner event sources (${rules.join(", ")}).`);
  },
  sourceNotFound(detail: string): RelayError {
    return make("source_not_found", detail);
  },
  tenantNotFound(tenantId: string): RelayError {
    return make("tenant_not_found", `No tenant ${tenantId}.`);
  },
  sourceExists(detail: string): RelayError {
    return make("source_exists", detail);
  },
  sourceAccountUnknown(detail: string): RelayError {
    return make("source_account_unknown", detail);
  },
  tooManySources(detail: string): RelayError {
    return make("too_many_sources", detail);
  },
  invalidSource(detail: string): RelayError {
    return make("invalid_source", detail);
  },
  controlPlaneThrottled(detail: string, retryAfterS: number): RelayError {
    return make("control_plane_throttled", detail, { headers: { "retry-after": String(retryAfterS) } });
  },
  controlPlaneDenied(detail: string): RelayError {
    return make("control_plane_denied", detail);
  },
  controlPlaneNotImplemented(detail: string): RelayError {
    return make("control_plane_not_implemented", detail);
  },
  controlPlaneUnavailable(detail: string): RelayError {
    return make("control_plane_unavailable", detail);
  },
} as const;

/** The error every unexpected exception becomes: nothing internal reaches the wire. */
export function internalError(): RelayError {
  return errors.internalError();
}

/**
 * The constructors' earlier names, kept while branches written against them merge; new code uses
 * `errors.*` (each delegates: no code is built twice).
 * @deprecated use `errors`.
 */
export const Errors = {
  missingCredentials: errors.missingApiKey,
  malformedKey: errors.malformedApiKey,
  invalidKey: errors.invalidApiKey,
  tenantDisabled: errors.tenantDisabled,
  tenantUnavailable: errors.tenantMisconfigured,
  invalidJson: errors.invalidJson,
  invalidRequest: errors.invalidRequest,
  bodyTooLarge: errors.payloadTooLarge,
  batchTooLarge: errors.batchTooLarge,
  unsupportedMediaType: errors.unsupportedMediaType,
  notFound: errors.notFound,
  methodNotAllowed: errors.methodNotAllowed,
} as const;
