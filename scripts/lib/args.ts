/**
 * Command-line parsing on node:util parseArgs: the command table's types, the flags every command
 * takes, usage text, and strict value parsers that turn bad input into a usage error (exit 2).
 */
import { parseArgs } from "node:util";
import { clip } from "../../src/admin/errors.ts";
import type { Context } from "./context.ts";
import { CliError, usageError } from "./errors.ts";

export interface OptionSpec {
  type: "string" | "boolean";
  multiple?: boolean;
  short?: string;
  /** Placeholder shown in usage, e.g. "<name>". */
  value?: string;
  help: string;
}
export type Options = Record<string, OptionSpec>;

export type Values = Record<string, string | boolean | string[] | undefined>;

export interface Parsed {
  values: Values;
  positionals: string[];
}

export interface CommandSpec {
  /** "create", "key create", ... */
  name: string;
  summary: string;
  /** Positional arguments as shown in usage, e.g. "<id> <keyId>". */
  args: string;
  minPositionals: number;
  maxPositionals: number;
  options: Options;
  /** Extra paragraphs for --help. */
  details?: string;
  examples: string[];
  run(ctx: Context, parsed: Parsed): Promise<void>;
}

/** Flags every command takes. */
export const GLOBAL_OPTIONS: Options = {
  local: { type: "boolean", help: "use local state, the same `npm start` / `wrangler dev` use (default)" },
  remote: { type: "boolean", help: "use the production KV namespace and the deployed relay" },
  json: { type: "boolean", help: "print one machine-readable JSON document on stdout" },
  "persist-to": {
    type: "string",
    value: "<dir>",
    help: "local state directory (default: env RELAY_STATE_DIR, else .wrangler/state)",
  },
  config: {
    type: "string",
    value: "<file>",
    help: "wrangler configuration to use (default: wrangler.toml locally, wrangler.admin-remote.toml with --remote)",
  },
  "dev-vars": {
    type: "string",
    value: "<file>",
    help: "local secrets file with SEALING_KEY / ADMIN_TOKEN (default: env RELAY_DEV_VARS, else .dev.vars)",
  },
  url: {
    type: "string",
    value: "<url>",
    help: "relay base URL for the admin API (default: env RELAY_URL, else locally the relay npm start runs, else http://127.0.0.1:$PORT|8787)",
  },
  verbose: { type: "boolean", help: "log opening the KV namespace and each relay call (never values) on stderr" },
  help: { type: "boolean", short: "h", help: "show this command's help" },
};

/** For the commands that tell the tenant's Durable Object about access changes. */
export const SKIP_RELAY_OPTION: Options = {
  "skip-relay": {
    type: "boolean",
    help: "do not tell the relay (KV only): the change then takes up to ~60 s to reach every location",
  },
};

export const PROGRAM = "npm run tenant --";

export function commandUsage(spec: CommandSpec): string {
  const lines: string[] = [];
  lines.push(`usage: ${PROGRAM} ${spec.name}${spec.args ? " " + spec.args : ""} [flags]`);
  lines.push("");
  lines.push(spec.summary);
  if (spec.details) {
    lines.push("");
    lines.push(spec.details.trim());
  }
  const own = Object.entries(spec.options);
  if (own.length) {
    lines.push("");
    lines.push("flags:");
    lines.push(...formatOptions(own));
  }
  lines.push("");
  lines.push("global flags:");
  lines.push(...formatOptions(Object.entries(GLOBAL_OPTIONS)));
  if (spec.examples.length) {
    lines.push("");
    lines.push("examples:");
    for (const e of spec.examples) lines.push(`  ${PROGRAM} ${e}`);
  }
  return lines.join("\n");
}

function formatOptions(entries: [string, OptionSpec][]): string[] {
  const heads = entries.map(([name, o]) => {
    const short = o.short ? `-${o.short}, ` : "";
    const value = o.type === "string" ? ` ${o.value ?? "<value>"}` : "";
    return `  ${short}--${name}${value}${o.multiple ? " (repeatable)" : ""}`;
  });
  const width = Math.max(...heads.map((h) => h.length)) + 2;
  return entries.map(([, o], i) => heads[i]!.padEnd(width) + o.help);
}

