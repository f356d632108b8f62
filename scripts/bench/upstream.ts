/**
 * The benchmark's upstream: the project's fake EventBridge (emulator/) over HTTP on 127.0.0.1,
 * in its own process so that its SigV4 verification (pure-JS SHA-256 of every body) neither
 * competes with the load client's event loop nor shows in its latencies. Forked by run.ts with
 * an IPC channel:
 *
 *   → {type:"ready", url}                       once listening
 *   ← {type:"mark"}                             forget the calls recorded so far
 *   ← {type:"calls", id}  → {type:"calls", id, calls: [atMs, entries, status, handlingUs][], cpuUs}
 *
 * The fake keeps every event it accepts; a benchmark sends gigabytes, so its lists are cleared
 * as they grow and only a compact call log is kept here.
 */
import { parseArgs } from "node:util";
import { FAKE_DEFAULT_CREDENTIAL, FakeEventBridge } from "../../emulator/eventbridge.ts";
import { startFakeEventBridgeServer } from "../../emulator/server.ts";

/** Events the fake may hold before its lists are cleared (memory bound, not a behaviour). */
const MAX_HELD_EVENTS = 2_000;

type CallRow = [atMs: number, entries: number, status: number, handlingUs: number];

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { verify: { type: "string", default: "true" } }, strict: true });
  const verifySignatures = values.verify !== "false";
  const fake = new FakeEventBridge({ credentials: [FAKE_DEFAULT_CREDENTIAL], verifySignatures });
  let calls: CallRow[] = [];
  // How long the fake takes to answer (SigV4 verification, validation, recording), per call: the
  // upstream's share of the relay's latency. The body has been read by then.
  const pending = new Map<string, CallRow>();
  const fetch = fake.fetch.bind(fake);
  fake.fetch = async (request: Request) => {
    const t0 = process.hrtime.bigint();
    const response = await fetch(request);
    const id = response.headers.get("x-amzn-requestid");
    const row = id ? pending.get(id) : undefined;
    if (row && id) {
      row[3] = Number(process.hrtime.bigint() - t0) / 1e3;
      pending.delete(id);
    }
    return response;
  };
  fake.onCall((call) => {
    const row: CallRow = [Date.now(), call.entryCount, call.status, -1];
    calls.push(row);
    pending.set(call.requestId, row);
    if (fake.events.length > MAX_HELD_EVENTS) fake.reset();
  });
  const server = await startFakeEventBridgeServer({ port: 0, fake });
  const send = (m: unknown) => process.send?.(m);
  process.on("message", (m: { type: string; id?: number }) => {
    if (m.type === "mark") {
      calls = [];
      pending.clear();
    } else if (m.type === "calls") {
      const u = process.cpuUsage();
      send({ type: "calls", id: m.id, calls, cpuUs: u.user + u.system });
    } else if (m.type === "stop") {
      void server.close().finally(() => process.exit(0));
    }
  });
  process.on("disconnect", () => process.exit(0));
  send({ type: "ready", url: server.url, verifySignatures });
}

main().catch((e: unknown) => {
  console.error(e);
  process.exit(1);
});
