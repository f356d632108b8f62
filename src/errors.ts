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

/** Builds the wire response for an error, in the front door's format. */
export function errorResponse(err: RelayError, format: ErrorFormat, requestId?: string): Response {
  if (format === "aws") {
    const headers = new Headers({
      ...BASE_HEADERS,
      ...err.headers,
      "content-type": "application/x-amz-json-1.1",
    });
    if (requestId) headers.set("x-amzn-requestid", requestId);
    headers.set("x-amzn-errortype", err.aws.type);
    const body = JSON.stringify({ __type: err.aws.type, message: err.detail });
    return new Response(body, { status: err.aws.status, headers });
  }
  const headers = new Headers({
    ...BASE_HEADERS,
    ...err.headers,
    "content-type": "application/problem+json",
  });
  if (requestId) headers.set("x-request-id", requestId);
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

/** The error every unexpected exception becomes: nothing internal reaches the wire. */
export function internalError(): RelayError {
  return new RelayError({
    status: 500,
    code: "internal_error",
    detail: "The relay failed to process the request. It was not accepted; retry it.",
  });
}

// ---- Constructors for the refusals more than one module makes --------------------------------

export const Errors = {
  missingCredentials(challenge: string): RelayError {
    return new RelayError({
      status: 401,
      code: "missing_api_key",
      detail: "Send the API key as `Authorization: Bearer <key>` or `X-Api-Key: <key>`.",
      headers: { "www-authenticate": challenge },
      aws: { type: "MissingAuthenticationTokenException", status: 403 },
    });
  },
  malformedKey(challenge: string): RelayError {
    return new RelayError({
      status: 401,
      code: "malformed_api_key",
      detail: "The API key is not in the relay's key format (ebr_...), or its checksum is wrong.",
      headers: { "www-authenticate": `${challenge}, error="invalid_token"` },
    });
  },
  invalidKey(challenge: string): RelayError {
    return new RelayError({
      status: 401,
      code: "invalid_api_key",
      detail: "The API key is unknown, revoked or expired.",
      headers: { "www-authenticate": `${challenge}, error="invalid_token"` },
    });
  },
  tenantDisabled(): RelayError {
    return new RelayError({
      status: 403,
      code: "tenant_disabled",
      detail: "This tenant is disabled. Contact the relay's operator.",
      aws: { type: "AccessDeniedException", status: 400 },
    });
  },
  tenantUnavailable(logReason: string): RelayError {
    return new RelayError({
      status: 503,
      code: "tenant_misconfigured",
      detail:
        "The relay cannot use this tenant's configuration right now. Nothing was accepted; the operator has been told in the logs.",
      aws: { type: "InternalFailure", status: 500 },
      logReason,
    });
  },
  invalidJson(): RelayError {
    return new RelayError({
      status: 400,
      code: "invalid_json",
      detail: "The request body is not valid JSON.",
      aws: { type: "SerializationException", status: 400 },
    });
  },
  invalidRequest(detail: string): RelayError {
    return new RelayError({ status: 400, code: "invalid_request", detail });
  },
  bodyTooLarge(limit: number): RelayError {
    return new RelayError({
      status: 413,
      code: "payload_too_large",
      detail: `The request body is larger than ${limit} bytes.`,
      aws: { type: "ValidationException", status: 400 },
    });
  },
  batchTooLarge(size: number, limit: number): RelayError {
    return new RelayError({
      status: 413,
      code: "batch_too_large",
      detail: `The entries total ${size} bytes by EventBridge's size formula; the limit is ${limit} bytes.`,
      aws: { type: "ValidationException", status: 400 },
      extra: { size, limit },
    });
  },
  unsupportedMediaType(expected: string): RelayError {
    return new RelayError({
      status: 415,
      code: "unsupported_media_type",
      detail: `Send the body with Content-Type: ${expected}.`,
      headers: { "accept-post": expected },
    });
  },
  notFound(detail = "There is nothing at this path."): RelayError {
    return new RelayError({ status: 404, code: "not_found", detail });
  },
  methodNotAllowed(allow: string): RelayError {
    return new RelayError({
      status: 405,
      code: "method_not_allowed",
      detail: `This path accepts ${allow}.`,
      headers: { allow },
    });
  },
} as const;
