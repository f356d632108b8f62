/**
 * What holds workerd's memory under the local runtime (docs/reliability.md, "Memory"): one private
 * relay (as soak and fuzz start it), then rounds of one kind of request each, with workerd's RSS and
 * the Worker isolate's heap (over the inspector, after a full GC) measured after every round.
 *
 *   node scripts/soak/memory.ts [--requests 1000] [--concurrency 8] [--small-only]
 *
 * Kinds: small valid batches (direct path), requests refused before the body is read (no key),
 * 300 KB batches refused by the size formula (413 batch_too_large: the body is read), 1.7 MB
 * bodies over the raw cap (413 payload_too_large), and small valid batches again (does RSS come
 * back down, or stay at its high-water mark?).
 */
import { parseArgs } from "node:util";
import { makeAgent, send, type WireRequest } from "../fuzz/http.ts";
import { intFlag, mib, Runtime, workerdRss } from "./runtime.ts";

const BODY_CAP = 6 * 262_144 + 65_536;

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: { requests: { type: "string" }, concurrency: { type: "string" }, "small-only": { type: "boolean" } },
  });
  const requests = intFlag(values, "requests", 1_000, 1);
  const concurrency = intFlag(values, "concurrency", 8, 1);
  const rt = new Runtime({ tenants: 1, prefix: "mem", ratePerSecond: 1_000, burst: 2_000, seed: 1 });
  try {
    await rt.start();
    const t = rt.tenants[0]!;
    const port = rt.relay.port;
    const agent = makeAgent(concurrency);
    const enc = new TextEncoder();
    const auth = { authorization: `Bearer ${t.apiKey.key}`, "content-type": "application/json" };
    const small = enc.encode(JSON.stringify({ Entries: [{ Source: t.source, DetailType: "m", Detail: '{"a":1}' }] }));
    const big = enc.encode(
      JSON.stringify({
        Entries: [{ Source: t.source, DetailType: "m", Detail: JSON.stringify({ p: "x".repeat(300_000) }) }],
      }),
    );
    const overCap = new Uint8Array(BODY_CAP + 100_000).fill(0x20);
    const kinds: [string, WireRequest][] = [
      ["small valid batch (200)", { method: "POST", path: "/v1/events", headers: auth, body: small }],
      [
        "no API key (401, body not read)",
        { method: "POST", path: "/v1/events", headers: { "content-type": "application/json" }, body: small },
      ],
      ["300 KB batch (413 batch_too_large)", { method: "POST", path: "/v1/events", headers: auth, body: big }],
      [
        "1.7 MB body (413 payload_too_large)",
        { method: "POST", path: "/v1/events", headers: auth, body: overCap, fresh: true },
      ],
      ["small valid batch again (200)", { method: "POST", path: "/v1/events", headers: auth, body: small }],
    ];
    if (values["small-only"]) {
      // Only small valid batches, round after round: a leak grows linearly, a high-water mark levels off.
      kinds.length = 0;
      for (let i = 1; i <= 5; i++)
        kinds.push([
          `small valid batch, round ${i}`,
          { method: "POST", path: "/v1/events", headers: auth, body: small },
        ]);
    }
    const row = async (label: string) => {
      const heap = await rt.heap.retained();
      const rss = workerdRss(rt.relay.pgid);
      console.log(
        `${label.padEnd(40)} workerd RSS ${mib(rss).padStart(5)} MiB   isolate heap after GC ${mib(heap).padStart(4)} MiB`,
      );
    };
    await row("after start");
    for (const [label, req] of kinds) {
      const statuses = new Map<number, number>();
      let next = 0;
      await Promise.all(
        Array.from({ length: concurrency }, async () => {
          while (next++ < requests) {
            const a = await send(agent, port, req);
            statuses.set(a.status, (statuses.get(a.status) ?? 0) + 1);
          }
        }),
      );
      await row(`${requests} × ${label} [${[...statuses].map(([s, n]) => `${s}:${n}`).join(" ")}]`);
    }
    agent.destroy();
  } finally {
    await rt.stop();
  }
}

main().then(
  () => process.exit(0),
  (e: unknown) => {
    console.error(e);
    process.exit(1);
  },
);
