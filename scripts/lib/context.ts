/**
 * What every command runs with: local or remote, where local state lives, the library's `Admin`
 * (KV through wrangler's getPlatformProxy, opened on first use; the relay's admin API; the sealing
 * key), and the output. Built once from the global flags and the environment (RELAY_STATE_DIR,
 * RELAY_DEV_VARS, RELAY_URL, RELAY_ADMIN_TOKEN, RELAY_SEALING_KEY, PORT).
 *
 * Locally the relay is, in order: --url / RELAY_URL; the relay `npm start` recorded in the state
 * directory (running-relay.ts), on whatever port it chose; http://127.0.0.1:$PORT (8787).
 */
import { existsSync, readFileSync } from "node:fs";
import { isAbsolute, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { parseEnv } from "node:util";
import { AdminClient } from "../../src/admin/client.ts";
import type { Admin, AdminNotices, RunningRelay } from "../../src/admin/context.ts";
import type { TenantsKv } from "../../src/admin/store.ts";
import { importSealingKey } from "../../src/tenants/sealed.ts";
import { bool, str, type Values } from "./args.ts";
import { CliError, EXIT, usageError } from "./errors.ts";
import { type KvMode, type OpenedKv, openTenantsKv } from "./kv.ts";
import { Output } from "./output.ts";
import { readRunningRelay } from "./running-relay.ts";

/** The project root (wrangler.toml, .dev.vars, node_modules). */
export const PROJECT_ROOT = fileURLToPath(new URL("../../", import.meta.url));

/** wrangler's default local state directory, the one `wrangler dev` / `npm start` use. */
export function defaultStateDir(root = PROJECT_ROOT): string {
  return join(root, ".wrangler", "state");
}

/** Default local relay port (`wrangler dev`'s default, overridden by PORT). */
export const DEFAULT_LOCAL_PORT = 8787;

/** Where a command reads and writes: the process's own streams, or a test's. */
export interface CliIo {
  stdout(s: string): void;
  stderr(s: string): void;
  /** All of stdin (for --secret-access-key-stdin). */
  readStdin(): Promise<string>;
  /** An already open local TENANTS namespace to use instead of opening one (tests); --remote ignores it. */
  kv?: TenantsKv;
}

export const PROCESS_IO: CliIo = {
  stdout: (s) => void process.stdout.write(s),
  stderr: (s) => void process.stderr.write(s),
  readStdin,
};

export interface Context {
  root: string;
  mode: KvMode;
  persistTo: string | undefined;
  devVarsPath: string;
  env: NodeJS.ProcessEnv;
  out: Output;
  verbose: boolean;
  /** The library's view of all of it (src/admin/context.ts). */
  admin: Admin;
  /** The admin API client (throws a CliError when it cannot be configured). */
  relay(): AdminClient;
  /** The AES-GCM sealing key (throws a CliError explaining how to create one). */
  sealingKey(): Promise<CryptoKey>;
  readStdin(): Promise<string>;
  /** Closes what was opened (the KV proxy). */
  close(): Promise<void>;
}

export function createContext(
  values: Values,
  env: NodeJS.ProcessEnv = process.env,
  root = PROJECT_ROOT,
  io: CliIo = PROCESS_IO,
): Context {
  if (bool(values, "local") && bool(values, "remote")) throw usageError("--local and --remote exclude each other");
  const mode: KvMode = bool(values, "remote") ? "remote" : "local";
  const out = new Output(bool(values, "json"), io.stdout, io.stderr);
  const verbose = bool(values, "verbose");
  const trace = verbose ? (l: string) => out.trace(l) : undefined;
  // npm runs scripts from the project root; INIT_CWD is where the user typed the command.
  const userCwd = env.INIT_CWD ?? process.cwd();
  const fromUser = (p: string) => (isAbsolute(p) ? p : resolve(userCwd, p));

  const persistFlag = str(values, "persist-to");
  if (mode === "remote" && persistFlag) throw usageError("--persist-to is for local state; it cannot go with --remote");
  const persistTo =
    mode === "local" ? fromUser(persistFlag ?? env.RELAY_STATE_DIR ?? defaultStateDir(root)) : undefined;
  const devVarsPath = fromUser(str(values, "dev-vars") ?? env.RELAY_DEV_VARS ?? join(root, ".dev.vars"));

  const configFlag = str(values, "config");
  const config = configFlag ? fromUser(configFlag) : undefined;
  if (config && !existsSync(config)) throw usageError(`--config: ${config} does not exist`);

  // The KV namespace, opened on first use (a usage error never starts workerd).
  let opened: Promise<OpenedKv> | undefined;
  const open = (): Promise<TenantsKv> => {
    if (io.kv && mode === "local") return Promise.resolve(io.kv);
    opened ??= openTenantsKv({
      root,
      mode,
      ...(persistTo ? { persistTo } : {}),
      ...(config ? { config } : {}),
      ...(trace ? { trace } : {}),
    });
    return opened.then((o) => o.kv);
  };
  const kv: TenantsKv = {
    get: async (k) => (await open()).get(k),
    put: async (k, v) => (await open()).put(k, v),
    delete: async (k) => (await open()).delete(k),
    list: async (o) => (await open()).list(o),
  };

  let devVarsCache: Record<string, string> | undefined;
  const devVars = (): Record<string, string> => {
    if (!devVarsCache) devVarsCache = mode === "local" ? readDevVars(devVarsPath) : {};
    return devVarsCache;
  };

  let running: RunningRelay | null | undefined;
  const runningRelay = (): RunningRelay | null => {
    if (running === undefined) running = mode === "local" && persistTo ? readRunningRelay(persistTo) : null;
    return running;
  };

  let relayClient: AdminClient | undefined;
  const relay = (): AdminClient => {
    if (relayClient) return relayClient;
    const urlFlag = str(values, "url") ?? env.RELAY_URL;
    let baseUrl: string;
    if (urlFlag) baseUrl = urlFlag;
    else if (mode === "local") baseUrl = runningRelay()?.url ?? `http://127.0.0.1:${env.PORT || DEFAULT_LOCAL_PORT}`;
    else {
      throw new CliError(
        "--remote needs the deployed relay's URL to reach its admin API: pass --url https://<relay host> or set RELAY_URL.",
      );
    }
    let parsed: URL;
    try {
      parsed = new URL(baseUrl);
    } catch {
      throw usageError(`the relay URL "${baseUrl.slice(0, 100)}" is not a URL`);
    }
    if (parsed.protocol !== "https:" && parsed.protocol !== "http:") throw usageError("the relay URL must be http(s)");
    if (mode === "remote" && parsed.protocol !== "https:" && !/^(127\.|localhost$|\[::1\]$)/.test(parsed.hostname)) {
      throw usageError("the production relay URL must be https (the admin token travels in it)");
    }
    const token = env.RELAY_ADMIN_TOKEN || (mode === "local" ? devVars().ADMIN_TOKEN : undefined) || undefined;
    if (mode === "remote" && !token) {
      throw new CliError("--remote needs the admin token: set RELAY_ADMIN_TOKEN to the Worker's ADMIN_TOKEN secret.");
    }
    relayClient = new AdminClient({
      baseUrl: parsed.origin + parsed.pathname.replace(/\/+$/, ""),
      token,
      ...(trace ? { trace } : {}),
    });
    return relayClient;
  };

  let keyPromise: Promise<CryptoKey> | undefined;
  const sealingKey = (): Promise<CryptoKey> => {
    keyPromise ??= (async () => {
      let base64: string | undefined;
      let from: string;
      if (mode === "local") {
        const fileKey = devVars().SEALING_KEY;
        if (fileKey) {
          base64 = fileKey;
          from = devVarsPath;
          if (env.RELAY_SEALING_KEY && env.RELAY_SEALING_KEY !== fileKey) {
            out.note(
              `using SEALING_KEY from ${devVarsPath}; RELAY_SEALING_KEY is ignored locally (the local relay reads .dev.vars)`,
            );
          }
        } else {
          base64 = env.RELAY_SEALING_KEY || undefined;
          from = "RELAY_SEALING_KEY";
        }
      } else {
        base64 = env.RELAY_SEALING_KEY || undefined;
        from = "RELAY_SEALING_KEY";
      }
      if (!base64) {
        throw new CliError(
          mode === "local"
            ? `no sealing key: ${devVarsPath} has no SEALING_KEY and RELAY_SEALING_KEY is not set. Create one with\n` +
                `  echo "SEALING_KEY=$(node -e "console.log(require('crypto').randomBytes(32).toString('base64'))")" >> .dev.vars\n` +
                "(npm start creates .dev.vars for you; see .dev.vars.example)"
            : "--remote needs the sealing key: set RELAY_SEALING_KEY to the same value as the Worker's SEALING_KEY secret " +
                "(a new key is made with `node -e \"console.log(require('crypto').randomBytes(32).toString('base64'))\"` " +
                "and stored with `npx wrangler secret put SEALING_KEY`).",
          EXIT.failure,
        );
      }
      try {
        return await importSealingKey(base64);
      } catch (e) {
        throw new CliError(
          `the sealing key from ${from} is unusable: ${(e as Error).message} (it must be base64 of 32 random bytes)`,
        );
      }
    })();
    return keyPromise;
  };

  const notices: AdminNotices = {
    note: (l) => out.note(l),
    warn: (l) => out.warn(l),
    ...(trace ? { trace } : {}),
  };

  return {
    root,
    mode,
    persistTo,
    devVarsPath,
    env,
    out,
    verbose,
    admin: { kv, mode, now: () => new Date(), notices, relay, runningRelay, sealingKey },
    relay,
    sealingKey,
    readStdin: io.readStdin,
    close: async () => {
      if (opened !== undefined) await (await opened.catch(() => null))?.dispose();
    },
  };
}

/** KEY=value pairs from a .dev.vars file, or {} when it does not exist. */
export function readDevVars(path: string): Record<string, string> {
  if (!existsSync(path)) return {};
  try {
    const parsed = parseEnv(readFileSync(path, "utf8"));
    const out: Record<string, string> = {};
    for (const [k, v] of Object.entries(parsed)) if (typeof v === "string") out[k] = v;
    return out;
  } catch (e) {
    throw new CliError(`could not read ${path}: ${(e as Error).message}`);
  }
}

async function readStdin(): Promise<string> {
  if (process.stdin.isTTY) process.stderr.write("(reading from stdin; end with Ctrl-D)\n");
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString("utf8");
}
