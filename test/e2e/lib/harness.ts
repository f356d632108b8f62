/**
 * What every end-to-end suite runs on: named checks, a clean-up stack that runs whatever happens
 * (success, failure, SIGINT/SIGTERM from run.ts or a terminal), child processes with time limits,
 * and the exit protocol run.ts reads:
 *
 *   `RESULT <part>: PASS | FAIL | SKIP: <reason>` lines on stdout, one per part, and
 *   exit 0 (nothing failed), 77 (everything skipped; the last line is `SKIP: <reason>`), or 1.
 *
 * Plain Node (node:assert, node:child_process, fetch): each suite is a script run as
 * `node test/e2e/<suite>.ts` by run.ts (or by hand), no test framework in between.
 */
import { type ChildProcess, type SpawnOptions, spawn } from "node:child_process";
import { accessSync, constants, mkdtempSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { delimiter, join } from "node:path";
import { fileURLToPath } from "node:url";
import { inspect } from "node:util";
import { lineReader } from "../../../scripts/lib/local-relay.ts";

export const ROOT = fileURLToPath(new URL("../../../", import.meta.url));
export const EXIT_SKIP = 77;

export interface Suite {
  /**
   * Checks run in order; a failed check is recorded (against `part`, or every enabled part) and
   * the next one still runs.
   */
  check(name: string, fn: () => Promise<void> | void, part?: string): Promise<boolean>;
  /** Runs `fn` at clean-up, last registered first. */
  defer(name: string, fn: () => Promise<void> | void): void;
  /** A private temporary directory, removed at clean-up. */
  tempDir(prefix: string): string;
  log(line: string): void;
  /** How many checks failed so far. */
  readonly failures: number;
}

const cleanups: { name: string; fn: () => Promise<void> | void }[] = [];
/** Child process groups still alive, killed with SIGKILL if this process exits without clean-up. */
const liveGroups = new Set<number>();
let cleaning: Promise<void> | null = null;

async function runCleanups(): Promise<void> {
  cleaning ??= (async () => {
    while (cleanups.length) {
      const c = cleanups.pop()!;
      try {
        await withTimeout(Promise.resolve().then(c.fn), 20_000, `clean-up "${c.name}"`);
      } catch (e) {
        process.stdout.write(`  (clean-up "${c.name}" failed: ${message(e)})\n`);
      }
    }
  })();
  return cleaning;
}

process.on("exit", () => {
  for (const pgid of liveGroups) {
    try {
      process.kill(-pgid, "SIGKILL");
    } catch {
      /* gone */
    }
  }
});

/**
 * Runs a suite: prerequisites first, then the body, then clean-up; prints one `RESULT` line per
 * part and sets the exit code. A suite may cover several parts (e.g. AWS CLI v1 and v2 against
 * one relay); `prerequisites` returns a skip reason for the whole suite (a string), per part (a
 * record), or null. SIGINT/SIGTERM run clean-up and exit at once.
 *
 * Result lines (read by run.ts): `RESULT <part>: PASS`, `RESULT <part>: FAIL`,
 * `RESULT <part>: SKIP: <reason>`.
 */
export async function runSuite(opts: {
  name: string;
  /** Result names; default [name]. */
  parts?: string[];
  prerequisites?: () => Promise<SkipReasons> | SkipReasons;
  body: (s: Suite, enabled: readonly string[]) => Promise<void>;
}): Promise<never> {
  const parts = opts.parts ?? [opts.name];
  const failed = new Set<string>();
  const skipped = new Map<string, string>();
  let enabled: string[] = [];
  let failures = 0;
  const started = Date.now();
  for (const sig of ["SIGINT", "SIGTERM"] as const) {
    process.once(sig, () => {
      process.stdout.write(`  ${opts.name}: ${sig}, cleaning up\n`);
      void runCleanups().finally(() => process.exit(sig === "SIGINT" ? 130 : 143));
    });
  }
  const suite: Suite = {
    async check(name, fn, part) {
      const t0 = Date.now();
      try {
        await fn();
        process.stdout.write(`  ok   ${name} (${ms(Date.now() - t0)})\n`);
        return true;
      } catch (e) {
        failures++;
        for (const p of part ? [part] : enabled) failed.add(p);
        process.stdout.write(`  FAIL ${name}\n${indent(describeError(e), "       ")}\n`);
        return false;
      }
    },
    defer(name, fn) {
      cleanups.push({ name, fn });
    },
    tempDir(prefix) {
      const dir = mkdtempSync(join(tmpdir(), `e2e-${prefix}-`));
      cleanups.push({ name: `rm ${dir}`, fn: () => rmSync(dir, { recursive: true, force: true }) });
      return dir;
    },
    log(line) {
      process.stdout.write(`  ${line}\n`);
    },
    get failures() {
      return failures;
    },
  };

  try {
    const reasons = await opts.prerequisites?.();
    for (const p of parts) {
      const r = typeof reasons === "string" ? reasons : reasons?.[p];
      if (r) skipped.set(p, r);
    }
    enabled = parts.filter((p) => !skipped.has(p));
    if (enabled.length > 0) await opts.body(suite, enabled);
    process.stdout.write(
      `  ${opts.name}: ${enabled.length === 0 ? "nothing to run" : failures === 0 ? "all checks passed" : `${failures} check(s) failed`} in ${ms(Date.now() - started)}\n`,
    );
  } catch (e) {
    // Thrown by the body, or by prerequisites before `enabled` was known: every part not skipped failed.
    for (const p of parts) if (!skipped.has(p)) failed.add(p);
    process.stdout.write(`  ${opts.name}: aborted: ${indent(describeError(e), "    ").trimStart()}\n`);
  }
  await runCleanups();
  for (const p of parts) {
    const skip = skipped.get(p);
    process.stdout.write(`RESULT ${p}: ${skip ? `SKIP: ${skip}` : failed.has(p) ? "FAIL" : "PASS"}\n`);
  }
  if (failed.size > 0) process.exit(1);
  if (skipped.size === parts.length) {
    // Standalone runs: the reason on the last line.
    process.stdout.write(`SKIP: ${[...new Set(skipped.values())].join("; ")}\n`);
    process.exit(EXIT_SKIP);
  }
  process.exit(0);
}

export type SkipReasons = string | null | undefined | Record<string, string | null | undefined>;

// ---- processes ---------------------------------------------------------------------------------

export interface ProcResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  timedOut: boolean;
}

