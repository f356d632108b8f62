/**
 * Turns measured rounds into per-scenario figures, ratios to the baseline, target verdicts and
 * the printed table. Rates and CPU are medians over rounds (each round's relay window against
 * the baseline window measured just before it); latency percentiles pool every round's samples.
 */
import { quantile } from "./load.ts";
import type { Payload, Size } from "./payloads.ts";
import type { DrainStats, Round, TARGETS as TargetsConst, Window } from "./run.ts";

type Targets = typeof TargetsConst;

export interface SideSummary {
  rps: number;
  cpuUsPerRequest: number;
  /** Latency at concurrency 1, µs. */
  p50Us: number;
  p99Us: number;
  /** Latency at the load phase's concurrency, µs. */
  loadedP50Us: number;
  loadedP99Us: number;
  requests: number;
  statuses: Record<string, number>;
  errors: Record<string, number>;
  clientCpuUsPerRequest: number;
  /** Upstream calls per request in the load phase, and the fake's CPU per call (µs). */
  upstreamCallsPerRequest: number;
  upstreamCpuUsPerCall: number;
  /** The fake EventBridge's own handling time per call at concurrency 1, p50 (µs); 0 without calls. */
  upstreamP50Us: number;
  /** Other processes' CPU use during this side's windows, in cores: median and max. */
  foreignCores: { median: number; max: number };
  perRound: { rps: number; cpuUsPerRequest: number; foreignCores: number }[];
}

export interface ScenarioSummary {
  kind: string;
  size: Size;
  name: string;
  bodyBytes: number;
  formulaBytes: number;
  expect: number[];
  relay: SideSummary;
  baseline: SideSummary;
  ratios: { rps: number; cpu: number; addedP50Us: number; p99: number };
  drain: (DrainStats & { rounds: DrainStats[] }) | null;
  unexpectedStatuses: number;
  sampleBodies: Record<string, string>;
}

export interface Check {
  name: string;
  value: number;
  limit: number;
  pass: boolean;
}

export interface Verdict {
  pass: boolean;
  checks: Check[];
}