export function programUsage(commands: readonly CommandSpec[]): string {
  const width = Math.max(...commands.map((c) => (c.name + " " + c.args).length)) + 2;
  return [
    `usage: ${PROGRAM} <command> [args] [flags]`,
    "",
    "Administer the relay's tenants in KV (via wrangler's JS API) and their Durable Objects (via the admin API).",
    "",
    "commands:",
    ...commands.map((c) => `  ${(c.name + " " + c.args).padEnd(width)}${c.summary}`),
    "",
    "global flags:",
    ...formatOptions(Object.entries(GLOBAL_OPTIONS)),
    "",
    `Run \`${PROGRAM} <command> --help\` for a command's flags and examples. Docs: docs/admin.md`,
  ].join("\n");
}

/** Every option any command knows, for a first loose pass that only finds the command words. */
function allOptions(commands: readonly CommandSpec[]): Options {
  const all: Options = { ...GLOBAL_OPTIONS };
  for (const c of commands) Object.assign(all, c.options);
  return all;
}

function toParseArgsOptions(options: Options) {
  const out: Record<string, { type: "string" | "boolean"; multiple?: boolean; short?: string }> = {};
  for (const [name, o] of Object.entries(options)) {
    out[name] = { type: o.type, ...(o.multiple ? { multiple: true } : {}), ...(o.short ? { short: o.short } : {}) };
  }
  return out;
}

export type Resolved =
  | { kind: "program-help"; exitCode: 0 | 2 }
  | { kind: "command"; spec: CommandSpec; parsed: Parsed };

/** Finds the command in argv and parses its flags strictly. Throws a usage CliError. */
export function resolveCommand(argv: readonly string[], commands: readonly CommandSpec[]): Resolved {
  if (argv.length === 0) return { kind: "program-help", exitCode: 2 };
  let loose: ReturnType<typeof parseArgs>;
  try {
    loose = parseArgs({
      args: [...argv],
      options: toParseArgsOptions(allOptions(commands)),
      strict: false,
      allowPositionals: true,
    });
  } catch {
    throw usageError("could not parse the command line", programUsage(commands));
  }
  const words = loose.positionals;
  if (words[0] === "help") {
    const spec = words.length > 1 ? findSpec(words.slice(1), commands) : undefined;
    if (!spec) return { kind: "program-help", exitCode: words.length > 1 ? 2 : 0 };
    return { kind: "command", spec, parsed: { values: { help: true }, positionals: [] } };
  }
  if (words.length === 0) {
    if (loose.values.help) return { kind: "program-help", exitCode: 0 };
    throw usageError("no command given", programUsage(commands));
  }
  const spec = findSpec(words, commands);
  if (!spec) {
    const group = commands.filter((c) => c.name.startsWith(words[0] + " "));
    if (group.length) {
      const sub = words[1];
      throw usageError(
        sub
          ? `unknown command: ${words[0]} ${sub}`
          : `${words[0]} needs a subcommand: ${group.map((g) => g.name.split(" ")[1]).join(", ")}`,
        programUsage(commands),
      );
    }
    throw usageError(`unknown command: ${words[0]}`, programUsage(commands));
  }
  const options = { ...GLOBAL_OPTIONS, ...spec.options };
  let strict: ReturnType<typeof parseArgs>;
  try {
    strict = parseArgs({ args: [...argv], options: toParseArgsOptions(options), strict: true, allowPositionals: true });
  } catch (e) {
    throw usageError(describeParseError(e, spec), commandUsage(spec));
  }
  const nameWords = spec.name.split(" ").length;
  const positionals = strict.positionals.slice(nameWords);
  const values = strict.values as Values;
  if (values.help) return { kind: "command", spec, parsed: { values, positionals } };
  if (positionals.length < spec.minPositionals) {
    throw usageError(`${spec.name}: missing argument (expected ${spec.args})`, commandUsage(spec));
  }
  if (positionals.length > spec.maxPositionals) {
    throw usageError(
      `${spec.name}: unexpected argument "${clip(positionals[spec.maxPositionals]!)}"`,
      commandUsage(spec),
    );
  }
  return { kind: "command", spec, parsed: { values, positionals } };
}

