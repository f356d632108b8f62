/**
 * `npm run soak`: the relay under the local runtime (as `npm start` runs it, on its own temporary
 * state directory and free ports), the emulator as its upstream with random faults (whole-call
 * throttling and 5xx, per-entry failures, slow answers, answers lost after it accepted), tenants
 * provisioned through the admin code, thousands of events from concurrent partners that retry as
 * a real partner does, hard crashes (SIGKILL of the runtime's whole process group) in the middle
 * of the burst and restarts on the same state, a bounded wait for the buffers to drain, and a
 * ledger from the emulator's own records. Exit 0 only when it balances.
 *
 *   npm run soak -- [--tenants 10] [--events 10000] [--crashes 2] [--concurrency 16] [--shards 3]
 *                   [--seed N] [--drain-timeout 240] [--keep]
 *
 * Docs: docs/reliability.md.
 */
import { parseArgs } from "node:util";
import { mulberry32 } from "../../emulator/eventbridge.ts";
import { balanced, computeLedger } from "./ledger.ts";
import { newStats, runPartner, type SoakEvent } from "./partner.ts";
import { intFlag, machineLine, mib, Runtime, sleep } from "./runtime.ts";

const HELP = `usage: npm run soak -- [options]

  --tenants N        tenants (default 10)
  --events N         events over all tenants (default 10000)
  --crashes N        hard crashes of the local runtime during the burst (default 2)
  --concurrency N    partners sending at once (default 16)
  --shards N         every second tenant is spread over N shards (default 3; 1: none)
  --seed N           PRNG seed (default: from the clock; printed, so a run replays)
  --drain-timeout S  longest wait for the buffers to drain after the burst, in s (default 240)
  --keep             keep the temporary state directory

Exit 0 when the ledger balances (missing 0, cross-tenant 0, duplicates only where a send's
outcome was unknown), 1 when it does not, 2 on a usage error. Docs: docs/reliability.md.`;

/** The relay's upstream timeout in the soak, in ms (shorter than production's 10 s, so delays cross it). */
const UPSTREAM_TIMEOUT_MS = 3_000;
/** Random upstream faults per call. */
const FAULT_RATES = { throttle: 0.04, error5xx: 0.04, entryFailure: 0.06, lost: 0.03 };
/** How often a slow answer is queued (a delay fault for the next call), in ms; some exceed the timeout. */
const DELAY_EVERY_MS = 1_500;
/** Tenant limits: low enough that bursts are buffered and drained, not only sent directly. */
const RATE_PER_SECOND = 25;
const BURST = 20;
/** Upstream acceptances this close before a crash count as in flight at it, in ms. */
const CRASH_WINDOW_MS = UPSTREAM_TIMEOUT_MS + 2_000;
/** Drain retry cap for the soak (production 5 min), so a bounded wait can see the end. */
const DRAIN_BACKOFF_CAP_MS = 5_000;

