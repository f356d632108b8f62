/**
 * What run.ts and profile.ts share: the project root, the machine's description, the fake
 * EventBridge child process, and the set-up (build both bundles, start both Workers, seed the
 * tenants) with its clean-up.
 */
import { type ChildProcess, execFileSync, fork } from "node:child_process";
import { createHash } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { cpus, tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { type Bundle, buildBaseline, buildRelay } from "./build.ts";
import { type BenchTenant, newSealingKey, seedTenant } from "./seed.ts";
import { type RunningWorker, startWorker } from "./workers.ts";

export const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "..", "..");

/** Direct-path tenant: the highest rate and burst a tenant record allows (src/limits.ts). */
export const DIRECT_RATE = 1_400;
export const DIRECT_BURST = 3_600;
/** Buffered-path tenants' burst, in requests. */
export const BUFFERED_BURST = 5;
/**
 * The sharded scenario's tenants: the same rate and burst, spread over 1 and over 4 shards, so
 * the same burst shows what N changes (CPU per request, rate held in total, batches, nothing lost).
 */
export const SHARDED_RATE = 40;
export const SHARDED_BURST = 8;

// ---- The upstream child process ------------------------------------------------------------------

/** One call the fake received: when, how many entries, its status, its handling time (µs). */
export type CallRow = [atMs: number, entries: number, status: number, handlingUs: number];

export interface Upstream {
  child: ChildProcess;
  url: string;
  verifySignatures: boolean;
  /** Forget the calls recorded so far. */
  mark(): void;
  /** Calls since the last mark, and the child's CPU time so far (µs). */
  calls(): Promise<{ calls: CallRow[]; cpuUs: number }>;
  stop(): void;
}

export async function startUpstream(verify: boolean): Promise<Upstream> {
  const child = fork(join(ROOT, "scripts", "bench", "upstream.ts"), ["--verify", String(verify)], {
    stdio: ["ignore", "inherit", "inherit", "ipc"],
    execArgv: [],
  });
  const ready = await new Promise<{ url: string; verifySignatures: boolean }>((res, rej) => {
    child.once("message", (m: { type: string; url: string; verifySignatures: boolean }) => res(m));
    child.once("exit", (code) => rej(new Error(`the fake EventBridge exited (${code}) before it was ready`)));
  });
  let next = 0;
  const pending = new Map<number, (v: { calls: CallRow[]; cpuUs: number }) => void>();
  child.on("message", (m: { type: string; id?: number; calls?: CallRow[]; cpuUs?: number }) => {
    if (m.type === "calls" && m.id !== undefined) {
      pending.get(m.id)?.({ calls: m.calls ?? [], cpuUs: m.cpuUs ?? 0 });
      pending.delete(m.id);
    }
  });
  return {
    child,
    url: ready.url,
    verifySignatures: ready.verifySignatures,
    mark: () => child.send({ type: "mark" }),
    calls: () =>
      new Promise((res) => {
        const id = next++;
        pending.set(id, res);
        child.send({ type: "calls", id });
      }),
    stop: () => {
      if (child.connected) child.send({ type: "stop" });
      setTimeout(() => child.kill(), 1_000).unref();
    },
  };
}

// ---- The machine ---------------------------------------------------------------------------------

function versionOf(pkg: string): string {
  try {
    return (JSON.parse(readFileSync(join(ROOT, "node_modules", pkg, "package.json"), "utf8")) as { version: string })
      .version;
  } catch {
    return "unknown";
  }
}

export interface Machine {
  nproc: number;
  cpuModel: string;
  memGiB: number;
  kernel: string;
  node: string;
  workerd: string;
  wrangler: string;
  miniflare: string;
  git: string;
}

export function machine(): Machine {
  let cpuModel = cpus()[0]?.model ?? "unknown";
  try {
    cpuModel = /model name\s*:\s*(.*)/.exec(readFileSync("/proc/cpuinfo", "utf8"))?.[1]?.trim() ?? cpuModel;
  } catch {
    // not Linux
  }
  const sh = (cmd: string, args: string[]) => {
    try {
      return execFileSync(cmd, args, { cwd: ROOT, encoding: "utf8", stdio: ["ignore", "pipe", "ignore"] }).trim();
    } catch {
      return "unknown";
    }
  };
  let memGiB = 0;
  try {
    memGiB =
      Math.round(
        (Number(/MemTotal:\s+(\d+)/.exec(readFileSync("/proc/meminfo", "utf8"))?.[1] ?? 0) / 1024 / 1024) * 10,
      ) / 10;
  } catch {
    // not Linux
  }
  return {
    nproc: Number(sh("nproc", [])) || cpus().length,
    cpuModel,
    memGiB,
    kernel: sh("uname", ["-r"]),
    node: process.version,
    // The workerd workers.ts runs: the one wrangler's own miniflare resolves (same package here).
    workerd: sh(join(ROOT, "node_modules", ".bin", "workerd"), ["--version"]),
    wrangler: versionOf("wrangler"),
    miniflare: versionOf("miniflare"),
    git: sh("git", ["describe", "--always", "--dirty", "--abbrev=12"]),
  };
}

