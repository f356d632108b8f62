/**
 * `npm run bench`: what one relay request costs, against a bare Hono Worker, in one run.
 *
 * Builds the production bundle (`wrangler deploy --dry-run`) and a baseline Worker, runs each in
 * its own `workerd serve` (the workerd wrangler uses; scripts/bench/workers.ts), seeds tenants, starts the fake
 * EventBridge on 127.0.0.1 in a child process, then alternates every scenario with the baseline
 * (same body, same headers) for `--rounds` rounds after a warm-up. Prints a table, writes
 * bench/results/latest.json (and latest.md). All traffic is on 127.0.0.1; every loop is bounded
 * in count and time; the whole run stops itself before `--budget-s`.
 *
 * Flags: --rounds 3 --window-ms 1500 --concurrency 8 --latency-requests 300 --latency-ms 1000
 *        --buffered-requests-small 150 --buffered-rate-small 50 --buffered-requests-max 60
 *        --buffered-rate-max 5 --verify true|false --only direct,buffered-max,...
 *        --budget-s 480 --wait-quiet-s 30 --out bench/results/latest.json
 *        --profile (run scripts/bench/profile.ts instead: where the relay's CPU goes)
 * See docs/bench.md for what the columns mean.
 */
import { mkdirSync, writeFileSync } from "node:fs";
import { dirname, resolve } from "node:path";
import { parseArgs } from "node:util";
import { type CallRow, machine, ROOT, SHARDED_RATE, setup, type Upstream } from "./harness.ts";
import { runLoad, type Target, target } from "./load.ts";
import { invalidBatch, oversizeBatch, type Payload, type Size, validBatch } from "./payloads.ts";
import { cpuUs, ForeignLoad, readStat } from "./proc.ts";
import { floorTargets, formatFloorTargets, formatTable, judge, type ScenarioSummary, summarise } from "./report.ts";
import type { BenchTenant } from "./seed.ts";
import type { RunningWorker } from "./workers.ts";

/** Targets from issue 7, as ratios to the baseline measured in the same run. */
export const TARGETS = {
  cpuRatioSmall: 5,
  cpuRatioMax: 6,
  rpsRatioMin: 0.2,
  addedP50UsSmall: 500,
  drainFullShareMin: 0.95,
} as const;

/**
 * Targets from issue 12, as ratios to rows of the same run: the direct path against the floor
 * rows (what any forwarding Worker pays in this harness), the buffered path against the direct
 * path at the same size, drained batches' fullness.
 */
export const FLOOR_TARGETS = {
  directSmallVsRpcForward: 1.6,
  directMaxVsForward: 2.5,
  addedP50UsSmallVsRpcForward: 500,
  bufferedVsDirect: 2,
  drainFullShareMin: 0.95,
  /** AWS's sustained PutPartnerEvents quota per partner account and region, for the shard estimate. */
  tenantRequestsPerSecond: 1_400,
} as const;

/** Set once the Workers are running: other processes' CPU use during each window. */
let foreign: ForeignLoad = new ForeignLoad(() => []);

/** Other processes' CPU use under which the machine counts as quiet, in cores. */
const QUIET_CORES = 0.25;

/** Waits (up to maxS) for two consecutive quiet seconds; says how busy the machine was last. */
async function waitQuiet(maxS: number): Promise<{ cores: number; waitedS: number }> {
  const started = Date.now();
  let quietSeconds = 0;
  for (;;) {
    foreign.start();
    await new Promise((r) => setTimeout(r, 1_000));
    const cores = foreign.cores();
    quietSeconds = cores < QUIET_CORES ? quietSeconds + 1 : 0;
    const waitedS = Math.round((Date.now() - started) / 1000);
    if (quietSeconds >= 2 || Date.now() - started >= maxS * 1000) return { cores, waitedS };
  }
}

