/**
 * The relay's admin CLI: `npm run tenant -- <command> [args] [flags]` (docs/admin.md).
 *
 * Tenant records live in the TENANTS KV namespace, read and written through `wrangler kv`
 * (`--local` by default, `--remote` for production); access changes also go to the tenant's
 * Durable Object through the relay's admin API, which makes revocation and disabling take effect
 * on the very next request. Exit codes: scripts/lib/errors.ts.
 */
import { type CommandSpec, commandUsage, programUsage, resolveCommand } from "./lib/args.ts";
import { credentialsCommands } from "./lib/commands/credentials.ts";
import { keyCommands } from "./lib/commands/keys.ts";
import { relayStateCommands } from "./lib/commands/relay-state.ts";
import { sigv4Commands } from "./lib/commands/sigv4.ts";
import { sourceCommands } from "./lib/commands/sources.ts";
import { tenantCommands } from "./lib/commands/tenants.ts";
import { createContext } from "./lib/context.ts";
import { CliError, EXIT } from "./lib/errors.ts";

export const COMMANDS: CommandSpec[] = [
  ...tenantCommands,
  ...keyCommands,
  ...credentialsCommands,
  ...sigv4Commands,
  ...relayStateCommands,
  ...sourceCommands,
];

export async function main(argv: readonly string[]): Promise<number> {
  try {
    const resolved = resolveCommand(argv, COMMANDS);
    if (resolved.kind === "program-help") {
      (resolved.exitCode === 0 ? process.stdout : process.stderr).write(programUsage(COMMANDS) + "\n");
      return resolved.exitCode;
    }
    const { spec, parsed } = resolved;
    if (parsed.values.help) {
      process.stdout.write(commandUsage(spec) + "\n");
      return EXIT.ok;
    }
    const ctx = createContext(parsed.values);
    try {
      await spec.run(ctx, parsed);
    } finally {
      if (ctx.verbose) ctx.out.trace(`${ctx.kv.calls} wrangler call(s)`);
    }
    return EXIT.ok;
  } catch (e) {
    if (e instanceof CliError) {
      process.stderr.write(`error: ${e.message}\n`);
      if (e.usage) process.stderr.write(`\n${e.usage}\n`);
      else if (e.exitCode === EXIT.usage) process.stderr.write("(add --help for the command's usage)\n");
      return e.exitCode;
    }
    const err = e as Error;
    process.stderr.write(`error: unexpected failure: ${err?.name ?? "Error"}: ${err?.message ?? String(e)}\n`);
    return EXIT.failure;
  }
}

process.exitCode = await main(process.argv.slice(2));
