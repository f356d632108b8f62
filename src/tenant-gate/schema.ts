/**
 * The tenant gate's SQLite schema (docs/storage.md), applied as numbered migrations recorded in
 * `meta.schema_version`: an object created by old code is migrated forward, never guessed at.
 * A migration, once released, is never edited: a change is a new numbered one appended.
 *
 * Every table has one owning module, the only one whose SQL touches it:
 *
 * | table          | owner           |
 * | -------------- | --------------- |
 * | `meta`         | access.ts (`tenant_id`, `revision`, `status`); shard.ts (`shard_*`); sources.ts (`sources_*`); this file (`schema_version`) |
 * | `revoked`      | access.ts       |
 * | `batches`      | buffer.ts       |
 * | `outcomes`     | events.ts       |
 * | `dead_letters` | events.ts       |
 * | `idempotency`  | idempotency.ts  |
 * | `sources`      | sources.ts      |
 * | `held`         | sources.ts      |
 *
 * (counters.ts owns the `stats` key of the key-value storage; admission.ts and drain.ts own no
 * storage.)
 */
import { SOURCES_MIGRATION } from "./sources.ts";

const MIGRATIONS: readonly string[] = [
  // 1: the first schema.
  `
  CREATE TABLE IF NOT EXISTS meta (k TEXT PRIMARY KEY, v TEXT NOT NULL);
  CREATE TABLE IF NOT EXISTS revoked (principal TEXT PRIMARY KEY, revoked_at INTEGER NOT NULL);
  CREATE TABLE IF NOT EXISTS queue (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    relay_id TEXT NOT NULL UNIQUE,
    entry TEXT NOT NULL,
    bytes INTEGER NOT NULL,
    accepted_at INTEGER NOT NULL,
    queued_at INTEGER NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    next_at INTEGER NOT NULL,
    lease_until INTEGER NOT NULL DEFAULT 0,
    in_flight INTEGER NOT NULL DEFAULT 0,
    outcome_unknown INTEGER NOT NULL DEFAULT 0,
    last_code TEXT,
    last_message TEXT
  );
  CREATE INDEX IF NOT EXISTS queue_due ON queue (next_at, seq);
  CREATE TABLE IF NOT EXISTS outcomes (
    relay_id TEXT PRIMARY KEY,
    state TEXT NOT NULL,
    event_id TEXT,
    code TEXT,
    message TEXT,
    attempts INTEGER NOT NULL,
    at INTEGER NOT NULL
  );
  CREATE INDEX IF NOT EXISTS outcomes_at ON outcomes (at);
  CREATE TABLE IF NOT EXISTS dead_letters (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    relay_id TEXT NOT NULL UNIQUE,
    entry TEXT NOT NULL,
    bytes INTEGER NOT NULL,
    code TEXT NOT NULL,
    message TEXT NOT NULL,
    attempts INTEGER NOT NULL,
    accepted_at INTEGER NOT NULL,
    failed_at INTEGER NOT NULL
  );
  CREATE TABLE IF NOT EXISTS idempotency (
    key TEXT PRIMARY KEY,
    body_hash TEXT NOT NULL,
    state TEXT NOT NULL,
    status INTEGER,
    body TEXT,
    content_type TEXT,
    locked_until INTEGER NOT NULL,
    expires_at INTEGER NOT NULL
  );
  CREATE INDEX IF NOT EXISTS idempotency_expiry ON idempotency (expires_at);
  `,
  // 2: the buffer as one row per committed request (buffer.ts): the entries as one JSON array,
  // per-entry state inside. Rows of the old per-entry table move over as one-entry rows named by
  // their relay id (legacy = 1), keeping their attempts, lease, due time and last error.
  `
  CREATE TABLE batches (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    request TEXT NOT NULL UNIQUE,
    legacy INTEGER NOT NULL DEFAULT 0,
    entries TEXT NOT NULL,
    sizes TEXT NOT NULL,
    st TEXT NOT NULL,
    pending INTEGER NOT NULL,
    pending_bytes INTEGER NOT NULL,
    accepted_at INTEGER NOT NULL,
    queued_at INTEGER NOT NULL,
    next_at INTEGER NOT NULL
  );
  CREATE INDEX batches_due ON batches (next_at, seq);
  INSERT INTO batches (request, legacy, entries, sizes, st, pending, pending_bytes, accepted_at, queued_at, next_at)
    SELECT relay_id, 1, '[' || entry || ']', json_array(bytes),
      json_array(json_object('a', attempts, 't', next_at, 'f', in_flight, 'u', outcome_unknown, 'd', 0,
        'c', last_code, 'm', last_message)),
      1, bytes, accepted_at, queued_at, next_at
    FROM queue ORDER BY seq;
  DROP TABLE queue;
  `,
  // 3: partner event sources and the entries held for them (sources.ts). Idempotent, and it
  // carries a per-entry `queue` over into `batches` as migration 2 does: a database the sources
  // work left at version 2 (with these tables as its migration 2, and the old queue) ends up with
  // both; on a database migration 2 already moved, the recreated queue is empty and goes again.
  `${SOURCES_MIGRATION}
  CREATE TABLE IF NOT EXISTS batches (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    request TEXT NOT NULL UNIQUE,
    legacy INTEGER NOT NULL DEFAULT 0,
    entries TEXT NOT NULL,
    sizes TEXT NOT NULL,
    st TEXT NOT NULL,
    pending INTEGER NOT NULL,
    pending_bytes INTEGER NOT NULL,
    accepted_at INTEGER NOT NULL,
    queued_at INTEGER NOT NULL,
    next_at INTEGER NOT NULL
  );
  CREATE INDEX IF NOT EXISTS batches_due ON batches (next_at, seq);
  CREATE TABLE IF NOT EXISTS queue (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    relay_id TEXT NOT NULL UNIQUE,
    entry TEXT NOT NULL,
    bytes INTEGER NOT NULL,
    accepted_at INTEGER NOT NULL,
    queued_at INTEGER NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    next_at INTEGER NOT NULL,
    lease_until INTEGER NOT NULL DEFAULT 0,
    in_flight INTEGER NOT NULL DEFAULT 0,
    outcome_unknown INTEGER NOT NULL DEFAULT 0,
    last_code TEXT,
    last_message TEXT
  );
  INSERT INTO batches (request, legacy, entries, sizes, st, pending, pending_bytes, accepted_at, queued_at, next_at)
    SELECT relay_id, 1, '[' || entry || ']', json_array(bytes),
      json_array(json_object('a', attempts, 't', next_at, 'f', in_flight, 'u', outcome_unknown, 'd', 0,
        'c', last_code, 'm', last_message)),
      1, bytes, accepted_at, queued_at, next_at
    FROM queue ORDER BY seq;
  DROP TABLE queue;
  `,
];

