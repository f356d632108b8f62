/**
 * The durable buffer: entries the relay accepted but has not delivered yet, in order.
 *
 * Owns: table `batches` (every statement on it is here: commit, claim with a lease, settle,
 * lookups) and the in-memory totals counted from it. One row per committed request: its entries
 * as one JSON array (as the Worker validated them), their AWS sizes, and a per-entry state array
 * (`st`: attempts `a`, due time / lease expiry `t`, in flight `f`, outcome unknown `u`, done `d`,
 * last error `c`/`m`), with the row's pending count and bytes and its earliest due time. So a
 * buffered request costs one INSERT (not one per entry), and the drain builds its batch with
 * SQLite's json_each / json_extract, never parsing an entry in JavaScript. A row is committed
 * before the reply leaves (the output gate holds the reply until the write is durable); an entry
 * is marked done only once delivered or dead-lettered, and the row is deleted when none is left.
 *
 * Order: FIFO per shard by (due time, commit order, place in the request); retried entries go
 * back by their backoff. Rows migrated from the old per-entry table, and replayed dead letters,
 * are one-entry rows named by their full relay id (`legacy` = 1).
 */
import type { RetryPolicy } from "../config.ts";
import { DRAIN_LEASE_MS, MAX_ENTRIES } from "../limits.ts";
import type { TenantLimits } from "../tenants/record.ts";
import { backoffMs, type ClaimedRow, packCount, type RowAction } from "./policy.ts";
import { type EventStatus, newRequestId, parseRelayId, type QueuedEntryInput, relayIdAt } from "./protocol.ts";

/** Rows the claim looks at: each due row has at least one due entry, so MAX_ENTRIES rows suffice. */
const CLAIM_ROWS = MAX_ENTRIES;

/** The relay id of entry `k` of a row, in SQL (`b` the row). */
const RELAY_ID_SQL = "CASE WHEN b.legacy = 1 THEN b.request ELSE b.request || printf('%02x', j.key) END";

/** A claimed batch: the entries (in order), their stored wire JSON, and how many are resent blind. */
export interface ClaimedBatch {
  rows: ClaimedRow[];
  json: string[];
  /** Where each entry lives: its row and its place in the row, and its size. */
  slots: { seq: number; k: number; bytes: number; acceptedAt: number }[];
  /** Entries still marked in flight by a run that never reported: a resend may duplicate them. */
  resentUnknown: number;
}

/** An entry coming back into the buffer (a replayed dead letter), with its original acceptance. */
export interface RequeuedRow {
  relayId: string;
  entry: string;
  bytes: number;
  acceptedAt: number;
}

/** A finished entry of a settled batch, for events.ts: delivered, or dead with its stored JSON. */
export interface Finished {
  action: Extract<RowAction, { action: "delivered" | "dead" }>;
  entry: string;
  bytes: number;
  acceptedAt: number;
}

type ClaimRow = {
  seq: number;
  k: number;
  relay_id: string;
  entry: string;
  bytes: number;
  attempts: number;
  in_flight: number;
  queued_at: number;
  accepted_at: number;
};

/**
 * `json_set(st, …)` over path/value pairs given as SQL, nested in groups: SQLite caps a
 * function's arguments (SQLITE_MAX_FUNCTION_ARG, 127 by default), and a retried batch sets 5
 * fields on each of 20 entries.
 */
const JSON_SET_PAIRS = 30;
function jsonSetSql(pairs: readonly string[]): string {
  let expr = "st";
  for (let i = 0; i < pairs.length; i += JSON_SET_PAIRS)
    expr = `json_set(${expr}, ${pairs.slice(i, i + JSON_SET_PAIRS).join(", ")})`;
  return expr;
}

/** One entry's state, as stored in `st`. */
function stateJson(attempts: number, nextAt: number, unknown: boolean, code: string | null, message: string | null) {
  const c = code === null ? "null" : JSON.stringify(code);
  const m = message === null ? "null" : JSON.stringify(message);
  return `{"a":${attempts},"t":${nextAt},"f":0,"u":${unknown ? 1 : 0},"d":0,"c":${c},"m":${m}}`;
}

export class EntryBuffer {
  readonly #sql: SqlStorage;
  #entries = 0;
  #bytes = 0;

  constructor(storage: DurableObjectStorage) {
    this.#sql = storage.sql;
  }

