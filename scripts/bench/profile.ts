/**
 * Where the relay's CPU goes. Two views, both written to bench/results/profile.json:
 *
 * 1. workerd: a V8 CPU profile of the relay isolate (Worker and TenantGate Durable Object) taken
 *    through workerd's inspector while the closed-loop client drives the direct path, attributed
 *    to original source files with wrangler's source map; self time per file and function, and
 *    inclusive time per function, per request.
 * 2. micro: the pure pieces of one request, run inside workerd with the relay's own modules
 *    (scripts/bench/micro-worker.ts: body decode, JSON.parse, zod validation, Detail parse,
 *    sizes, upstream JSON.stringify, aws4fetch signing, API-key hashing, rendering, logging),
 *    timed by workerd's CPU time from /proc (timers don't advance inside a Worker).
 *
 *   node scripts/bench/profile.ts [--scenario direct|buffered|drain|invalid|oversize] [--seconds 4]
 *                                 [--concurrency 4] [--sizes small,max]
 *                                 [--skip-workerd] [--skip-micro] [--verify true|false]
 *   npm run bench -- --profile [same flags]
 */
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { parseArgs } from "node:util";
import { buildWorker } from "./build.ts";
import { machine, ROOT, setup } from "./harness.ts";
import { type CpuProfile, Inspector } from "./inspector.ts";
import { runLoad, target } from "./load.ts";
import { invalidBatch, oversizeBatch, type Size, validBatch } from "./payloads.ts";
import { cpuUs, userSystemUs } from "./proc.ts";
import { median } from "./report.ts";
import { SourceMap } from "./sourcemap.ts";
import { startWorker } from "./workers.ts";

interface ProfileOptions {
  scenario: "direct" | "buffered" | "drain" | "invalid" | "oversize";
  seconds: number;
  concurrency: number;
  sizes: Size[];
  workerd: boolean;
  micro: boolean;
  verify: boolean;
  out: string;
}

function options(argv: string[]): ProfileOptions {
  const { values } = parseArgs({
    args: argv,
    options: {
      profile: { type: "boolean" },
      scenario: { type: "string", default: "direct" },
      seconds: { type: "string", default: "4" },
      concurrency: { type: "string", default: "4" },
      sizes: { type: "string", default: "small,max" },
      "skip-workerd": { type: "boolean", default: false },
      "skip-micro": { type: "boolean", default: false },
      verify: { type: "string", default: "true" },
      out: { type: "string", default: "bench/results/profile.json" },
    },
    strict: true,
  });
  const sizes = values.sizes.split(",").map((s) => s.trim()) as Size[];
  for (const s of sizes) if (s !== "small" && s !== "max") throw new Error(`--sizes: small and/or max, not ${s}`);
  const seconds = Number(values.seconds);
  const concurrency = Number(values.concurrency);
  if (!(seconds > 0 && seconds <= 60)) throw new Error("--seconds: 0 to 60");
  if (!(Number.isInteger(concurrency) && concurrency >= 1 && concurrency <= 64))
    throw new Error("--concurrency: 1 to 64");
  const scenario = values.scenario as ProfileOptions["scenario"];
  if (!["direct", "buffered", "drain", "invalid", "oversize"].includes(scenario))
    throw new Error("--scenario: direct, buffered, drain, invalid or oversize");
  return {
    scenario,
    seconds,
    concurrency,
    sizes,
    workerd: !values["skip-workerd"],
    micro: !values["skip-micro"],
    verify: values.verify !== "false",
    out: resolve(ROOT, values.out),
  };
}

// ---- Attribution of a V8 CPU profile -------------------------------------------------------------

interface Row {
  key: string;
  us: number;
  usPerRequest: number;
  share: number;
}

export interface Attribution {
  /** Sampled time in the isolate, excluding idle, in µs. */
  busyUs: number;
  idleUs: number;
  byFile: Row[];
  selfByFunction: Row[];
  inclusiveByFunction: Row[];
}

/** A bundle position's original file, with node_modules collapsed to the package name. */
function fileOf(map: SourceMap | null, url: string, line: number, column: number): string {
  if (!url) return "(native)";
  if (!map) return url;
  const o = map.lookup(line, column);
  if (!o) return url.split("/").pop() ?? url;
  const pkg = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(o.source);
  return pkg ? `node_modules/${pkg[1]}` : o.source;
}

