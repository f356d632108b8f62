/**
 * What the drain does with the outcome of one upstream batch. Pure: no storage, no clock, no
 * randomness of its own (passed in), so every rule is tested without fakes.
 */

import type { RetryPolicy } from "../config.ts";
import type { PutResult } from "../eventbridge/client.ts";
import { isRetryableClass, isRetryableEntryCode } from "../eventbridge/codes.ts";

export interface ClaimedRow {
  relayId: string;
  /** Attempts before this one. */
  attempts: number;
  queuedAt: number;
}

export type RowAction =
  | { relayId: string; action: "delivered"; eventId: string | null; attempts: number }
  | {
      relayId: string;
      action: "retry";
      nextAt: number;
      code: string;
      message: string;
      attempts: number;
      outcomeUnknown: boolean;
    }
  | { relayId: string; action: "dead"; code: string; message: string; attempts: number };

/** Equal-jitter exponential backoff: half fixed, half random, capped (AWS's guidance). */
export function backoffMs(policy: RetryPolicy, attempts: number, random: number): number {
  const ceiling = Math.min(policy.backoffCapMs, policy.backoffBaseMs * 2 ** Math.max(0, attempts - 1));
  return Math.round(ceiling / 2 + (ceiling / 2) * random);
}

/** A row that failed retryably: retry later, or give up when it is too old or tried too often. */
export function retryOrGiveUp(
  policy: RetryPolicy,
  row: ClaimedRow,
  attempts: number,
  code: string,
  message: string,
  outcomeUnknown: boolean,
  now: number,
  random: number,
): RowAction {
  if (attempts >= policy.maxAttempts) {
    return {
      relayId: row.relayId,
      action: "dead",
      code,
      message: `gave up after ${attempts} attempts; last error: ${message}`,
      attempts,
    };
  }
  const nextAt = now + backoffMs(policy, attempts, random);
  if (nextAt - row.queuedAt > policy.maxAgeMs) {
    return {
      relayId: row.relayId,
      action: "dead",
      code,
      message: `expired: not delivered within ${Math.round(policy.maxAgeMs / 1000)} s of being queued; last error: ${message}`,
      attempts,
    };
  }
  return { relayId: row.relayId, action: "retry", nextAt, code, message, attempts, outcomeUnknown };
}

export function planBatchOutcome(
  policy: RetryPolicy,
  rows: readonly ClaimedRow[],
  result: PutResult,
  now: number,
  random: () => number,
): RowAction[] {
  // One draw per batch: entries that failed together are retried together, so the next batch
  // stays packed instead of being scattered by per-entry jitter.
  const jitter = random();
  if (result.kind === "error") {
    const retryable = isRetryableClass(result.errorClass);
    return rows.map((row) => {
      const attempts = row.attempts + 1;
      if (!retryable) {
        return { relayId: row.relayId, action: "dead", code: result.code, message: result.message, attempts };
      }
      return retryOrGiveUp(policy, row, attempts, result.code, result.message, result.outcomeUnknown, now, jitter);
    });
  }
  return rows.map((row, i) => {
    const attempts = row.attempts + 1;
    const r = result.entries[i]!;
    if ("eventId" in r) return { relayId: row.relayId, action: "delivered", eventId: r.eventId, attempts };
    if (isRetryableEntryCode(r.code))
      return retryOrGiveUp(policy, row, attempts, r.code, r.message, false, now, jitter);
    return { relayId: row.relayId, action: "dead", code: r.code, message: r.message, attempts };
  });
}

export interface PackCandidate {
  bytes: number;
}

/** How many of the due rows (in order) fit one PutPartnerEvents call. */
export function packCount(rows: readonly PackCandidate[], maxEntries: number, maxBytes: number): number {
  let bytes = 0;
  let n = 0;
  for (const r of rows) {
    if (n >= maxEntries || bytes + r.bytes > maxBytes) break;
    bytes += r.bytes;
    n++;
  }
  return n;
}

/**
 * How many calls a rate-limited drain gathers tokens for before it wakes (at least 1): as many as
 * the tenant's rate earns in DRAIN_GATHER_MS beyond the first, at most DRAIN_CONCURRENCY (the
 * bucket caps it at the burst). A tenant slower than 10 calls/s waits for one token at a time,
 * as before.
 */
export function gatherCalls(ratePerSecond: number, gatherMs: number, concurrency: number): number {
  const extra = Math.floor((ratePerSecond * gatherMs) / 1000);
  return Math.max(1, Math.min(concurrency, 1 + extra));
}
