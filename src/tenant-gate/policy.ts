/**
 * What the drain does with the outcome of one upstream batch. Pure: no storage, no clock, no
 * randomness of its own (passed in), so every rule is tested without fakes.
 */
import type { PutResult } from "../eventbridge/client.ts";
import { isRetryableClass, isRetryableEntryCode } from "../eventbridge/codes.ts";
import {
  DRAIN_BACKOFF_BASE_MS,
  DRAIN_BACKOFF_CAP_MS,
  DRAIN_MAX_AGE_MS,
  DRAIN_MAX_ATTEMPTS,
} from "../limits.ts";

export interface ClaimedRow {
  relayId: string;
  /** Attempts before this one. */
  attempts: number;
  queuedAt: number;
}

export type RowAction =
  | { relayId: string; action: "delivered"; eventId: string | null; attempts: number }
  | { relayId: string; action: "retry"; nextAt: number; code: string; message: string; attempts: number; outcomeUnknown: boolean }
  | { relayId: string; action: "dead"; code: string; message: string; attempts: number };

/** Equal-jitter exponential backoff: half fixed, half random, capped (AWS's guidance). */
export function backoffMs(attempts: number, random: number): number {
  const ceiling = Math.min(DRAIN_BACKOFF_CAP_MS, DRAIN_BACKOFF_BASE_MS * 2 ** Math.max(0, attempts - 1));
  return Math.round(ceiling / 2 + (ceiling / 2) * random);
}

/** A row that failed retryably: retry later, or give up when it is too old or tried too often. */
export function retryOrGiveUp(
  row: ClaimedRow,
  attempts: number,
  code: string,
  message: string,
  outcomeUnknown: boolean,
  now: number,
  random: number,
): RowAction {
  if (attempts >= DRAIN_MAX_ATTEMPTS) {
    return { relayId: row.relayId, action: "dead", code, message: `gave up after ${attempts} attempts; last error: ${message}`, attempts };
  }
  const nextAt = now + backoffMs(attempts, random);
  if (nextAt - row.queuedAt > DRAIN_MAX_AGE_MS) {
    return {
      relayId: row.relayId,
      action: "dead",
      code,
      message: `expired: not delivered within ${DRAIN_MAX_AGE_MS / 3600_000} h; last error: ${message}`,
      attempts,
    };
  }
  return { relayId: row.relayId, action: "retry", nextAt, code, message, attempts, outcomeUnknown };
}

export function planBatchOutcome(
  rows: readonly ClaimedRow[],
  result: PutResult,
  now: number,
  random: () => number,
): RowAction[] {
  if (result.kind === "error") {
    const retryable = isRetryableClass(result.errorClass);
    return rows.map((row) => {
      const attempts = row.attempts + 1;
      if (!retryable) {
        return { relayId: row.relayId, action: "dead", code: result.code, message: result.message, attempts };
      }
      return retryOrGiveUp(row, attempts, result.code, result.message, result.outcomeUnknown, now, random());
    });
  }
  return rows.map((row, i) => {
    const attempts = row.attempts + 1;
    const r = result.entries[i]!;
    if ("eventId" in r) return { relayId: row.relayId, action: "delivered", eventId: r.eventId, attempts };
    if (isRetryableEntryCode(r.code)) return retryOrGiveUp(row, attempts, r.code, r.message, false, now, random());
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
