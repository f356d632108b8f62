/**
 * The tenant's partner event sources and the entries held for them, in the gate's SQLite.
 *
 * Owns: tables `sources` (one row per tracked source: src/sources/policy.ts's SourceRecord) and
 * `held` (entries accepted for a source that is not ACTIVE, in order, until it becomes ACTIVE or
 * they are dead-lettered), and the `meta` rows `sources_version` / `sources_published` (shard 0:
 * the version of the managed sources' states, and the last one the control object took) and
 * `sources_applied` (other shards: the last version applied). The records are also kept in memory (at most MAX_SOURCES_PER_TENANT),
 * so ingest's verdict costs no query; held totals per source likewise.
 *
 * Pure decisions are src/sources/policy.ts; the calls to EventBridge are src/sources/manager.ts.
 * This module is only the storage, so it moves to another Durable Object unchanged.
 */
import type { SourceRecord, SourceState, Unverifiable } from "../sources/policy.ts";
import { newRequestId, relayIdAt } from "./protocol.ts";

type SourceRow = {
  name: string;
  account: string | null;
  managed: number;
  state: string;
  unverifiable: string | null;
  arn: string | null;
  creation_time: number | null;
  expiration_time: number | null;
  checked_at: number | null;
  next_check_at: number | null;
  failures: number;
  last_error: string | null;
  pending_since: number | null;
  created_at: number;
  updated_at: number;
  last_used_at: number | null;
};

/** One held entry as it leaves the hold (to the queue, or to the dead letters). */
export interface HeldRow {
  relayId: string;
  source: string;
  entry: string;
  bytes: number;
  acceptedAt: number;
  holdUntil: number;
}

/** How often last_used_at is written for one source at most, in ms (not a write per request). */
const TOUCH_EVERY_MS = 3_600_000;

function fromRow(r: SourceRow): SourceRecord {
  return {
    name: r.name,
    account: r.account,
    managed: r.managed === 1,
    state: r.state as SourceState,
    unverifiable: r.unverifiable as Unverifiable | null,
    arn: r.arn,
    creationTime: r.creation_time,
    expirationTime: r.expiration_time,
    checkedAt: r.checked_at,
    nextCheckAt: r.next_check_at,
    failures: r.failures,
    lastError: r.last_error,
    pendingSince: r.pending_since,
    createdAt: r.created_at,
    updatedAt: r.updated_at,
    lastUsedAt: r.last_used_at,
  };
}

export class SourceTable {
  readonly #sql: SqlStorage;
  #records = new Map<string, SourceRecord>();
  #held = new Map<string, { entries: number; bytes: number }>();

  readonly #shard: () => number;

  /** `shard`: this object's shard index, carried in the relay ids it gives held entries (routing). */
  constructor(sql: SqlStorage, shard: () => number = () => 0) {
    this.#sql = sql;
    this.#shard = shard;
  }

