/**
 * Tenant administration's failures. Every library function ends normally or throws an AdminError
 * whose `kind` says what went wrong; the CLI maps kinds to exit codes (scripts/lib/errors.ts,
 * docs/admin.md "Exit codes"). Messages never hold a secret, a sealed value or a key hash.
 */

/** failure: the environment or a dependency; usage: bad input; not_found; conflict: current state. */
export type AdminErrorKind = "failure" | "usage" | "not_found" | "conflict";

export class AdminError extends Error {
  override name = "AdminError";
  readonly kind: AdminErrorKind;

  constructor(message: string, kind: AdminErrorKind = "failure") {
    super(message);
    this.kind = kind;
  }
}

export function invalidInput(message: string): AdminError {
  return new AdminError(message, "usage");
}

export function notFound(message: string): AdminError {
  return new AdminError(message, "not_found");
}

export function conflict(message: string): AdminError {
  return new AdminError(message, "conflict");
}

/** Shortens user input before it is echoed in an error (never echo secrets: callers choose what to pass). */
export function clip(s: string, max = 80): string {
  return s.length > max ? s.slice(0, max) + "…" : s;
}
