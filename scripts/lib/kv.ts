/**
 * The TENANTS namespace through `wrangler kv` (local state or the production namespace).
 *
 * Each wrangler spawn costs about a second, so callers batch: reads use `kv bulk get` (one call for
 * up to 100 keys, and it tells a missing key apart from any value), writes use `kv bulk put` (the
 * record and its index entries in one call), deletes `kv bulk delete`. Values travel in files
 * (mode 0600, removed at once), never on a command line where `ps` would show them.
 *
 * wrangler's own output is parsed, never echoed: an error is reduced to a known diagnosis
 * (not logged in, namespace missing) or to its first error line with anything value-like redacted.
 */
import { spawn } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { CliError, EXIT } from "./errors.ts";

/** The binding in wrangler.toml whose namespace holds tenant records. */
export const KV_BINDING = "TENANTS";
/** Keys per `kv bulk get` (Cloudflare API: at most 100 keys per bulk read). */
export const BULK_GET_MAX_KEYS = 100;

export type KvMode = "local" | "remote";

export interface KvTarget {
  /** Project root: wrangler runs here and reads wrangler.toml. */
  root: string;
  mode: KvMode;
  /** Local persistence directory (absolute), as `wrangler dev --persist-to` takes it. */
  persistTo?: string;
  /** wrangler configuration file (absolute); default wrangler.toml in root. */
  config?: string;
  env?: NodeJS.ProcessEnv;
  /** Called with a one-line description of each wrangler call (no values). */
  trace?: (line: string) => void;
}

export interface KvEntry {
  key: string;
  value: string;
}

export class WranglerKv {
  readonly target: KvTarget;
  /** wrangler processes spawned so far. */
  calls = 0;

  constructor(target: KvTarget) {
    this.target = target;
  }

  /** Reads keys; a missing key maps to null. */
  async getMany(keys: readonly string[]): Promise<Map<string, string | null>> {
    const out = new Map<string, string | null>();
    for (let i = 0; i < keys.length; i += BULK_GET_MAX_KEYS) {
      const chunk = keys.slice(i, i + BULK_GET_MAX_KEYS);
      const stdout = await this.#withFile(JSON.stringify(chunk), (file) =>
        this.#run(["kv", "bulk", "get", file], `kv bulk get (${chunk.length} keys)`),
      );
      const parsed = parseJsonOutput(stdout, "kv bulk get") as Record<string, unknown>;
      if (!parsed || typeof parsed !== "object" || Array.isArray(parsed)) {
        throw new CliError("wrangler kv bulk get printed something other than a JSON object");
      }
      for (const key of chunk) out.set(key, normalizeBulkValue(parsed[key]));
    }
    return out;
  }

  async get(key: string): Promise<string | null> {
    return (await this.getMany([key])).get(key) ?? null;
  }

  /** Every key name under a prefix (wrangler follows the list cursor itself). */
  async list(prefix: string): Promise<string[]> {
    const stdout = await this.#run(["kv", "key", "list", "--prefix", prefix], `kv key list --prefix ${prefix}`);
    const parsed = parseJsonOutput(stdout, "kv key list");
    if (!Array.isArray(parsed)) throw new CliError("wrangler kv key list printed something other than a JSON array");
    return parsed.map((k: unknown) => String((k as { name?: unknown })?.name ?? ""));
  }

  /** Writes all entries in one call, in order. */
  async putMany(entries: readonly KvEntry[]): Promise<void> {
    if (entries.length === 0) return;
    await this.#withFile(JSON.stringify(entries), (file) =>
      this.#run(
        ["kv", "bulk", "put", file],
        `kv bulk put (${entries.length} keys: ${entries.map((e) => keyKind(e.key)).join(", ")})`,
      ),
    );
  }

  /** Deletes keys in one call, in order; deleting a missing key is not an error. */
  async deleteMany(keys: readonly string[]): Promise<void> {
    if (keys.length === 0) return;
    await this.#withFile(JSON.stringify(keys), (file) =>
      this.#run(
        ["kv", "bulk", "delete", file, "--force"],
        `kv bulk delete (${keys.length} keys: ${keys.map(keyKind).join(", ")})`,
      ),
    );
  }

  #targetFlags(): string[] {
    const flags = ["--binding", KV_BINDING];
    if (this.target.config) flags.push("--config", this.target.config);
    if (this.target.mode === "remote") return [...flags, "--remote"];
    flags.push("--local");
    if (this.target.persistTo) flags.push("--persist-to", this.target.persistTo);
    return flags;
  }

  async #withFile<T>(content: string, fn: (file: string) => Promise<T>): Promise<T> {
    const dir = mkdtempSync(join(tmpdir(), "relay-kv-"));
    const file = join(dir, "data.json");
    try {
      writeFileSync(file, content, { mode: 0o600 });
      return await fn(file);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }

  async #run(args: string[], what: string): Promise<string> {
    this.calls++;
    const started = Date.now();
    const result = await runWrangler(this.target.root, [...args, ...this.#targetFlags()], this.target.env);
    this.target.trace?.(`wrangler ${what} --${this.target.mode} (${Date.now() - started} ms, exit ${result.code})`);
    if (result.code !== 0) throw diagnoseWranglerFailure(result.stdout + "\n" + result.stderr, what, this.target.mode);
    return result.stdout;
  }
}

export interface ProcessResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** The wrangler entry point, run with this Node (wrangler needs Node 22; `.bin/wrangler`'s shebang
 * would pick whatever `node` is first on PATH). */
