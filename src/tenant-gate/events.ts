/**
 * What became of buffered entries: per-event status (GET /v1/events/{id}, kept
 * EVENT_STATUS_TTL_MS) and the dead letters an operator lists and replays.
 *
 * Owns: tables `outcomes` and `dead_letters`. An entry still queued is the buffer's (buffer.ts,
 * `statusOf`); the gate asks the buffer first, then this.
 */
import type { WireEntry } from "../entries/schema.ts";
import { EVENT_STATUS_TTL_MS } from "../limits.ts";
import { log } from "../log.ts";
import type { RequeuedRow } from "./buffer.ts";
import type { RowAction } from "./policy.ts";
import type { DeadLetter, EventStatus } from "./protocol.ts";

/** The most dead letters one page lists. */
const DEAD_LETTER_PAGE_MAX = 1000;

/** A finished entry as the drain hands it over: its stored wire JSON and when it was accepted. */
export interface FinishedEntry {
  entry: string;
  bytes: number;
  acceptedAt: number;
}

export class Events {
  readonly #sql: SqlStorage;
  readonly #tenantId: () => string | null;

  /** `tenantId` names the tenant in the dead-letter log line. */
  constructor(sql: SqlStorage, tenantId: () => string | null) {
    this.#sql = sql;
    this.#tenantId = tenantId;
  }

  /** The status of a finished entry, or null (unknown here: maybe queued, expired or another tenant's). */
  statusOf(relayId: string): Exclude<EventStatus, { state: "queued" }> | null {
    const o = this.#sql
      .exec<{
        state: string;
        event_id: string | null;
        code: string | null;
        message: string | null;
        attempts: number;
        at: number;
      }>("SELECT state, event_id, code, message, attempts, at FROM outcomes WHERE relay_id = ?", relayId)
      .toArray()[0];
    if (!o) return null;
    if (o.state === "delivered") return { state: "delivered", eventId: o.event_id, attempts: o.attempts, at: o.at };
    const dead = this.#sql.exec("SELECT 1 FROM dead_letters WHERE relay_id = ?", relayId).toArray().length > 0;
    return {
      state: "failed",
      errorCode: o.code ?? "",
      errorMessage: o.message ?? "",
      attempts: o.attempts,
      at: o.at,
      deadLettered: dead,
    };
  }

  /**
   * Delivered entries' statuses in one statement: the batch's (relay id, EventBridge id,
   * attempts) bound as one JSON array and inserted with json_each (set-based, not one per entry).
   */
  deliveredMany(items: readonly Extract<RowAction, { action: "delivered" }>[], now: number): void {
    if (items.length === 0) return;
    this.#sql.exec(
      `INSERT OR REPLACE INTO outcomes (relay_id, state, event_id, attempts, at)
       SELECT json_extract(j.value, '$[0]'), 'delivered', json_extract(j.value, '$[1]'), json_extract(j.value, '$[2]'), ?
       FROM json_each(?) j`,
      now,
      JSON.stringify(items.map((a) => [a.relayId, a.eventId, a.attempts])),
    );
  }

  delivered(a: Extract<RowAction, { action: "delivered" }>, now: number): void {
    this.#sql.exec(
      "INSERT OR REPLACE INTO outcomes (relay_id, state, event_id, attempts, at) VALUES (?, 'delivered', ?, ?, ?)",
      a.relayId,
      a.eventId,
      a.attempts,
      now,
    );
  }

  /** A failed entry: its status, and the entry itself into the dead letters with the reason. */
  deadLettered(a: Extract<RowAction, { action: "dead" }>, e: FinishedEntry, now: number): void {
    this.#sql.exec(
      "INSERT OR REPLACE INTO outcomes (relay_id, state, code, message, attempts, at) VALUES (?, 'failed', ?, ?, ?, ?)",
      a.relayId,
      a.code,
      a.message,
      a.attempts,
      now,
    );
    this.#sql.exec(
      `INSERT OR REPLACE INTO dead_letters (relay_id, entry, bytes, code, message, attempts, accepted_at, failed_at)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
      a.relayId,
      e.entry,
      e.bytes,
      a.code,
      a.message,
      a.attempts,
      e.acceptedAt,
      now,
    );
    log.warn("event_dead_lettered", {
      tenantId: this.#tenantId(),
      relayEventId: a.relayId,
      code: a.code,
      attempts: a.attempts,
    });
  }

  deadLetterCount(): number {
    return this.#sql.exec<{ n: number }>("SELECT COUNT(*) AS n FROM dead_letters").toArray()[0]?.n ?? 0;
  }

  /** One page of dead letters in the order they failed; `next` continues after the last one. */
  listDeadLetters(limit: number, after: number | null): { items: DeadLetter[]; next: number | null } {
    const n = Math.max(1, Math.min(DEAD_LETTER_PAGE_MAX, Math.floor(limit)));
    const rows = this.#sql
      .exec<{
        seq: number;
        relay_id: string;
        entry: string;
        code: string;
        message: string;
        attempts: number;
        accepted_at: number;
        failed_at: number;
      }>(
        "SELECT seq, relay_id, entry, code, message, attempts, accepted_at, failed_at FROM dead_letters WHERE seq > ? ORDER BY seq LIMIT ?",
        after ?? 0,
        n + 1,
      )
      .toArray();
    const page = rows.slice(0, n);
    return {
      items: page.map((r) => ({
        relayEventId: r.relay_id,
        entry: JSON.parse(r.entry) as WireEntry,
        errorCode: r.code,
        errorMessage: r.message,
        attempts: r.attempts,
        acceptedAt: new Date(r.accepted_at).toISOString(),
        failedAt: new Date(r.failed_at).toISOString(),
      })),
      next: rows.length > n ? page[page.length - 1]!.seq : null,
    };
  }

  /**
   * Takes dead letters out (all of them, or the named ones) with their status rows, for the
   * buffer to requeue in the same transaction. Names not found come back in `notFound`.
   */
  takeDeadLetters(all: boolean, relayIds: readonly string[]): { rows: RequeuedRow[]; notFound: string[] } {
    type Row = { relay_id: string; entry: string; bytes: number; accepted_at: number };
    const notFound: string[] = [];
    const found = all
      ? this.#sql.exec<Row>("SELECT relay_id, entry, bytes, accepted_at FROM dead_letters ORDER BY seq").toArray()
      : relayIds.flatMap((id) => {
          const r = this.#sql
            .exec<Row>("SELECT relay_id, entry, bytes, accepted_at FROM dead_letters WHERE relay_id = ?", id)
            .toArray();
          if (r.length === 0) notFound.push(id);
          return r;
        });
    for (const r of found) {
      this.#sql.exec("DELETE FROM dead_letters WHERE relay_id = ?", r.relay_id);
      this.#sql.exec("DELETE FROM outcomes WHERE relay_id = ?", r.relay_id);
    }
    return {
      rows: found.map((r) => ({ relayId: r.relay_id, entry: r.entry, bytes: r.bytes, acceptedAt: r.accepted_at })),
      notFound,
    };
  }

  /** Deletes expired statuses (dead letters stay until replayed or the tenant is deleted). */
  prune(now: number): void {
    this.#sql.exec("DELETE FROM outcomes WHERE at < ?", now - EVENT_STATUS_TTL_MS);
  }

  /** When the next status expires (null: none). */
  nextExpiry(): number | null {
    const at = this.#sql.exec<{ t: number | null }>("SELECT MIN(at) AS t FROM outcomes").toArray()[0]?.t ?? null;
    return at === null ? null : at + EVENT_STATUS_TTL_MS;
  }
}