// ---- Set-up --------------------------------------------------------------------------------------

export interface SetupOptions {
  verify: boolean;
  bufferedRates: { small: number; max: number };
  /** Start the relay with workerd's inspector open (profile.ts). */
  inspector?: boolean;
  /** Skip the baseline Worker (profile.ts). */
  noBaseline?: boolean;
}

export interface Setup {
  relayBundle: Bundle;
  bundleSha: string;
  baselineBundle: Bundle | null;
  up: Upstream;
  relay: RunningWorker;
  baseline: RunningWorker | null;
  tenants: {
    direct: BenchTenant;
    bufferedSmall: BenchTenant;
    bufferedMax: BenchTenant;
    shards1: BenchTenant;
    shards4: BenchTenant;
  };
  cleanup(): Promise<void>;
}

export async function setup(o: SetupOptions, say: (line: string) => void): Promise<Setup> {
  const tmp = mkdtempSync(join(tmpdir(), "relay-bench-"));
  const cleanups: (() => Promise<void> | void)[] = [() => rmSync(tmp, { recursive: true, force: true })];
  const cleanup = async () => {
    for (const c of cleanups.splice(0).reverse()) {
      try {
        await c();
      } catch {
        // best effort
      }
    }
  };
  try {
    let t0 = Date.now();
    const [relayBundle, baselineBundle] = await Promise.all([
      buildRelay(ROOT, join(tmp, "relay")),
      o.noBaseline ? Promise.resolve(null) : buildBaseline(ROOT, join(tmp, "baseline")),
    ]);
    const bundleSha = createHash("sha256").update(relayBundle.code).digest("hex").slice(0, 12);
    say(
      `built: relay ${(relayBundle.bytes / 1024).toFixed(0)} KiB (sha256 ${bundleSha})` +
        (baselineBundle ? `, baseline ${(baselineBundle.bytes / 1024).toFixed(0)} KiB` : "") +
        `, ${Date.now() - t0} ms`,
    );

    t0 = Date.now();
    const up = await startUpstream(o.verify);
    cleanups.push(() => up.stop());
    const sealingKey = newSealingKey();
    const relay = await startWorker({
      name: "relay",
      bundle: relayBundle,
      kv: ["TENANTS"],
      durableObjects: { TENANT_GATE: "TenantGate", TENANT_CONTROL: "TenantControl" },
      text: {
        SEALING_KEY: sealingKey,
        ADMIN_TOKEN: `bench-${crypto.randomUUID()}`,
        ALLOW_ENDPOINT_OVERRIDE: "true",
        MAX_BATCH_BYTES: "262144",
        UPSTREAM_TIMEOUT_MS: "10000",
      },
      ...(o.inspector ? { inspector: true } : {}),
    });
    cleanups.push(() => relay.stop());
    const baseline = baselineBundle
      ? await startWorker({
          name: "baseline",
          bundle: baselineBundle,
          text: { UPSTREAM: up.url },
          durableObjects: { FLOOR_GATE: "FloorGate" },
        })
      : null;
    if (baseline) cleanups.push(() => baseline.stop());
    const kv = relay.kv["TENANTS"]!;
    const direct = await seedTenant(kv, sealingKey, {
      id: "bench-direct",
      endpoint: up.url,
      ratePerSecond: DIRECT_RATE,
      burst: DIRECT_BURST,
    });
    // One low-rate tenant per size: each must be slower than the relay can ingest that size.
    const bufferedSmall = await seedTenant(kv, sealingKey, {
      id: "bench-buffered-s",
      endpoint: up.url,
      ratePerSecond: o.bufferedRates.small,
      burst: BUFFERED_BURST,
    });
    const bufferedMax = await seedTenant(kv, sealingKey, {
      id: "bench-buffered-m",
      endpoint: up.url,
      ratePerSecond: o.bufferedRates.max,
      burst: BUFFERED_BURST,
    });
    const shards1 = await seedTenant(kv, sealingKey, {
      id: "bench-shards-1",
      endpoint: up.url,
      ratePerSecond: SHARDED_RATE,
      burst: SHARDED_BURST,
      shards: 1,
    });
    const shards4 = await seedTenant(kv, sealingKey, {
      id: "bench-shards-4",
      endpoint: up.url,
      ratePerSecond: SHARDED_RATE,
      burst: SHARDED_BURST,
      shards: 4,
    });
    say(
      `workerd: relay pid ${relay.pid} at ${relay.url.host}` +
        (baseline ? `, baseline pid ${baseline.pid} at ${baseline.url.host}` : "") +
        `; fake EventBridge ${up.url} (pid ${up.child.pid}, signatures ${up.verifySignatures ? "verified" : "NOT verified"}); ${Date.now() - t0} ms`,
    );
    return {
      relayBundle,
      bundleSha,
      baselineBundle,
      up,
      relay,
      baseline,
      tenants: { direct, bufferedSmall, bufferedMax, shards1, shards4 },
      cleanup,
    };
  } catch (e) {
    await cleanup();
    throw e;
  }
}