  /** Reads every record and the held totals (after migrate, inside blockConcurrencyWhile). */
  load(): void {
    this.#records = new Map(
      this.#sql
        .exec<SourceRow>("SELECT * FROM sources")
        .toArray()
        .map((r) => [r.name, fromRow(r)]),
    );
    this.#held = new Map(
      this.#sql
        .exec<{ source: string; n: number; b: number }>(
          "SELECT source, COUNT(*) AS n, SUM(bytes) AS b FROM held GROUP BY source",
        )
        .toArray()
        .map((r) => [r.source, { entries: r.n, bytes: r.b }]),
    );
  }

  // ---- Versions of the fanned-out states (docs/sources.md "Shards") ------------------------------

  /**
   * Marks the managed sources' states changed (inside the caller's transaction). Versions are
   * epoch-ms based, so they keep rising across a purge that clears this table.
   */
  bumpVersion(now: number): void {
    this.#setMeta("sources_version", Math.max(now, this.#metaNumber("sources_version") + 1));
  }

  get version(): number {
    return this.#metaNumber("sources_version");
  }

  /** True when a version the control object has not taken yet exists. */
  get unpublished(): boolean {
    return this.version > this.#metaNumber("sources_published");
  }

  setPublished(version: number): void {
    if (version > this.#metaNumber("sources_published")) this.#setMeta("sources_published", version);
  }

  /** The last version applied here from shard 0 (0: none). */
  get applied(): number {
    return this.#metaNumber("sources_applied");
  }

  setApplied(version: number): void {
    this.#setMeta("sources_applied", version);
  }

  #metaNumber(k: string): number {
    const v = this.#sql.exec<{ v: string }>("SELECT v FROM meta WHERE k = ?", k).toArray()[0]?.v;
    return v === undefined ? 0 : Number(v);
  }

  #setMeta(k: string, v: number): void {
    this.#sql.exec("INSERT INTO meta (k, v) VALUES (?, ?) ON CONFLICT (k) DO UPDATE SET v = excluded.v", k, String(v));
  }

  get(name: string): SourceRecord | undefined {
    return this.#records.get(name);
  }

  all(): SourceRecord[] {
    return [...this.#records.values()].sort((a, b) => (a.name < b.name ? -1 : 1));
  }

  get size(): number {
    return this.#records.size;
  }

  put(r: SourceRecord): void {
    this.#sql.exec(
      `INSERT OR REPLACE INTO sources (name, account, managed, state, unverifiable, arn, creation_time, expiration_time,
         checked_at, next_check_at, failures, last_error, pending_since, created_at, updated_at, last_used_at)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
      r.name,
      r.account,
      r.managed ? 1 : 0,
      r.state,
      r.unverifiable,
      r.arn,
      r.creationTime,
      r.expirationTime,
      r.checkedAt,
      r.nextCheckAt,
      r.failures,
      r.lastError,
      r.pendingSince,
      r.createdAt,
      r.updatedAt,
      r.lastUsedAt,
    );
    this.#records.set(r.name, { ...r });
  }

  remove(name: string): void {
    this.#sql.exec("DELETE FROM sources WHERE name = ?", name);
    this.#records.delete(name);
  }

  /** Records that an event named these sources (written at most hourly per source). */
  touch(names: readonly string[], now: number): void {
    for (const name of names) {
      const r = this.#records.get(name);
      if (!r || (r.lastUsedAt !== null && now - r.lastUsedAt < TOUCH_EVERY_MS)) continue;
      r.lastUsedAt = now;
      this.#sql.exec("UPDATE sources SET last_used_at = ? WHERE name = ?", now, name);
    }
  }

  /** Sources due for a read, soonest first. */
  due(now: number, limit: number): SourceRecord[] {
    return [...this.#records.values()]
      .filter((r) => r.nextCheckAt !== null && r.nextCheckAt <= now)
      .sort((a, b) => a.nextCheckAt! - b.nextCheckAt!)
      .slice(0, limit);
  }

  /** The earliest next read (null: nothing to read). */
  nextCheckAt(): number | null {
    let t: number | null = null;
    for (const r of this.#records.values()) {
      if (r.nextCheckAt !== null && (t === null || r.nextCheckAt < t)) t = r.nextCheckAt;
    }
    return t;
  }

  // ---- The hold ---------------------------------------------------------------------------------

  heldOf(source: string): { entries: number; bytes: number } {
    return this.#held.get(source) ?? { entries: 0, bytes: 0 };
  }

  /** Held totals per source (only sources with entries held). */
  heldBySource(): Record<string, { entries: number; bytes: number }> {
    return Object.fromEntries([...this.#held].map(([k, v]) => [k, { ...v }]));
  }

  get heldEntries(): number {
    let n = 0;
    for (const h of this.#held.values()) n += h.entries;
    return n;
  }

  get heldBytes(): number {
    let n = 0;
    for (const h of this.#held.values()) n += h.bytes;
    return n;
  }

  /** Holds entries for `source` (the caller runs this inside a transaction), returning their relay ids. */
  hold(
    source: string,
    entries: readonly { entry: string; bytes: number; acceptedAt?: number; relayId?: string }[],
    now: number,
    holdUntil: number,
  ): string[] {
    const ids: string[] = [];
    let bytes = 0;
    // New entries are named like a committed request's (protocol.ts): the id names this shard,
    // so the event's status is asked of the shard that holds it.
    const request = newRequestId(this.#shard());
    for (const [k, e] of entries.entries()) {
      const id = e.relayId ?? relayIdAt(request, k);
      this.#sql.exec(
        "INSERT INTO held (relay_id, source, entry, bytes, accepted_at, hold_until) VALUES (?, ?, ?, ?, ?, ?)",
        id,
        source,
        e.entry,
        e.bytes,
        e.acceptedAt ?? now,
        holdUntil,
      );
      ids.push(id);
      bytes += e.bytes;
    }
    const h = this.heldOf(source);
    this.#held.set(source, { entries: h.entries + entries.length, bytes: h.bytes + bytes });
    return ids;
  }

  /** Takes every held entry of `source` out, in the order they were accepted. */
  take(source: string): HeldRow[] {
    const rows = this.#rows("SELECT * FROM held WHERE source = ? ORDER BY seq", source);
    this.#sql.exec("DELETE FROM held WHERE source = ?", source);
    this.#held.delete(source);
    return rows;
  }

  /** Takes the held entries whose hold ran out (hold_until <= now). */
  takeExpired(now: number): HeldRow[] {
    const rows = this.#rows("SELECT * FROM held WHERE hold_until <= ? ORDER BY seq", now);
    if (rows.length === 0) return rows;
    this.#sql.exec("DELETE FROM held WHERE hold_until <= ?", now);
    for (const r of rows) {
      const h = this.heldOf(r.source);
      const left = { entries: h.entries - 1, bytes: h.bytes - r.bytes };
      if (left.entries <= 0) this.#held.delete(r.source);
      else this.#held.set(r.source, left);
    }
    return rows;
  }

  /** When the next hold runs out (null: nothing held). */
  nextHoldExpiry(): number | null {
    if (this.#held.size === 0) return null;
    return this.#sql.exec<{ t: number | null }>("SELECT MIN(hold_until) AS t FROM held").toArray()[0]?.t ?? null;
  }

  /** A held entry's status, or null when it is not held. */
  statusOf(relayId: string): { source: string; acceptedAt: number; holdUntil: number } | null {
    if (this.#held.size === 0) return null;
    const r = this.#rows("SELECT * FROM held WHERE relay_id = ?", relayId)[0];
    return r ? { source: r.source, acceptedAt: r.acceptedAt, holdUntil: r.holdUntil } : null;
  }

  /** Forgets the memory (the tenant's storage was cleared by the caller). */
  reset(): void {
    this.#records.clear();
    this.#held.clear();
  }

  #rows(query: string, ...args: (string | number)[]): HeldRow[] {
    return this.#sql
      .exec<{
        relay_id: string;
        source: string;
        entry: string;
        bytes: number;
        accepted_at: number;
        hold_until: number;
      }>(query, ...args)
      .toArray()
      .map((r) => ({
        relayId: r.relay_id,
        source: r.source,
        entry: r.entry,
        bytes: r.bytes,
        acceptedAt: r.accepted_at,
        holdUntil: r.hold_until,
      }));
  }
}

/** Part of migration 3 (schema.ts): the tables above, idempotent (the sources work once shipped them as 2). */
export const SOURCES_MIGRATION = `
  CREATE TABLE IF NOT EXISTS sources (
    name TEXT PRIMARY KEY,
    account TEXT,
    managed INTEGER NOT NULL,
    state TEXT NOT NULL,
    unverifiable TEXT,
    arn TEXT,
    creation_time INTEGER,
    expiration_time INTEGER,
    checked_at INTEGER,
    next_check_at INTEGER,
    failures INTEGER NOT NULL DEFAULT 0,
    last_error TEXT,
    pending_since INTEGER,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    last_used_at INTEGER
  );
  CREATE TABLE IF NOT EXISTS held (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    relay_id TEXT NOT NULL UNIQUE,
    source TEXT NOT NULL,
    entry TEXT NOT NULL,
    bytes INTEGER NOT NULL,
    accepted_at INTEGER NOT NULL,
    hold_until INTEGER NOT NULL
  );
  CREATE INDEX IF NOT EXISTS held_source ON held (source, seq);
  CREATE INDEX IF NOT EXISTS held_until ON held (hold_until);
`;