function positionOf(map: SourceMap | null, url: string, line: number, column: number): string {
  if (!url) return "";
  const o = map?.lookup(line, column);
  return o ? `${o.source}:${o.line + 1}` : `${url.split("/").pop()}:${line + 1}`;
}

export function attribute(profile: CpuProfile, map: SourceMap | null, requests: number, top = 30): Attribution {
  const nodes = new Map(profile.nodes.map((n) => [n.id, n]));
  const parent = new Map<number, number>();
  for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const labels = new Map<number, { file: string; fn: string }>();
  for (const n of profile.nodes) {
    const cf = n.callFrame;
    const special = cf.functionName.startsWith("(") && !cf.url;
    const file = special ? cf.functionName : fileOf(map, cf.url, cf.lineNumber, cf.columnNumber);
    const fn = special
      ? cf.functionName
      : `${cf.functionName || "(anonymous)"} ${positionOf(map, cf.url, cf.lineNumber, cf.columnNumber)}`;
    labels.set(n.id, { file, fn });
  }
  const byFile = new Map<string, number>();
  const selfFn = new Map<string, number>();
  const inclFn = new Map<string, number>();
  let busy = 0;
  let idle = 0;
  const deltas = profile.timeDeltas;
  for (let i = 0; i < profile.samples.length; i++) {
    const id = profile.samples[i]!;
    // timeDeltas[i] is the gap before sample i; charge the gap after it to it.
    const dt = deltas[i + 1] ?? deltas[i] ?? 0;
    const l = labels.get(id)!;
    if (l.fn === "(idle)") {
      idle += dt;
      continue;
    }
    busy += dt;
    byFile.set(l.file, (byFile.get(l.file) ?? 0) + dt);
    selfFn.set(l.fn, (selfFn.get(l.fn) ?? 0) + dt);
    const seen = new Set<string>();
    for (let n: number | undefined = id; n !== undefined; n = parent.get(n)) {
      const fn = labels.get(n)!.fn;
      if (fn === "(root)" || seen.has(fn)) continue;
      seen.add(fn);
      inclFn.set(fn, (inclFn.get(fn) ?? 0) + dt);
    }
    void nodes;
  }
  const rows = (m: Map<string, number>, n: number): Row[] =>
    [...m]
      .sort((a, b) => b[1] - a[1])
      .slice(0, n)
      .map(([key, us]) => ({
        key,
        us: Math.round(us),
        usPerRequest: Math.round((us / Math.max(1, requests)) * 10) / 10,
        share: Math.round((us / Math.max(1, busy)) * 1000) / 10,
      }));
  return {
    busyUs: busy,
    idleUs: idle,
    byFile: rows(byFile, 40),
    selfByFunction: rows(selfFn, top),
    inclusiveByFunction: rows(inclFn, top * 2),
  };
}

function printRows(title: string, rows: Row[], n: number): void {
  console.log(`  ${title}`);
  for (const r of rows.slice(0, n)) {
    console.log(`    ${String(r.usPerRequest).padStart(8)} µs/req ${String(r.share).padStart(5)}%  ${r.key}`);
  }
}

// ---- workerd ------------------------------------------------------------------------------------