/** The baseline Worker's forwarding route (scripts/bench/baseline-worker.ts). */
const FORWARD_PATH = "/v1/forward";
const FORWARD_RPC_PATH = "/v1/forward-rpc";

/** Largest number of requests one closed-loop window may send (a bound besides time). */
const MAX_WINDOW_REQUESTS = 200_000;
/** Requests in the sharded scenario's burst (20 small entries each). */
const SHARDED_REQUESTS = 200;
/** Longest a buffered backlog may take to drain before the run gives up on it, in ms. */
const DRAIN_TIMEOUT_MS = 60_000;

type Kind = "direct" | "invalid" | "oversize" | "buffered" | "floor" | "sharded";

interface Scenario {
  kind: Kind;
  size: Size;
  label: string;
  payload: Payload;
  tenant: BenchTenant;
  /** The status every relay answer should have (the buffered path also answers 200 while tokens last). */
  expect: number[];
  /** The baseline Worker's route for the floor rows. */
  path?: string;
  /** The tenant's rate, when not the buffered tenants' (`--buffered-rate-*`). */
  rate?: number;
  /** Requests in the burst, when not `--buffered-requests-*`. */
  requests?: number;
}

export interface Window {
  requests: number;
  rps: number;
  cpuUsPerRequest: number;
  /** Latency samples at `concurrency` (µs). */
  loaded: Float64Array;
  /** Latency samples at concurrency 1 (µs). */
  single: Float64Array;
  statuses: Record<string, number>;
  errors: Record<string, number>;
  sampleBodies: Record<string, string>;
  clientCpuUsPerRequest: number;
  /** Calls the fake EventBridge received during the load phase, and its CPU per call (µs). */
  upstreamCalls: number;
  upstreamCpuUsPerCall: number;
  /** The fake's own handling time per call in the concurrency-1 phase (µs): its share of latency. */
  upstreamHandlingUs: Float64Array;
  /** CPU used by processes outside the benchmark during the load phase, in cores. */
  foreignCores: number;
}

export interface DrainStats {
  acceptedEntries: number;
  queuedEntries: number;
  directEntries: number;
  upstreamCalls: number;
  drainCalls: number;
  drainEntries: number;
  entriesPerDrainCall: number;
  fullDrainCalls: number;
  fullShare: number;
  drainSeconds: number;
  drainEntriesPerSecond: number;
  /** The tenant's configured ceiling: rate × 20 entries. */
  ceilingEntriesPerSecond: number;
  timedOut: boolean;
  upstreamCpuUsPerCall: number;
  /** workerd CPU from the burst's start to its last answer, per request (ingest, plus any drain already running). */
  ingestCpuUsPerRequest: number;
  /** workerd CPU from the burst's last answer to the drain's end, per drain call. */
  drainCpuUsPerCall: number;
}

export interface Round {
  baseline: Window;
  relay: Window;
  drain?: DrainStats;
}

interface Options {
  rounds: number;
  windowMs: number;
  concurrency: number;
  latencyRequests: number;
  latencyMs: number;
  buffered: Record<Size, { requests: number; rate: number }>;
  verify: boolean;
  only: Set<string> | null;
  budgetS: number;
  waitQuietS: number;
  out: string;
}

