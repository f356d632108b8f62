/**
 * Runs this Worker locally under workerd, on a given persistent state directory, for `npm start`
 * (scripts/dev.ts) and the Node tests.
 *
 *   const relay = await startLocalRelay({ port: 0, persistTo: dir, vars: { SEALING_KEY, ADMIN_TOKEN } });
 *   await fetch(relay.url + "/healthz"); ... await relay.stop();
 *
 * Why a `wrangler dev` child process rather than wrangler's in-process `unstable_startWorker`:
 * - It is exactly what developers run (`wrangler dev` reading wrangler.toml), so the tests prove
 *   the path admins use, through a stable CLI instead of an API marked unstable.
 * - Isolation: workerd, esbuild and wrangler's watchers live in their own process group under a
 *   small supervisor; stop() (or the caller dying, even by SIGKILL) ends the group, so nothing
 *   leaks into the test runner or dev.ts, and the state directory's SQLite files are closed
 *   before the next `wrangler kv` process opens them.
 * - Wrangler needs Node 22; the child runs on it whatever Node the caller runs on.
 * The price is a few seconds of start-up, and that wrangler dev watches the sources (an edit
 * reloads the Worker; the persisted state survives).
 *
 * Vars: when `vars` is given they are written to a private env file (mode 0600, passed with
 * --env-file, which also keeps the project's .dev.vars out) and set in the child's environment
 * (wrangler lets process.env override env-file values for declared names), so secret values
 * never appear on a command line. Names must be declared in wrangler.toml ([vars] or
 * [secrets].required). Without `vars`, wrangler reads .dev.vars as `wrangler dev` always does.
 */

import { spawn } from "node:child_process";
import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { defaultStateDir, PROJECT_ROOT } from "./context.ts";
import { stripAnsi, wranglerBin, wranglerEnv } from "./kv.ts";

export interface LocalRelayOptions {
  /** Port on 127.0.0.1; 0 (default) picks a free one. */
  port?: number;
  /** Local state directory (default: .wrangler/state, the one `wrangler dev` uses). */
  persistTo?: string;
  /** Worker vars and secrets, e.g. SEALING_KEY, ADMIN_TOKEN, ALLOW_ENDPOINT_OVERRIDE. */
  vars?: Record<string, string>;
  /** Receives wrangler's output, line by line. */
  log?: (line: string) => void;
  /** Project root (default: this repository). */
  root?: string;
  /** How long to wait for /healthz, in ms (default 90 s: the first bundle and workerd start are slow). */
  startTimeoutMs?: number;
}

export interface LocalRelay {
  url: string;
  port: number;
  stop(): Promise<void>;
}

/** Default wait for a cold start (bundle + workerd), in ms. */
const DEFAULT_START_TIMEOUT_MS = 90_000;
/** How long stop() waits after SIGTERM before SIGKILL, in ms. */
const STOP_GRACE_MS = 5_000;
/** Lines of wrangler output kept for the error message when start-up fails. */
const TAIL_LINES = 40;

const READY = /Ready on (https?:\/\/[^\s]+)/;

/**
 * A tiny supervisor between the caller and wrangler (run with `node -e`): it starts wrangler in a
 * process group of its own and ends that group when its stdin closes, which also happens when the
 * caller is killed outright (a test runner's timeout, kill -9), so no wrangler or workerd is left
 * holding the port and the state directory.
 */
const SUPERVISOR = `
const { spawn } = require("node:child_process");
const [cmd, ...args] = process.argv.slice(1);
const child = spawn(cmd, args, { stdio: ["ignore", "inherit", "inherit"], detached: true });
let ending = false;
function end() {
  if (ending) return;
  ending = true;
  try { process.kill(-child.pid, "SIGTERM"); } catch {}
  setTimeout(() => { try { process.kill(-child.pid, "SIGKILL"); } catch {} process.exit(0); }, ${STOP_GRACE_MS}).unref();
}
child.on("exit", (code) => {
  try { process.kill(-child.pid, "SIGKILL"); } catch {}
  process.exit(code ?? 1);
});
process.stdin.on("end", end);
process.stdin.on("error", end);
process.stdin.resume();
process.on("SIGTERM", end);
process.on("SIGINT", end);
`;

/** The Node binary to run wrangler with: this one if it is 22+, else the `node` devDependency. */
export function nodeForWrangler(root: string): string {
  const major = Number(process.versions.node.split(".")[0]);
  if (major >= 22) return process.execPath;
  const local = join(root, "node_modules", "node", "bin", "node");
  return existsSync(local) ? local : process.execPath;
}

