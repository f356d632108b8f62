/**
 * A closed-loop HTTP load client on node:http: `concurrency` keep-alive connections, each sending
 * its next request as soon as the previous answer has been read. Every request is timed with
 * process.hrtime.bigint() from just before it is written to the end of its response, in µs.
 * Bounded in count and in time; loopback only.
 */
import { Agent, request } from "node:http";

/** The only hosts this client will send to. */
const LOOPBACK = new Set(["127.0.0.1", "localhost", "[::1]"]);
/** Per-request give-up time, in ms (a stuck request must not hang the run). */
const REQUEST_TIMEOUT_MS = 30_000;

export interface Target {
  url: URL;
  agent: Agent;
}

export function target(url: string | URL, maxSockets: number): Target {
  const u = new URL(url);
  if (!LOOPBACK.has(u.hostname)) throw new Error(`refusing to load ${u.hostname}: loopback only`);
  return { url: u, agent: new Agent({ keepAlive: true, maxSockets, maxFreeSockets: maxSockets, scheduling: "fifo" }) };
}

export interface LoadOptions {
  path: string;
  body: Buffer;
  headers: Record<string, string>;
  concurrency: number;
  maxRequests: number;
  maxMs: number;
  /** Called with each response's status and body (when given, bodies are kept as text). */
  onResponse?: (status: number, body: string) => void;
}

export interface LoadResult {
  requests: number;
  /** From the first request written to the last response read, in seconds. */
  elapsedS: number;
  /** One latency per completed request, in µs. */
  latenciesUs: Float64Array;
  statuses: Record<string, number>;
  /** Transport errors (reset, timeout), by message. */
  errors: Record<string, number>;
  /** The first body seen for each status, cut to 300 characters (diagnostics). */
  sampleBodies: Record<string, string>;
}

function once(t: Target, o: LoadOptions): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host: t.url.hostname,
        port: t.url.port,
        path: o.path,
        method: "POST",
        agent: t.agent,
        headers: { ...o.headers, "content-length": String(o.body.byteLength) },
        timeout: REQUEST_TIMEOUT_MS,
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (c: Buffer) => chunks.push(c));
        res.on("end", () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString("utf8") }));
        res.on("error", reject);
      },
    );
    req.on("timeout", () => req.destroy(new Error("request timeout")));
    req.on("error", reject);
    req.end(o.body);
  });
}

export async function runLoad(t: Target, o: LoadOptions): Promise<LoadResult> {
  const latencies = new Float64Array(o.maxRequests);
  const statuses: Record<string, number> = {};
  const errors: Record<string, number> = {};
  const sampleBodies: Record<string, string> = {};
  let issued = 0;
  let done = 0;
  const start = process.hrtime.bigint();
  const deadline = start + BigInt(Math.round(o.maxMs * 1e6));
  let last = start;

  async function loop(): Promise<void> {
    while (issued < o.maxRequests && process.hrtime.bigint() < deadline) {
      issued++;
      const t0 = process.hrtime.bigint();
      try {
        const r = await once(t, o);
        const t1 = process.hrtime.bigint();
        latencies[done++] = Number(t1 - t0) / 1e3;
        if (t1 > last) last = t1;
        const k = String(r.status);
        statuses[k] = (statuses[k] ?? 0) + 1;
        if (!(k in sampleBodies)) sampleBodies[k] = r.body.slice(0, 300);
        o.onResponse?.(r.status, r.body);
      } catch (e) {
        const m = (e as Error).message ?? String(e);
        errors[m] = (errors[m] ?? 0) + 1;
      }
    }
  }

  await Promise.all(Array.from({ length: o.concurrency }, () => loop()));
  return {
    requests: done,
    elapsedS: Number(last - start) / 1e9,
    latenciesUs: latencies.slice(0, done),
    statuses,
    errors,
    sampleBodies,
  };
}

/** The q-quantile (0..1) of a sample, nearest-rank; NaN when empty. */
export function quantile(sorted: Float64Array, q: number): number {
  if (sorted.length === 0) return NaN;
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1));
  return sorted[i]!;
}