function options(): Options {
  const { values } = parseArgs({
    options: {
      rounds: { type: "string", default: "3" },
      "window-ms": { type: "string", default: "1500" },
      concurrency: { type: "string", default: "8" },
      "latency-requests": { type: "string", default: "300" },
      "latency-ms": { type: "string", default: "1000" },
      "buffered-requests-small": { type: "string", default: "150" },
      "buffered-rate-small": { type: "string", default: "50" },
      "buffered-requests-max": { type: "string", default: "60" },
      "buffered-rate-max": { type: "string", default: "5" },
      verify: { type: "string", default: "true" },
      only: { type: "string" },
      "budget-s": { type: "string", default: "480" },
      "wait-quiet-s": { type: "string", default: "30" },
      out: { type: "string", default: "bench/results/latest.json" },
    },
    strict: true,
  });
  const int = (name: string, v: string, min: number, max: number): number => {
    const n = Number(v);
    if (!Number.isInteger(n) || n < min || n > max)
      throw new Error(`--${name}: an integer from ${min} to ${max}, not ${v}`);
    return n;
  };
  return {
    rounds: int("rounds", values.rounds, 1, 20),
    windowMs: int("window-ms", values["window-ms"], 200, 20_000),
    concurrency: int("concurrency", values.concurrency, 1, 256),
    latencyRequests: int("latency-requests", values["latency-requests"], 10, 100_000),
    latencyMs: int("latency-ms", values["latency-ms"], 100, 20_000),
    buffered: {
      small: {
        requests: int("buffered-requests-small", values["buffered-requests-small"], 20, 5_000),
        rate: int("buffered-rate-small", values["buffered-rate-small"], 1, 1_400),
      },
      max: {
        requests: int("buffered-requests-max", values["buffered-requests-max"], 20, 5_000),
        rate: int("buffered-rate-max", values["buffered-rate-max"], 1, 1_400),
      },
    },
    verify: values.verify !== "false",
    only: values.only ? new Set(values.only.split(",").map((s) => s.trim())) : null,
    budgetS: int("budget-s", values["budget-s"], 30, 3_600),
    waitQuietS: int("wait-quiet-s", values["wait-quiet-s"], 0, 600),
    out: resolve(ROOT, values.out),
  };
}

// ---- Measurement ---------------------------------------------------------------------------------

function headersFor(t: BenchTenant): Record<string, string> {
  return { "content-type": "application/json", authorization: `Bearer ${t.apiKey}` };
}

function mergeCounts(a: Record<string, number>, b: Record<string, number>): Record<string, number> {
  const out = { ...a };
  for (const [k, v] of Object.entries(b)) out[k] = (out[k] ?? 0) + v;
  return out;
}

/** A throughput phase at `concurrency` (CPU measured over it), then a latency phase at 1. */
async function closedLoopWindow(
  w: RunningWorker,
  t: Target,
  payload: Payload,
  headers: Record<string, string>,
  o: Options,
  up: Upstream | null,
  scale = 1,
  path = "/v1/events",
): Promise<Window> {
  const load = { path, body: payload.body, headers };
  up?.mark();
  const u0 = up ? await up.calls() : null;
  foreign.start();
  const n0 = process.cpuUsage();
  const c0 = cpuUs(w.pid);
  const r = await runLoad(t, {
    ...load,
    concurrency: o.concurrency,
    maxRequests: MAX_WINDOW_REQUESTS,
    maxMs: o.windowMs * scale,
  });
  const c1 = cpuUs(w.pid);
  const n1 = process.cpuUsage(n0);
  const foreignCores = foreign.cores();
  const u1 = up ? await up.calls() : null;
  const upstreamCalls = u1 ? u1.calls.length : 0;
  up?.mark();
  const l = await runLoad(t, {
    ...load,
    concurrency: 1,
    maxRequests: Math.ceil(o.latencyRequests * scale),
    maxMs: o.latencyMs * scale,
  });
  const u2 = up ? await up.calls() : null;
  return {
    requests: r.requests,
    rps: r.requests / r.elapsedS,
    cpuUsPerRequest: (c1 - c0) / Math.max(1, r.requests),
    loaded: r.latenciesUs,
    single: l.latenciesUs,
    statuses: mergeCounts(r.statuses, l.statuses),
    errors: mergeCounts(r.errors, l.errors),
    sampleBodies: { ...l.sampleBodies, ...r.sampleBodies },
    clientCpuUsPerRequest: (n1.user + n1.system) / Math.max(1, r.requests),
    upstreamCalls,
    upstreamCpuUsPerCall: u0 && u1 && upstreamCalls ? (u1.cpuUs - u0.cpuUs) / upstreamCalls : 0,
    upstreamHandlingUs: Float64Array.from((u2?.calls ?? []).map((c) => c[3]).filter((x) => x >= 0)),
    foreignCores,
  };
}

