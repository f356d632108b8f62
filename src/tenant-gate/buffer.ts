/**
 * The durable buffer: entries the relay accepted but has not delivered yet, in order.
 *
 * Owns: table `queue` (every statement on it is here: commit, claim with a lease, retry, removal,
 * lookups) and the in-memory totals counted from it. A row is committed before the reply leaves
 * (the output gate holds the reply until the write is durable) and deleted only once the entry
 * is delivered or dead-lettered.
 */
import type { RetryPolicy } from "../config.ts";
import { DRAIN_LEASE_MS, MAX_ENTRIES } from "../limits.ts";
import type { TenantLimits } from "../tenants/record.ts";
import { backoffMs, type ClaimedRow, packCount, type RowAction } from "./policy.ts";
import type { EventStatus, QueuedEntryInput } from "./protocol.ts";

type QueueRow = {
  seq: number;
  relay_id: string;
  entry: string;
  bytes: number;
  attempts: number;
  queued_at: number;
  in_flight: number;
};

/** A claimed batch: the rows (in order), their stored wire JSON, and how many are resent blind. */
export interface ClaimedBatch {
  rows: ClaimedRow[];
  json: string[];
  /** Rows still marked in flight by a run that never reported: a resend may duplicate them. */
  resentUnknown: number;
}

/** An entry coming back into the buffer (a replayed dead letter), with its original acceptance. */
export interface RequeuedRow {
  relayId: string;
  entry: string;
  bytes: number;
  acceptedAt: number;
}

function newRelayId(): string {
  return `relay-${crypto.randomUUID()}`;
}

export class EntryBuffer {
  readonly #storage: DurableObjectStorage;
  readonly #sql: SqlStorage;
  #entries = 0;
  #bytes = 0;

  constructor(storage: DurableObjectStorage) {
    this.#storage = storage;
    this.#sql = storage.sql;
  }

  /** Counts what is queued (after migrate, inside blockConcurrencyWhile). */
  load(): void {
    const q = this.#sql
      .exec<{ n: number; b: number | null }>("SELECT COUNT(*) AS n, SUM(bytes) AS b FROM queue")
      .toArray()[0];
    this.#entries = q?.n ?? 0;
    this.#bytes = q?.b ?? 0;
  }

  get queuedEntries(): number {
    return this.#entries;
  }
  get queuedBytes(): number {
    return this.#bytes;
  }

  hasRoom(entries: number, bytes: number, limits: TenantLimits): boolean {
    return this.#entries + entries <= limits.maxQueuedEntries && this.#bytes + bytes <= limits.maxQueuedBytes;
  }

