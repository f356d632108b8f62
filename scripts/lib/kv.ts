/**
 * The TENANTS namespace through wrangler's JS API (Miniflare locally, getPlatformProxy remotely),
 * in this process: no `wrangler kv` child per call. Opening it starts one workerd (about half a
 * second); every read and write after that is a local call.
 *
 * - Locally: Miniflare (the simulator wrangler dev runs on) with the TENANTS binding of the Worker's
 *   configuration (wrangler.toml, or --config), on the state directory `npm start` / `wrangler dev
 *   --persist-to <dir>` use. wrangler dev keeps its resources under `<dir>/v3` (KV in
 *   `<dir>/v3/kv`, keyed by the namespace id), and Miniflare's `resourcePersistencePath` (like
 *   getPlatformProxy's `persist.path`) names that `v3` directory, so both see one KV.
 * - With --remote: wrangler.admin-remote.toml (or --config), whose TENANTS binding has
 *   `remote = true`: wrangler's remote bindings reach the production namespace. `npm start`
 *   never reads that file, so a local run cannot write to production.
 *
 * wrangler's own messages are reduced to a diagnosis (not logged in, offline, namespace missing)
 * or to a first line with anything value-like redacted; they are never echoed whole.
 */
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import type { TenantsKv } from "../../src/admin/store.ts";
import { CliError, EXIT } from "./errors.ts";

/** The binding whose namespace holds tenant records. */
export const KV_BINDING = "TENANTS";
/** The configuration `--remote` uses by default (project root). */
export const REMOTE_CONFIG_FILE = "wrangler.admin-remote.toml";
/** The signals Miniflare turns into a process exit. */
const EXIT_SIGNALS = ["SIGINT", "SIGTERM", "SIGHUP"] as const;
/** A namespace id that is still the checked-in placeholder. */
const PLACEHOLDER_ID = /^0+$/;

export type KvMode = "local" | "remote";

export interface KvTarget {
  /** Project root: wrangler.toml and wrangler.admin-remote.toml live here. */
  root: string;
  mode: KvMode;
  /** Local state directory (absolute), as `wrangler dev --persist-to` takes it. */
  persistTo?: string;
  /** wrangler configuration file (absolute); default per mode (above). */
  config?: string;
  /** Called with a one-line description of what was opened (no values). */
  trace?: (line: string) => void;
}

export interface OpenedKv {
  kv: TenantsKv;
  dispose(): Promise<void>;
}

type Wrangler = typeof import("wrangler");
let wranglerModule: Promise<Wrangler> | undefined;

/** Environment defaults this process set for the in-process wrangler (not handed to children). */
const inProcessDefaults = new Set<string>();

function setDefault(name: string, value: string): void {
  if (process.env[name] !== undefined) return;
  process.env[name] = value;
  inProcessDefaults.add(name);
}

/** wrangler, imported once, with its console output limited to errors and no telemetry. */
function loadWrangler(): Promise<Wrangler> {
  setDefault("WRANGLER_LOG", "error");
  setDefault("WRANGLER_SEND_METRICS", "false");
  wranglerModule ??= import("wrangler");
  return wranglerModule;
}

/** The configuration file a mode uses. */
export function configFor(target: Pick<KvTarget, "root" | "mode" | "config">): string {
  return target.config ?? join(target.root, target.mode === "remote" ? REMOTE_CONFIG_FILE : "wrangler.toml");
}

/** Opens the TENANTS namespace for the target. The caller disposes it. */
export async function openTenantsKv(target: KvTarget): Promise<OpenedKv> {
  const configPath = configFor(target);
  const started = Date.now();
  // Miniflare would fetch request.cf data from the internet on every start (a 3 s timeout offline).
  setDefault("CLOUDFLARE_CF_FETCH_ENABLED", "false");
  const opened = target.mode === "local" ? await openLocal(target, configPath) : await openRemote(target, configPath);
  target.trace?.(`opened ${KV_BINDING} (${target.mode}, ${configPath}) in ${Date.now() - started} ms`);
  return opened;
}

