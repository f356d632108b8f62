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
import { makeAgent, send } from "../../scripts/fuzz/http.ts";
import { nodeForWrangler } from "../../scripts/lib/local-relay.ts";
import { Runtime } from "../../scripts/soak/runtime.ts";
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

/**
 * Through the local relay's port (wrangler dev's proxy and miniflare's entry Worker in front of
 * the Worker), an over-cap body with a correct Content-Length must get the relay's 413 every
 * time, not a 500 with a stack trace or a reset (issue 11; LOCAL_DRAIN_REFUSED_BODIES). Also an
 * early refusal before the body is read at all (no credentials): the relay's own 401.
 */
describe("early refusals through the local relay's port", () => {
  const rt = new Runtime({ tenants: 1, prefix: "bodytest", ratePerSecond: 100, burst: 100, seed: 1 });
  afterAll(() => rt.stop());
  /** Over MAX_BATCH_BYTES' raw cap (6 × 262144 + 64 KiB). */
  const OVER_CAP = 6 * 262_144 + 65_536 + 100_000;
  const ROUNDS = 48;
  const PARALLEL = 8;

  it("an over-cap body with a correct Content-Length: 413 payload_too_large every time, on both doors", async () => {
    await rt.start();
    const t = rt.tenants[0]!;
    const body = new Uint8Array(OVER_CAP).fill(0x20);
    const answers = new Map<string, number>();
    // Several at once, as the fuzz sends them: the failure showed under concurrent load.
    const one = async (i: number) => {
      const aws = i % 3 === 2;
      const a = await send(makeAgent(1), rt.relay.port, {
        method: "POST",
        path: aws ? "/" : "/v1/events",
        headers: aws
          ? {
              "content-type": "application/x-amz-json-1.1",
              "x-amz-target": "AWSEvents.PutPartnerEvents",
              authorization: "AWS4-HMAC-SHA256 Credential=x",
            }
          : { authorization: `Bearer ${t.apiKey.key}`, "content-type": "application/json" },
        body,
        fresh: true,
      });
      let code = a.error ?? "?";
      try {
        const j = JSON.parse(a.body) as { code?: string; __type?: string };
        code = j.code ?? (j.__type ? "aws" : "?");
      } catch {
        code = a.error ?? a.body.slice(0, 60);
      }
      const k = `${a.status} ${code}`;
      answers.set(k, (answers.get(k) ?? 0) + 1);
    };
    for (let i = 0; i < ROUNDS; i += PARALLEL) {
      await Promise.all(Array.from({ length: PARALLEL }, (_, j) => one(i + j)));
    }
    expect([...answers.keys()].sort()).toEqual(["400 aws", "413 payload_too_large"]);
  });

  it("an over-cap body refused before it is read (no credentials): the relay's 401 every time", async () => {
    const body = new Uint8Array(OVER_CAP).fill(0x20);
    const statuses = new Set<string>();
    for (let i = 0; i < ROUNDS; i++) {
      const a = await send(makeAgent(1), rt.relay.port, {
        method: "POST",
        path: "/v1/events",
        headers: { "content-type": "application/json" },
        body,
        fresh: true,
      });
      statuses.add(`${a.status} ${a.headers["content-type"] ?? a.error}`);
    }
    expect([...statuses]).toEqual(["401 application/problem+json"]);
  });
});