  /** Seconds until the drain has likely freed room for `entries` at the tenant's rate. */
  retryAfterS(entries: number, limits: TenantLimits): number {
    const excess = Math.max(entries, this.#entries + entries - limits.maxQueuedEntries);
    const requests = Math.ceil(excess / MAX_ENTRIES);
    return Math.min(3600, Math.max(1, Math.ceil(requests / limits.ratePerSecond)));
  }

  /** Whether some entry is due now. An empty buffer (the common case) costs no query. */
  hasDueBacklog(now: number): boolean {
    return (
      this.#entries > 0 && this.#sql.exec("SELECT 1 FROM queue WHERE next_at <= ? LIMIT 1", now).toArray().length > 0
    );
  }

  /**
   * Commits entries (all or none) and returns their relay ids and the earliest due time. Fields
   * a caller may leave out (an older Worker, protocol.ts) take their defaults here: a fresh entry
   * (no attempts, no last error, outcome known).
   */
  enqueue(
    entries: readonly QueuedEntryInput[],
    now: number,
    retry: RetryPolicy,
  ): { relayEventIds: string[]; earliest: number } {
    const ids: string[] = [];
    let earliest = Infinity;
    let bytes = 0;
    const jitter = Math.random(); // one draw: entries that failed together retry together
    this.#storage.transactionSync(() => {
      for (const e of entries) {
        const id = newRelayId();
        const attempts = e.attempts ?? 0;
        const nextAt = attempts > 0 ? now + backoffMs(retry, attempts, jitter) : now;
        earliest = Math.min(earliest, nextAt);
        this.#sql.exec(
          `INSERT INTO queue (relay_id, entry, bytes, accepted_at, queued_at, attempts, next_at, outcome_unknown, last_code, last_message)
           VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
          id,
          JSON.stringify(e.entry),
          e.bytes,
          now,
          now,
          attempts,
          nextAt,
          e.outcomeUnknown ? 1 : 0,
          e.lastCode ?? null,
          e.lastMessage ?? null,
        );
        ids.push(id);
        bytes += e.bytes;
      }
    });
    this.#entries += entries.length;
    this.#bytes += bytes;
    return { relayEventIds: ids, earliest };
  }

  /**
   * Claims the next packed batch: the due rows in order, as many as fit one PutPartnerEvents
   * call, leased for DRAIN_LEASE_MS (sync: no other event runs in between, so two runs never
   * claim the same row). A lease that runs out makes the row due again.
   */
  claim(now: number, maxBytes: number): ClaimedBatch | null {
    const rows = this.#sql
      .exec<QueueRow>(
        "SELECT seq, relay_id, entry, bytes, attempts, queued_at, in_flight FROM queue WHERE next_at <= ? ORDER BY next_at, seq LIMIT ?",
        now,
        MAX_ENTRIES,
      )
      .toArray();
    if (rows.length === 0) return null;
    const n = Math.max(1, packCount(rows, MAX_ENTRIES, maxBytes));
    const batch = rows.slice(0, n);
    // A row still marked in flight was claimed by a run that never reported (evicted mid-send):
    // EventBridge may have it already, so this resend may duplicate it.
    const resentUnknown = batch.filter((r) => r.in_flight === 1).length;
    this.#sql.exec(
      `UPDATE queue SET in_flight = 1, next_at = ?, outcome_unknown = MAX(outcome_unknown, in_flight) WHERE seq IN (${batch.map(() => "?").join(",")})`,
      now + DRAIN_LEASE_MS,
      ...batch.map((r) => r.seq),
    );
    return {
      rows: batch.map((r) => ({ relayId: r.relay_id, attempts: r.attempts, queuedAt: r.queued_at })),
      json: batch.map((r) => r.entry),
      resentUnknown,
    };
  }

  /** The rows among `ids` still queued (purged ones are absent), with what finishing them needs. */
  present(ids: readonly string[]): Map<string, { bytes: number; acceptedAt: number }> {
    return new Map(
      this.#sql
        .exec<{ relay_id: string; bytes: number; accepted_at: number }>(
          `SELECT relay_id, bytes, accepted_at FROM queue WHERE relay_id IN (${ids.map(() => "?").join(",")})`,
          ...ids,
        )
        .toArray()
        .map((r) => [r.relay_id, { bytes: r.bytes, acceptedAt: r.accepted_at }]),
    );
  }

  /** Releases a claimed row for a later attempt. */
  retry(a: Extract<RowAction, { action: "retry" }>): void {
    this.#sql.exec(
      "UPDATE queue SET in_flight = 0, attempts = ?, next_at = ?, last_code = ?, last_message = ?, outcome_unknown = MAX(outcome_unknown, ?) WHERE relay_id = ?",
      a.attempts,
      a.nextAt,
      a.code,
      a.message,
      a.outcomeUnknown ? 1 : 0,
      a.relayId,
    );
  }

  /** Deletes finished rows (delivered or dead-lettered) in one statement; `bytes` is their total. */
  remove(ids: readonly string[], bytes: number): void {
    if (ids.length === 0) return;
    this.#sql.exec(`DELETE FROM queue WHERE relay_id IN (${ids.map(() => "?").join(",")})`, ...ids);
    this.#entries -= ids.length;
    this.#bytes -= bytes;
  }

  /** Puts entries back as due now, with attempts and age starting again (a replay). */
  requeue(rows: readonly RequeuedRow[], now: number): void {
    let bytes = 0;
    for (const r of rows) {
      this.#sql.exec(
        "INSERT INTO queue (relay_id, entry, bytes, accepted_at, queued_at, attempts, next_at) VALUES (?, ?, ?, ?, ?, 0, ?)",
        r.relayId,
        r.entry,
        r.bytes,
        r.acceptedAt,
        now,
        now,
      );
      bytes += r.bytes;
    }
    this.#entries += rows.length;
    this.#bytes += bytes;
  }

  /**
   * Takes out the entries for `source` that wait and are not in flight, in order (their source
   * stopped being ACTIVE: src/sources/ holds or dead-letters them). Scans the queue: only on a
   * source's state change.
   */
  takeSource(source: string): RequeuedRow[] {
    if (this.#entries === 0) return [];
    const where = "in_flight = 0 AND json_extract(entry, '$.Source') = ?";
    const rows = this.#sql
      .exec<{ relay_id: string; entry: string; bytes: number; accepted_at: number }>(
        `SELECT relay_id, entry, bytes, accepted_at FROM queue WHERE ${where} ORDER BY seq`,
        source,
      )
      .toArray();
    if (rows.length === 0) return [];
    this.#sql.exec(`DELETE FROM queue WHERE ${where}`, source);
    this.#entries -= rows.length;
    this.#bytes -= rows.reduce((n, r) => n + r.bytes, 0);
    return rows.map((r) => ({ relayId: r.relay_id, entry: r.entry, bytes: r.bytes, acceptedAt: r.accepted_at }));
  }

  /** A queued entry's status, or null when it is not queued. */
  statusOf(relayId: string): Extract<EventStatus, { state: "queued" }> | null {
    const q = this.#sql
      .exec<{ attempts: number; last_code: string | null; accepted_at: number; next_at: number }>(
        "SELECT attempts, last_code, accepted_at, next_at FROM queue WHERE relay_id = ?",
        relayId,
      )
      .toArray()[0];
    if (!q) return null;
    return {
      state: "queued",
      attempts: q.attempts,
      lastErrorCode: q.last_code,
      acceptedAt: q.accepted_at,
      nextAttemptAt: q.next_at,
    };
  }

  /** When the oldest queued entry was accepted (null: nothing queued). */
  oldestAcceptedAt(): number | null {
    return this.#sql.exec<{ t: number | null }>("SELECT MIN(accepted_at) AS t FROM queue").toArray()[0]?.t ?? null;
  }

  /** The earliest due time, a claimed row's lease expiry included (null: nothing queued). */
  nextDueAt(): number | null {
    return this.#sql.exec<{ t: number | null }>("SELECT MIN(next_at) AS t FROM queue").toArray()[0]?.t ?? null;
  }

  /** Forgets the totals (the tenant's data was purged; the storage was cleared by the caller). */
  reset(): void {
    this.#entries = 0;
    this.#bytes = 0;
  }
}
