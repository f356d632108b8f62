/**
 * Per-tenant metrics in Workers Analytics Engine: one data point per ingest request and one per
 * drain call, written to the METRICS dataset (wrangler.toml). docs/metrics.md has the column
 * layout, the sampling rule and the SQL an operator runs.
 *
 * Both kinds share one column layout so a query can sum them without knowing which wrote a row:
 *
 *   index1   tenant id
 *   blob1    kind: "ingest" | "drain"
 *   blob2    front door: "json" (POST /v1/events) | "aws" (POST /) | "drain"
 *   blob3    HTTP status answered (ingest) or EventBridge's status (drain; "0" for no answer)
 *   blob4    outcome (see IngestOutcome / DrainOutcome)
 *   blob5    error code: the relay's (ingest refusals) or EventBridge's (drain), else ""
 *   double1  entries in the request / batch
 *   double2  entries delivered to EventBridge
 *   double3  entries queued (ingest: into the buffer; drain: back into it for a retry)
 *   double4  entries failed (ingest: refused per entry; drain: dead-lettered)
 *   double5  size: ingest, the valid entries' bytes by AWS's size formula; drain, the characters of
 *            the batch's entry JSON (what was sent, without re-encoding it to count bytes)
 *   double6  latency, ms: ingest from validation to answer; drain: the upstream call
 *   double7  1 when EventBridge throttled the call, else 0
 *
 * Writing a data point is fire-and-forget (the runtime batches them; no await, no subrequest) and
 * never fails a request: a binding that throws is logged and ignored. At LOG_LEVEL=info each data
 * point is also logged (`msg: "metric"`), which is how they are seen locally: miniflare's dataset
 * accepts writes and keeps nothing.
 */
import { RelayError } from "./errors.ts";
import type { PutResult } from "./eventbridge/client.ts";
import { log, logEnabled } from "./log.ts";

// Structural types for what the hooks are given (the pipeline's Caller and IngestResult), so this
// module depends on nothing but the error type and the log.
interface CallerLike {
  tenant: { id: string };
  principal: { kind: string };
}
interface IngestResultLike {
  entries: readonly { kind: string }[];
  queued: number;
  failed: number;
}

/** A data point as the relay writes it (an AnalyticsEngineDataPoint with every field set). */
export interface DataPoint {
  indexes: [string];
  blobs: string[];
  doubles: number[];
}

/** The slice of AnalyticsEngineDataset the relay uses (tests record through the same interface). */
export interface MetricsDataset {
  writeDataPoint(point: DataPoint): void;
}

/**
 * `delivered`: every valid entry reached EventBridge; `queued`: some were buffered; `partial`:
 * some entries were refused per entry; `refused`: the request was answered with an error (status
 * ≥ 400) and nothing was accepted; `replayed`: an Idempotency-Key replay (nothing new happened).
 */
export type IngestOutcome = "delivered" | "queued" | "partial" | "refused" | "replayed";
/** `delivered` / `partial` (some retried or dead-lettered) / `retry` (all retried) / `dead` / `error` (no answer). */
export type DrainOutcome = "delivered" | "partial" | "retry" | "dead" | "error";

export interface IngestPoint {
  tenantId: string;
  door: "json" | "aws";
  status: number;
  outcome: IngestOutcome;
  code: string;
  entries: number;
  delivered: number;
  queued: number;
  failed: number;
  bytes: number;
  latencyMs: number;
  throttled: boolean;
}

export interface DrainPoint {
  tenantId: string;
  status: number;
  outcome: DrainOutcome;
  code: string;
  entries: number;
  delivered: number;
  retried: number;
  deadLettered: number;
  bytes: number;
  upstreamMs: number;
  throttled: boolean;
}

/** The blob and double names in column order: what docs/metrics.md and the CLI's SQL use. */
export const BLOB_COLUMNS = ["kind", "door", "status", "outcome", "code"] as const;
export const DOUBLE_COLUMNS = ["entries", "delivered", "queued", "failed", "bytes", "latency_ms", "throttled"] as const;

/** Analytics Engine's limit on index1, in bytes (tenant ids are far shorter). */
const MAX_INDEX_BYTES = 96;

export function ingestDataPoint(p: IngestPoint): DataPoint {
  return {
    indexes: [p.tenantId.slice(0, MAX_INDEX_BYTES)],
    blobs: ["ingest", p.door, String(p.status), p.outcome, p.code],
    doubles: [p.entries, p.delivered, p.queued, p.failed, p.bytes, p.latencyMs, p.throttled ? 1 : 0],
  };
}

export function drainDataPoint(p: DrainPoint): DataPoint {
  return {
    indexes: [p.tenantId.slice(0, MAX_INDEX_BYTES)],
    blobs: ["drain", "drain", String(p.status), p.outcome, p.code],
    doubles: [p.entries, p.delivered, p.retried, p.deadLettered, p.bytes, p.upstreamMs, p.throttled ? 1 : 0],
  };
}

