/**
 * What `npm run soak` and `npm run fuzz` share: a private local runtime (the relay under wrangler
 * dev, as `npm start` runs it, on a temporary state directory and free ports, never the user's
 * .wrangler/state, .dev.vars, 8787 or 4010), the emulator in this process as its upstream, fresh
 * random secrets, tenants provisioned through the admin code, a sampler of workerd's memory, and a
 * scanner that looks for every secret in every answer and log line.
 */
import { randomBytes } from "node:crypto";
import { mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { FakeEventBridge } from "../../emulator/eventbridge.ts";
import { type FakeEventBridgeServer, startFakeEventBridgeServer } from "../../emulator/server.ts";
import { AdminClient } from "../../src/admin/index.ts";
import { importSealingKey } from "../../src/tenants/sealed.ts";
import { PROJECT_ROOT } from "../lib/context.ts";
import { type OpenedKv, openTenantsKv } from "../lib/kv.ts";
import { type LocalRelay, startLocalRelay } from "../lib/local-relay.ts";
import { type ProvisionedTenant, provisionTenants, shardTenants } from "./tenants.ts";

const MIB = 1024 * 1024;
/** How often workerd's memory is sampled, in ms. */
const MEMORY_SAMPLE_MS = 1_000;

export interface RuntimeOptions {
  tenants: number;
  prefix: string;
  ratePerSecond: number;
  burst: number;
  /** Every second tenant is spread over this many shards (default 1: none). */
  shards?: number;
  seed: number;
  /** Extra Worker vars (e.g. a shorter UPSTREAM_TIMEOUT_MS). */
  vars?: Record<string, string>;
  /** Keep the state directory after the run (default: removed). */
  keep?: boolean;
}

/** The local relay, its upstream and its tenants. */
export class Runtime {
  readonly dir: string;
  readonly stateDir: string;
  readonly fake: FakeEventBridge;
  readonly secrets = new SecretScanner();
  readonly memory = new MemorySampler();
  /** The Worker isolate's JS heap, read over wrangler dev's inspector. */
  readonly heap = new IsolateHeap();
  readonly vars: Record<string, string>;
  emulator!: FakeEventBridgeServer;
  relay!: LocalRelay;
  admin!: AdminClient;
  kv!: OpenedKv;
  sealingKey!: CryptoKey;
  tenants: ProvisionedTenant[] = [];
  /** Lines wrangler and workerd printed (the relay's log). */
  logLines = 0;
  /** Each start of the runtime: when it was ready, in epoch ms. */
  readonly starts: number[] = [];
  readonly #opts: RuntimeOptions;
  #port = 0;

  constructor(opts: RuntimeOptions) {
    this.#opts = opts;
    this.dir = mkdtempSync(join(tmpdir(), `relay-${opts.prefix}-`));
    this.stateDir = join(this.dir, "state");
    this.fake = new FakeEventBridge({ credentials: [], seed: opts.seed });
    this.vars = {
      SEALING_KEY: randomBytes(32).toString("base64"),
      ADMIN_TOKEN: randomBytes(24).toString("hex"),
      ALLOW_ENDPOINT_OVERRIDE: "true",
      ...opts.vars,
    };
    this.secrets.add("SEALING_KEY", this.vars.SEALING_KEY!);
    this.secrets.add("ADMIN_TOKEN", this.vars.ADMIN_TOKEN!);
  }

  get url(): string {
    return this.relay.url;
  }

  /** Emulator, tenants (through the admin library on the local state), then the relay. */
  async start(): Promise<void> {
    this.emulator = await startFakeEventBridgeServer({ port: 0, fake: this.fake });
    this.kv = await openTenantsKv({ root: PROJECT_ROOT, mode: "local", persistTo: this.stateDir });
    this.sealingKey = await importSealingKey(this.vars.SEALING_KEY!);
    this.tenants = await provisionTenants({
      kv: this.kv.kv,
      sealingKey: this.sealingKey,
      relay: () => this.admin,
      endpoint: this.emulator.url,
      fake: this.fake,
      count: this.#opts.tenants,
      prefix: this.#opts.prefix,
      ratePerSecond: this.#opts.ratePerSecond,
      burst: this.#opts.burst,
    });
    for (const t of this.tenants) {
      this.secrets.add(`${t.id} API key`, t.apiKey.key);
      this.secrets.add(`${t.id} spare API key`, t.spareKey.key);
      this.secrets.add(`${t.id} SigV4 secret`, t.sigv4.secretAccessKey);
      this.secrets.add(`${t.id} AWS secret`, t.aws.secretAccessKey);
    }
    await this.startRelay();
    await shardTenants(this.adminOptions(), this.tenants, this.#opts.shards ?? 1);
  }

  /** What the admin library needs for this runtime (revocations in the fuzz). */
  adminOptions() {
    return { kv: this.kv.kv, sealingKey: this.sealingKey, relay: () => this.admin };
  }

  /** Starts (or restarts, on the same state and port) the relay. */
  async startRelay(): Promise<void> {
    const inspectorPort = await freePort();
    this.relay = await startLocalRelay({
      port: this.#port,
      inspectorPort,
      persistTo: this.stateDir,
      vars: this.vars,
      log: (line) => {
        this.logLines++;
        this.secrets.check("relay log", line);
      },
    });
    this.#port = this.relay.port;
    this.admin = new AdminClient({ baseUrl: this.relay.url, token: this.vars.ADMIN_TOKEN });
    this.memory.watch(this.relay.pgid);
    await this.heap.connect(inspectorPort);
    this.starts.push(Date.now());
  }

  /** SIGKILL of the runtime's whole process group (supervisor, wrangler, workerd) at once. */
  async crash(): Promise<void> {
    this.memory.sampleNow();
    await this.heap.sample();
    this.heap.disconnect();
    await this.relay.crash();
  }

  async stop(): Promise<void> {
    this.memory.stop();
    this.heap.disconnect();
    await Promise.allSettled([this.relay?.stop(), this.emulator?.close(), this.kv?.dispose()]);
    if (!this.#opts.keep) rmSync(this.dir, { recursive: true, force: true });
  }
}

// ---- secrets -----------------------------------------------------------------------------------

/** Every secret of the run, looked for in every answer and log line. */
export class SecretScanner {
  readonly #secrets: { name: string; value: string }[] = [];
  /** Where each secret was found: "<what> in <where>", counted. */
  readonly found = new Map<string, number>();

  add(name: string, value: string): void {
    this.#secrets.push({ name, value });
  }

  /** The secrets, for a caller that must avoid sending one somewhere on purpose. */
  values(): readonly string[] {
    return this.#secrets.map((s) => s.value);
  }

  /** Counts every secret `text` holds. `allowed` is a secret the caller itself sent there (not a leak to report by name). */
  check(where: string, text: string): number {
    let hits = 0;
    for (const s of this.#secrets) {
      if (text.includes(s.value)) {
        hits++;
        const k = `${s.name} in ${where}`;
        this.found.set(k, (this.found.get(k) ?? 0) + 1);
      }
    }
    return hits;
  }

  get total(): number {
    let n = 0;
    for (const v of this.found.values()) n += v;
    return n;
  }
}

// ---- memory ------------------------------------------------------------------------------------

/** workerd's resident memory (VmRSS of the workerd processes in the runtime's group), from /proc. */
export class MemorySampler {
  start: number | null = null;
  peak = 0;
  last = 0;
  /** The last sample of each runtime start, for crash-to-crash figures. */
  readonly perStart: { start: number; peak: number; end: number }[] = [];
  #timer: NodeJS.Timeout | undefined;
  #pgid = 0;

  watch(pgid: number): void {
    this.#pgid = pgid;
    this.perStart.push({ start: 0, peak: 0, end: 0 });
    clearInterval(this.#timer);
    this.sampleNow();
    this.#timer = setInterval(() => this.sampleNow(), MEMORY_SAMPLE_MS);
    this.#timer.unref();
  }

  sampleNow(): void {
    const rss = workerdRss(this.#pgid);
    if (rss === 0) return;
    const cur = this.perStart[this.perStart.length - 1]!;
    if (cur.start === 0) cur.start = rss;
    cur.peak = Math.max(cur.peak, rss);
    cur.end = rss;
    this.start ??= rss;
    this.peak = Math.max(this.peak, rss);
    this.last = rss;
  }

  stop(): void {
    this.sampleNow();
    clearInterval(this.#timer);
  }

  /** "start 212 MiB, peak 260 MiB, end 240 MiB" (over the last runtime start for `end`). */
  line(): string {
    return `workerd RSS start ${mib(this.start ?? 0)} MiB, peak ${mib(this.peak)} MiB, end ${mib(this.last)} MiB`;
  }
}

export function mib(bytes: number): string {
  return (bytes / MIB).toFixed(0);
}

/** Sum of VmRSS over the processes of `pgid` whose name starts with "workerd" (0 off Linux). */
export function workerdRss(pgid: number): number {
  let total = 0;
  let names: string[];
  try {
    names = readdirSync("/proc");
  } catch {
    return 0;
  }
  for (const name of names) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = readFileSync(`/proc/${name}/stat`, "utf8");
      const close = stat.lastIndexOf(")");
      const comm = stat.slice(stat.indexOf("(") + 1, close);
      if (!comm.startsWith("workerd")) continue;
      if (Number(stat.slice(close + 2).split(" ")[2]) !== pgid) continue;
      const m = /^VmRSS:\s+(\d+) kB/m.exec(readFileSync(`/proc/${name}/status`, "utf8"));
      if (m) total += Number(m[1]) * 1024;
    } catch {
      // the process went away while we read it
    }
  }
  return total;
}

// ---- the Worker isolate's heap -------------------------------------------------------------------

/**
 * The relay Worker's V8 heap (used and total bytes), read with the DevTools protocol
 * (Runtime.getHeapUsage) over wrangler dev's inspector proxy; locally the Worker and its Durable
 * Objects share that isolate. `retained()` forces a garbage collection first
 * (HeapProfiler.collectGarbage): what the relay still holds. Used to tell what the relay holds
 * from what workerd and the local tooling around it hold (docs/reliability.md, "Memory").
 */
export class IsolateHeap {
  peakUsed = 0;
  /** Peak of ArrayBuffer backing stores outside the JS heap (bodies being read). */
  peakBacking = 0;
  firstUsed: number | null = null;
  lastUsed = 0;
  #ws: WebSocket | null = null;
  #next = 1;
  readonly #waiting = new Map<number, (result: unknown) => void>();
  #timer: NodeJS.Timeout | undefined;

  async connect(port: number): Promise<void> {
    this.disconnect();
    try {
      const list = (await (await fetch(`http://127.0.0.1:${port}/json`)).json()) as { webSocketDebuggerUrl: string }[];
      const url = list[0]?.webSocketDebuggerUrl;
      if (!url) return;
      // The inspector proxy accepts local origins only (DNS-rebinding guard).
      const Ws = WebSocket as unknown as new (u: string, o: { headers: Record<string, string> }) => WebSocket;
      const ws = new Ws(url, { headers: { Origin: "http://localhost" } });
      await new Promise<void>((resolve, reject) => {
        ws.addEventListener("open", () => resolve());
        ws.addEventListener("error", () => reject(new Error("inspector refused")));
        setTimeout(() => reject(new Error("inspector timeout")), 5_000).unref();
      });
      ws.addEventListener("message", (e) => {
        const m = JSON.parse(String(e.data)) as { id?: number; result?: unknown };
        if (m.id !== undefined) this.#waiting.get(m.id)?.(m.result);
        if (m.id !== undefined) this.#waiting.delete(m.id);
      });
      ws.addEventListener("close", () => {
        if (this.#ws === ws) this.#ws = null;
      });
      this.#ws = ws;
      await this.sample();
      this.#timer = setInterval(() => void this.sample(), 5_000);
      this.#timer.unref();
    } catch {
      this.#ws = null; // no heap figures, the run goes on
    }
  }

  #call(method: string): Promise<unknown> {
    const ws = this.#ws;
    if (ws?.readyState !== 1) return Promise.resolve(null);
    const id = this.#next++;
    return new Promise((resolve) => {
      this.#waiting.set(id, resolve);
      ws.send(JSON.stringify({ id, method }));
      setTimeout(() => {
        this.#waiting.delete(id);
        resolve(null);
      }, 10_000).unref();
    });
  }

  async sample(): Promise<number> {
    const r = (await this.#call("Runtime.getHeapUsage")) as {
      usedSize?: number;
      backingStorageSize?: number;
    } | null;
    if (!r?.usedSize) return 0;
    this.peakBacking = Math.max(this.peakBacking, r.backingStorageSize ?? 0);
    this.firstUsed ??= r.usedSize;
    this.peakUsed = Math.max(this.peakUsed, r.usedSize);
    this.lastUsed = r.usedSize;
    return r.usedSize;
  }

  /** Heap in use after a full garbage collection: what the isolate holds. */
  async retained(): Promise<number> {
    await this.#call("HeapProfiler.enable");
    await this.#call("HeapProfiler.collectGarbage");
    return this.sample();
  }

  disconnect(): void {
    clearInterval(this.#timer);
    this.#ws?.close();
    this.#ws = null;
  }

  line(): string {
    return this.firstUsed === null
      ? "isolate heap: not read"
      : `isolate heap used start ${mib(this.firstUsed)} MiB, peak ${mib(this.peakUsed)} MiB, last ${mib(this.lastUsed)} MiB (ArrayBuffers peak ${mib(this.peakBacking)} MiB)`;
  }
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once("error", reject);
    s.listen(0, "127.0.0.1", () => {
      const { port } = s.address() as { port: number };
      s.close(() => resolve(port));
    });
  });
}

// ---- small helpers -----------------------------------------------------------------------------

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** The machine, for the figures: cores, CPU model, memory, Node. */
export function machineLine(): string {
  let cpu = "unknown CPU";
  try {
    cpu = /^model name\s*:\s*(.+)$/m.exec(readFileSync("/proc/cpuinfo", "utf8"))?.[1]?.trim() ?? cpu;
  } catch {
    // not Linux
  }
  const cores = (globalThis as { navigator?: { hardwareConcurrency?: number } }).navigator?.hardwareConcurrency ?? 0;
  let mem = "";
  try {
    const kb = Number(/^MemTotal:\s+(\d+)/m.exec(readFileSync("/proc/meminfo", "utf8"))?.[1] ?? 0);
    mem = `, ${(kb / 1024 / 1024).toFixed(1)} GiB`;
  } catch {
    // not Linux
  }
  return `${cores} cores "${cpu}"${mem}, Node ${process.versions.node}`;
}

/** Integer flag parsing for the two runners: `--name N`. */
export function intFlag(values: Record<string, unknown>, name: string, fallback: number, min: number): number {
  const raw = values[name];
  if (raw === undefined) return fallback;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < min) throw new Error(`--${name}: expected an integer ≥ ${min}, got ${String(raw)}`);
  return n;
}
