/**
 * A local relay (scripts/lib/local-relay.ts: supervisor → wrangler dev → workerd) must not outlive
 * the process that started it, however that process dies (issue 11). A caller runs in a process
 * group of its own, as `npm start` does in a terminal; the test SIGKILLs that whole group (or the
 * caller alone) and then asserts that the relay's port is free again and that no process of the
 * relay's group (wrangler, workerd) is left. Linux: processes are read from /proc.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { connect } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { nodeForWrangler } from "../../scripts/lib/local-relay.ts";
import { ROOT, TEST_ADMIN_TOKEN, TEST_SEALING_KEY } from "./helpers/tenant-cli.ts";

/** How long the group may take to go after the kill (the supervisor's grace is 5 s). */
const GONE_WITHIN_MS = 30_000;

const dirs: string[] = [];
const callers: ChildProcess[] = [];

afterAll(() => {
  for (const c of callers) {
    try {
      process.kill(-c.pid!, "SIGKILL");
    } catch {
      // gone
    }
  }
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

/** The caller: starts a relay and prints {"port","pgid"} once it answers /healthz, then waits. */
const CALLER = `
import { startLocalRelay } from ${JSON.stringify(join(ROOT, "scripts", "lib", "local-relay.ts"))};
const relay = await startLocalRelay({ port: 0, persistTo: process.env.STATE_DIR, vars: {
  SEALING_KEY: ${JSON.stringify(TEST_SEALING_KEY)}, ADMIN_TOKEN: ${JSON.stringify(TEST_ADMIN_TOKEN)} } });
console.log(JSON.stringify({ port: relay.port, pgid: relay.pgid }));
setInterval(() => {}, 60_000);
`;

async function startCaller(): Promise<{ caller: ChildProcess; port: number; pgid: number }> {
  const dir = mkdtempSync(join(tmpdir(), "local-relay-test-"));
  dirs.push(dir);
  const caller = spawn(nodeForWrangler(ROOT), ["--input-type=module", "-e", CALLER], {
    cwd: ROOT,
    env: { ...process.env, STATE_DIR: join(dir, "state") },
    stdio: ["ignore", "pipe", "pipe"],
    detached: true, // its own group, like a shell job
  });
  callers.push(caller);
  let out = "";
  let errOut = "";
  caller.stdout!.setEncoding("utf8").on("data", (s: string) => (out += s));
  caller.stderr!.setEncoding("utf8").on("data", (s: string) => (errOut += s));
  const deadline = Date.now() + 120_000;
  while (Date.now() < deadline) {
    const m = /^(\{"port".*\})$/m.exec(out);
    if (m) {
      const { port, pgid } = JSON.parse(m[1]!) as { port: number; pgid: number };
      return { caller, port, pgid };
    }
    if (caller.exitCode !== null) break;
    await sleep(200);
  }
  throw new Error(`the caller did not start a relay:\n${out}\n${errOut}`);
}

/** Every live process with that process group id, with its command name. */
function groupMembers(pgid: number): { pid: number; comm: string }[] {
  const found: { pid: number; comm: string }[] = [];
  for (const name of readdirSync("/proc")) {
    if (!/^\d+$/.test(name)) continue;
    let stat: string;
    try {
      stat = readFileSync(`/proc/${name}/stat`, "utf8");
    } catch {
      continue;
    }
    // pid (comm) state ppid pgrp ...: comm may hold spaces and parentheses, so split after the last ')'.
    const close = stat.lastIndexOf(")");
    const fields = stat.slice(close + 2).split(" ");
    if (fields[0] === "Z") continue;
    if (Number(fields[2]) === pgid) found.push({ pid: Number(name), comm: stat.slice(stat.indexOf("(") + 1, close) });
  }
  return found;
}

function portOpen(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect({ host: "127.0.0.1", port }, () => {
      s.destroy();
      resolve(true);
    });
    s.once("error", () => resolve(false));
  });
}

async function waitUntil(what: string, ok: () => Promise<boolean> | boolean): Promise<void> {
  const deadline = Date.now() + GONE_WITHIN_MS;
  while (Date.now() < deadline) {
    if (await ok()) return;
    await sleep(250);
  }
  throw new Error(`not within ${GONE_WITHIN_MS / 1000} s: ${what}`);
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

describe.skipIf(!existsSync("/proc/self/stat"))("a local relay dies with its caller", () => {
  it("SIGKILL of the caller's whole process group: port free, no wrangler or workerd left", async () => {
    const { caller, port, pgid } = await startCaller();
    expect(pgid).not.toBe(caller.pid); // the relay left the caller's group
    expect(await portOpen(port)).toBe(true);
    const members = groupMembers(pgid);
    expect(members.some((p) => p.comm.startsWith("workerd"))).toBe(true); // workerd is in the relay's group

    process.kill(-caller.pid!, "SIGKILL");

    await waitUntil(`port ${port} closed`, async () => !(await portOpen(port)));
    await waitUntil(`no process left in group ${pgid}`, () => groupMembers(pgid).length === 0);
  });

  it("SIGKILL of the caller alone: the same", async () => {
    const { caller, port, pgid } = await startCaller();
    expect(await portOpen(port)).toBe(true);

    process.kill(caller.pid!, "SIGKILL");

    await waitUntil(`port ${port} closed`, async () => !(await portOpen(port)));
    await waitUntil(`no process left in group ${pgid}`, () => groupMembers(pgid).length === 0);
  });
});