export function median(xs: number[]): number {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

function pooled(windows: Window[], pick: (w: Window) => Float64Array): Float64Array {
  const n = windows.reduce((k, w) => k + pick(w).length, 0);
  const out = new Float64Array(n);
  let off = 0;
  for (const w of windows) {
    out.set(pick(w), off);
    off += pick(w).length;
  }
  return out.sort();
}

function side(windows: Window[]): SideSummary {
  const single = pooled(windows, (w) => w.single);
  const loaded = pooled(windows, (w) => w.loaded);
  const statuses: Record<string, number> = {};
  const errors: Record<string, number> = {};
  for (const w of windows) {
    for (const [k, v] of Object.entries(w.statuses)) statuses[k] = (statuses[k] ?? 0) + v;
    for (const [k, v] of Object.entries(w.errors)) errors[k] = (errors[k] ?? 0) + v;
  }
  return {
    rps: median(windows.map((w) => w.rps)),
    cpuUsPerRequest: median(windows.map((w) => w.cpuUsPerRequest)),
    p50Us: quantile(single, 0.5),
    p99Us: quantile(single, 0.99),
    loadedP50Us: quantile(loaded, 0.5),
    loadedP99Us: quantile(loaded, 0.99),
    requests: windows.reduce((n, w) => n + w.requests + w.single.length, 0),
    statuses,
    errors,
    clientCpuUsPerRequest: median(windows.map((w) => w.clientCpuUsPerRequest)),
    upstreamCallsPerRequest: median(windows.map((w) => w.upstreamCalls / Math.max(1, w.requests))),
    upstreamCpuUsPerCall: median(windows.map((w) => w.upstreamCpuUsPerCall)),
    upstreamP50Us: (() => {
      const h = pooled(windows, (w) => w.upstreamHandlingUs);
      return h.length ? quantile(h, 0.5) : 0;
    })(),
    foreignCores: {
      median: round(median(windows.map((w) => w.foreignCores)), 2),
      max: round(Math.max(...windows.map((w) => w.foreignCores)), 2),
    },
    perRound: windows.map((w) => ({
      rps: round(w.rps, 1),
      cpuUsPerRequest: round(w.cpuUsPerRequest, 1),
      foreignCores: round(w.foreignCores, 2),
    })),
  };
}

function round(x: number, digits: number): number {
  const f = 10 ** digits;
  return Math.round(x * f) / f;
}

export function summarise(
  kind: string,
  size: Size,
  name: string,
  payload: Payload,
  expect: number[],
  rounds: Round[],
): ScenarioSummary {
  const relay = side(rounds.map((r) => r.relay));
  const baseline = side(rounds.map((r) => r.baseline));
  const drains = rounds.map((r) => r.drain).filter((d): d is DrainStats => !!d);
  const unexpected =
    Object.entries(relay.statuses).reduce((n, [k, v]) => (expect.includes(Number(k)) ? n : n + v), 0) +
    Object.values(relay.errors).reduce((n, v) => n + v, 0);
  const sampleBodies: Record<string, string> = {};
  for (const r of rounds) for (const [k, v] of Object.entries(r.relay.sampleBodies)) sampleBodies[k] ??= v;
  return {
    kind,
    size,
    name,
    bodyBytes: payload.body.byteLength,
    formulaBytes: payload.formulaBytes,
    expect,
    relay,
    baseline,
    ratios: {
      rps: median(rounds.map((r) => r.relay.rps / r.baseline.rps)),
      cpu: median(rounds.map((r) => r.relay.cpuUsPerRequest / r.baseline.cpuUsPerRequest)),
      addedP50Us: relay.p50Us - baseline.p50Us,
      p99: relay.p99Us / baseline.p99Us,
    },
    drain: drains.length
      ? {
          ...drains[drains.length - 1]!,
          entriesPerDrainCall: median(drains.map((d) => d.entriesPerDrainCall)),
          fullShare: Math.min(...drains.map((d) => d.fullShare)),
          drainEntriesPerSecond: median(drains.map((d) => d.drainEntriesPerSecond)),
          drainSeconds: median(drains.map((d) => d.drainSeconds)),
          upstreamCpuUsPerCall: median(drains.map((d) => d.upstreamCpuUsPerCall)),
          ingestCpuUsPerRequest: median(drains.map((d) => d.ingestCpuUsPerRequest)),
          drainCpuUsPerCall: median(drains.map((d) => d.drainCpuUsPerCall)),
          timedOut: drains.some((d) => d.timedOut),
          rounds: drains,
        }
      : null,
    unexpectedStatuses: unexpected,
    sampleBodies,
  };
}

export function judge(s: ScenarioSummary, t: Targets): Verdict {
  const checks: Check[] = [];
  // The forwarding floor is not the relay: shown for scale, judged against nothing.
  if (s.kind === "floor") return { pass: true, checks };
  const cpuLimit = s.size === "small" ? t.cpuRatioSmall : t.cpuRatioMax;
  checks.push({ name: `CPU ≤ ${cpuLimit}x`, value: s.ratios.cpu, limit: cpuLimit, pass: s.ratios.cpu <= cpuLimit });
  checks.push({
    name: `req/s ≥ ${t.rpsRatioMin}x`,
    value: s.ratios.rps,
    limit: t.rpsRatioMin,
    pass: s.ratios.rps >= t.rpsRatioMin,
  });
  if (s.size === "small") {
    checks.push({
      name: `+p50 ≤ ${t.addedP50UsSmall} µs`,
      value: s.ratios.addedP50Us,
      limit: t.addedP50UsSmall,
      pass: s.ratios.addedP50Us <= t.addedP50UsSmall,
    });
  }
  if (s.drain) {
    checks.push({
      name: `full batches ≥ ${t.drainFullShareMin * 100}%`,
      value: s.drain.fullShare,
      limit: t.drainFullShareMin,
      pass: s.drain.fullShare >= t.drainFullShareMin && !s.drain.timedOut,
    });
  }
  if (s.unexpectedStatuses > 0)
    checks.push({ name: "expected statuses", value: s.unexpectedStatuses, limit: 0, pass: false });
  return { pass: checks.every((c) => c.pass), checks };
}

function fmt(x: number, digits = 0): string {
  if (!Number.isFinite(x)) return "-";
  return x.toLocaleString("en-US", { minimumFractionDigits: digits, maximumFractionDigits: digits });
}

/** A fixed-width table: one row per scenario, a drain line under buffered rows, then a legend. */
export function formatTable(rows: ScenarioSummary[], verdicts: Verdict[]): string {
  const head = [
    "scenario",
    "req/s",
    "base",
    "×",
    "p50 µs",
    "base",
    "+p50 µs",
    "upstream",
    "p99 µs",
    "base",
    "CPU µs/req",
    "base",
    "×",
    "other",
    "targets",
  ];
  const lines: string[][] = [head];
  const notes: string[] = [];
  rows.forEach((s, i) => {
    const v = verdicts[i]!;
    const failed = v.checks.filter((c) => !c.pass).map((c) => c.name);
    lines.push([
      s.name,
      fmt(s.relay.rps),
      fmt(s.baseline.rps),
      `${fmt(s.ratios.rps, 2)}x`,
      fmt(s.relay.p50Us),
      fmt(s.baseline.p50Us),
      `${s.ratios.addedP50Us >= 0 ? "+" : ""}${fmt(s.ratios.addedP50Us)}`,
      s.relay.upstreamP50Us ? fmt(s.relay.upstreamP50Us) : "-",
      fmt(s.relay.p99Us),
      fmt(s.baseline.p99Us),
      fmt(s.relay.cpuUsPerRequest),
      fmt(s.baseline.cpuUsPerRequest),
      `${fmt(s.ratios.cpu, 1)}x`,
      fmt(Math.max(s.relay.foreignCores.max, s.baseline.foreignCores.max), 2),
      s.kind === "floor" ? "(not the relay)" : v.pass ? `pass (${v.checks.length})` : `FAIL ${failed.join(", ")}`,
    ]);
    if (s.drain) {
      const d = s.drain;
      notes.push(
        `${s.name}: drain ${fmt(d.entriesPerDrainCall, 1)} entries/call, ${fmt(d.fullShare * 100, 0)}% of drain calls full, ` +
          `${fmt(d.drainEntriesPerSecond)} entries/s (tenant ceiling ${fmt(d.ceilingEntriesPerSecond)}), ` +
          `${d.queuedEntries} queued + ${d.directEntries} direct entries per round${d.timedOut ? ", DRAIN TIMED OUT" : ""}; CPU/req counts ingest + drain ` +
          `(burst ${fmt(d.ingestCpuUsPerRequest)} µs/req, then ${fmt(d.drainCpuUsPerCall)} µs per later drain call)`,
      );
    }
  });
  const widths = head.map((_, c) => Math.max(...lines.map((l) => l[c]!.length)));
  const out = lines.map((l) =>
    l
      .map((cell, c) => (c === 0 || c === l.length - 1 ? cell.padEnd(widths[c]!) : cell.padStart(widths[c]!)))
      .join("  ")
      .trimEnd(),
  );
  out.splice(1, 0, widths.map((w) => "-".repeat(w)).join("  "));
  return [...out, ...(notes.length ? ["", ...notes] : [])].join("\n");
}

// ---- Issue 12's targets: against the floor rows of the same run -----------------------------------

export interface FloorCheck {
  name: string;
  value: number;
  limit: number;
  /** "max": value ≤ limit passes; "min": value ≥ limit passes. */
  bound: "max" | "min";
  pass: boolean | null;
  detail: string;
}

export interface FloorResult {
  checks: FloorCheck[];
  /** The printed estimate of shards a tenant at `tenantRequestsPerSecond` needs. */
  shardEstimate: {
    requestsPerSecond: number;
    cpuUsPerBufferedRequest: number | null;
    perShardByCpu: number | null;
    shardsByCpu: number | null;
    shardsByGuidance: [number, number];
    suggested: number;
  };
  sharded: {
    name: string;
    cpuUsPerRequest: number;
    fullShare: number;
    entriesPerSecond: number;
    ceiling: number;
    lost: boolean;
  }[];
}

/** Cloudflare's guidance per object with a storage write per request (platform.md), requests/s. */
const WRITES_PER_OBJECT: [number, number] = [200, 500];
/** The relay's suggestion per shard (src/limits.ts, SHARD_TARGET_REQUESTS_PER_SECOND). */
const SHARD_TARGET = 200;

export function floorTargets(
  rows: ScenarioSummary[],
  t: {
    directSmallVsRpcForward: number;
    directMaxVsForward: number;
    addedP50UsSmallVsRpcForward: number;
    bufferedVsDirect: number;
    drainFullShareMin: number;
    tenantRequestsPerSecond: number;
  },
): FloorResult {
  const row = (name: string) => rows.find((r) => r.name === name);
  const cpu = (name: string) => row(name)?.relay.cpuUsPerRequest ?? NaN;
  const checks: FloorCheck[] = [];
  const add = (name: string, value: number, limit: number, bound: "max" | "min", detail: string) =>
    checks.push({
      name,
      value,
      limit,
      bound,
      pass: Number.isFinite(value) ? (bound === "max" ? value <= limit : value >= limit) : null,
      detail,
    });
  add(
    "direct small CPU vs floor: rpc + forward small",
    cpu("direct small") / cpu("floor: rpc + forward small"),
    t.directSmallVsRpcForward,
    "max",
    `${fmt(cpu("direct small"))} / ${fmt(cpu("floor: rpc + forward small"))} µs`,
  );
  add(
    "direct max CPU vs floor: forward max",
    cpu("direct max") / cpu("floor: forward max"),
    t.directMaxVsForward,
    "max",
    `${fmt(cpu("direct max"))} / ${fmt(cpu("floor: forward max"))} µs (vs rpc + forward max: ${fmt(cpu("direct max") / cpu("floor: rpc + forward max"), 2)}x)`,
  );
  const p50 = (name: string) => row(name)?.relay.p50Us ?? NaN;
  add(
    "direct small added p50 over floor: rpc + forward small (µs)",
    p50("direct small") - p50("floor: rpc + forward small"),
    t.addedP50UsSmallVsRpcForward,
    "max",
    `${fmt(p50("direct small"))} - ${fmt(p50("floor: rpc + forward small"))} µs`,
  );
  for (const size of ["small", "max"] as const)
    add(
      `buffered ${size} CPU (ingest + drain) vs direct ${size}`,
      cpu(`buffered ${size}`) / cpu(`direct ${size}`),
      t.bufferedVsDirect,
      "max",
      `${fmt(cpu(`buffered ${size}`))} / ${fmt(cpu(`direct ${size}`))} µs`,
    );
  for (const r of rows.filter((x) => x.drain))
    add(
      `${r.name} drained batches full`,
      r.drain!.fullShare,
      t.drainFullShareMin,
      "min",
      `${fmt(r.drain!.entriesPerDrainCall, 1)} entries/call${r.drain!.timedOut ? ", DRAIN TIMED OUT" : ""}`,
    );
  const sharded = rows
    .filter((r) => r.kind === "sharded" && r.drain)
    .map((r) => ({
      name: r.name,
      cpuUsPerRequest: r.relay.cpuUsPerRequest,
      fullShare: r.drain!.fullShare,
      entriesPerSecond: r.drain!.drainEntriesPerSecond,
      ceiling: r.drain!.ceilingEntriesPerSecond,
      lost: r.drain!.timedOut,
    }));
  for (const s of sharded)
    add(
      `${s.name}: drain rate within the tenant's (entries/s)`,
      s.entriesPerSecond,
      s.ceiling * 1.05,
      "max",
      `${fmt(s.entriesPerSecond)} of ${fmt(s.ceiling)} entries/s${s.lost ? ", NOT ALL DELIVERED" : ", all delivered"}`,
    );
  const buffered = cpu("buffered small");
  const perShardByCpu = Number.isFinite(buffered) ? 1e6 / buffered : null;
  const need = t.tenantRequestsPerSecond;
  return {
    checks,
    shardEstimate: {
      requestsPerSecond: need,
      cpuUsPerBufferedRequest: Number.isFinite(buffered) ? buffered : null,
      perShardByCpu,
      shardsByCpu: perShardByCpu ? Math.ceil(need / perShardByCpu) : null,
      shardsByGuidance: [Math.ceil(need / WRITES_PER_OBJECT[1]), Math.ceil(need / WRITES_PER_OBJECT[0])],
      suggested: Math.ceil(need / SHARD_TARGET),
    },
    sharded,
  };
}

export function formatFloorTargets(f: FloorResult): string {
  const lines = ["targets (issue 12, ratios to rows of this run):"];
  const w = Math.max(...f.checks.map((c) => c.name.length));
  for (const c of f.checks) {
    const v = c.limit >= 10 || c.value >= 10 ? fmt(c.value) : `${fmt(c.value, 2)}${c.bound === "min" ? "" : "x"}`;
    const lim = c.limit >= 10 ? fmt(c.limit) : `${fmt(c.limit, 2)}${c.bound === "min" ? "" : "x"}`;
    const verdict = c.pass === null ? "n/a (row not run)" : c.pass ? "pass" : "FAIL";
    lines.push(
      `  ${c.name.padEnd(w)}  ${v.padStart(8)}  ${c.bound === "max" ? "≤" : "≥"} ${lim.padEnd(6)}  ${verdict.padEnd(4)}  ${c.detail}`,
    );
  }
  if (f.sharded.length === 2) {
    const [a, b] = f.sharded;
    lines.push(
      `  sharded: CPU per request ${fmt(a!.cpuUsPerRequest)} µs on 1 shard, ${fmt(b!.cpuUsPerRequest)} µs on 4 (${fmt(b!.cpuUsPerRequest / a!.cpuUsPerRequest, 2)}x)`,
    );
  }
  const e = f.shardEstimate;
  lines.push(
    `  shards for ${fmt(e.requestsPerSecond)} req/s: ` +
      (e.shardsByCpu
        ? `${e.shardsByCpu} by this run's CPU per buffered request (${fmt(e.cpuUsPerBufferedRequest ?? 0)} µs, all counted against one shard's thread: ≤ ${fmt(e.perShardByCpu ?? 0)} req/s per shard); `
        : "") +
      `${e.shardsByGuidance[0]}-${e.shardsByGuidance[1]} by Cloudflare's ${WRITES_PER_OBJECT[0]}-${WRITES_PER_OBJECT[1]} requests/s per object with writes; the relay suggests ${e.suggested} (⌈${fmt(e.requestsPerSecond)} / ${SHARD_TARGET}⌉, docs/scaling.md)`,
  );
  return lines.join("\n");
}