/**
 * Runs a command to completion with a time limit (its whole process group is killed then).
 * Never rejects for a non-zero exit: callers assert on the result.
 */
export function run(
  cmd: string,
  args: readonly string[],
  opts: { env?: NodeJS.ProcessEnv; cwd?: string; stdin?: string; timeoutMs?: number } = {},
): Promise<ProcResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, {
      cwd: opts.cwd ?? ROOT,
      env: opts.env ?? process.env,
      stdio: ["pipe", "pipe", "pipe"],
      detached: true,
    });
    const pgid = child.pid;
    if (pgid !== undefined) liveGroups.add(pgid);
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      killGroup(child, "SIGKILL");
    }, opts.timeoutMs ?? 60_000);
    child.stdout!.on("data", (b: Buffer) => out.push(b));
    child.stderr!.on("data", (b: Buffer) => err.push(b));
    child.on("error", (e) => {
      clearTimeout(timer);
      if (pgid !== undefined) liveGroups.delete(pgid);
      reject(e);
    });
    child.on("close", (code, signal) => {
      clearTimeout(timer);
      if (pgid !== undefined) liveGroups.delete(pgid);
      resolve({
        code,
        signal,
        timedOut,
        stdout: Buffer.concat(out).toString("utf8"),
        stderr: Buffer.concat(err).toString("utf8"),
      });
    });
    child.stdin!.on("error", () => {});
    child.stdin!.end(opts.stdin ?? "");
  });
}