async function profileWorkerd(o: ProfileOptions) {
  const h = await setup(
    { verify: o.verify, bufferedRates: { small: 50, max: 5 }, inspector: true, noBaseline: true },
    (l) => console.log(l),
  );
  const results: Record<string, unknown> = {};
  try {
    const map = new SourceMap(readFileSync(join(h.relayBundle.dir, `${h.relayBundle.mainModule}.map`), "utf8"));
    const url = h.relay.inspectorUrl!;
    const targets = await Inspector.targets(url);
    const relayTarget = targets.find((t) => t.id === "relay");
    if (!relayTarget) throw new Error(`no relay target in workerd's inspector: ${targets.map((t) => t.id).join(", ")}`);
    const relayInsp = await Inspector.connect(relayTarget.webSocketDebuggerUrl);
    const t = target(h.relay.url, o.concurrency);
    for (const size of o.sizes) {
      // The buffered scenario profiles ingest (admit, enqueue) and the drain (alarm) together.
      const tenant =
        o.scenario !== "buffered" && o.scenario !== "drain"
          ? h.tenants.direct
          : size === "small"
            ? h.tenants.bufferedSmall
            : h.tenants.bufferedMax;
      const headers = { "content-type": "application/json", authorization: `Bearer ${tenant.apiKey}` };
      const payload =
        o.scenario === "direct" || o.scenario === "buffered" || o.scenario === "drain"
          ? validBatch(tenant.id, size)
          : o.scenario === "invalid"
            ? invalidBatch(tenant.id, size)
            : oversizeBatch(tenant.id);
      const load = {
        path: "/v1/events",
        body: payload.body,
        headers,
        concurrency: o.concurrency,
        maxRequests: 100_000,
      };
      if (o.scenario === "drain") {
        // The drain alone: fill the buffer with a burst, then profile from its last answer until
        // the fake EventBridge has every entry (the alarm claims, sends and settles).
        results[size] = await profileDrain(h, relayInsp, map, t, load, size, payload.entries);
        continue;
      }
      await runLoad(t, { ...load, maxMs: 1_500 });
      // Unprofiled CPU per request, for comparison with the profiled window.
      const p0 = cpuUs(h.relay.pid);
      const plain = await runLoad(t, { ...load, maxMs: o.seconds * 500 });
      const plainCpu = (cpuUs(h.relay.pid) - p0) / Math.max(1, plain.requests);
      await relayInsp.send("Profiler.enable");
      await relayInsp.send("Profiler.setSamplingInterval", { interval: 100 });
      await relayInsp.send("Profiler.start");
      const c0 = cpuUs(h.relay.pid);
      const r = await runLoad(t, { ...load, maxMs: o.seconds * 1000 });
      const c1 = cpuUs(h.relay.pid);
      const relayProfile = (await relayInsp.send<{ profile: CpuProfile }>("Profiler.stop")).profile;
      const statuses = JSON.stringify(r.statuses);
      const rel = attribute(relayProfile, map, r.requests);
      const cpuPerReq = (c1 - c0) / Math.max(1, r.requests);
      console.log(
        `\nworkerd profile, ${o.scenario} scenario, ${size} batch (${(payload.body.byteLength / 1024).toFixed(1)} KiB): ${r.requests} requests ${statuses} in ${r.elapsedS.toFixed(1)} s; ` +
          `workerd CPU ${cpuPerReq.toFixed(0)} µs/req while profiling (${plainCpu.toFixed(0)} without); ` +
          `relay isolate busy ${(rel.busyUs / r.requests).toFixed(0)} µs/req`,
      );
      printRows("self time by source file", rel.byFile, 16);
      printRows("self time by function", rel.selfByFunction, 20);
      printRows("inclusive time by function", rel.inclusiveByFunction, 40);
      results[size] = {
        requests: r.requests,
        statuses: r.statuses,
        workerdCpuUsPerRequest: cpuPerReq,
        workerdCpuUsPerRequestUnprofiled: plainCpu,
        relayIsolate: rel,
      };
    }
    relayInsp.close();
  } finally {
    await h.cleanup();
  }
  return results;
}

async function profileDrain(
  h: Awaited<ReturnType<typeof setup>>,
  insp: Inspector,
  map: SourceMap,
  t: ReturnType<typeof target>,
  load: { path: string; body: Buffer; headers: Record<string, string>; concurrency: number },
  size: Size,
  entriesPerRequest: number,
): Promise<Record<string, unknown>> {
  const requests = size === "small" ? 200 : 40;
  // Fills the buffer with a burst, then waits from its last answer until the fake EventBridge
  // has every accepted entry; returns the drain calls and workerd's user/system CPU meanwhile.
  const fillAndDrain = async (during: () => Promise<void>, after: () => Promise<void>) => {
    h.up.mark();
    const burst = await runLoad(t, { ...load, maxRequests: requests, maxMs: 30_000 });
    const accepted = Object.entries(burst.statuses).reduce(
      (n, [status, count]) => n + (status === "200" || status === "202" ? count : 0),
      0,
    );
    const callsAtStart = (await h.up.calls()).calls.length;
    await during();
    const s0 = userSystemUs(h.relay.pid);
    const deadline = Date.now() + 120_000;
    let calls = (await h.up.calls()).calls;
    while (
      calls.filter((c) => c[2] === 200).reduce((n, c) => n + c[1], 0) < accepted * entriesPerRequest &&
      Date.now() < deadline
    ) {
      await new Promise((r) => setTimeout(r, 50));
      calls = (await h.up.calls()).calls;
    }
    await new Promise((r) => setTimeout(r, 100));
    const s1 = userSystemUs(h.relay.pid);
    await after();
    const n = Math.max(1, calls.length - callsAtStart);
    return { burst, drainCalls: n, user: (s1.user - s0.user) / n, system: (s1.system - s0.system) / n };
  };
  const plain = await fillAndDrain(
    async () => {},
    async () => {},
  );
  let profile: CpuProfile | null = null;
  const profiled = await fillAndDrain(
    async () => {
      await insp.send("Profiler.enable");
      await insp.send("Profiler.setSamplingInterval", { interval: 100 });
      await insp.send("Profiler.start");
    },
    async () => {
      profile = (await insp.send<{ profile: CpuProfile }>("Profiler.stop")).profile;
    },
  );
  const { burst, drainCalls } = profiled;
  const rel = attribute(profile!, map, drainCalls);
  console.log(
    `\nworkerd profile, drain, ${size} batch: ${burst.requests} requests ${JSON.stringify(burst.statuses)} filled the buffer; ` +
      `${drainCalls} drain calls; workerd CPU per drain call ${(plain.user + plain.system).toFixed(0)} µs without the profiler ` +
      `(user ${plain.user.toFixed(0)}, system ${plain.system.toFixed(0)}), ${(profiled.user + profiled.system).toFixed(0)} µs while profiling; ` +
      `relay isolate busy ${(rel.busyUs / drainCalls).toFixed(0)} µs per call (rows below: per drain call)`,
  );
  printRows("self time by source file", rel.byFile, 16);
  printRows("self time by function", rel.selfByFunction, 20);
  printRows("inclusive time by function", rel.inclusiveByFunction, 40);
  return {
    drainCalls,
    workerdCpuUsPerDrainCall: { user: plain.user, system: plain.system },
    workerdCpuUsPerDrainCallProfiled: { user: profiled.user, system: profiled.system },
    relayIsolate: rel,
  };
}

