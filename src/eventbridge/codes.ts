/**
 * EventBridge's error codes and what the relay does about each (putpartnerevents.md "Errors and
 * retries"). Pure logic: no I/O here.
 */

/** Per-entry codes worth resending (AWS: resend only these, with backoff and jitter). */
const RETRYABLE_ENTRY_CODES = new Set(["InternalFailure", "ThrottlingException"]);

export function isRetryableEntryCode(code: string): boolean {
  return RETRYABLE_ENTRY_CODES.has(code);
}

/** Whole-call codes that mean "the tenant's AWS credentials or permissions are wrong". */
const CREDENTIAL_CODES = new Set([
  "UnrecognizedClientException",
  "InvalidSignatureException",
  "IncompleteSignatureException",
  "MissingAuthenticationTokenException",
  "ExpiredTokenException",
  "AccessDeniedException",
  "InvalidClientTokenId",
  "SignatureDoesNotMatch",
  "AccessDenied",
]);

/**
 * What a whole-call failure means for the relay:
 * - throttled: EventBridge refused for rate (HTTP 400 ThrottlingException, or 429); retry later.
 * - server: 5xx; retry later. EventBridge may have accepted the events before failing (resend = maybe a duplicate).
 * - timeout / network: no answer; the events may or may not have been accepted (resend = maybe a duplicate).
 * - credentials: the tenant's AWS credentials were refused; the operator must fix them.
 * - rejected: the request itself was refused (ValidationException, ...); resending won't help.
 */
export type CallErrorClass = "throttled" | "server" | "timeout" | "network" | "credentials" | "rejected";

export function classifyCallError(status: number, code: string): CallErrorClass {
  if (code === "ThrottlingException" || code === "TooManyRequestsException" || status === 429) return "throttled";
  if (CREDENTIAL_CODES.has(code)) return "credentials";
  if (status >= 500) return "server";
  return "rejected";
}

/** Whether a whole-call failure class is worth retrying from the buffer. */
export function isRetryableClass(c: CallErrorClass): boolean {
  return c !== "rejected";
}

/** `com.amazonaws.events#ThrottlingException:detail` → `ThrottlingException`. */
export function normalizeErrorCode(type: string): string {
  let t = type;
  const hash = t.lastIndexOf("#");
  if (hash >= 0) t = t.slice(hash + 1);
  const colon = t.indexOf(":");
  if (colon >= 0) t = t.slice(0, colon);
  return t.trim();
}