/**
 * A burst beyond the buffered tenant's rate, a latency phase at concurrency 1 (still behind the
 * backlog), then the drain until every accepted entry has reached the fake. CPU per request is
 * workerd's CPU from the burst's start to the drain's end: ingest, enqueue, drain, sign, forward.
 */
async function bufferedWindow(
  w: RunningWorker,
  t: Target,
  up: Upstream,
  s: Scenario,
  o: Options,
  requests: number,
): Promise<{ window: Window; drain: DrainStats }> {
  let queued = 0;
  let direct = 0;
  let firstQueuedAt = 0;
  const onResponse = (status: number, body: string) => {
    if (status === 202) {
      if (!firstQueuedAt) firstQueuedAt = Date.now();
      queued += (JSON.parse(body) as { QueuedEntryCount?: number }).QueuedEntryCount ?? 0;
    } else if (status === 200) {
      direct += 1;
    }
  };
  const load = { path: "/v1/events", body: s.payload.body, headers: headersFor(s.tenant), onResponse };
  // Let the previous round's drain settle before marking.
  up.mark();
  const before = await up.calls();
  foreign.start();
  const n0 = process.cpuUsage();
  const c0 = cpuUs(w.pid);
  const r = await runLoad(t, { ...load, concurrency: o.concurrency, maxRequests: requests, maxMs: 30_000 });
  const n1 = process.cpuUsage(n0);
  const l = await runLoad(t, {
    ...load,
    concurrency: 1,
    maxRequests: Math.min(50, Math.ceil(requests / 3)),
    maxMs: o.latencyMs,
  });
  const cMid = cpuUs(w.pid);
  const callsAtMid = (await up.calls()).calls.length;
  const accepted = queued + direct * s.payload.entries;
  const deadline = Date.now() + DRAIN_TIMEOUT_MS;
  let calls: CallRow[] = [];
  let upCpu = before.cpuUs;
  let timedOut = false;
  for (;;) {
    const got = await up.calls();
    calls = got.calls;
    upCpu = got.cpuUs;
    const received = calls.filter((c) => c[2] === 200).reduce((n, c) => n + c[1], 0);
    if (received >= accepted) break;
    if (Date.now() > deadline) {
      timedOut = true;
      break;
    }
    await new Promise((res) => setTimeout(res, 50));
  }
  // Let the drain's bookkeeping (the DO's SQL after the last answer) finish before reading CPU.
  await new Promise((res) => setTimeout(res, 100));
  const c1 = cpuUs(w.pid);
  const foreignCores = foreign.cores();
  const ok = calls.filter((c) => c[2] === 200);
  const directCalls = direct;
  const drainCalls = Math.max(0, ok.length - directCalls);
  const drainEntries = ok.reduce((n, c) => n + c[1], 0) - directCalls * s.payload.entries;
  const full = ok.filter((c) => c[1] === s.payload.entries).length - directCalls;
  const lastCall = ok.length ? ok[ok.length - 1]![0] : Date.now();
  const drainSeconds = firstQueuedAt ? Math.max(0.001, (lastCall - firstQueuedAt) / 1000) : 0;
  const total = r.requests + l.requests;
  return {
    window: {
      requests: r.requests,
      rps: r.requests / r.elapsedS,
      cpuUsPerRequest: (c1 - c0) / Math.max(1, total),
      loaded: r.latenciesUs,
      single: l.latenciesUs,
      statuses: mergeCounts(r.statuses, l.statuses),
      errors: mergeCounts(r.errors, l.errors),
      sampleBodies: { ...l.sampleBodies, ...r.sampleBodies },
      clientCpuUsPerRequest: (n1.user + n1.system) / Math.max(1, r.requests),
      upstreamCalls: calls.length,
      upstreamCpuUsPerCall: calls.length ? (upCpu - before.cpuUs) / calls.length : 0,
      upstreamHandlingUs: new Float64Array(0),
      foreignCores,
    },
    drain: {
      acceptedEntries: accepted,
      queuedEntries: queued,
      directEntries: direct * s.payload.entries,
      upstreamCalls: calls.length,
      drainCalls,
      drainEntries,
      entriesPerDrainCall: drainCalls ? drainEntries / drainCalls : 0,
      fullDrainCalls: Math.max(0, full),
      fullShare: drainCalls ? Math.max(0, full) / drainCalls : 0,
      drainSeconds,
      drainEntriesPerSecond: drainSeconds ? drainEntries / drainSeconds : 0,
      ceilingEntriesPerSecond: (s.rate ?? o.buffered[s.size].rate) * s.payload.entries,
      timedOut,
      upstreamCpuUsPerCall: calls.length ? (upCpu - before.cpuUs) / calls.length : 0,
      ingestCpuUsPerRequest: (cMid - c0) / Math.max(1, total),
      drainCpuUsPerCall: (c1 - cMid) / Math.max(1, calls.length - callsAtMid),
    },
  };
}