  /** Counts what is queued (after migrate, inside blockConcurrencyWhile). */
  load(): void {
    const q = this.#sql
      .exec<{ n: number | null; b: number | null }>("SELECT SUM(pending) AS n, SUM(pending_bytes) AS b FROM batches")
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
      this.#entries > 0 && this.#sql.exec("SELECT 1 FROM batches WHERE next_at <= ? LIMIT 1", now).toArray().length > 0
    );
  }

  /**
   * Commits a request's entries as one row (all or none) and returns their relay ids and the
   * earliest due time. Fields a caller may leave out (an older Worker, protocol.ts) take their
   * defaults here: a fresh entry (no attempts, no last error, outcome known).
   */
  enqueue(
    entries: readonly QueuedEntryInput[],
    now: number,
    retry: RetryPolicy,
    shard = 0,
  ): { relayEventIds: string[]; earliest: number } {
    const request = newRequestId(shard);
    const jitter = Math.random(); // one draw: entries that failed together retry together
    const ids: string[] = [];
    const st: string[] = [];
    const sizes: number[] = [];
    let earliest = Infinity;
    let bytes = 0;
    for (const [k, e] of entries.entries()) {
      const attempts = e.attempts ?? 0;
      const nextAt = attempts > 0 ? now + backoffMs(retry, attempts, jitter) : now;
      earliest = Math.min(earliest, nextAt);
      st.push(stateJson(attempts, nextAt, e.outcomeUnknown ?? false, e.lastCode ?? null, e.lastMessage ?? null));
      sizes.push(e.bytes);
      bytes += e.bytes;
      ids.push(relayIdAt(request, k));
    }
    this.#sql.exec(
      `INSERT INTO batches (request, entries, sizes, st, pending, pending_bytes, accepted_at, queued_at, next_at)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
      request,
      JSON.stringify(entries.map((e) => e.entry)),
      `[${sizes.join(",")}]`,
      `[${st.join(",")}]`,
      entries.length,
      bytes,
      now,
      now,
      earliest,
    );
    this.#entries += entries.length;
    this.#bytes += bytes;
    return { relayEventIds: ids, earliest };
  }

  /**
   * Claims the next packed batch: the due entries in order, as many as fit one PutPartnerEvents
   * call, leased for DRAIN_LEASE_MS (sync: no other event runs in between, so two runs never
   * claim the same entry). A lease that runs out makes the entry due again.
   */
  claim(now: number, maxBytes: number): ClaimedBatch | null {
    const due = this.#sql
      .exec<ClaimRow>(
        `WITH b AS (SELECT * FROM batches WHERE next_at <= ?1 ORDER BY next_at, seq LIMIT ${CLAIM_ROWS})
         SELECT b.seq, j.key AS k, ${RELAY_ID_SQL} AS relay_id, j.value AS entry,
           json_extract(b.sizes, '$[' || j.key || ']') AS bytes,
           json_extract(b.st, '$[' || j.key || '].a') AS attempts,
           json_extract(b.st, '$[' || j.key || '].f') AS in_flight,
           b.queued_at, b.accepted_at
         FROM b, json_each(b.entries) j
         WHERE json_extract(b.st, '$[' || j.key || '].d') = 0 AND json_extract(b.st, '$[' || j.key || '].t') <= ?1
         ORDER BY b.next_at, b.seq, j.key LIMIT ${MAX_ENTRIES}`,
        now,
      )
      .toArray();
    if (due.length === 0) return null;
    const n = Math.max(1, packCount(due, MAX_ENTRIES, maxBytes));
    const batch = due.slice(0, n);
    // An entry still marked in flight was claimed by a run that never reported (evicted
    // mid-send): EventBridge may have it already, so this resend may duplicate it.
    const resentUnknown = batch.filter((r) => r.in_flight === 1).length;
    const lease = now + DRAIN_LEASE_MS;
    const bySeq = new Map<number, string[]>();
    for (const r of batch) {
      // Paths are built from integers SQLite returned: no user text reaches the SQL.
      const set = [`'$[${r.k}].f', 1`, `'$[${r.k}].t', ${lease}`];
      if (r.in_flight === 1) set.push(`'$[${r.k}].u', 1`);
      bySeq.set(r.seq, [...(bySeq.get(r.seq) ?? []), ...set]);
    }
    for (const [seq, set] of bySeq) this.#setState(seq, set);
    return {
      rows: batch.map((r) => ({ relayId: r.relay_id, attempts: r.attempts, queuedAt: r.queued_at })),
      json: batch.map((r) => r.entry),
      slots: batch.map((r) => ({ seq: r.seq, k: r.k, bytes: r.bytes, acceptedAt: r.accepted_at })),
      resentUnknown,
    };
  }

  /**
   * Applies one batch's outcome (call inside the caller's transaction): retried entries get their
   * new attempt count, due time and error; finished ones are marked done, and a row with nothing
   * left is deleted; one UPDATE per touched row (a batch spans few rows). Entries no longer
   * pending (the tenant was purged meanwhile) are skipped. Returns the finished entries for
   * events.ts. `actions[i]` belongs to `batch.slots[i]`.
   */
  settle(batch: ClaimedBatch, actions: readonly RowAction[]): Finished[] {
    const seqs = [...new Set(batch.slots.map((s) => s.seq))];
    const live = new Set(
      this.#sql
        .exec<{ seq: number; k: number }>(
          `SELECT b.seq, j.key AS k FROM batches b, json_each(b.st) j
           WHERE b.seq IN (${seqs.map(() => "?").join(",")}) AND json_extract(j.value, '$.d') = 0`,
          ...seqs,
        )
        .toArray()
        .map((r) => `${r.seq}:${r.k}`),
    );
    const finished: Finished[] = [];
    const perRow = new Map<number, { set: string[]; binds: (string | null)[]; done: number; bytes: number }>();
    actions.forEach((a, i) => {
      const slot = batch.slots[i]!;
      if (!live.has(`${slot.seq}:${slot.k}`)) return;
      const row = perRow.get(slot.seq) ?? { set: [], binds: [], done: 0, bytes: 0 };
      perRow.set(slot.seq, row);
      const p = `$[${slot.k}]`;
      if (a.action === "retry") {
        row.set.push(`'${p}.f', 0`, `'${p}.a', ${a.attempts}`, `'${p}.t', ${a.nextAt}`, `'${p}.c', ?`, `'${p}.m', ?`);
        row.binds.push(a.code, a.message);
        if (a.outcomeUnknown) row.set.push(`'${p}.u', 1`);
        return;
      }
      row.set.push(`'${p}.f', 0`, `'${p}.d', 1`, `'${p}.a', ${a.attempts}`);
      row.done++;
      row.bytes += slot.bytes;
      finished.push({ action: a, entry: batch.json[i]!, bytes: slot.bytes, acceptedAt: slot.acceptedAt });
    });
    let doneEntries = 0;
    let doneBytes = 0;
    for (const [seq, row] of perRow) {
      this.#sql.exec(
        `UPDATE batches SET st = ${jsonSetSql(row.set)}, pending = pending - ?, pending_bytes = pending_bytes - ? WHERE seq = ?`,
        ...row.binds,
        row.done,
        row.bytes,
        seq,
      );
      doneEntries += row.done;
      doneBytes += row.bytes;
    }
    if (perRow.size > 0) {
      const touched = [...perRow.keys()];
      const marks = touched.map(() => "?").join(",");
      this.#sql.exec(`DELETE FROM batches WHERE seq IN (${marks}) AND pending <= 0`, ...touched);
      this.#refreshDue(touched);
    }
    this.#entries -= doneEntries;
    this.#bytes -= doneBytes;
    return finished;
  }

  /** Puts entries back as due now, with attempts and age starting again (a replay), under their own ids. */
  requeue(rows: readonly RequeuedRow[], now: number): void {
    let bytes = 0;
    for (const r of rows) {
      this.#sql.exec(
        `INSERT INTO batches (request, legacy, entries, sizes, st, pending, pending_bytes, accepted_at, queued_at, next_at)
         VALUES (?, 1, ?, ?, ?, 1, ?, ?, ?, ?)`,
        r.relayId,
        `[${r.entry}]`,
        `[${r.bytes}]`,
        `[${stateJson(0, now, false, null, null)}]`,
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
   * source's state change. The entries stay in their rows, marked done (their ids keep working:
   * they answer from the hold or the dead letters).
   */
  takeSource(source: string): RequeuedRow[] {
    if (this.#entries === 0) return [];
    const rows = this.#sql
      .exec<{ seq: number; k: number; relay_id: string; entry: string; bytes: number; accepted_at: number }>(
        `SELECT b.seq, j.key AS k, ${RELAY_ID_SQL} AS relay_id, j.value AS entry,
           json_extract(b.sizes, '$[' || j.key || ']') AS bytes, b.accepted_at
         FROM batches b, json_each(b.entries) j
         WHERE json_extract(j.value, '$.Source') = ?
           AND json_extract(b.st, '$[' || j.key || '].d') = 0 AND json_extract(b.st, '$[' || j.key || '].f') = 0
         ORDER BY b.seq, j.key`,
        source,
      )
      .toArray();
    if (rows.length === 0) return [];
    // Taken entries are marked done in their rows (one UPDATE per row); emptied rows go.
    const perRow = new Map<number, { set: string[]; bytes: number }>();
    for (const r of rows) {
      const row = perRow.get(r.seq) ?? { set: [], bytes: 0 };
      perRow.set(r.seq, row);
      // Paths are built from integers SQLite returned: no user text reaches the SQL.
      row.set.push(`'$[${r.k}].d', 1`);
      row.bytes += r.bytes;
    }
    for (const [seq, row] of perRow) {
      this.#sql.exec(
        `UPDATE batches SET st = ${jsonSetSql(row.set)}, pending = pending - ?, pending_bytes = pending_bytes - ? WHERE seq = ?`,
        row.set.length,
        row.bytes,
        seq,
      );
    }
    const touched = [...perRow.keys()];
    this.#sql.exec(
      `DELETE FROM batches WHERE seq IN (${touched.map(() => "?").join(",")}) AND pending <= 0`,
      ...touched,
    );
    this.#refreshDue(touched);
    this.#entries -= rows.length;
    this.#bytes -= rows.reduce((n, r) => n + r.bytes, 0);
    return rows.map((r) => ({ relayId: r.relay_id, entry: r.entry, bytes: r.bytes, acceptedAt: r.accepted_at }));
  }

  /** A queued entry's status, or null when it is not queued. */
  statusOf(relayId: string): Extract<EventStatus, { state: "queued" }> | null {
    const id = parseRelayId(relayId);
    if (!id) return null;
    const q = this.#sql
      .exec<{ attempts: number; last_code: string | null; accepted_at: number; next_at: number; done: number }>(
        `SELECT json_extract(st, '$[' || k || '].a') AS attempts, json_extract(st, '$[' || k || '].c') AS last_code,
           accepted_at, json_extract(st, '$[' || k || '].t') AS next_at, json_extract(st, '$[' || k || '].d') AS done
         FROM (SELECT st, accepted_at, CASE WHEN legacy = 1 THEN 0 ELSE ${Math.trunc(id.index)} END AS k FROM batches
               WHERE request = ? OR (legacy = 0 AND request = ?))`,
        relayId,
        id.request ?? relayId,
      )
      .toArray()
      .find((r) => r.done === 0 && r.attempts !== null);
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
    return this.#sql.exec<{ t: number | null }>("SELECT MIN(accepted_at) AS t FROM batches").toArray()[0]?.t ?? null;
  }

  /** The earliest due time, a claimed entry's lease expiry included (null: nothing queued). */
  nextDueAt(): number | null {
    return this.#sql.exec<{ t: number | null }>("SELECT MIN(next_at) AS t FROM batches").toArray()[0]?.t ?? null;
  }

  /** Forgets the totals (the tenant's data was purged; the storage was cleared by the caller). */
  reset(): void {
    this.#entries = 0;
    this.#bytes = 0;
  }

  /** Sets fields of a row's entry states (`set`: json_set path/value pairs as SQL), then its due time. */
  #setState(seq: number, set: readonly string[]): void {
    this.#sql.exec(`UPDATE batches SET st = ${jsonSetSql(set)} WHERE seq = ?`, seq);
    this.#refreshDue([seq]);
  }

  /** A row's due time is its earliest pending entry's. */
  #refreshDue(seqs: readonly number[]): void {
    this.#sql.exec(
      `UPDATE batches SET next_at = (SELECT MIN(json_extract(j.value, '$.t')) FROM json_each(batches.st) j
         WHERE json_extract(j.value, '$.d') = 0) WHERE seq IN (${seqs.map(() => "?").join(",")})`,
      ...seqs,
    );
  }
}