/** Starts a long-running process in its own group; `stop()` ends the group (SIGTERM, then SIGKILL). */
export function startDaemon(
  cmd: string,
  args: readonly string[],
  opts: SpawnOptions & { onLine?: (line: string) => void },
): { child: ChildProcess; stop(): Promise<void>; exited: () => boolean } {
  const child = spawn(cmd, args, { cwd: ROOT, ...opts, stdio: ["ignore", "pipe", "pipe"], detached: true });
  const pgid = child.pid;
  if (pgid !== undefined) liveGroups.add(pgid);
  let exited = false;
  const exit = new Promise<void>((r) =>
    child.once("exit", () => {
      exited = true;
      r();
    }),
  );
  child.once("error", () => {
    exited = true;
  });
  for (const stream of [child.stdout!, child.stderr!]) lineReader(stream, (line) => opts.onLine?.(line));
  return {
    child,
    exited: () => exited,
    async stop() {
      if (!exited) {
        killGroup(child, "SIGTERM");
        const t = setTimeout(() => killGroup(child, "SIGKILL"), 5_000);
        await exit;
        clearTimeout(t);
      }
      killGroup(child, "SIGKILL");
      if (pgid !== undefined) liveGroups.delete(pgid);
    },
  };
}

function killGroup(child: ChildProcess, signal: NodeJS.Signals): void {
  if (child.pid === undefined) return;
  try {
    process.kill(-child.pid, signal);
  } catch {
    /* gone */
  }
}

/** The first executable named `name` on PATH, or null. */
export function onPath(name: string, path = process.env.PATH ?? ""): string | null {
  for (const dir of path.split(delimiter)) {
    if (!dir) continue;
    const file = join(dir, name);
    try {
      accessSync(file, constants.X_OK);
      return file;
    } catch {
      /* next */
    }
  }
  return null;
}

/** Every executable named `name` on PATH, in PATH order, without repeats. */
export function allOnPath(name: string, path = process.env.PATH ?? ""): string[] {
  const found: string[] = [];
  for (const dir of path.split(delimiter)) {
    if (!dir) continue;
    const file = join(dir, name);
    if (found.includes(file)) continue;
    try {
      accessSync(file, constants.X_OK);
      found.push(file);
    } catch {
      /* next */
    }
  }
  return found;
}

/** A port on 127.0.0.1 that was free a moment ago. */
export async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((r, j) => {
    server.once("error", j);
    server.listen(0, "127.0.0.1", r);
  });
  const port = (server.address() as { port: number }).port;
  await new Promise<void>((r) => server.close(() => r()));
  return port;
}

// ---- small helpers -----------------------------------------------------------------------------

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** Polls `fn` until it returns a value other than undefined, or throws the last error at the deadline. */
export async function eventually<T>(
  what: string,
  fn: () => Promise<T | undefined>,
  timeoutMs: number,
  everyMs = 250,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await fn();
      if (v !== undefined) return v;
    } catch (e) {
      last = e;
    }
    if (Date.now() > deadline) {
      throw new Error(`${what}: not within ${timeoutMs / 1000} s${last ? `; last error: ${message(last)}` : ""}`);
    }
    await sleep(everyMs);
  }
}

export function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const t = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: timed out after ${ms / 1000} s`)), ms);
  });
  return Promise.race([p, t]).finally(() => clearTimeout(timer));
}

export function message(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

function describeError(e: unknown): string {
  if (e instanceof Error) {
    // node:assert's messages already show actual vs expected; keep stacks out of the CI log.
    return e.message;
  }
  return inspect(e);
}

export function indent(s: string, pad: string): string {
  return s
    .split("\n")
    .map((l) => pad + l)
    .join("\n");
}

function ms(n: number): string {
  return n < 1000 ? `${n} ms` : `${(n / 1000).toFixed(1)} s`;
}

/** A result shown in an assertion message: clipped, one place to look. */
export function show(r: ProcResult): string {
  const clip = (s: string) => (s.length > 2000 ? s.slice(0, 2000) + "…" : s);
  return `exit ${r.code}${r.signal ? ` (${r.signal})` : ""}${r.timedOut ? " (timed out)" : ""}\n--- stdout\n${clip(r.stdout)}\n--- stderr\n${clip(r.stderr)}`;
}