/**
 * Local: Miniflare with just the TENANTS binding on wrangler dev's persistence root. The namespace
 * id is the one wrangler dev uses (`preview_id ?? id`: local storage is keyed by it). Miniflare
 * alone loads in about half the time of wrangler's bundle, and a Worker without the Durable Object
 * binding starts without workerd's warnings.
 */
async function openLocal(target: KvTarget, configPath: string): Promise<OpenedKv> {
  const id = await localNamespaceId(configPath);
  const { Miniflare, convertV4MiniflareOptions } = await import("miniflare");
  const handled = new Map(EXIT_SIGNALS.map((sig) => [sig, new Set(process.listeners(sig))] as const));
  const mf = new Miniflare(
    convertV4MiniflareOptions({
      workers: [
        {
          name: "relay-admin-cli",
          modules: true,
          script: "export default {};",
          compatibilityDate: "2026-11-01",
          kvNamespaces: { [KV_BINDING]: id },
        },
      ],
      resourcePersistencePath: join(target.persistTo ?? join(target.root, ".wrangler", "state"), "v3"),
      cf: false,
    }),
  );
  // Miniflare exits the process on SIGINT/SIGTERM/SIGHUP (128 + signal) while it lives. A host
  // that handles those signals itself (npm start: stop everything, exit 0) keeps that job; it
  // disposes this namespace as part of its stop. The CLI has no handlers and keeps Miniflare's.
  for (const [sig, before] of handled) {
    if (before.size === 0) continue;
    for (const l of process.listeners(sig)) if (!before.has(l)) process.removeListener(sig, l);
  }
  try {
    const kv = (await mf.getKVNamespace(KV_BINDING)) as unknown as TenantsKv;
    return { kv: diagnosingKv(kv, "local"), dispose: () => mf.dispose() };
  } catch (e) {
    await mf.dispose().catch(() => {});
    throw diagnoseWranglerFailure(errorText(e), "opening the local TENANTS namespace", "local");
  }
}

/** Remote: wrangler's getPlatformProxy on the admin-remote configuration (remote bindings). */
async function openRemote(target: KvTarget, configPath: string): Promise<OpenedKv> {
  const wrangler = await loadWrangler();
  // wrangler asks for a browser login when it thinks a person is at a terminal; the CLI says
  // what to do instead (and never blocks).
  setDefault("CI", "1");
  assertRemoteConfig(wrangler, target.root, configPath);
  let proxy: Awaited<ReturnType<Wrangler["getPlatformProxy"]>>;
  try {
    proxy = await wrangler.getPlatformProxy({ configPath, persist: false });
  } catch (e) {
    throw diagnoseWranglerFailure(errorText(e), "opening the TENANTS namespace", "remote");
  }
  const kv = (proxy.env as Record<string, unknown>)[KV_BINDING] as TenantsKv | undefined;
  if (!kv) {
    await proxy.dispose();
    throw new CliError(
      `${configPath} has no ${KV_BINDING} KV namespace binding ([[kv_namespaces]] binding = "${KV_BINDING}")`,
    );
  }
  return { kv: diagnosingKv(kv, "remote"), dispose: () => proxy.dispose() };
}

/**
 * The TENANTS namespace id wrangler dev keys local storage by. Read from a TOML configuration's
 * top-level `[[kv_namespaces]]` blocks directly (fast); anything else (JSON, inline tables) through
 * wrangler's own config reader.
 */
