/**
 * TenantControl: one SQLite-backed Durable Object per tenant (named by the tenant id), the
 * tenant's control plane (docs/scaling.md). It keeps what must be single:
 *
 * - the access authority (access.ts, the same module each shard holds a copy of): the highest
 *   record revision with its status, and every revoked credential;
 * - the shard directory: every shard index the tenant ever had, which are routed (index < N),
 *   and which retired ones may still hold a backlog (they drain it, and count as senders so the
 *   shards' upstream rate still adds up to the tenant's);
 * - per-tenant states of other kinds (`states` table, by kind): `sources`, the managed partner
 *   event sources' states, which shard 0 (where they are managed) publishes here;
 * - a durable fan-out outbox: one row per (shard, kind) still to be told; the message is the
 *   whole current state of that kind, built when sent, so a retry never sends a stale copy.
 *
 * Nothing on the hot path calls this object: requests go to one data shard (TenantGate), whose
 * copy of the state this object keeps current. An admin change is recorded here and put in the
 * outbox in one transaction, then sent to every shard; the call reports success only once every
 * shard acked (its copy is durable there). A crash or a shard that cannot be reached leaves the
 * outbox rows, which this object's alarm retries with backoff and which re-running the admin
 * command sends at once. Until then a shard not yet told still has its old copy (docs/admin.md).
 */
import { DurableObject } from "cloudflare:workers";
import { MAX_SHARDS } from "../limits.ts";
import { log } from "../log.ts";
import { tenantRecordSchema } from "../tenants/record.ts";
import { Access } from "./access.ts";
import { shardOf } from "./client.ts";
import {
  type AccessInput,
  type ControlRpc,
  type DeadLetter,
  type Denied,
  type DirectoryState,
  type FanOutResult,
  GATE_PROTOCOL,
  type GateStatus,
  relayIdShard,
  type ShardRpc,
  type ShardStateMessage,
  type ShardSummary,
  type StatusInput,
} from "./protocol.ts";
import { applyMigrations } from "./schema.ts";

/** The control object's schema: numbered migrations, never edited once released (schema.ts). */
const CONTROL_MIGRATIONS: readonly string[] = [
  // 1: the first schema.
  `
  CREATE TABLE IF NOT EXISTS meta (k TEXT PRIMARY KEY, v TEXT NOT NULL);
  CREATE TABLE IF NOT EXISTS revoked (principal TEXT PRIMARY KEY, revoked_at INTEGER NOT NULL);
  CREATE TABLE IF NOT EXISTS shards (
    shard INTEGER PRIMARY KEY,
    routed INTEGER NOT NULL,
    draining INTEGER NOT NULL DEFAULT 0,
    retired_at INTEGER NOT NULL DEFAULT 0
  );
  CREATE TABLE IF NOT EXISTS states (kind TEXT PRIMARY KEY, body TEXT NOT NULL);
  CREATE TABLE IF NOT EXISTS outbox (
    shard INTEGER NOT NULL,
    kind TEXT NOT NULL,
    gen INTEGER NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    next_at INTEGER NOT NULL,
    last_error TEXT,
    PRIMARY KEY (shard, kind)
  );
  `,
];

/** First retry of an unacked fan-out message, in ms; doubles per attempt up to OUTBOX_RETRY_CAP_MS. */
const OUTBOX_RETRY_MS = 1_000;
const OUTBOX_RETRY_CAP_MS = 60_000;
/** How often a retired shard is asked whether its backlog is gone, in ms. */
const DRAINING_POLL_MS = 30_000;
/**
 * How long after leaving the routed set a shard still counts as a sender even when empty, in
 * ms: Workers may route to it until the new record reaches them (KV ~60 s, platform.md, plus
 * the isolate cache's TENANT_CACHE_TTL_MS 30 s), and whatever it accepts then it drains.
 */
const RETIRE_GRACE_MS = 120_000;

/** The kinds this object produces itself (others come from the `states` table). */
const ACCESS = "access";
const DIRECTORY = "directory";
/** Produced by shard 0 (the managed partner event sources' states), stored and fanned out here. */
const SOURCES = "sources";

