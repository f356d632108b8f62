/**
 * The CLI's failures and their exit codes. Every command ends by returning normally (exit 0) or by
 * throwing a CliError; scripts/tenant.ts prints its message on stderr and exits with its code.
 * Messages never hold a secret or raw wrangler output (see kv.ts).
 */

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

export class CliError extends Error {
  override name = "CliError";
  readonly exitCode: ExitCode;
  /** When set, the command's usage is printed after the message. */
  readonly usage: string | undefined;

  constructor(message: string, exitCode: ExitCode = EXIT.failure, usage?: string) {
    super(message);
    this.exitCode = exitCode;
    this.usage = usage;
  }
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
