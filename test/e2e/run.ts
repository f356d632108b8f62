/**
 * Runs the end-to-end suites one after another, each as its own Node process with a time limit,
 * and closes with a summary CI can read:
 *
 *   aws-cli v1: PASS
 *   aws-cli v2: SKIP: no AWS CLI v2 at /usr/bin/aws or on PATH (apt-get install awscli)
 *   moto: PASS
 *   skipped: aws-cli v2 (no AWS CLI v2 at /usr/bin/aws or on PATH (apt-get install awscli))
 *   2 passed, 0 failed
 *
 * Exit 1 when anything failed (a skip is not a failure), 130 on Ctrl-C.
 *
 *   npm run e2e                 # every suite
 *   npm run e2e -- moto         # only the moto suite (names: aws-cli, moto)
 *   E2E_TIMEOUT_SCALE=2 npm run e2e   # double every suite's time limit
 *
 * Each suite process owns what it starts (wrangler dev, moto_server, the fake EventBridge) and
 * stops it on exit, on failure and on SIGTERM; this runner sends SIGTERM when a suite overruns its
 * limit or on Ctrl-C, and SIGKILLs the suite's process group if it has not exited after a grace
 * period. Suites are plain Node scripts (node:assert, node:child_process, fetch): see docs/e2e.md.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { lineReader } from "../../scripts/lib/local-relay.ts";

interface SuiteSpec {
  name: string;
  file: string;
  /** Result lines the suite reports, one per part. */
  parts: string[];
  timeoutMs: number;
}

const HERE = fileURLToPath(new URL(".", import.meta.url));
const SUITES: SuiteSpec[] = [
  { name: "aws-cli", file: "aws-cli.ts", parts: ["aws-cli v1", "aws-cli v2"], timeoutMs: 240_000 },
  { name: "moto", file: "moto.ts", parts: ["moto"], timeoutMs: 300_000 },
];
/** E2E_TIMEOUT_SCALE multiplies every suite's limit (e.g. 2 on a slow or busy machine). */
const SCALE = Number(process.env.E2E_TIMEOUT_SCALE ?? "1");
if (!(SCALE > 0)) throw new Error(`E2E_TIMEOUT_SCALE must be a positive number, not ${process.env.E2E_TIMEOUT_SCALE}`);
for (const s of SUITES) s.timeoutMs = Math.round(s.timeoutMs * SCALE);
/** How long a suite gets to clean up after SIGTERM before its process group is SIGKILLed. */
const GRACE_MS = 30_000;

type Verdict = { status: "PASS" } | { status: "FAIL"; reason?: string } | { status: "SKIP"; reason: string };

let current: ChildProcess | null = null;
let interrupted: NodeJS.Signals | null = null;

function killGroup(child: ChildProcess | null, signal: NodeJS.Signals): void {
  if (!child?.pid) return;
  try {
    process.kill(-child.pid, signal);
  } catch {
    /* gone */
  }
}

process.on("exit", () => killGroup(current, "SIGKILL"));
for (const sig of ["SIGINT", "SIGTERM"] as const) {
  process.on(sig, () => {
    if (interrupted) {
      // A second Ctrl-C: stop waiting for clean-up.
      killGroup(current, "SIGKILL");
      process.exit(130);
    }
    interrupted = sig;
    process.stdout.write(`\n== ${sig}: stopping the running suite (it cleans up; Ctrl-C again to kill it)\n`);
    killGroup(current, "SIGTERM");
  });
}

