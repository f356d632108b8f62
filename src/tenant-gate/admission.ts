/**
 * Admission: the tenant's token bucket toward EventBridge (one token per PutPartnerEvents call),
 * and the decision for one request: send now, queue, or refuse as full.
 *
 * Owns: no table. The bucket lives in memory only (bucket.ts, pure): after an eviction it
 * restarts full, so a restarted object may allow one extra burst (docs/storage.md). The drain
 * takes its tokens from this same bucket, so direct sends and drained batches share the rate.
 */
import type { TenantLimits } from "../tenants/record.ts";
import { TokenBucket } from "./bucket.ts";
import type { RateInfo } from "./protocol.ts";

/** What admission needs to know about the buffer (buffer.ts provides it). */
export interface BufferState {
  hasDueBacklog(now: number): boolean;
  hasRoom(entries: number, bytes: number, limits: TenantLimits): boolean;
  retryAfterS(entries: number, limits: TenantLimits): number;
}

export type AdmissionDecision = { kind: "direct" } | { kind: "queue" } | { kind: "full"; retryAfterS: number };

/**
 * The rule, pure: a due backlog goes first (new entries join it, so the drain sends full batches
 * in order); otherwise a token means send now; otherwise queue while there is room; otherwise
 * full. A request with no valid entries sends nothing, so it takes no token.
 */
export function decide(
  request: { entries: number; bytes: number },
  limits: TenantLimits,
  now: number,
  bucket: Pick<TokenBucket, "tryTake">,
  buffer: BufferState,
): AdmissionDecision {
  if (request.entries === 0) return { kind: "direct" };
  if (!buffer.hasDueBacklog(now) && bucket.tryTake(now)) return { kind: "direct" };
  if (buffer.hasRoom(request.entries, request.bytes, limits)) return { kind: "queue" };
  return { kind: "full", retryAfterS: buffer.retryAfterS(request.entries, limits) };
}

/**
 * One shard's slice of the tenant's limits: rate, burst and buffer caps divided by the shards
 * that may send (`divisor`), so the slices add up to the tenant's own. A slice's burst is at
 * least 1 (a bucket that can never hold a whole token would never send): a tenant with fewer
 * burst than shards may burst slightly above its burst, never above its sustained rate.
 */
export function shardSlice(limits: TenantLimits, divisor: number): TenantLimits {
  const d = Math.max(1, divisor);
  if (d === 1) return limits;
  return {
    ...limits,
    ratePerSecond: limits.ratePerSecond / d,
    burst: Math.max(1, limits.burst / d),
    maxQueuedEntries: Math.ceil(limits.maxQueuedEntries / d),
    maxQueuedBytes: Math.ceil(limits.maxQueuedBytes / d),
  };
}

export class Admission {
  #bucket: TokenBucket | null = null;
  #divisor = 1;
  /** Shards that may send upstream by the fanned-out directory (1: none fanned out). */
  readonly #senders: () => number;

  constructor(senders: () => number = () => 1) {
    this.#senders = senders;
  }

  /**
   * This shard's slice of the tenant record's limits: divided by the record's shard count or
   * the directory's senders, whichever is larger (while N changes, the larger count keeps the sum
   * at or below the tenant's rate).
   */
  slice(limits: TenantLimits): TenantLimits {
    this.#divisor = Math.max(limits.shards ?? 1, this.#senders());
    return shardSlice(limits, this.#divisor);
  }

  /** The bucket at this shard's slice of the tenant record's limits (tokens already earned are kept). */
  bucket(limits: TenantLimits, now: number): TokenBucket {
    const l = this.slice(limits);
    if (!this.#bucket) this.#bucket = new TokenBucket(l.ratePerSecond, l.burst, now);
    else this.#bucket.configure(l.ratePerSecond, l.burst, now);
    return this.#bucket;
  }

  /** Milliseconds until the next token (0 before the first request configured the bucket). */
  waitMs(now: number): number {
    return this.#bucket?.waitMs(now) ?? 0;
  }

  /**
   * The bucket as RateLimit header fields report it (zeros before the first request), scaled
   * from this shard's slice to the tenant (the partner sees one tenant, not its shards).
   */
  rate(now: number): RateInfo {
    const b = this.#bucket;
    if (!b) return { limit: 0, remaining: 0, resetS: 0, windowS: 1 };
    const d = this.#divisor;
    return {
      limit: Math.round(b.burst * d),
      remaining: b.remaining(now) * d,
      resetS: Math.ceil(b.waitMs(now) / 1000),
      windowS: Math.max(1, Math.ceil(b.burst / b.rate)),
    };
  }
}