type ShardRow = { shard: number; routed: number; draining: number; retired_at: number };

/**
 * The tenant's sources in its status: the records are shard 0's (where sources are managed, and
 * where the source routes and polling go: docs/sources.md); entries held count on every shard
 * (each shard holds the entries it accepted).
 */
function sourcesOf(all: readonly GateStatus[], rows: readonly { shard: number }[]): Pick<GateStatus, "sources"> {
  const first = all[rows.findIndex((r) => r.shard === 0)]?.sources;
  if (!first) return {};
  const held = all.reduce((n, s) => n + (s.sources?.heldEntries ?? 0), 0);
  const heldBytes = all.reduce((n, s) => n + (s.sources?.heldBytes ?? 0), 0);
  return { sources: { ...first, heldEntries: held, heldBytes } };
}

export class TenantControl extends DurableObject<Env> implements ControlRpc {
  readonly #access: Access;
  #tenantId: string | null = null;
  #region = "";
  #gen = 0;

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    this.#access = new Access(ctx.storage);
    void ctx.blockConcurrencyWhile(async () => {
      applyMigrations(ctx.storage, CONTROL_MIGRATIONS, "tenant control");
      this.#access.load();
      this.#tenantId = this.#access.tenantId;
      this.#region = this.#meta("region") ?? "";
      this.#gen = Number(this.#meta("outbox_gen") ?? 0);
    });
  }

  // ---- RPC: administration (the admin API only) -------------------------------------------------

  /** Records a revocation or status change, then tells every shard; ok once all acked. */
  async setAccess(input: AccessInput): Promise<FanOutResult<{ revision: number; status: "active" | "disabled" }>> {
    await this.#ready(input.tenantId);
    const now = Date.now();
    const value = this.ctx.storage.transactionSync(() => {
      const v = this.#access.apply(input, now);
      this.#enqueue([ACCESS], this.#known(), now);
      return v;
    });
    return this.#deliver(value);
  }

  /**
   * Sets the number of routed shards. New shards are seeded with the access state and the
   * directory before this answers ok, so the tenant record with the new N may be written after
   * it (docs/admin.md); shards no longer routed keep draining and count as senders until empty.
   */
  async setShards(input: {
    v: typeof GATE_PROTOCOL;
    tenantId: string;
    shards: number;
    region?: string;
  }): Promise<FanOutResult<DirectoryState & { known: number }>> {
    const n = Math.floor(input.shards);
    if (!(n >= 1 && n <= MAX_SHARDS)) throw new RangeError(`shards must be 1 to ${MAX_SHARDS}`);
    await this.#ready(input.tenantId, input.region);
    // Shard 0's managed sources' states, so every shard gives their verdicts from the first
    // request routed to it (a change shard 0 makes after this is published by shard 0 itself).
    const sources = await this.#shard(0).exportSources({ v: GATE_PROTOCOL });
    const now = Date.now();
    this.ctx.storage.transactionSync(() => {
      if (sources && (sources.version > 0 || sources.sources.length > 0))
        this.#storeState(SOURCES, sources, sources.version);
      const sql = this.ctx.storage.sql;
      const known = this.#known().length;
      for (let i = 0; i < Math.max(n, known); i++) {
        // A shard leaving the routed set may hold a backlog: it drains it and counts as a sender.
        sql.exec(
          `INSERT INTO shards (shard, routed, draining) VALUES (?, ?, 0)
           ON CONFLICT (shard) DO UPDATE SET draining = CASE WHEN routed = 1 AND excluded.routed = 0 THEN 1 ELSE draining END,
             retired_at = CASE WHEN routed = 1 AND excluded.routed = 0 THEN ? ELSE retired_at END,
             routed = excluded.routed`,
          i,
          i < n ? 1 : 0,
          now,
        );
      }
      this.#enqueue([ACCESS, DIRECTORY, ...this.#stateKinds()], this.#known(), now);
    });
    await this.#ensureAlarm(now + DRAINING_POLL_MS);
    return this.#deliver({ ...this.#directory(), known: this.#known().length });
  }

  /**
   * Publishes a state of another kind to every shard: stored, fanned out like access. `body` is
   * the whole state of that kind; with `version`, a state older than the stored one is not stored
   * (shard 0's `sources` calls may arrive out of order). Whatever is owed is still sent.
   */
  async setState(input: {
    v: typeof GATE_PROTOCOL;
    tenantId: string;
    kind: string;
    body: unknown;
    version?: number;
  }): Promise<FanOutResult<null>> {
    if (input.kind === ACCESS || input.kind === DIRECTORY) throw new RangeError(`${input.kind} has its own call`);
    await this.#ready(input.tenantId);
    const now = Date.now();
    this.ctx.storage.transactionSync(() => {
      if (this.#storeState(input.kind, input.body, input.version)) this.#enqueue([input.kind], this.#known(), now);
    });
    return this.#deliver(null);
  }

  /** Every shard's held entries per source, summed. */
  async heldBySource(input: {
    v: typeof GATE_PROTOCOL;
    tenantId: string;
  }): Promise<Record<string, { entries: number; bytes: number }>> {
    await this.#ready(input.tenantId);
    const all = await Promise.all(this.#known().map((s) => this.#shard(s).heldBySource({ v: GATE_PROTOCOL })));
    const sum: Record<string, { entries: number; bytes: number }> = {};
    for (const held of all)
      for (const [name, h] of Object.entries(held)) {
        const t = (sum[name] ??= { entries: 0, bytes: 0 });
        t.entries += h.entries;
        t.bytes += h.bytes;
      }
    return sum;
  }

  // ---- RPC: reads across shards ----------------------------------------------------------------

  /** The sum of every shard's status (authorised by each shard like a request when principal is set). */
  async status(input: StatusInput): Promise<Denied | { kind: "ok"; status: GateStatus; shards: ShardSummary[] }> {
    await this.#ready(input.tenantId);
    const rows = this.#rows();
    const answers = await Promise.all(rows.map((r) => this.#shard(r.shard).status(input)));
    const denied = answers.find((a) => a.kind === "denied");
    if (denied) return denied;
    const all = answers.map((a) => (a as Extract<typeof a, { kind: "ok" }>).status);
    const routed = all.filter((_, i) => rows[i]!.routed === 1);
    const sum = (k: keyof GateStatus) => all.reduce((n, s) => n + ((s[k] as number) ?? 0), 0);
    const newest = all.reduce((a, b) => (b.revision > a.revision ? b : a));
    const errors = all.map((s) => s.lastUpstreamError).filter((e) => e !== null);
    const ages = all.map((s) => s.oldestQueuedAgeMs).filter((a) => a !== null);
    const drains = all.map((s) => s.nextDrainAt).filter((a) => a !== null);
    const buckets = routed.filter((s) => s.rate.limit > 0);
    return {
      kind: "ok",
      status: {
        tenantId: input.tenantId,
        revision: Math.max(newest.revision, this.#access.revision),
        status: newest.status,
        accepted: sum("accepted"),
        delivered: sum("delivered"),
        failed: sum("failed"),
        queued: sum("queued"),
        queuedBytes: sum("queuedBytes"),
        oldestQueuedAgeMs: ages.length ? Math.max(...ages) : null,
        deadLetters: sum("deadLetters"),
        duplicatesPossible: sum("duplicatesPossible"),
        upstreamCalls: sum("upstreamCalls"),
        lastUpstreamError: errors.length ? errors.reduce((a, b) => (b.at > a.at ? b : a)) : null,
        // Each shard reports its bucket scaled to the tenant; the mean over routed shards estimates the tenant's.
        rate: buckets.length
          ? {
              limit: Math.max(...buckets.map((s) => s.rate.limit)),
              remaining: Math.floor(buckets.reduce((n, s) => n + s.rate.remaining, 0) / buckets.length),
              resetS: Math.max(...buckets.map((s) => s.rate.resetS)),
              windowS: buckets[0]!.rate.windowS,
            }
          : (routed[0]?.rate ?? { limit: 0, remaining: 0, resetS: 0, windowS: 1 }),
        nextDrainAt: drains.length ? Math.min(...drains) : null,
        ...sourcesOf(all, rows),
      },
      shards: all.map((s, i) => ({
        shard: rows[i]!.shard,
        routed: rows[i]!.routed === 1,
        queued: s.queued,
        deadLetters: s.deadLetters,
        upstreamCalls: s.upstreamCalls,
      })),
    };
  }

  /**
   * Dead letters of every shard, shard by shard. The cursor is `<shard>:<seq>`; a bare number
   * (a cursor from before shards) is shard 0's.
   */
  async deadLetters(input: {
    v: typeof GATE_PROTOCOL;
    tenantId: string;
    limit: number;
    after: string | null;
  }): Promise<{ items: DeadLetter[]; next: string | null }> {
    await this.#ready(input.tenantId);
    const known = this.#known();
    let [s, seq] = parseCursor(input.after);
    const items: DeadLetter[] = [];
    while (s < known.length && items.length < input.limit) {
      const out = await this.#shard(s).deadLetters({ v: GATE_PROTOCOL, limit: input.limit - items.length, after: seq });
      items.push(...out.items);
      if (out.next !== null) return { items, next: `${s}:${out.next}` };
      s++;
      seq = null;
    }
    return { items, next: s < known.length ? `${s}:0` : null };
  }

  /** Replays dead letters on the shards their ids name (all: on every shard). */
  async replay(input: {
    v: typeof GATE_PROTOCOL;
    tenantId: string;
    all: boolean;
    relayEventIds: string[];
  }): Promise<{ replayed: number; notFound: string[] }> {
    await this.#ready(input.tenantId);
    const known = this.#known();
    const byShard = new Map<number, string[]>();
    const notFound: string[] = [];
    if (input.all) for (const s of known) byShard.set(s, []);
    for (const id of input.relayEventIds) {
      const s = relayIdShard(id);
      if (s === null || !known.includes(s)) notFound.push(id);
      else byShard.set(s, [...(byShard.get(s) ?? []), id]);
    }
    const outs = await Promise.all(
      [...byShard].map(async ([s, ids]) => ({
        s,
        out: await this.#shard(s).replay({ v: GATE_PROTOCOL, all: input.all, relayEventIds: ids }),
      })),
    );
    let replayed = 0;
    const now = Date.now();
    let revived = false;
    this.ctx.storage.transactionSync(() => {
      for (const { s, out } of outs) {
        replayed += out.replayed;
        notFound.push(...out.notFound);
        // A retired shard given entries again sends again: count it as a sender.
        if (out.replayed > 0) {
          const r = this.ctx.storage.sql.exec(
            "UPDATE shards SET draining = 1, retired_at = ? WHERE shard = ? AND routed = 0",
            now,
            s,
          );
          if (r.rowsWritten > 0) revived = true;
        }
      }
      if (revived) this.#enqueue([DIRECTORY], this.#known(), now);
    });
    if (revived) {
      await this.#ensureAlarm(now + DRAINING_POLL_MS);
      await this.#flush(now, true);
    }
    return { replayed, notFound };
  }

  /**
   * Deletes every shard's data (tenant deletion). Refuses while any shard holds queued events
   * unless forced. The access state and the directory stay here and on every shard (a tombstone).
   */
  async purge(input: {
    v: typeof GATE_PROTOCOL;
    tenantId: string;
    force: boolean;
  }): Promise<{ purged: boolean; queued: number }> {
    await this.#ready(input.tenantId);
    const known = this.#known();
    if (!input.force) {
      const statuses = await Promise.all(
        known.map((s) =>
          this.#shard(s).status({
            v: GATE_PROTOCOL,
            tenantId: input.tenantId,
            principal: null,
            revision: 0,
            status: "active",
          }),
        ),
      );
      const queued = statuses.reduce((n, a) => n + (a.kind === "ok" ? a.status.queued : 0), 0);
      if (queued > 0) return { purged: false, queued };
    }
    const outs = await Promise.all(known.map((s) => this.#shard(s).purge({ v: GATE_PROTOCOL, force: input.force })));
    const queued = outs.reduce((n, o) => n + o.queued, 0);
    return { purged: outs.every((o) => o.purged), queued };
  }

  // ---- The alarm: outbox retries and retired shards' backlogs --------------------------------

  override async alarm(): Promise<void> {
    const now = Date.now();
    try {
      await this.#flush(now, false);
      await this.#pollDraining(now);
    } catch (e) {
      log.error("control_alarm_failed", { tenantId: this.#tenantId, error: (e as Error)?.message ?? String(e) });
    } finally {
      try {
        const wake = this.#nextWake();
        if (wake !== null) await this.ctx.storage.setAlarm(wake);
      } catch (e) {
        log.error("alarm_rearm_failed", { tenantId: this.#tenantId, error: (e as Error)?.message ?? String(e) });
      }
    }
  }

  // ---- Internals -------------------------------------------------------------------------------

  /**
   * Before the first admin call: remember the tenant, learn its region and shard count from its
   * record (placement; a tenant whose record says N > 1 before any setShards), and adopt shard
   * 0's access state (a tenant from before shards keeps its revocations when it grows).
   */
  async #ready(tenantId: string, region?: string): Promise<void> {
    if (region && region !== this.#region) {
      this.#region = region;
      this.#setMeta("region", region);
    }
    if (this.#meta("bootstrapped") === "1" && this.#tenantId === tenantId) return;
    let recordShards = 1;
    try {
      const raw = await this.env.TENANTS.get(`tenant:${tenantId}`, "json");
      const rec = raw === null ? null : tenantRecordSchema.safeParse(raw);
      if (rec?.success) {
        this.#region = region || rec.data.region;
        recordShards = rec.data.limits.shards;
      }
    } catch (e) {
      log.warn("control_record_unreadable", { tenantId, error: (e as Error)?.message ?? String(e) });
    }
    const shard0 = await shardOf(this.env, { id: tenantId, region: this.#region }, 0).exportAccess({
      v: GATE_PROTOCOL,
    });
    const now = Date.now();
    this.ctx.storage.transactionSync(() => {
      this.#access.merge({ ...shard0, tenantId }, now);
      this.#tenantId = tenantId;
      const sql = this.ctx.storage.sql;
      for (let i = 0; i < recordShards; i++)
        sql.exec("INSERT INTO shards (shard, routed, draining) VALUES (?, 1, 0) ON CONFLICT (shard) DO NOTHING", i);
      sql.exec("INSERT INTO shards (shard, routed, draining) VALUES (0, 1, 0) ON CONFLICT (shard) DO NOTHING");
      this.#setMeta("region", this.#region);
      this.#setMeta("bootstrapped", "1");
    });
  }

  /**
   * Stores the whole state of a kind; with a version, only when newer than the stored one (a
   * `version` field in its body). Returns whether it was stored.
   */
  #storeState(kind: string, body: unknown, version?: number): boolean {
    const sql = this.ctx.storage.sql;
    if (version !== undefined) {
      const row = sql.exec<{ body: string }>("SELECT body FROM states WHERE kind = ?", kind).toArray()[0];
      const stored = row ? Number((JSON.parse(row.body) as { version?: unknown }).version ?? 0) : 0;
      if (stored >= version) return false;
    }
    sql.exec(
      "INSERT INTO states (kind, body) VALUES (?, ?) ON CONFLICT (kind) DO UPDATE SET body = excluded.body",
      kind,
      JSON.stringify(body),
    );
    return true;
  }

  /** The kinds of the `states` table (fanned out to a new shard with access and the directory). */
  #stateKinds(): string[] {
    return this.ctx.storage.sql
      .exec<{ kind: string }>("SELECT kind FROM states ORDER BY kind")
      .toArray()
      .map((r) => r.kind);
  }

  #rows(): ShardRow[] {
    return this.ctx.storage.sql
      .exec<ShardRow>("SELECT shard, routed, draining, retired_at FROM shards ORDER BY shard")
      .toArray();
  }

  /** Every shard index the tenant ever had (0 to the highest; the directory never has gaps). */
  #known(): number[] {
    const rows = this.#rows();
    return rows.length ? rows.map((r) => r.shard) : [0];
  }

  #directory(): DirectoryState {
    const rows = this.#rows();
    const shards = Math.max(1, rows.filter((r) => r.routed === 1).length);
    return { shards, senders: shards + rows.filter((r) => r.routed === 0 && r.draining === 1).length };
  }

  #shard(i: number): ShardRpc {
    return shardOf(this.env, { id: this.#tenantId ?? "", region: this.#region }, i);
  }

  /** Puts (shard, kind) rows in the outbox, due now; a newer generation supersedes a pending one. */
  #enqueue(kinds: readonly string[], shards: readonly number[], now: number): void {
    const sql = this.ctx.storage.sql;
    for (const s of shards)
      for (const k of kinds) {
        this.#gen++;
        sql.exec(
          `INSERT INTO outbox (shard, kind, gen, attempts, next_at) VALUES (?, ?, ?, 0, ?)
           ON CONFLICT (shard, kind) DO UPDATE SET gen = excluded.gen, attempts = 0, next_at = excluded.next_at, last_error = NULL`,
          s,
          k,
          this.#gen,
          now,
        );
      }
    this.#setMeta("outbox_gen", String(this.#gen));
  }

  /** Sends now and answers ok only when nothing is left in the outbox for any shard. */
  async #deliver<T>(value: T): Promise<FanOutResult<T>> {
    const now = Date.now();
    // Armed before sending: a crash from here on leaves the outbox and an alarm to finish it.
    await this.#ensureAlarm(now + OUTBOX_RETRY_MS);
    const pending = await this.#flush(now, true);
    return pending.length === 0 ? { kind: "ok", value } : { kind: "incomplete", pendingShards: pending, value };
  }

  /**
   * Sends the outbox (all of it, or only the due rows), one applyState call per shard in
   * parallel, and deletes what was acked (only the generation sent: a newer change made while
   * the call was out stays). Returns the shards still owed something.
   */
  async #flush(now: number, all: boolean): Promise<number[]> {
    type Row = { shard: number; kind: string; gen: number; attempts: number };
    const rows = this.ctx.storage.sql
      .exec<Row>(
        all
          ? "SELECT shard, kind, gen, attempts FROM outbox ORDER BY shard"
          : "SELECT shard, kind, gen, attempts FROM outbox WHERE next_at <= ? ORDER BY shard",
        ...(all ? [] : [now]),
      )
      .toArray();
    const byShard = new Map<number, Row[]>();
    for (const r of rows) byShard.set(r.shard, [...(byShard.get(r.shard) ?? []), r]);
    const tenantId = this.#tenantId ?? "";
    await Promise.all(
      [...byShard].map(async ([s, owed]) => {
        const states: ShardStateMessage[] = owed.map((r) => this.#message(r.kind));
        let acked: string[] = [];
        let error: string | null = null;
        try {
          const out = await this.#shard(s).applyState({ v: GATE_PROTOCOL, tenantId, shard: s, states });
          acked = out.applied;
          if (out.unknown.length) error = `shard does not know ${out.unknown.join(", ")} (older code)`;
        } catch (e) {
          error = (e as Error)?.message ?? String(e);
        }
        const sql = this.ctx.storage.sql;
        const later = Date.now();
        for (const r of owed) {
          if (acked.includes(r.kind)) {
            sql.exec("DELETE FROM outbox WHERE shard = ? AND kind = ? AND gen = ?", s, r.kind, r.gen);
          } else {
            const delay = Math.min(OUTBOX_RETRY_CAP_MS, OUTBOX_RETRY_MS * 2 ** r.attempts);
            sql.exec(
              "UPDATE outbox SET attempts = attempts + 1, next_at = ?, last_error = ? WHERE shard = ? AND kind = ? AND gen = ?",
              later + delay,
              error,
              s,
              r.kind,
              r.gen,
            );
          }
        }
        if (error) log.warn("fan_out_failed", { tenantId, shard: s, kinds: owed.map((r) => r.kind).join(","), error });
      }),
    );
    return this.ctx.storage.sql
      .exec<{ shard: number }>("SELECT DISTINCT shard FROM outbox ORDER BY shard")
      .toArray()
      .map((r) => r.shard);
  }

  /** The whole current state of a kind, as sent to a shard. */
  #message(kind: string): ShardStateMessage {
    if (kind === ACCESS) return { kind, body: this.#access.export() };
    if (kind === DIRECTORY) return { kind, body: this.#directory() };
    const row = this.ctx.storage.sql
      .exec<{ body: string }>("SELECT body FROM states WHERE kind = ?", kind)
      .toArray()[0];
    return { kind, body: row ? JSON.parse(row.body) : null };
  }

  /** Retired shards whose backlog is gone stop counting as senders; the new directory goes out. */
  async #pollDraining(now: number): Promise<void> {
    const draining = this.#rows().filter(
      (r) => r.routed === 0 && r.draining === 1 && now - r.retired_at >= RETIRE_GRACE_MS,
    );
    if (draining.length === 0 || !this.#tenantId) return;
    const tenantId = this.#tenantId;
    const empty: number[] = [];
    await Promise.all(
      draining.map(async (r) => {
        try {
          const a = await this.#shard(r.shard).status({
            v: GATE_PROTOCOL,
            tenantId,
            principal: null,
            revision: 0,
            status: "active",
          });
          // Entries held for a source that is not ACTIVE are sent once it is: still a sender.
          if (a.kind === "ok" && a.status.queued === 0 && (a.status.sources?.heldEntries ?? 0) === 0)
            empty.push(r.shard);
        } catch (e) {
          log.warn("control_poll_failed", { tenantId, shard: r.shard, error: (e as Error)?.message ?? String(e) });
        }
      }),
    );
    if (empty.length === 0) return;
    this.ctx.storage.transactionSync(() => {
      for (const s of empty) this.ctx.storage.sql.exec("UPDATE shards SET draining = 0 WHERE shard = ?", s);
      this.#enqueue([DIRECTORY], this.#known(), now);
    });
    await this.#flush(now, true);
  }

  #nextWake(): number | null {
    const due = this.ctx.storage.sql.exec<{ t: number | null }>("SELECT MIN(next_at) AS t FROM outbox").toArray()[0]?.t;
    const draining = this.#rows().some((r) => r.routed === 0 && r.draining === 1);
    const times = [due ?? null, draining ? Date.now() + DRAINING_POLL_MS : null].filter((t): t is number => t !== null);
    return times.length ? Math.min(...times) : null;
  }

  async #ensureAlarm(at: number): Promise<void> {
    const current = await this.ctx.storage.getAlarm();
    if (current === null || current > at) await this.ctx.storage.setAlarm(at);
  }

  #meta(k: string): string | null {
    return this.ctx.storage.sql.exec<{ v: string }>("SELECT v FROM meta WHERE k = ?", k).toArray()[0]?.v ?? null;
  }

  #setMeta(k: string, v: string): void {
    this.ctx.storage.sql.exec(
      "INSERT INTO meta (k, v) VALUES (?, ?) ON CONFLICT (k) DO UPDATE SET v = excluded.v",
      k,
      v,
    );
  }
}

/** `<shard>:<seq>`, or a bare seq (shard 0, a cursor from before shards), or null (the start). */
function parseCursor(after: string | null): [number, number | null] {
  if (after === null || after === "") return [0, null];
  const m = /^(?:(\d{1,2}):)?(\d{1,15})$/.exec(after);
  if (!m) throw new RangeError("not a dead-letter cursor");
  const s = m[1] === undefined ? 0 : Number(m[1]);
  const seq = Number(m[2]);
  return [s, seq === 0 ? null : seq];
}