export async function startLocalRelay(opts: LocalRelayOptions = {}): Promise<LocalRelay> {
  const root = opts.root ?? PROJECT_ROOT;
  const persistTo = opts.persistTo ?? defaultStateDir(root);
  const args = [
    wranglerBin(root),
    "dev",
    "--ip",
    "127.0.0.1",
    "--port",
    String(opts.port ?? 0),
    "--inspector-port",
    "0",
    "--persist-to",
    persistTo,
    "--show-interactive-dev-session=false",
  ];
  const env = wranglerEnv(root, process.env);
  let secretsDir: string | undefined;
  if (opts.vars) {
    secretsDir = mkdtempSync(join(tmpdir(), "relay-dev-vars-"));
    const file = join(secretsDir, ".env");
    writeFileSync(
      file,
      Object.entries(opts.vars)
        .map(([k, v]) => `${k}=${quoteEnv(v)}`)
        .join("\n") + "\n",
      { mode: 0o600 },
    );
    args.push("--env-file", file);
    Object.assign(env, opts.vars);
  }

  const node = nodeForWrangler(root);
  const child = spawn(node, ["-e", SUPERVISOR, node, ...args], {
    cwd: root,
    env,
    // stdin is the supervisor's lifeline: it ends wrangler's process group when stdin closes.
    stdio: ["pipe", "pipe", "pipe"],
  });
  const tail: string[] = [];
  let readyUrl: string | undefined;
  const onLine = (raw: string) => {
    const line = stripAnsi(raw).replace(/\s+$/, "");
    if (!line) return;
    tail.push(line);
    if (tail.length > TAIL_LINES) tail.shift();
    const m = READY.exec(line);
    if (m && !readyUrl) readyUrl = m[1]!.replace(/\/$/, "");
    opts.log?.(line);
  };
  lineReader(child.stdout!, onLine);
  lineReader(child.stderr!, onLine);

  let exited = false;
  const exitPromise = new Promise<void>((resolve) =>
    child.once("exit", () => {
      exited = true;
      resolve();
    }),
  );
  // On a normal exit of the caller, stdin closes by itself; this makes it prompt.
  const killOnExit = () => child.stdin?.destroy();
  process.once("exit", killOnExit);

  const cleanup = () => {
    process.removeListener("exit", killOnExit);
    if (secretsDir) rmSync(secretsDir, { recursive: true, force: true });
  };

  const stop = async (): Promise<void> => {
    if (!exited) {
      child.stdin?.end(); // the supervisor ends wrangler's group (SIGTERM, then SIGKILL)
      const timer = setTimeout(() => child.kill("SIGKILL"), STOP_GRACE_MS * 2);
      await exitPromise;
      clearTimeout(timer);
    }
    cleanup();
  };

  const deadline = Date.now() + (opts.startTimeoutMs ?? DEFAULT_START_TIMEOUT_MS);
  try {
    while (Date.now() < deadline) {
      if (exited) throw new Error(`wrangler dev exited during start-up:\n${tail.join("\n")}`);
      if (readyUrl && (await healthy(readyUrl))) {
        const url = readyUrl;
        return { url, port: Number(new URL(url).port), stop };
      }
      await sleep(200);
    }
    throw new Error(
      `the local relay did not answer /healthz within ${(opts.startTimeoutMs ?? DEFAULT_START_TIMEOUT_MS) / 1000} s:\n${tail.join("\n")}`,
    );
  } catch (e) {
    await stop();
    throw e;
  }
}

async function healthy(url: string): Promise<boolean> {
  try {
    const res = await fetch(url + "/healthz", { signal: AbortSignal.timeout(2_000) });
    await res.body?.cancel();
    return res.ok;
  } catch {
    return false;
  }
}

/** Calls `onLine` for every line a child's output stream prints (the last one too, unterminated). */
export function lineReader(stream: NodeJS.ReadableStream, onLine: (line: string) => void): void {
  createInterface({ input: stream, crlfDelay: Infinity }).on("line", onLine);
}

/** dotenv value quoting: single quotes keep everything literal (no expansion). */
function quoteEnv(v: string): string {
  if (/[\r\n']/.test(v)) throw new Error("local relay vars must be single-line and free of single quotes");
  return `'${v}'`;
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
