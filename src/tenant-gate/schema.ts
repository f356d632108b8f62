/**
 * The tenant gate's SQLite schema (docs/storage.md), applied as numbered migrations recorded in
 * `meta.schema_version`: an object created by old code is migrated forward, never guessed at.
 * A migration, once released, is never edited: a change is a new numbered one appended.
 *
 * Every table has one owning module, the only one whose SQL touches it:
 *
 * | table          | owner           |
 * | -------------- | --------------- |
 * | `meta`         | access.ts (`tenant_id`, `revision`, `status`); this file (`schema_version`) |
 * | `revoked`      | access.ts       |
 * | `queue`        | buffer.ts       |
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
  // 2: partner event sources and the entries held for them (sources.ts).
  SOURCES_MIGRATION,
];

export const SCHEMA_VERSION = MIGRATIONS.length;

/** Brings the object's database to SCHEMA_VERSION inside one transaction. */
export function migrate(storage: DurableObjectStorage): void {
  storage.transactionSync(() => {
    storage.sql.exec("CREATE TABLE IF NOT EXISTS meta (k TEXT PRIMARY KEY, v TEXT NOT NULL)");
    const row = storage.sql.exec<{ v: string }>("SELECT v FROM meta WHERE k = 'schema_version'").toArray()[0];
    const current = row ? Number(row.v) : 0;
    if (current > SCHEMA_VERSION) {
      throw new Error(`tenant gate storage is at schema ${current}, newer than this code (${SCHEMA_VERSION})`);
    }
    for (let v = current; v < SCHEMA_VERSION; v++) storage.sql.exec(MIGRATIONS[v]!);
    storage.sql.exec(
      "INSERT INTO meta (k, v) VALUES ('schema_version', ?) ON CONFLICT (k) DO UPDATE SET v = excluded.v",
      String(SCHEMA_VERSION),
    );
  });
}