// ---- Main ----------------------------------------------------------------------------------------

async function main(): Promise<void> {
  const o = options();
  const started = Date.now();
  const deadline = started + o.budgetS * 1000;
  const env = machine();
  console.log(
    `bench: ${env.nproc} cores (${env.cpuModel}), node ${env.node}, ${env.workerd} (wrangler ${env.wrangler}, miniflare ${env.miniflare}), relay ${env.git}`,
  );

  const h = await setup(
    { verify: o.verify, bufferedRates: { small: o.buffered.small.rate, max: o.buffered.max.rate } },
    (l) => console.log(l),
  );
  process.once("SIGINT", () => void h.cleanup().finally(() => process.exit(130)));
  const { relay, up, relayBundle, bundleSha } = h;
  const baseline = h.baseline!;
  const directTenant = h.tenants.direct;
  const bufferedTenants: Record<Size, BenchTenant> = { small: h.tenants.bufferedSmall, max: h.tenants.bufferedMax };
  const shardedTenants = { 1: h.tenants.shards1, 4: h.tenants.shards4 };
  foreign = new ForeignLoad(() => [relay.pid, baseline.pid, up.child.pid ?? 0]);

  try {
    const quiet = await waitQuiet(o.waitQuietS);
    console.log(
      quiet.cores < QUIET_CORES
        ? `machine quiet: other processes use ${quiet.cores.toFixed(2)} cores (waited ${quiet.waitedS} s)`
        : `warning: other processes use ${quiet.cores.toFixed(2)} of ${env.nproc} cores (waited ${quiet.waitedS} s for quiet); req/s and latency will be low and noisy (see the "other" column)`,
    );
    const scenarios: Scenario[] = [
      {
        kind: "direct",
        size: "small",
        label: "direct",
        payload: validBatch(directTenant.id, "small"),
        tenant: directTenant,
        expect: [200],
      },
      {
        kind: "direct",
        size: "max",
        label: "direct",
        payload: validBatch(directTenant.id, "max"),
        tenant: directTenant,
        expect: [200],
      },
      {
        kind: "buffered",
        size: "small",
        label: "buffered",
        payload: validBatch(bufferedTenants.small.id, "small"),
        tenant: bufferedTenants.small,
        expect: [202, 200],
      },
      {
        kind: "buffered",
        size: "max",
        label: "buffered",
        payload: validBatch(bufferedTenants.max.id, "max"),
        tenant: bufferedTenants.max,
        expect: [202, 200],
      },
      {
        kind: "invalid",
        size: "small",
        label: "refused 400",
        payload: invalidBatch(directTenant.id, "small"),
        tenant: directTenant,
        expect: [400],
      },
      {
        kind: "invalid",
        size: "max",
        label: "refused 400",
        payload: invalidBatch(directTenant.id, "max"),
        tenant: directTenant,
        expect: [400],
      },
      {
        kind: "oversize",
        size: "max",
        label: "refused 413",
        payload: oversizeBatch(directTenant.id),
        tenant: directTenant,
        expect: [413],
      },
      // Not the relay: the baseline Worker forwarding the body to the fake unsigned (403 at once).
      // The floor any forwarding Worker pays in this harness: a subrequest over loopback and the
      // fake reading the body.
      {
        kind: "floor",
        size: "small",
        label: "floor: forward",
        payload: validBatch(directTenant.id, "small"),
        tenant: directTenant,
        expect: [200],
      },
      {
        kind: "floor",
        size: "max",
        label: "floor: forward",
        payload: validBatch(directTenant.id, "max"),
        tenant: directTenant,
        expect: [200],
      },
      // The same plus one Durable Object RPC, as admission makes: what the round trip costs.
      {
        kind: "floor",
        size: "small",
        label: "floor: rpc + forward",
        payload: validBatch(directTenant.id, "small"),
        tenant: directTenant,
        expect: [200],
        path: FORWARD_RPC_PATH,
      },
      {
        kind: "floor",
        size: "max",
        label: "floor: rpc + forward",
        payload: validBatch(directTenant.id, "max"),
        tenant: directTenant,
        expect: [200],
        path: FORWARD_RPC_PATH,
      },
      // The same burst against a tenant on 1 shard and on 4 (same rate and burst in total).
      ...([1, 4] as const).map((n) => ({
        kind: "sharded" as const,
        size: "small" as const,
        label: `sharded ${n}`,
        payload: validBatch(shardedTenants[n].id, "small"),
        tenant: shardedTenants[n],
        expect: [202, 200, 429],
        rate: SHARDED_RATE,
        requests: SHARDED_REQUESTS,
      })),
    ].filter((s) => !o.only || o.only.has(s.kind) || o.only.has(`${s.kind}-${s.size}`)) as Scenario[];

    const relayTarget = target(relay.url, o.concurrency);
    const baselineTarget = target(baseline.url, o.concurrency);
    const summaries: ScenarioSummary[] = [];
    let stoppedEarly: string | null = null;

    for (const s of scenarios) {
      const name = `${s.label} ${s.size}`;
      // Rough cost of one scenario's remaining rounds, to stop cleanly inside the budget.
      const buffered = s.kind === "buffered" || s.kind === "sharded";
      const perRound = (o.windowMs + o.latencyMs) * 2 + (buffered ? 8_000 : 0);
      if (Date.now() + perRound * (o.rounds + 0.5) > deadline) {
        stoppedEarly = `budget of ${o.budgetS} s reached before "${name}"`;
        console.log(`skip ${name}: ${stoppedEarly}`);
        break;
      }
      const headers = headersFor(s.tenant);
      const rounds: Round[] = [];
      process.stdout.write(
        `${name.padEnd(20)} (${(s.payload.body.byteLength / 1024).toFixed(1)} KiB body, ${s.payload.formulaBytes} B by AWS's formula): warm-up`,
      );
      // Warm-up: JIT, connections, caches (tenant record, API key, AWS client), the DO.
      await closedLoopWindow(baseline, baselineTarget, s.payload, headers, o, null, 0.3);
      if (buffered) await bufferedWindow(relay, relayTarget, up, s, o, 30);
      else if (s.kind === "floor")
        await closedLoopWindow(baseline, baselineTarget, s.payload, headers, o, up, 0.3, s.path ?? FORWARD_PATH);
      else await closedLoopWindow(relay, relayTarget, s.payload, headers, o, up, 0.3);
      for (let i = 0; i < o.rounds; i++) {
        const b = await closedLoopWindow(baseline, baselineTarget, s.payload, headers, o, null);
        if (buffered) {
          const requests = s.requests ?? o.buffered[s.size].requests;
          const { window, drain } = await bufferedWindow(relay, relayTarget, up, s, o, requests);
          rounds.push({ baseline: b, relay: window, drain });
        } else {
          const w =
            s.kind === "floor"
              ? await closedLoopWindow(baseline, baselineTarget, s.payload, headers, o, up, 1, s.path ?? FORWARD_PATH)
              : await closedLoopWindow(relay, relayTarget, s.payload, headers, o, up);
          rounds.push({ baseline: b, relay: w });
        }
        process.stdout.write(` · round ${i + 1}`);
      }
      const summary = summarise(s.kind, s.size, name, s.payload, s.expect, rounds);
      summaries.push(summary);
      process.stdout.write(`: ${summary.relay.rps.toFixed(0)} req/s, CPU ${summary.ratios.cpu.toFixed(2)}x\n`);
    }

    const verdicts = summaries.map((s) => judge(s, TARGETS));
    const floors = floorTargets(summaries, FLOOR_TARGETS);
    const table = `${formatTable(summaries, verdicts)}\n\n${formatFloorTargets(floors)}`;
    console.log("");
    console.log(table);
    const unexpected = summaries.filter((s) => s.unexpectedStatuses > 0);
    for (const s of unexpected) {
      console.log(
        `warning: ${s.name}: ${s.unexpectedStatuses} answers outside ${s.expect.join("/")}: ${JSON.stringify(s.relay.statuses)} ${JSON.stringify(s.sampleBodies)}`,
      );
    }
    if (relay.logs.error || relay.logs.warn) {
      console.log(
        `relay logged ${relay.logs.warn} warnings and ${relay.logs.error} errors; first: ${relay.logs.samples.slice(0, 3).join(" | ")}`,
      );
    }

    const elapsedS = (Date.now() - started) / 1000;
    const result = {
      schema: "relay-bench/1",
      at: new Date().toISOString(),
      elapsedS,
      machine: env,
      relayBundle: { bytes: relayBundle.bytes, sha256: bundleSha },
      options: { ...o, only: o.only ? [...o.only] : null, out: undefined },
      upstream: { signaturesVerified: up.verifySignatures, process: "child" },
      targets: TARGETS,
      floorTargets: { targets: FLOOR_TARGETS, ...floors },
      stoppedEarly,
      otherProcessesAtStart: quiet,
      relayLogs: { info: relay.logs.info, warn: relay.logs.warn, error: relay.logs.error, samples: relay.logs.samples },
      workerdCpuFinal: {
        relayS: (readStat(relay.pid)?.cpuUs ?? 0) / 1e6,
        baselineS: (readStat(baseline.pid)?.cpuUs ?? 0) / 1e6,
      },
      scenarios: summaries.map((s, i) => ({ ...s, verdict: verdicts[i] })),
      table,
    };
    mkdirSync(dirname(o.out), { recursive: true });
    writeFileSync(o.out, JSON.stringify(result, null, 2) + "\n");
    writeFileSync(o.out.replace(/\.json$/, ".md"), "```\n" + table + "\n```\n");
    console.log(`\nwrote ${o.out} (${elapsedS.toFixed(0)} s in all)`);
  } finally {
    await h.cleanup();
  }
}

// `npm run bench -- --profile [...]` runs scripts/bench/profile.ts instead.
const argv = process.argv.slice(2);
const job = argv.includes("--profile") ? import("./profile.ts").then((m) => m.runProfile(argv)) : main();
job.then(
  () => process.exit(0),
  (e: unknown) => {
    console.error(e instanceof Error ? (e.stack ?? e.message) : String(e));
    process.exit(1);
  },
);
