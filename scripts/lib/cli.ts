/**
 * The admin CLI's main function: parse (args.ts), run the command (commands/*.ts, each a thin
 * layer over src/admin/), print, and map failures to exit codes (errors.ts). scripts/tenant.ts
 * calls it with the process's streams; the tests call it in-process with their own (CliIo).
 *
 * Adding a command: write a CommandSpec in the module of its group (or a new
 * commands/<group>.ts exporting `<group>Commands`) and list the group in COMMANDS below.
 */
import { AdminError } from "../../src/admin/errors.ts";
import { type CommandSpec, commandUsage, programUsage, resolveCommand } from "./args.ts";
import { credentialsCommands } from "./commands/credentials.ts";
import { keyCommands } from "./commands/keys.ts";
import { metricsCommands } from "./commands/metrics.ts";
import { relayStateCommands } from "./commands/relay-state.ts";
import { sigv4Commands } from "./commands/sigv4.ts";
import { sourceCommands } from "./commands/sources.ts";
import { tenantCommands } from "./commands/tenants.ts";
import { type CliIo, type Context, createContext, PROCESS_IO, PROJECT_ROOT } from "./context.ts";
import { EXIT, exitCodeOf } from "./errors.ts";

export const COMMANDS: CommandSpec[] = [
  ...tenantCommands,
  ...keyCommands,
  ...credentialsCommands,
  ...sigv4Commands,
  ...relayStateCommands,
  ...sourceCommands,
  ...metricsCommands,
];

export interface MainOptions {
  env?: NodeJS.ProcessEnv;
  io?: CliIo;
  root?: string;
}

/** Runs one command line; resolves to the exit code (never throws, never exits the process). */
export async function main(argv: readonly string[], opts: MainOptions = {}): Promise<number> {
  const io = opts.io ?? PROCESS_IO;
  let ctx: Context | undefined;
  try {
    const resolved = resolveCommand(argv, COMMANDS);
    if (resolved.kind === "program-help") {
      (resolved.exitCode === 0 ? io.stdout : io.stderr)(programUsage(COMMANDS) + "\n");
      return resolved.exitCode;
    }
    const { spec, parsed } = resolved;
    if (parsed.values.help) {
      io.stdout(commandUsage(spec) + "\n");
      return EXIT.ok;
    }
    ctx = createContext(parsed.values, opts.env ?? process.env, opts.root ?? PROJECT_ROOT, io);
    await spec.run(ctx, parsed);
    return EXIT.ok;
  } catch (e) {
    if (e instanceof AdminError) {
      const code = exitCodeOf(e);
      io.stderr(`error: ${e.message}\n`);
      const usage = (e as { usage?: string }).usage;
      if (usage) io.stderr(`\n${usage}\n`);
      else if (code === EXIT.usage) io.stderr("(add --help for the command's usage)\n");
      return code;
    }
    const err = e as Error;
    io.stderr(`error: unexpected failure: ${err?.name ?? "Error"}: ${err?.message ?? String(e)}\n`);
    return EXIT.failure;
  } finally {
    await ctx?.close().catch(() => {});
  }
}