export const SCHEMA_VERSION = MIGRATIONS.length;

/** Brings the object's database to SCHEMA_VERSION inside one transaction. */
export function migrate(storage: DurableObjectStorage): void {
  applyMigrations(storage, MIGRATIONS, "tenant gate");
}

/**
 * Applies numbered migrations recorded in `meta.schema_version` inside one transaction (shared
 * with the control object, control.ts, which has its own list). Refuses a newer schema.
 */
export function applyMigrations(storage: DurableObjectStorage, migrations: readonly string[], what: string): void {
  const target = migrations.length;
  storage.transactionSync(() => {
    storage.sql.exec("CREATE TABLE IF NOT EXISTS meta (k TEXT PRIMARY KEY, v TEXT NOT NULL)");
    const row = storage.sql.exec<{ v: string }>("SELECT v FROM meta WHERE k = 'schema_version'").toArray()[0];
    const current = row ? Number(row.v) : 0;
    if (current > target) {
      throw new Error(`${what} storage is at schema ${current}, newer than this code (${target})`);
    }
    for (let v = current; v < target; v++) storage.sql.exec(migrations[v]!);
    storage.sql.exec(
      "INSERT INTO meta (k, v) VALUES ('schema_version', ?) ON CONFLICT (k) DO UPDATE SET v = excluded.v",
      String(target),
    );
  });
}