function findSpec(words: readonly string[], commands: readonly CommandSpec[]): CommandSpec | undefined {
  const two = words.length > 1 ? `${words[0]} ${words[1]}` : undefined;
  return commands.find((c) => c.name === two) ?? commands.find((c) => c.name === words[0]);
}

function describeParseError(e: unknown, spec: CommandSpec): string {
  const err = e as { code?: string; message?: string };
  if (err.code === "ERR_PARSE_ARGS_UNKNOWN_OPTION") {
    const flag = /'([^']+)'/.exec(err.message ?? "")?.[1] ?? "?";
    return `unknown flag for \`${spec.name}\`: ${clip(flag.split("=")[0]!)}`;
  }
  if (err.code === "ERR_PARSE_ARGS_INVALID_OPTION_VALUE") {
    // Node's messages name the flag, never its value, e.g. "Option '--name <value>' argument missing".
    return `${spec.name}: ${(err.message ?? "invalid flag value").split(". ")[0]}`;
  }
  return `${spec.name}: could not parse the command line`;
}

export { clip };

// ---- Value helpers ------------------------------------------------------------------------------

export function str(values: Values, name: string): string | undefined {
  const v = values[name];
  return typeof v === "string" ? v : undefined;
}

export function strs(values: Values, name: string): string[] {
  const v = values[name];
  return Array.isArray(v) ? v : typeof v === "string" ? [v] : [];
}

export function bool(values: Values, name: string): boolean {
  return values[name] === true;
}

/** A whole number within [min, max]; `flag` names it in the error. */
export function parseIntFlag(flag: string, raw: string, min: number, max: number): number {
  if (!/^\d+$/.test(raw.trim())) throw usageError(`--${flag} must be a whole number, not "${clip(raw)}"`);
  const n = Number(raw);
  if (!Number.isSafeInteger(n) || n < min || n > max) {
    throw usageError(`--${flag} must be between ${min} and ${max}, not ${clip(raw)}`);
  }
  return n;
}

/** A positive decimal number ≤ max. */
export function parsePositiveNumberFlag(flag: string, raw: string, max: number): number {
  if (!/^\d+(\.\d+)?$/.test(raw.trim())) throw usageError(`--${flag} must be a positive number, not "${clip(raw)}"`);
  const n = Number(raw);
  if (!(n > 0) || n > max) throw usageError(`--${flag} must be greater than 0 and at most ${max}, not ${clip(raw)}`);
  return n;
}

const DURATION_UNITS_MS: Record<string, number> = { m: 60_000, h: 3_600_000, d: 86_400_000, w: 604_800_000 };

/**
 * An expiry: an ISO date (2027-01-31, midnight UTC), an ISO date-time with an offset, or a
 * duration from now (`30m`, `12h`, `90d`, `2w`). It must lie in the future. Returns ISO UTC.
 */
export function parseExpires(raw: string, now: Date): string {
  const s = raw.trim();
  let at: number;
  const dur = /^(\d{1,6})([mhdw])$/.exec(s);
  if (dur) {
    at = now.getTime() + Number(dur[1]) * DURATION_UNITS_MS[dur[2]!]!;
  } else if (/^\d{4}-\d{2}-\d{2}$/.test(s)) {
    at = Date.parse(s + "T00:00:00Z");
    if (Number.isNaN(at) || new Date(at).toISOString().slice(0, 10) !== s) at = NaN;
  } else if (/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?(Z|[+-]\d{2}:\d{2})$/.test(s)) {
    at = Date.parse(s);
  } else {
    at = NaN;
  }
  if (Number.isNaN(at)) {
    throw usageError(
      `--expires must be an ISO date (2027-01-31), an ISO date-time with offset (2027-01-31T12:00:00Z) or a duration (30m, 12h, 90d, 2w), not "${clip(raw)}"`,
    );
  }
  if (at <= now.getTime()) throw usageError(`--expires must be in the future, not ${clip(raw)}`);
  return new Date(at).toISOString();
}

export function assertNever(x: never): never {
  throw new CliError(`unexpected value ${String(x)}`);
}