// ---- micro-benchmarks inside workerd -------------------------------------------------------------

/** What each micro step measures (scripts/bench/micro-worker.ts), in the order printed. */
const MICRO_STEPS: [string, string][] = [
  ["decode", "UTF-8 decode of the request body (TextDecoder, fatal)"],
  ["parse", "JSON.parse of the request body"],
  ["validateBatch", "validateBatch: zod request + 20 entries, Detail parse, sizes"],
  ["entrySchema20", "  of which entrySchema.safeParse × 20 (incl. Detail JSON.parse)"],
  ["detailParse20", "  of which Detail JSON.parse × 20"],
  ["entrySize40", "  of which entrySize × 40 (each entry sized twice)"],
  ["entrySize40AsciiShortcut", "  candidate: the same 40 sizes, ASCII strings by a native regex test"],
  ["entrySize40EncodeInto", "  candidate: the same 40 sizes, TextEncoder.encodeInto into a scratch buffer"],
  ["stringifyUpstream", "JSON.stringify of the upstream body"],
  ["concatRows", "  candidate for the drain: the upstream body by joining 20 stored JSON rows"],
  ["encodeUpstream", "UTF-8 encode of the upstream body (TextEncoder)"],
  ["sha256Upstream", "SHA-256 of the upstream body (crypto.subtle)"],
  ["signString", "aws4fetch sign, string body (as the relay does: encode + SHA-256 + HMAC + Request)"],
  ["signBytes", "aws4fetch sign, pre-encoded Uint8Array body"],
  ["requestString", "  of which new Request() with the string body"],
  ["apiKeyFormat", "API key: format + CRC-32 check"],
  ["apiKeyHash", "API key: SHA-256 (hashApiKey)"],
  ["render", "renderJson of 20 results"],
  ["logLine", "log.info('ingest'): JSON.stringify only (console.log muted)"],
  ["logLineEmitted", "log.info('ingest') emitted (console.log to workerd's log)"],
  ["idempotencyHash", "Idempotency-Key only: SHA-256 of the request body"],
  ["enqueueStringify20", "buffered only: JSON.stringify × 20 rows (enqueue)"],
  ["claimParse20", "buffered only: JSON.parse × 20 rows (drain claim)"],
];

/** workerd CPU per request at which a step's repetition count is set (ticks are 10 ms). */
const MICRO_TARGET_CPU_US = 300_000;

