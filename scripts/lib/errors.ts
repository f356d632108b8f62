/**
 * The CLI's failures and their exit codes. Every command ends by returning normally (exit 0) or by
 * throwing: a CliError (the CLI's own, with an exit code and maybe the usage) or the library's
 * AdminError (src/admin/errors.ts), whose kind maps to an exit code here. scripts/lib/cli.ts
 * prints the message on stderr and exits with the code. Messages never hold a secret.
 */
import { AdminError, type AdminErrorKind } from "../../src/admin/errors.ts";

/** Exit codes, documented in docs/admin.md ("Exit codes"). */
export const EXIT = {
  ok: 0,
  /** The environment or a dependency failed: wrangler, login, relay, sealing key, a bad record. */
  failure: 1,
  /** Bad invocation: unknown command or flag, missing or invalid value. Usage is shown. */
  usage: 2,
  /** The tenant, key, access key id or dead letter named does not exist. */
  notFound: 3,
  /** The request conflicts with the current state: duplicate id, too many keys, queued events. */
  conflict: 4,
} as const;

export type ExitCode = (typeof EXIT)[keyof typeof EXIT];

const EXIT_BY_KIND: Record<AdminErrorKind, ExitCode> = {
  failure: EXIT.failure,
  usage: EXIT.usage,
  not_found: EXIT.notFound,
  conflict: EXIT.conflict,
};

const KIND_BY_EXIT: Record<ExitCode, AdminErrorKind> = {
  0: "failure",
  1: "failure",
  2: "usage",
  3: "not_found",
  4: "conflict",
};

export class CliError extends AdminError {
  override name = "CliError";
  readonly exitCode: ExitCode;
  /** When set, the command's usage is printed after the message. */
  readonly usage: string | undefined;

  constructor(message: string, exitCode: ExitCode = EXIT.failure, usage?: string) {
    super(message, KIND_BY_EXIT[exitCode]);
    this.exitCode = exitCode;
    this.usage = usage;
  }
}

/** The exit code for a failure of the CLI or the library. */
export function exitCodeOf(e: AdminError): ExitCode {
  return e instanceof CliError ? e.exitCode : EXIT_BY_KIND[e.kind];
}

export function usageError(message: string, usage?: string): CliError {
  return new CliError(message, EXIT.usage, usage);
}

export function notFound(message: string): CliError {
  return new CliError(message, EXIT.notFound);
}

export function conflict(message: string): CliError {
  return new CliError(message, EXIT.conflict);
}
