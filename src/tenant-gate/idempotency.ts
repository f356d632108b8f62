/**
 * Idempotency-Key records: the first request with a key holds it while it runs; its response
 * (status < 500) is stored and replayed byte for byte to a retry with the same key and body for
 * IDEMPOTENCY_TTL_MS (docs/delivery.md).
 *
 * Owns: table `idempotency`. Only requests that carry a key touch it.
 */
import { IDEMPOTENCY_LOCK_MS, IDEMPOTENCY_TTL_MS } from "../limits.ts";
import type { AdmitOutput, FinishInput } from "./protocol.ts";

/** What admit answers instead of going on: a stored response, or a refusal of the key. */
export type IdempotencyVerdict = Extract<
  AdmitOutput,
  { kind: "replay" } | { kind: "idempotency-mismatch" } | { kind: "idempotency-in-progress" }
>;

export class Idempotency {
  readonly #sql: SqlStorage;

  constructor(sql: SqlStorage) {
    this.#sql = sql;
  }

  /** Takes the key for this request (null: go on), or says why not. */
  claim(key: string, bodyHash: string, now: number): IdempotencyVerdict | null {
    const row = this.#sql
      .exec<{
        body_hash: string;
        state: string;
        status: number | null;
        body: string | null;
        content_type: string | null;
        locked_until: number;
        expires_at: number;
      }>(
        "SELECT body_hash, state, status, body, content_type, locked_until, expires_at FROM idempotency WHERE key = ?",
        key,
      )
      .toArray()[0];
    if (row && row.expires_at > now) {
      if (row.body_hash !== bodyHash) return { kind: "idempotency-mismatch" };
      if (row.state === "done") {
        return {
          kind: "replay",
          status: row.status ?? 200,
          body: row.body ?? "",
          contentType: row.content_type ?? "application/json",
        };
      }
      if (row.locked_until > now) {
        return {
          kind: "idempotency-in-progress",
          retryAfterS: Math.max(1, Math.ceil((row.locked_until - now) / 1000)),
        };
      }
      // A pending record whose request died: take it over.
    }
    this.#sql.exec(
      `INSERT INTO idempotency (key, body_hash, state, locked_until, expires_at) VALUES (?, ?, 'pending', ?, ?)
       ON CONFLICT (key) DO UPDATE SET body_hash = excluded.body_hash, state = 'pending', status = NULL, body = NULL,
         content_type = NULL, locked_until = excluded.locked_until, expires_at = excluded.expires_at`,
      key,
      bodyHash,
      now + IDEMPOTENCY_LOCK_MS,
      now + IDEMPOTENCY_TTL_MS,
    );
    return null;
  }

  /** Stores the response for replay, or releases the key (null response: nothing was accepted). */
  finish(idem: NonNullable<FinishInput["idempotency"]>): void {
    if (idem.response) {
      this.#sql.exec(
        "UPDATE idempotency SET state = 'done', status = ?, body = ?, content_type = ?, locked_until = 0 WHERE key = ?",
        idem.response.status,
        idem.response.body,
        idem.response.contentType,
        idem.key,
      );
    } else {
      this.#sql.exec("DELETE FROM idempotency WHERE key = ? AND state = 'pending'", idem.key);
    }
  }

  /** Deletes expired records. */
  prune(now: number): void {
    this.#sql.exec("DELETE FROM idempotency WHERE expires_at < ?", now);
  }

  /** When the next record expires (null: none). */
  nextExpiry(): number | null {
    return this.#sql.exec<{ t: number | null }>("SELECT MIN(expires_at) AS t FROM idempotency").toArray()[0]?.t ?? null;
  }
}