async function micro(o: ProfileOptions) {
  const tmp = mkdtempSync(join(tmpdir(), "relay-micro-"));
  const bundle = await buildWorker(ROOT, join(ROOT, "scripts", "bench", "micro-worker.ts"), tmp, "micro.js");
  const w = await startWorker({ name: "micro", bundle });
  const out: Record<string, { step: string; label: string; us: number; n: number }[]> = {};
  try {
    const call = async (path: string, init?: RequestInit) => {
      const r = await fetch(new URL(path, w.url), init);
      if (!r.ok) throw new Error(`${path}: ${r.status} ${await r.text()}`);
      await r.arrayBuffer();
    };
    /** workerd CPU (µs) for one request that runs `step` n times. */
    const cpuFor = async (step: string, size: Size, n: number) => {
      const c0 = cpuUs(w.pid);
      await call(`/run?step=${step}&size=${size}&n=${n}`, { method: "POST" });
      return cpuUs(w.pid) - c0;
    };
    for (const size of o.sizes) {
      const payload = validBatch("bench-direct", size);
      await call(`/body?size=${size}`, { method: "PUT", body: new Uint8Array(payload.body) });
      const noops: number[] = [];
      for (let i = 0; i < 5; i++) noops.push(await cpuFor("noop", size, 1));
      const noop = median(noops);
      console.log(
        `\nmicro-benchmarks inside workerd (${(payload.body.byteLength / 1024).toFixed(1)} KiB ${size} request body), CPU from /proc, per request's worth of work:`,
      );
      const rows: { step: string; label: string; us: number; n: number }[] = [];
      for (const [step, label] of MICRO_STEPS) {
        // Calibrate: grow n until one request costs ~50 ms, then size the measured run.
        let n = 1;
        let cost = 0;
        while (n < 1_000_000) {
          cost = (await cpuFor(step, size, n)) - noop;
          if (cost >= 50_000) break;
          n *= cost < 5_000 ? 10 : 4;
        }
        n = Math.max(1, Math.round((n * MICRO_TARGET_CPU_US) / Math.max(cost, 1)));
        const us = ((await cpuFor(step, size, n)) - noop) / n;
        rows.push({ step, label, us: Math.round(us * 10) / 10, n });
        console.log(`  ${us.toFixed(1).padStart(9)} µs  ${label}`);
      }
      // Reading the body: a JS reader chunk by chunk (as readBodyCapped) against arrayBuffer().
      const t = target(w.url, 1);
      const readCost = async (mode: string) => {
        const load = {
          path: `/read?mode=${mode}`,
          body: payload.body,
          headers: { "content-type": "application/json" },
          concurrency: 1,
        };
        await runLoad(t, { ...load, maxRequests: 50, maxMs: 2_000 });
        const c0 = cpuUs(w.pid);
        const r = await runLoad(t, { ...load, maxRequests: 400, maxMs: 4_000 });
        return { us: (cpuUs(w.pid) - c0) / Math.max(1, r.requests), sample: r.sampleBodies["200"] ?? "" };
      };
      const viaReader = await readCost("reader");
      const viaArrayBuffer = await readCost("arrayBuffer");
      const readExtra = viaReader.us - viaArrayBuffer.us;
      rows.push({
        step: "readerMinusArrayBuffer",
        label: `reading the body with a JS reader (${viaReader.sample}) minus arrayBuffer()`,
        us: Math.round(readExtra),
        n: 400,
      });
      console.log(
        `  ${readExtra.toFixed(1).padStart(9)} µs  reading the body with a JS reader (${viaReader.sample}): ${viaReader.us.toFixed(0)} µs per request, with arrayBuffer(): ${viaArrayBuffer.us.toFixed(0)} µs`,
      );
      out[size] = rows;
    }
  } finally {
    await w.stop();
    rmSync(tmp, { recursive: true, force: true });
  }
  return out;
}

// ---- main ---------------------------------------------------------------------------------------

export async function runProfile(argv: string[]): Promise<void> {
  const o = options(argv);
  const env = machine();
  console.log(`profile: ${env.nproc} cores (${env.cpuModel}), node ${env.node}, ${env.workerd}, relay ${env.git}`);
  const result: Record<string, unknown> = { schema: "relay-profile/1", at: new Date().toISOString(), machine: env };
  if (o.workerd) result.workerd = await profileWorkerd(o);
  if (o.micro) result.micro = await micro(o);
  mkdirSync(dirname(o.out), { recursive: true });
  writeFileSync(o.out, JSON.stringify(result, null, 2) + "\n");
  console.log(`\nwrote ${o.out}`);
}

if (import.meta.url === `file://${process.argv[1]}`) {
  runProfile(process.argv.slice(2)).then(
    () => process.exit(0),
    (e: unknown) => {
      console.error(e instanceof Error ? (e.stack ?? e.message) : String(e));
      process.exit(1);
    },
  );
}