function runSuite(spec: SuiteSpec): Promise<Map<string, Verdict>> {
  return new Promise((resolve) => {
    const started = Date.now();
    const results = new Map<string, Verdict>();
    const child = spawn(process.execPath, [join(HERE, spec.file)], {
      stdio: ["ignore", "pipe", "pipe"],
      detached: true, // its own process group: Ctrl-C reaches it through this runner, once
      env: process.env,
    });
    current = child;
    let timedOut = false;
    let graceTimer: ReturnType<typeof setTimeout> | undefined;
    const timer = setTimeout(() => {
      timedOut = true;
      process.stdout.write(`  ${spec.name}: time limit of ${spec.timeoutMs / 1000} s reached; stopping it\n`);
      killGroup(child, "SIGTERM");
      graceTimer = setTimeout(() => killGroup(child, "SIGKILL"), GRACE_MS);
    }, spec.timeoutMs);
    const onInterrupt = () => {
      graceTimer ??= setTimeout(() => killGroup(child, "SIGKILL"), GRACE_MS);
    };
    process.once("SIGINT", onInterrupt);
    process.once("SIGTERM", onInterrupt);

    const onLine = (line: string) => {
      const m = /^RESULT (.+?): (PASS|FAIL|SKIP: (.*))$/.exec(line);
      if (m) {
        const verdict: Verdict =
          m[2] === "PASS"
            ? { status: "PASS" }
            : m[2] === "FAIL"
              ? { status: "FAIL" }
              : { status: "SKIP", reason: m[3]! };
        results.set(m[1]!, verdict);
        return; // the summary prints it
      }
      if (/^SKIP: /.test(line)) return; // the standalone form of the same result
      process.stdout.write(line + "\n");
    };
    for (const stream of [child.stdout!, child.stderr!]) lineReader(stream, onLine);

    const finish = (code: number | null, signal: NodeJS.Signals | null, error?: Error) => {
      clearTimeout(timer);
      clearTimeout(graceTimer);
      process.removeListener("SIGINT", onInterrupt);
      process.removeListener("SIGTERM", onInterrupt);
      // Anything the suite left in its group (it should have stopped everything itself).
      killGroup(child, "SIGKILL");
      current = null;
      const why = error
        ? `could not start: ${error.message}`
        : timedOut
          ? `timed out after ${spec.timeoutMs / 1000} s`
          : interrupted
            ? `interrupted (${interrupted})`
            : `exited with ${signal ?? `code ${code}`} without a result`;
      for (const part of spec.parts) {
        const r = results.get(part);
        if (!r || timedOut || interrupted) {
          if (r?.status === "SKIP") continue;
          results.set(part, { status: "FAIL", reason: r?.status === "FAIL" ? `${why}; checks failed` : why });
        }
      }
      process.stdout.write(`  (${spec.name} took ${((Date.now() - started) / 1000).toFixed(1)} s)\n`);
      resolve(results);
    };
    let done = false;
    child.once("error", (e) => {
      if (!done) {
        done = true;
        finish(null, null, e);
      }
    });
    child.once("close", (code, signal) => {
      if (!done) {
        done = true;
        finish(code, signal);
      }
    });
  });
}

async function main(): Promise<number> {
  const wanted = process.argv.slice(2);
  const unknown = wanted.filter((w) => !SUITES.some((s) => s.name === w));
  if (unknown.length) {
    process.stderr.write(
      `unknown suite(s): ${unknown.join(", ")}; the suites are: ${SUITES.map((s) => s.name).join(", ")}\n`,
    );
    return 2;
  }
  const selected = wanted.length ? SUITES.filter((s) => wanted.includes(s.name)) : SUITES;
  const all = new Map<string, Verdict>();
  const started = Date.now();
  for (const spec of selected) {
    if (interrupted) {
      for (const p of spec.parts) all.set(p, { status: "FAIL", reason: `not run (${interrupted})` });
      continue;
    }
    process.stdout.write(`== e2e: ${spec.name} (test/e2e/${spec.file}, limit ${spec.timeoutMs / 1000} s)\n`);
    for (const [part, verdict] of await runSuite(spec)) all.set(part, verdict);
  }

  process.stdout.write(`== e2e summary (${((Date.now() - started) / 1000).toFixed(1)} s)\n`);
  let passed = 0;
  let failed = 0;
  const skipped: string[] = [];
  for (const [part, v] of all) {
    if (v.status === "PASS") passed++;
    if (v.status === "FAIL") failed++;
    if (v.status === "SKIP") skipped.push(`${part} (${v.reason})`);
    process.stdout.write(
      `${part}: ${v.status === "PASS" ? "PASS" : v.status === "SKIP" ? `SKIP: ${v.reason}` : `FAIL${v.reason ? ` (${v.reason})` : ""}`}\n`,
    );
  }
  process.stdout.write(`skipped: ${skipped.length ? skipped.join("; ") : "none"}\n`);
  process.stdout.write(`${passed} passed, ${failed} failed\n`);
  if (interrupted) return 130;
  return failed > 0 ? 1 : 0;
}

process.exitCode = await main();
