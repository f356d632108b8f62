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

export class Admission {
  #bucket: TokenBucket | null = null;

  /** The bucket at the tenant record's current limits (tokens already earned are kept). */
  bucket(limits: TenantLimits, now: number): TokenBucket {
    if (!this.#bucket) this.#bucket = new TokenBucket(limits.ratePerSecond, limits.burst, now);
    else this.#bucket.configure(limits.ratePerSecond, limits.burst, now);
    return this.#bucket;
  }

  /** Milliseconds until the next token (0 before the first request configured the bucket). */
  waitMs(now: number): number {
    return this.#bucket?.waitMs(now) ?? 0;
  }

  /** The bucket as RateLimit header fields report it (zeros before the first request). */
  rate(now: number): RateInfo {
    const b = this.#bucket;
    if (!b) return { limit: 0, remaining: 0, resetS: 0, windowS: 1 };
    return {
      limit: b.burst,
      remaining: b.remaining(now),
      resetS: Math.ceil(b.waitMs(now) / 1000),
      windowS: Math.max(1, Math.ceil(b.burst / b.rate)),
    };
  }
}