async function main(): Promise<number> {
  let values: Record<string, string | boolean | undefined>;
  try {
    values = parseArgs({
      options: {
        tenants: { type: "string" },
        events: { type: "string" },
        crashes: { type: "string" },
        concurrency: { type: "string" },
        shards: { type: "string" },
        seed: { type: "string" },
        "drain-timeout": { type: "string" },
        keep: { type: "boolean" },
        help: { type: "boolean", short: "h" },
      },
      strict: true,
    }).values;
  } catch (e) {
    console.error(`soak: ${(e as Error).message}\n\n${HELP}`);
    return 2;
  }
  if (values.help) {
    console.log(HELP);
    return 0;
  }
  let tenants: number, events: number, crashes: number, concurrency: number, seed: number, drainTimeoutS: number;
  let shards: number;
  try {
    tenants = intFlag(values, "tenants", 10, 1);
    events = intFlag(values, "events", 10_000, 1);
    crashes = intFlag(values, "crashes", 2, 0);
    concurrency = intFlag(values, "concurrency", 16, 1);
    shards = intFlag(values, "shards", 3, 1);
    seed = intFlag(values, "seed", Date.now() % 2_147_483_647, 0);
    drainTimeoutS = intFlag(values, "drain-timeout", 240, 1);
  } catch (e) {
    console.error(`soak: ${(e as Error).message}`);
    return 2;
  }
  const started = Date.now();
  const log = (s: string) => console.log(`soak ${((Date.now() - started) / 1000).toFixed(1).padStart(6)}s  ${s}`);
  console.log(
    `soak: seed ${seed} (replay: npm run soak -- --seed ${seed} --tenants ${tenants} --events ${events} --crashes ${crashes} --concurrency ${concurrency} --shards ${shards})`,
  );
  console.log(`soak: machine ${machineLine()}`);

  const rt = new Runtime({
    tenants,
    prefix: "soak",
    ratePerSecond: RATE_PER_SECOND,
    burst: BURST,
    shards,
    seed,
    keep: Boolean(values.keep),
    vars: { UPSTREAM_TIMEOUT_MS: String(UPSTREAM_TIMEOUT_MS), DRAIN_BACKOFF_CAP_MS: String(DRAIN_BACKOFF_CAP_MS) },
  });
  let delayTimer: NodeJS.Timeout | undefined;
  try {
    await rt.start();
    log(
      `relay ${rt.url} (state ${rt.stateDir}), emulator ${rt.emulator.url}, ${tenants} tenants provisioned (${rt.tenants.filter((t) => t.record.limits.shards > 1).length} of them over ${shards} shards)`,
    );
    const random = mulberry32(seed ^ 0x5eed);
    rt.fake.setFaultRates(FAULT_RATES);
    delayTimer = setInterval(() => {
      // Mostly slow answers under the timeout; about one in four over it (an unknown outcome).
      const ms = random() < 0.25 ? UPSTREAM_TIMEOUT_MS + 500 : Math.floor(200 + random() * 1_500);
      rt.fake.inject({ type: "delay", ms });
    }, DELAY_EVERY_MS);

    const all: SoakEvent[] = [];
    const pending: SoakEvent[][] = rt.tenants.map(() => []);
    for (let i = 0; i < events; i++) {
      const ti = i % tenants;
      const e: SoakEvent = {
        id: `${rt.tenants[ti]!.id}/${i}`,
        tenant: ti,
        seq: i,
        sends: 0,
        unknownSends: 0,
        acknowledged: false,
      };
      all.push(e);
      pending[ti]!.push(e);
    }
    const stats = newStats();
    let acked = 0;
    let down = false;
    const settled = () => all.every((e) => e.acknowledged || e.refused || e.gaveUp);
    let finished = false;
    const partners = Array.from({ length: concurrency }, () =>
      runPartner({
        url: () => rt.url,
        tenants: rt.tenants,
        pending,
        random,
        stats,
        secrets: rt.secrets,
        awsShare: 0.25,
        done: () => finished || settled(),
        onAck: () => void acked++,
      }),
    );

    // Crashes at evenly spaced shares of the acknowledged events, while the partners are sending.
    const crashTimes: number[] = [];
    const progress = setInterval(() => {
      if (!down)
        log(`acknowledged ${acked}/${events}, ${stats.requests} requests, ${rt.memory.line()}, ${rt.heap.line()}`);
    }, 5_000);
    for (let k = 1; k <= crashes; k++) {
      const threshold = Math.floor((events * k) / (crashes + 1));
      while (acked < threshold && !settled()) await sleep(20);
      if (settled()) {
        log(`all events settled before crash ${k} (fewer events than crashes need?)`);
        break;
      }
      down = true;
      const inFlight = concurrency; // every partner has a request out or is about to
      await rt.crash();
      crashTimes.push(Date.now());
      log(`CRASH ${k}: SIGKILL of the runtime's process group at ${acked} acknowledged (${inFlight} partners sending)`);
      await rt.startRelay();
      down = false;
      log(`restarted on the same state in ${((Date.now() - crashTimes[crashTimes.length - 1]!) / 1000).toFixed(1)} s`);
    }
    const burstTimeout = Date.now() + 8 * 60_000;
    while (!settled() && Date.now() < burstTimeout) await sleep(100);
    finished = true;
    await Promise.all(partners);
    clearInterval(progress);
    const burstDone = Date.now();
    log(`burst done: ${acked} acknowledged in ${stats.requests} requests`);

    // Bounded wait for every tenant's buffer to drain (faults stay on: the drain must cope).
    clearInterval(delayTimer);
    const statuses = new Map<string, { queued: number; duplicatesPossible: number; deadLetters: number }>();
    const drainDeadline = Date.now() + drainTimeoutS * 1000;
    for (;;) {
      let queued = 0;
      for (const t of rt.tenants) {
        try {
          const s = await rt.admin.status(t.id);
          const q = {
            queued: s.queued ?? 0,
            duplicatesPossible: s.duplicatesPossible ?? 0,
            deadLetters: s.deadLetters ?? 0,
          };
          statuses.set(t.id, q);
          queued += q.queued;
        } catch {
          queued += 1; // unreachable: try again
        }
      }
      if (queued === 0) break;
      if (Date.now() > drainDeadline) {
        log(`drain: ${queued} entries still queued after ${drainTimeoutS} s`);
        break;
      }
      await sleep(1_000);
    }
    log(`drained in ${((Date.now() - burstDone) / 1000).toFixed(1)} s`);
    rt.memory.stop();
    const retained = await rt.heap.retained();

    const ledger = computeLedger({
      events: all,
      tenants: rt.tenants,
      received: rt.fake.events,
      calls: rt.fake.calls,
      crashes: crashTimes,
      upstreamTimeoutMs: UPSTREAM_TIMEOUT_MS,
      crashWindowMs: CRASH_WINDOW_MS,
    });
    let duplicatesPossible = 0;
    let deadLetters = 0;
    for (const s of statuses.values()) {
      duplicatesPossible += s.duplicatesPossible;
      deadLetters += s.deadLetters;
    }
    const faults = new Map<string, number>();
    for (const c of rt.fake.calls) {
      const k = c.fault ?? c.outcome;
      faults.set(k, (faults.get(k) ?? 0) + 1);
    }
    const ok = balanced(ledger) && rt.secrets.total === 0;
    const fmt = (m: Map<string, number>) =>
      [...m]
        .sort((a, b) => b[1] - a[1])
        .map(([k, v]) => `${k} ${v}`)
        .join(", ") || "none";

    console.log("");
    console.log("== soak ledger (from the emulator's own records)");
    console.log(`seed                       ${seed}`);
    console.log(`tenants / partners         ${tenants} / ${concurrency}`);
    console.log(
      `hard crashes               ${crashTimes.length} (SIGKILL of the runtime's process group, restarted on the same state)`,
    );
    console.log(`events                     ${events} (each with a unique id in Detail)`);
    console.log(
      `requests                   ${stats.requests} (JSON API ${stats.jsonRequests}, AWS front door ${stats.awsRequests})`,
    );
    console.log(`answers                    ${fmt(stats.answers)}`);
    console.log(`per-entry codes answered   ${fmt(stats.entryCodes)}`);
    console.log(
      `no answer                  ${stats.connectionLost} lost connections, ${stats.connectionRefused} refused connections (restarting)`,
    );
    console.log(`upstream calls             ${rt.fake.calls.length}: ${fmt(faults)}`);
    console.log(`acknowledged               ${ledger.acknowledged}`);
    console.log(`delivered                  ${ledger.delivered} distinct (${ledger.deliveries} copies)`);
    console.log(
      `missing                    ${ledger.missing.length}${ledger.missing.length ? `  e.g. ${ledger.missing.slice(0, 5).join(", ")}` : ""}`,
    );
    console.log(
      `duplicates                 ${ledger.duplicates} (unexplained ${ledger.unexplainedDuplicates.length}${ledger.unexplainedDuplicates.length ? `: ${ledger.unexplainedDuplicates.slice(0, 5).join(", ")}` : ""})`,
    );
    console.log(
      `unknown-outcome sends      ${ledger.unknownOutcomeSends} event sends by partners (${stats.unknownRequests} requests); ${ledger.unknownUpstreamCalls} upstream calls (lost / over the timeout)`,
    );
    console.log(`relay duplicatesPossible   ${duplicatesPossible}`);
    console.log(`delivered unacknowledged   ${ledger.deliveredUnacknowledged} (each after an unknown-outcome send)`);
    console.log(
      `refused for good           ${fmt(ledger.refused)}${ledger.refusedButDelivered ? ` (${ledger.refusedButDelivered} delivered anyway)` : ""}`,
    );
    console.log(`given up by partners       ${ledger.gaveUp}`);
    console.log(`dead letters               ${deadLetters}`);
    console.log(`cross-tenant deliveries    ${ledger.crossTenant}`);
    console.log(`foreign deliveries         ${ledger.foreign}`);
    console.log(
      `5xx answers                ${stats.serverErrors} (${stats.undocumented5xx} not in the relay's documented format)`,
    );
    console.log(
      `secrets in answers/logs    ${rt.secrets.total}${rt.secrets.total ? `: ${fmt(rt.secrets.found)}` : ""} (${rt.logLines} log lines scanned)`,
    );
    console.log(
      `memory                     ${rt.memory.line()}; per start: ${rt.memory.perStart.map((p) => `${(p.start / 1048576).toFixed(0)}/${(p.peak / 1048576).toFixed(0)}/${(p.end / 1048576).toFixed(0)}`).join(", ")} MiB (start/peak/end)`,
    );
    console.log(`                           ${rt.heap.line()}; retained after a full GC ${mib(retained)} MiB`);
    console.log(`duration                   ${((Date.now() - started) / 1000).toFixed(0)} s`);
    console.log(
      `soak: ${ok ? "PASS" : "FAIL"} seed=${seed} tenants=${tenants} events=${events} crashes=${crashTimes.length} acknowledged=${ledger.acknowledged} delivered=${ledger.delivered} missing=${ledger.missing.length} duplicates=${ledger.duplicates} unexplained-duplicates=${ledger.unexplainedDuplicates.length} unknown-outcome-sends=${ledger.unknownOutcomeSends} cross-tenant=${ledger.crossTenant} secrets=${rt.secrets.total} rss-mib=${mib(rt.memory.start ?? 0)}/${mib(rt.memory.peak)}/${mib(rt.memory.last)} heap-mib=${mib(rt.heap.firstUsed ?? 0)}/${mib(rt.heap.peakUsed)}/${mib(retained)}`,
    );
    return ok ? 0 : 1;
  } finally {
    clearInterval(delayTimer);
    await rt.stop();
  }
}

main().then(
  (code) => process.exit(code),
  (e: unknown) => {
    console.error(`soak: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}`);
    process.exit(1);
  },
);