export function wranglerBin(root: string): string {
  return join(root, "node_modules", "wrangler", "bin", "wrangler.js");
}

/**
 * Environment for wrangler children: no telemetry prompts or colour codes, and Node's compile
 * cache (Node ≥ 22.1) so each spawn skips recompiling wrangler's bundle (about halves a call).
 */
export function wranglerEnv(root: string, env: NodeJS.ProcessEnv = process.env): NodeJS.ProcessEnv {
  return {
    ...env,
    WRANGLER_SEND_METRICS: "false",
    FORCE_COLOR: "0",
    NO_COLOR: "1",
    CI: env.CI ?? "1",
    NODE_COMPILE_CACHE: env.NODE_COMPILE_CACHE ?? join(root, "node_modules", ".cache", "relay-wrangler-compile-cache"),
  };
}

export function runWrangler(root: string, args: string[], env?: NodeJS.ProcessEnv): Promise<ProcessResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [wranglerBin(root), ...args], {
      cwd: root,
      env: wranglerEnv(root, env),
      stdio: ["ignore", "pipe", "pipe"],
    });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on("data", (b: Buffer) => out.push(b));
    child.stderr.on("data", (b: Buffer) => err.push(b));
    child.on("error", (e) => reject(new CliError(`could not run wrangler (${e.message}); is it installed (npm ci)?`)));
    child.on("close", (code) =>
      resolve({
        code: code ?? 1,
        stdout: Buffer.concat(out).toString("utf8"),
        stderr: Buffer.concat(err).toString("utf8"),
      }),
    );
  });
}

/** Local bulk get answers `{key: {value}}`, the API answers `{key: value}`; a missing key is null. */
function normalizeBulkValue(v: unknown): string | null {
  if (v === null || v === undefined) return null;
  if (typeof v === "string") return v;
  if (typeof v === "object" && "value" in (v as object)) {
    const inner = (v as { value: unknown }).value;
    if (inner === null || inner === undefined) return null;
    return typeof inner === "string" ? inner : JSON.stringify(inner);
  }
  return JSON.stringify(v);
}

/** Finds the JSON document in wrangler's stdout (it may print a banner before it). */
function parseJsonOutput(stdout: string, what: string): unknown {
  const text = stripAnsi(stdout).trim();
  try {
    return JSON.parse(text);
  } catch {
    const start = text.search(/^[[{]/m);
    if (start >= 0) {
      try {
        return JSON.parse(text.slice(start));
      } catch {
        /* fall through */
      }
    }
  }
  throw new CliError(`wrangler ${what} printed output this CLI could not parse (is wrangler ${"4.x"} installed?)`);
}

export function stripAnsi(s: string): string {
  // eslint-disable-next-line no-control-regex
  return s.replace(/\x1b\[[0-9;]*[A-Za-z]/g, "");
}

const NOT_LOGGED_IN = [
  /CLOUDFLARE_API_TOKEN environment variable/i,
  /not (logged|signed) in/i,
  /Authentication error/i,
  /\[code: 10000\]/,
  /\[code: 9109\]/,
  /Invalid (API|access) token/i,
  /must be logged in/i,
  /Unable to authenticate/i,
];

/** Turns wrangler's failure output into a CliError that says what to do and holds no values. */
export function diagnoseWranglerFailure(output: string, what: string, mode: KvMode): CliError {
  const text = stripAnsi(output);
  if (mode === "remote" && NOT_LOGGED_IN.some((re) => re.test(text))) {
    return new CliError(
      "wrangler is not logged in to Cloudflare. Run `npx wrangler login` (opens a browser), or set " +
        'CLOUDFLARE_API_TOKEN to an API token with "Workers KV Storage: Edit" (and CLOUDFLARE_ACCOUNT_ID ' +
        "if the token sees more than one account), then run this again.",
      EXIT.failure,
    );
  }
  if (/More than one account available/i.test(text)) {
    return new CliError(
      "wrangler sees more than one Cloudflare account: set CLOUDFLARE_ACCOUNT_ID to the relay's account.",
    );
  }
  if (mode === "remote" && /namespace/i.test(text) && /(not found|10013|could not find|does not exist)/i.test(text)) {
    return new CliError(
      `the ${KV_BINDING} KV namespace in wrangler.toml does not exist in this account: create it with ` +
        `\`npx wrangler kv namespace create ${KV_BINDING}\` and put the printed id in wrangler.toml.`,
    );
  }
  if (/SQLITE_BUSY|database is locked/i.test(text)) {
    return new CliError(`wrangler ${what}: the local state is locked by another process; try again.`);
  }
  const errorLine = text
    .split("\n")
    .map((l) => l.trim())
    .find((l) => /^(✘|X )?\s*\[ERROR\]/.test(l) || /^✘/.test(l));
  const reason = errorLine
    ? redact(errorLine.replace(/^✘\s*/, "").replace(/^\[ERROR\]\s*/, "")).slice(0, 300)
    : "no error message";
  return new CliError(`wrangler ${what} failed: ${reason}`);
}

/** Removes anything that could be a value from a wrangler message before it is shown. */
export function redact(s: string): string {
  return s
    .replace(/\{.*\}/g, "{…}")
    .replace(/v1\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+/g, "[sealed]")
    .replace(/ebr_[0-9A-Za-z]+/g, "[key]")
    .replace(/[A-Za-z0-9+/_=-]{32,}/g, "[redacted]");
}

function keyKind(key: string): string {
  const colon = key.indexOf(":");
  return colon > 0 ? key.slice(0, colon) : "key";
}
