/**
 * The same rounds as `scripts/soak/memory.ts --small-only`, against the production bundle under
 * plain `workerd serve` (the benchmark's harness: no wrangler dev, no miniflare entry Worker, no
 * inspector proxy), to tell what the relay holds from what the local tooling holds.
 *
 *   node scripts/soak/memory-serve.ts [--requests 1000] [--concurrency 8]
 */
import { readFileSync } from "node:fs";
import { parseArgs } from "node:util";
import { setup } from "../bench/harness.ts";
import { makeAgent, send } from "../fuzz/http.ts";
import { intFlag, mib } from "./runtime.ts";

function rss(pid: number): number {
  const m = /^VmRSS:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
  return m ? Number(m[1]) * 1024 : 0;
}

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { requests: { type: "string" }, concurrency: { type: "string" } } });
  const requests = intFlag(values, "requests", 1_000, 1);
  const concurrency = intFlag(values, "concurrency", 8, 1);
  const s = await setup({ verify: true, bufferedRates: { small: 50, max: 10 }, noBaseline: true }, (l) =>
    console.log(l),
  );
  try {
    const t = s.tenants.direct;
    const source = `aws.partner/${t.record.sources[0]!.replace(/^aws\.partner\//, "").replace(/\/?\*$/, "")}/orders`;
    const body = new TextEncoder().encode(
      JSON.stringify({ Entries: [{ Source: source, DetailType: "m", Detail: '{"a":1}' }] }),
    );
    const agent = makeAgent(concurrency);
    const port = Number(s.relay.url.port);
    console.log(`after start                              workerd RSS ${mib(rss(s.relay.pid)).padStart(5)} MiB`);
    for (let round = 1; round <= 5; round++) {
      const statuses = new Map<number, number>();
      let next = 0;
      await Promise.all(
        Array.from({ length: concurrency }, async () => {
          while (next++ < requests) {
            const a = await send(agent, port, {
              method: "POST",
              path: "/v1/events",
              headers: { authorization: `Bearer ${t.apiKey}`, "content-type": "application/json" },
              body,
            });
            statuses.set(a.status, (statuses.get(a.status) ?? 0) + 1);
          }
        }),
      );
      console.log(
        `${requests} × small valid batch, round ${round} [${[...statuses].map(([k, v]) => `${k}:${v}`).join(" ")}] workerd RSS ${mib(rss(s.relay.pid)).padStart(5)} MiB`,
      );
    }
    agent.destroy();
  } finally {
    await s.cleanup();
  }
}

main().then(
  () => process.exit(0),
  (e: unknown) => {
    console.error(e);
    process.exit(1);
  },
);
