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
 * - Isolation: a small supervisor leaves the caller's process group (detached) and runs wrangler
 *   (and so workerd and esbuild) inside that new group. stop(), or the caller dying in any way,
 *   ends the whole group: the caller's end closes the supervisor's stdin (also on SIGKILL of the
 *   caller alone or of the caller's whole group, e.g. `kill -9 -<npm start's pgid>`), and the
 *   supervisor then kills its own group. Nothing leaks into the test runner or dev.ts, nothing
 *   keeps the port, and the state directory's SQLite files are closed before the next
 *   `wrangler kv` process opens them. (Before: the supervisor stayed in the caller's group while
 *   wrangler was detached, so a SIGKILL of the caller's group killed only the supervisor and left
 *   wrangler and workerd serving: issue 11.) `pgid` names the group, for crash tests (soak).
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
  /** wrangler dev's inspector port on 127.0.0.1 (default 0: any free one); soak and fuzz read the Worker's heap there. */
  inspectorPort?: number;
}

export interface LocalRelay {
  url: string;
  port: number;
  /** The process group of the supervisor, wrangler and workerd (a crash test kills -pgid). */
  pgid: number;
  stop(): Promise<void>;
  /** SIGKILL of the whole group at once (no grace, no shutdown): a hard crash. Resolves on exit. */
  crash(): Promise<void>;
}

/** Default wait for a cold start (bundle + workerd), in ms. */
const DEFAULT_START_TIMEOUT_MS = 90_000;
/** How long stop() waits after SIGTERM before SIGKILL, in ms. */
const STOP_GRACE_MS = 5_000;
/** Lines of wrangler output kept for the error message when start-up fails. */
const TAIL_LINES = 40;

const READY = /Ready on (https?:\/\/[^\s]+)/;

/**
 * A tiny supervisor between the caller and wrangler (run with `node -e`). It is started detached
 * (the leader of a new process group) and starts wrangler in that same group, so one
 * `kill(-pgid)` reaches supervisor, wrangler, esbuild and workerd. Its stdin is a pipe from the
 * caller: when it closes (stop(), or the caller's death however it happens, SIGKILL included), it
 * ends the group: SIGTERM to the others, then SIGKILL to all. When wrangler exits by itself, the
 * rest of the group (a workerd wrangler left behind) is killed too.
 */
const SUPERVISOR = `
const { spawn } = require("node:child_process");
const [cmd, ...args] = process.argv.slice(1);
const child = spawn(cmd, args, { stdio: ["ignore", "inherit", "inherit"] });
const group = -process.pid;
let ending = false;
function killGroup() { try { process.kill(group, "SIGKILL"); } catch {} process.exit(0); }
function end() {
  if (ending) return;
  ending = true;
  // SIGTERM to the group reaches this process too: ignored from now on (ending is set).
  try { process.kill(group, "SIGTERM"); } catch {}
  setTimeout(killGroup, ${STOP_GRACE_MS}).unref();
  child.once("exit", () => setTimeout(killGroup, 200));
}
child.on("exit", (code) => {
  if (ending) return;
  try { process.kill(group, "SIGKILL"); } catch {}
  process.exit(code ?? 1);
});
process.stdin.on("end", end);
process.stdin.on("error", end);
process.stdin.on("close", end);
process.stdin.resume();
process.on("SIGTERM", end);
process.on("SIGINT", end);
process.on("SIGHUP", end);
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
    String(opts.inspectorPort ?? 0),
    "--persist-to",
    persistTo,
    "--show-interactive-dev-session=false",
  ];
  const env = wranglerEnv(root, process.env);
  let secretsDir: string | undefined;
  // Local runs read a refused body to its end before the 413 (src/ingest/body.ts explains why).
  const vars = opts.vars ? { LOCAL_DRAIN_REFUSED_BODIES: "true", ...opts.vars } : undefined;
  if (vars) {
    secretsDir = mkdtempSync(join(tmpdir(), "relay-dev-vars-"));
    const file = join(secretsDir, ".env");
    writeFileSync(
      file,
      Object.entries(vars)
        .map(([k, v]) => `${k}=${quoteEnv(v)}`)
        .join("\n") + "\n",
      { mode: 0o600 },
    );
    args.push("--env-file", file);
    Object.assign(env, vars);
  }

  const node = nodeForWrangler(root);
  const child = spawn(node, ["-e", SUPERVISOR, node, ...args], {
    cwd: root,
    env,
    // stdin is the supervisor's lifeline: it ends its process group when stdin closes.
    stdio: ["pipe", "pipe", "pipe"],
    // Out of the caller's group, so a SIGKILL of that group still leaves the supervisor to clean up.
    detached: true,
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

  const pgid = child.pid!;
  const crash = async (): Promise<void> => {
    if (!exited) {
      try {
        process.kill(-pgid, "SIGKILL");
      } catch {
        // already gone
      }
      await exitPromise;
    }
    cleanup();
  };

  const deadline = Date.now() + (opts.startTimeoutMs ?? DEFAULT_START_TIMEOUT_MS);
  try {
    while (Date.now() < deadline) {
      if (exited) throw new Error(`wrangler dev exited during start-up:\n${tail.join("\n")}`);
      if (readyUrl && (await healthy(readyUrl))) {
        const url = readyUrl;
        return { url, port: Number(new URL(url).port), pgid, stop, crash };
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