export async function localNamespaceId(configPath: string): Promise<string> {
  let text: string;
  try {
    text = readFileSync(configPath, "utf8");
  } catch {
    throw new CliError(`${configPath} not found`);
  }
  if (configPath.endsWith(".toml")) {
    const topLevel = text.split(/^\s*\[\[?env\./m)[0]!;
    for (const block of topLevel.split(/^\s*\[\[kv_namespaces\]\]\s*$/m).slice(1)) {
      const body = block.split(/^\s*\[/m)[0]!;
      if (!new RegExp(`^\\s*binding\\s*=\\s*"${KV_BINDING}"\\s*(#.*)?$`, "m").test(body)) continue;
      const field = (name: string) => new RegExp(`^\\s*${name}\\s*=\\s*"([^"]+)"`, "m").exec(body)?.[1];
      const id = field("preview_id") ?? field("id");
      if (id) return id;
    }
  }
  const binding = tenantsBinding(await loadWrangler(), configPath) as { id?: string; preview_id?: string } | undefined;
  const id = binding?.preview_id ?? binding?.id;
  if (!id) {
    throw new CliError(
      `${configPath} has no ${KV_BINDING} KV namespace binding ([[kv_namespaces]] binding = "${KV_BINDING}")`,
    );
  }
  return id;
}

/** A remote namespace whose failures (login, network, missing namespace) become one clear message. */
function diagnosingKv(kv: TenantsKv, mode: KvMode): TenantsKv {
  const wrap =
    <A extends unknown[], R>(what: string, fn: (...a: A) => Promise<R>) =>
    async (...a: A): Promise<R> => {
      try {
        return await fn(...a);
      } catch (e) {
        throw diagnoseWranglerFailure(errorText(e), what, mode);
      }
    };
  return {
    get: wrap("kv get", (k: string) => kv.get(k)),
    put: wrap("kv put", (k: string, v: string) => kv.put(k, v)),
    delete: wrap("kv delete", (k: string) => kv.delete(k)),
    list: wrap("kv list", (o: Parameters<TenantsKv["list"]>[0]) => kv.list(o)),
  };
}

/**
 * Fails early, before wrangler reaches Cloudflare, when the remote configuration is missing, is
 * not remote, still holds the placeholder id, or names another namespace than wrangler.toml.
 */
export function assertRemoteConfig(
  wrangler: Pick<Wrangler, "unstable_readConfig">,
  root: string,
  configPath: string,
): void {
  if (!existsSync(configPath)) throw new CliError(`${configPath} not found (the --remote configuration)`);
  const binding = tenantsBinding(wrangler, configPath);
  if (!binding) {
    throw new CliError(
      `${configPath} has no ${KV_BINDING} KV namespace binding ([[kv_namespaces]] binding = "${KV_BINDING}")`,
    );
  }
  if (!binding.id || PLACEHOLDER_ID.test(binding.id)) {
    throw new CliError(
      `${configPath} has no real id for the ${KV_BINDING} KV namespace: run \`npx wrangler kv namespace create ${KV_BINDING}\` ` +
        `and put the printed id in the [[kv_namespaces]] block (of wrangler.toml and ${REMOTE_CONFIG_FILE}), then deploy.`,
    );
  }
  if (binding.remote !== true) {
    throw new CliError(
      `${configPath}: the ${KV_BINDING} binding needs \`remote = true\` for --remote (without it wrangler would use local state).`,
    );
  }
  const workerConfig = join(root, "wrangler.toml");
  if (configPath === join(root, REMOTE_CONFIG_FILE) && existsSync(workerConfig)) {
    const deployed = tenantsBinding(wrangler, workerConfig);
    if (deployed?.id && !PLACEHOLDER_ID.test(deployed.id) && deployed.id !== binding.id) {
      throw new CliError(
        `the ${KV_BINDING} namespace id in ${REMOTE_CONFIG_FILE} differs from the one in wrangler.toml: the CLI would ` +
          "write where the deployed Worker does not read. Put the same id in both.",
      );
    }
  }
}

function tenantsBinding(
  wrangler: Pick<Wrangler, "unstable_readConfig">,
  configPath: string,
): { id?: string; remote?: boolean } | undefined {
  let config: ReturnType<Wrangler["unstable_readConfig"]>;
  try {
    config = wrangler.unstable_readConfig({ config: configPath });
  } catch (e) {
    throw new CliError(`could not read ${configPath}: ${redact(errorText(e)).slice(0, 300)}`);
  }
  return (config.kv_namespaces ?? []).find((k: { binding: string }) => k.binding === KV_BINDING) as
    | { id?: string; remote?: boolean }
    | undefined;
}

function errorText(e: unknown): string {
  const parts: string[] = [];
  let cur: unknown = e;
  for (let i = 0; cur && i < 4; i++) {
    parts.push(cur instanceof Error ? cur.message : String(cur));
    cur = cur instanceof Error ? cur.cause : undefined;
  }
  return parts.join("\n");
}

export function stripAnsi(s: string): string {
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

const OFFLINE = [/ENOTFOUND/, /EAI_AGAIN/, /ECONNREFUSED/, /ETIMEDOUT/, /ENETUNREACH/, /fetch failed/i];

/** Turns wrangler's failure into a CliError that says what to do and holds no values. */
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
      `the ${KV_BINDING} KV namespace in ${REMOTE_CONFIG_FILE} does not exist in this account: create it with ` +
        `\`npx wrangler kv namespace create ${KV_BINDING}\` and put the printed id in wrangler.toml and ${REMOTE_CONFIG_FILE}.`,
    );
  }
  if (mode === "remote" && OFFLINE.some((re) => re.test(text))) {
    return new CliError(
      `${what}: could not reach the Cloudflare API (${OFFLINE.find((re) => re.test(text))!.source.replace(/\\/g, "")}); check the network and try again.`,
    );
  }
  if (/SQLITE_BUSY|database is locked/i.test(text)) {
    return new CliError(`${what}: the local state is locked by another process; try again.`);
  }
  const first = text
    .split("\n")
    .map((l) => l.trim())
    .find(Boolean);
  return new CliError(`${what} failed: ${first ? redact(first).slice(0, 300) : "no error message"}`);
}

/** Removes anything that could be a value from a wrangler message before it is shown. */
export function redact(s: string): string {
  return s
    .replace(/\{.*\}/g, "{…}")
    .replace(/v1\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+/g, "[sealed]")
    .replace(/ebr_[0-9A-Za-z]+/g, "[key]")
    .replace(/[A-Za-z0-9+/_=-]{32,}/g, "[redacted]");
}

// ---- kept for scripts that still spawn wrangler (local-relay.ts) --------------------------------

/** The wrangler entry point, run with this Node (wrangler needs Node 22; `.bin/wrangler`'s shebang
 * would pick whatever `node` is first on PATH). */
export function wranglerBin(root: string): string {
  return join(root, "node_modules", "wrangler", "bin", "wrangler.js");
}

/**
 * Environment for wrangler children: no telemetry prompts or colour codes, and Node's compile
 * cache (Node ≥ 22.1) so each spawn skips recompiling wrangler's bundle.
 */
export function wranglerEnv(root: string, env: NodeJS.ProcessEnv = process.env): NodeJS.ProcessEnv {
  const inherited = { ...env };
  // e.g. WRANGLER_LOG=error, set for this process's own wrangler, would hide wrangler dev's "Ready on".
  for (const name of inProcessDefaults) if (inherited[name] === process.env[name]) delete inherited[name];
  return {
    ...inherited,
    WRANGLER_SEND_METRICS: "false",
    FORCE_COLOR: "0",
    NO_COLOR: "1",
    CI: env.CI ?? "1",
    NODE_COMPILE_CACHE: env.NODE_COMPILE_CACHE ?? compileCacheDir(root),
  };
}

/** Where Node keeps compiled wrangler code between runs (git-ignored node_modules). */
export function compileCacheDir(root: string): string {
  return join(root, "node_modules", ".cache", "relay-wrangler-compile-cache");
}