function write(dataset: MetricsDataset | undefined, point: DataPoint): void {
  if (logEnabled("info")) logPoint(point);
  if (!dataset) return;
  try {
    dataset.writeDataPoint(point);
  } catch (e) {
    log.warn("metrics_write_failed", { error: e instanceof Error ? e.message : String(e) });
  }
}

function logPoint(point: DataPoint): void {
  log.info("metric", {
    index: point.indexes[0],
    ...Object.fromEntries(BLOB_COLUMNS.map((c, i) => [c, point.blobs[i]])),
    ...Object.fromEntries(DOUBLE_COLUMNS.map((c, i) => [c, point.doubles[i]])),
  });
}

/** One data point for an ingest request (src/ingest/pipeline.ts). */
export function recordIngest(env: { METRICS?: MetricsDataset }, p: IngestPoint): void {
  write(env.METRICS, ingestDataPoint(p));
}

/** One data point for a drain call (src/tenant-gate/drain.ts). */
export function recordDrain(env: { METRICS?: MetricsDataset }, p: DrainPoint): void {
  write(env.METRICS, drainDataPoint(p));
}

/** A drain batch's outcome from its row actions. */
export function drainOutcome(
  actions: readonly { action: "delivered" | "retry" | "dead" }[],
  noAnswer: boolean,
): { outcome: DrainOutcome; delivered: number; retried: number; deadLettered: number } {
  let delivered = 0;
  let retried = 0;
  let deadLettered = 0;
  for (const a of actions) {
    if (a.action === "delivered") delivered++;
    else if (a.action === "retry") retried++;
    else deadLettered++;
  }
  const outcome: DrainOutcome = noAnswer
    ? "error"
    : delivered === actions.length
      ? "delivered"
      : retried === actions.length
        ? "retry"
        : deadLettered === actions.length
          ? "dead"
          : "partial";
  return { outcome, delivered, retried, deadLettered };
}

/**
 * The drain's one call per batch (src/tenant-gate/drain.ts): the batch, EventBridge's answer, what
 * the policy decided per row, and how long the upstream call took.
 */
export function recordDrainCall(
  env: { METRICS?: MetricsDataset },
  tenantId: string,
  json: readonly string[],
  result: PutResult,
  actions: readonly { action: "delivered" | "retry" | "dead" }[],
  upstreamMs: number,
): void {
  const counts = drainOutcome(actions, result.kind === "error" && result.outcomeUnknown);
  let chars = 0;
  for (const j of json) chars += j.length;
  recordDrain(env, {
    tenantId,
    status: result.kind === "ok" ? 200 : result.status,
    outcome: counts.outcome,
    code: result.kind === "error" ? result.code : "",
    entries: json.length,
    delivered: counts.delivered,
    retried: counts.retried,
    deadLettered: counts.deadLettered,
    bytes: chars,
    upstreamMs,
    throttled: result.kind === "error" && result.errorClass === "throttled",
  });
}

/** What the ingest pipeline fills in as it goes, for its one data point. */
export interface IngestStats {
  /** Entries in the request and the valid ones' bytes (AWS's formula); 0 until validated. */
  entries: number;
  bytes: number;
  result: IngestResultLike | null;
  /** The answer's HTTP status when it was not an error. */
  status: number;
  replayed: boolean;
  throttled: boolean;
}

/** The pipeline's one call per request (src/ingest/pipeline.ts), whether it answered or threw. */
export function recordIngestRequest(
  env: { METRICS?: MetricsDataset },
  caller: CallerLike,
  stats: IngestStats,
  error: unknown,
  latencyMs: number,
): void {
  const door = caller.principal.kind === "sigv4" ? "aws" : "json";
  const r = stats.result;
  let delivered = 0;
  if (r) for (const e of r.entries) if (e.kind === "delivered") delivered++;
  let status = stats.status;
  let code = "";
  let outcome: IngestOutcome;
  if (error !== null) {
    const err = error instanceof RelayError ? error : null;
    status = err ? (door === "aws" ? err.aws.status : err.status) : 500;
    code = err ? err.code : "internal_error";
    outcome = "refused";
  } else if (stats.replayed) {
    outcome = "replayed";
  } else {
    outcome = r && r.queued > 0 ? "queued" : r && r.failed > 0 ? "partial" : "delivered";
  }
  const accepted = error === null && !stats.replayed;
  recordIngest(env, {
    tenantId: caller.tenant.id,
    door,
    status,
    outcome,
    code,
    entries: stats.entries,
    delivered: accepted ? delivered : 0,
    queued: accepted && r ? r.queued : 0,
    failed: accepted && r ? r.failed : 0,
    bytes: stats.bytes,
    latencyMs,
    throttled: stats.throttled || code === "upstream_throttled",
  });
}
