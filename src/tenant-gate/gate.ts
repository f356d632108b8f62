/**
 * TenantGate: one SQLite-backed Durable Object per tenant.
 *
 * - Authority on access: the highest record revision's status and every revoked key id, strongly
 *   consistent (KV takes ~60 s to propagate a revocation; this object answers the next request).
 * - Admission: a token bucket toward EventBridge. Within budget the Worker forwards at once (this
 *   object never waits on AWS for the hot path); over budget the entries are committed here.
 * - Durable buffer: rows are committed before the reply leaves (the output gate holds it until
 *   the write is durable). The alarm drains them in packed batches at the tenant's rate, resends
 *   only retryable failures with backoff and jitter, dead-letters the rest with the reason.
 * - Idempotency-Key records, per-event status, counters.
 *
 * Only the RPC methods below are callable; internals are #private (TypeScript `private` hides
 * nothing at run time).
 */
import { DurableObject } from "cloudflare:workers";
import type { AwsClient } from "aws4fetch";
import { relayConfig } from "../config.ts";
import type { WireEntry } from "../entries/schema.ts";
import { type PutResult, putPartnerEvents } from "../eventbridge/client.ts";
import {
  DRAIN_CONCURRENCY,
  DRAIN_LEASE_MS,
  DRAIN_RUN_BUDGET_MS,
  EVENT_STATUS_TTL_MS,
  IDEMPOTENCY_LOCK_MS,
  IDEMPOTENCY_TTL_MS,
  MAX_ENTRIES,
} from "../limits.ts";
import { log } from "../log.ts";
import { type TenantLimits, type TenantRecord, upstreamEndpoint } from "../tenants/record.ts";
import { awsClientFor, getTenant, invalidateTenant } from "../tenants/store.ts";
import { TokenBucket } from "./bucket.ts";
import { backoffMs, type ClaimedRow, packCount, planBatchOutcome, type RowAction } from "./policy.ts";
import {
  type AccessInput,
  type AdmitInput,
  type AdmitOutput,
  type DeadLetter,
  type Denied,
  type EnqueueInput,
  type EnqueueOutput,
  type EventStatus,
  type EventStatusInput,
  type FinishInput,
  GATE_PROTOCOL,
  type GateRpc,
  type GateStatus,
  type Principal,
  type RateInfo,
  type StatusInput,
} from "./protocol.ts";
import { migrate } from "./schema.ts";

const COUNTERS = ["accepted", "delivered", "failed", "deadLettered", "duplicatesPossible", "upstreamCalls"] as const;
type CounterName = (typeof COUNTERS)[number];

/** The longest the drain sleeps inside one run waiting for a token, in ms; longer waits re-arm. */
const MAX_INLINE_WAIT_MS = 1_000;
/** How long the drain waits before retrying when the tenant's record or credentials are unusable. */
const CONFIG_RETRY_MS = 30_000;
/** Soonest housekeeping alarm when nothing but expiries remain, in ms. */
const HOUSEKEEPING_MIN_MS = 60_000;

type LastError = { code: string; message: string; at: number };

/**
 * Counters and the last upstream error live under one storage key, written with
 * allowUnconfirmed: they are bookkeeping, so the hot path never waits for their durability (the
 * output gate would otherwise hold every reply behind each write). A crash can lose the last few
 * increments; it never loses an event.
 */
const STATS_KEY = "stats";
type Stats = { counters: Partial<Record<CounterName, number>>; lastError: LastError | null };

type QueueRow = {
  seq: number;
  relay_id: string;
  entry: string;
  bytes: number;
  attempts: number;
  queued_at: number;
  in_flight: number;
};

function principalKey(p: Principal): string {
  return `${p.kind}:${p.id}`;
}

function newRelayId(): string {
  return `relay-${crypto.randomUUID()}`;
}

export class TenantGate extends DurableObject<Env> implements GateRpc {
  readonly #sql: SqlStorage;
  #tenantId: string | null = null;
  #revision = 0;
  #status: "active" | "disabled" = "active";
  readonly #revoked = new Set<string>();
  readonly #counters = Object.fromEntries(COUNTERS.map((c) => [c, 0])) as Record<CounterName, number>;
  #queuedEntries = 0;
  #queuedBytes = 0;
  #bucket: TokenBucket | null = null;
  #alarmAt: number | null = null;
  #pausedUntil = 0;
  #lastError: LastError | null = null;
  #statsPending = false;

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    this.#sql = ctx.storage.sql;
    void ctx.blockConcurrencyWhile(async () => {
      migrate(ctx.storage);
      this.#load();
      const stats = await ctx.storage.get<Stats>(STATS_KEY);
      if (stats) {
        for (const c of COUNTERS) this.#counters[c] = stats.counters[c] ?? 0;
        this.#lastError = stats.lastError;
      }
      this.#alarmAt = await ctx.storage.getAlarm();
    });
  }

  // ---- RPC: the hot path ----------------------------------------------------------------------

  /** Decides one request: denied, replayed, sent now (token taken), queued, or refused as full. */
  async admit(input: AdmitInput): Promise<AdmitOutput> {
    this.#checkProtocol(input.v);
    const now = Date.now();
    this.#learn(input.tenantId, input.revision, input.status);
    const denied = this.#deny(input.principal);
    if (denied) return { kind: "denied", reason: denied, revision: this.#revision };
    const bucket = this.#bucketFor(input.limits, now);

    if (input.idempotency) {
      const verdict = this.#claimIdempotencyKey(input.idempotency.key, input.idempotency.bodyHash, now);
      if (verdict) return verdict;
    }
    if (input.entries === 0) return { kind: "direct", revision: this.#revision, rate: this.#rateInfo(now) };

    // A due backlog goes first: new entries join it so the drain sends full batches in order.
    // (An empty buffer, the common case, needs no query.)
    const backlog =
      this.#queuedEntries > 0 &&
      this.#sql.exec("SELECT 1 FROM queue WHERE next_at <= ? LIMIT 1", now).toArray().length > 0;
    if (!backlog && bucket.tryTake(now)) {
      return { kind: "direct", revision: this.#revision, rate: this.#rateInfo(now) };
    }
    if (this.#hasRoom(input.entries, input.bytes, input.limits)) {
      return { kind: "queue", revision: this.#revision, rate: this.#rateInfo(now) };
    }
    return {
      kind: "full",
      retryAfterS: this.#retryAfterS(input.entries, input.limits),
      revision: this.#revision,
      rate: this.#rateInfo(now),
    };
  }

  /** Commits entries to the buffer (all or none) and returns their relay ids. */
  async enqueue(input: EnqueueInput): Promise<EnqueueOutput> {
    this.#checkProtocol(input.v);
    const now = Date.now();
    this.#learn(input.tenantId, 0, "active");
    this.#bucketFor(input.limits, now);
    const bytes = input.entries.reduce((n, e) => n + e.bytes, 0);
    if (!this.#hasRoom(input.entries.length, bytes, input.limits)) {
      return {
        kind: "full",
        retryAfterS: this.#retryAfterS(input.entries.length, input.limits),
        rate: this.#rateInfo(now),
      };
    }
    const ids: string[] = [];
    let earliest = Infinity;
    const jitter = Math.random(); // one draw: entries that failed together retry together
    this.ctx.storage.transactionSync(() => {
      for (const e of input.entries) {
        const id = newRelayId();
        const nextAt = e.attempts > 0 ? now + backoffMs(relayConfig(this.env).retry, e.attempts, jitter) : now;
        earliest = Math.min(earliest, nextAt);
        this.#sql.exec(
          `INSERT INTO queue (relay_id, entry, bytes, accepted_at, queued_at, attempts, next_at, outcome_unknown, last_code, last_message)
           VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
          id,
          JSON.stringify(e.entry),
          e.bytes,
          now,
          now,
          e.attempts,
          nextAt,
          e.outcomeUnknown ? 1 : 0,
          e.lastCode,
          e.lastMessage,
        );
        ids.push(id);
      }
      this.#queuedEntries += input.entries.length;
      this.#queuedBytes += bytes;
      this.#counters.accepted += input.entries.length;
      // A direct send with no answer may have reached EventBridge: delivering it again may duplicate it.
      this.#counters.duplicatesPossible += input.entries.filter((e) => e.outcomeUnknown).length;
      this.#flushCounters();
    });
    // Entries queued because a direct send failed: record why now (the direct path's own report
    // arrives later), and let EventBridge's throttling slow the drain too.
    const failedWith = input.entries.find((e) => e.lastCode !== null);
    if (failedWith?.lastCode) {
      this.#setLastError(failedWith.lastCode, failedWith.lastMessage ?? "", now);
      if (failedWith.lastCode === "ThrottlingException") this.#pauseAfterThrottle(now);
    }
    const wait = this.#bucket!.waitMs(now);
    await this.#ensureAlarm(Math.max(earliest, now + wait));
    return { kind: "queued", relayEventIds: ids };
  }

  /** After a direct send: counters, the last upstream error, and the idempotent response. */
  async finish(input: FinishInput): Promise<void> {
    this.#checkProtocol(input.v);
    const now = Date.now();
    this.#counters.accepted += input.delivered + input.failed;
    this.#counters.delivered += input.delivered;
    this.#counters.failed += input.failed;
    if (input.delivered + input.failed > 0 || input.lastUpstreamError) this.#counters.upstreamCalls += 1;
    if (input.lastUpstreamError)
      this.#lastError = {
        code: input.lastUpstreamError.code,
        message: input.lastUpstreamError.message.slice(0, 500),
        at: now,
      };
    this.#flushCounters();
    const idem = input.idempotency;
    if (idem) {
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
    if (input.upstreamThrottled) this.#pauseAfterThrottle(now);
  }

  // ---- RPC: partner reads ---------------------------------------------------------------------

  /** The status of one of this tenant's events, or null (unknown here: maybe another tenant's). */
  async eventStatus(
    input: EventStatusInput,
  ): Promise<Denied | { kind: "found"; event: EventStatus } | { kind: "missing" }> {
    this.#checkProtocol(input.v);
    this.#learn(input.tenantId, input.revision, input.status);
    const denied = this.#deny(input.principal);
    if (denied) return { kind: "denied", reason: denied };
    const q = this.#sql
      .exec<{ attempts: number; last_code: string | null; accepted_at: number; next_at: number }>(
        "SELECT attempts, last_code, accepted_at, next_at FROM queue WHERE relay_id = ?",
        input.relayEventId,
      )
      .toArray()[0];
    if (q) {
      return {
        kind: "found",
        event: {
          state: "queued",
          attempts: q.attempts,
          lastErrorCode: q.last_code,
          acceptedAt: q.accepted_at,
          nextAttemptAt: q.next_at,
        },
      };
    }
    const o = this.#sql
      .exec<{
        state: string;
        event_id: string | null;
        code: string | null;
        message: string | null;
        attempts: number;
        at: number;
      }>("SELECT state, event_id, code, message, attempts, at FROM outcomes WHERE relay_id = ?", input.relayEventId)
      .toArray()[0];
    if (!o) return { kind: "missing" };
    if (o.state === "delivered") {
      return { kind: "found", event: { state: "delivered", eventId: o.event_id, attempts: o.attempts, at: o.at } };
    }
    const dead =
      this.#sql.exec("SELECT 1 FROM dead_letters WHERE relay_id = ?", input.relayEventId).toArray().length > 0;
    return {
      kind: "found",
      event: {
        state: "failed",
        errorCode: o.code ?? "",
        errorMessage: o.message ?? "",
        attempts: o.attempts,
        at: o.at,
        deadLettered: dead,
      },
    };
  }

  /** Counters for /v1/status (authorised like a request) and for the admin API (principal null). */
  async status(input: StatusInput): Promise<Denied | { kind: "ok"; status: GateStatus }> {
    this.#checkProtocol(input.v);
    this.#learn(input.tenantId, input.revision, input.status);
    if (input.principal) {
      const denied = this.#deny(input.principal);
      if (denied) return { kind: "denied", reason: denied };
    }
    const now = Date.now();
    const oldest =
      this.#sql.exec<{ t: number | null }>("SELECT MIN(accepted_at) AS t FROM queue").toArray()[0]?.t ?? null;
    const deadLetters = this.#sql.exec<{ n: number }>("SELECT COUNT(*) AS n FROM dead_letters").toArray()[0]?.n ?? 0;
    return {
      kind: "ok",
      status: {
        tenantId: this.#tenantId,
        revision: this.#revision,
        status: this.#status,
        ...this.#counters,
        queued: this.#queuedEntries,
        queuedBytes: this.#queuedBytes,
        oldestQueuedAgeMs: oldest === null ? null : now - oldest,
        deadLetters,
        lastUpstreamError: this.#lastError,
        rate: this.#rateInfo(now),
        nextDrainAt: this.#alarmAt,
      },
    };
  }

  // ---- RPC: administration (reached only through the ADMIN_TOKEN-protected admin API) ----------

  /** Records a revocation or status change; revocations are permanent, status follows revisions. */
  async setAccess(input: AccessInput): Promise<{ revision: number; status: "active" | "disabled" }> {
    this.#checkProtocol(input.v);
    const now = Date.now();
    this.ctx.storage.transactionSync(() => {
      this.#setMeta("tenant_id", input.tenantId);
      this.#tenantId = input.tenantId;
      for (const id of input.revokeApiKeyIds) this.#revoke({ kind: "api-key", id }, now);
      for (const id of input.revokeAccessKeyIds) this.#revoke({ kind: "sigv4", id }, now);
      if (input.revision >= this.#revision) {
        this.#revision = input.revision;
        this.#status = input.status;
        this.#setMeta("revision", String(this.#revision));
        this.#setMeta("status", this.#status);
      }
    });
    return { revision: this.#revision, status: this.#status };
  }

  async deadLetters(input: {
    v: typeof GATE_PROTOCOL;
    limit: number;
    after: number | null;
  }): Promise<{ items: DeadLetter[]; next: number | null }> {
    this.#checkProtocol(input.v);
    const limit = Math.max(1, Math.min(1000, Math.floor(input.limit)));
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
        input.after ?? 0,
        limit + 1,
      )
      .toArray();
    const page = rows.slice(0, limit);
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
      next: rows.length > limit ? page[page.length - 1]!.seq : null,
    };
  }

  /** Moves dead letters back into the buffer (attempts and age start again). */
  async replay(input: {
    v: typeof GATE_PROTOCOL;
    all: boolean;
    relayEventIds: string[];
  }): Promise<{ replayed: number; notFound: string[] }> {
    this.#checkProtocol(input.v);
    const now = Date.now();
    const notFound: string[] = [];
    let replayed = 0;
    let bytes = 0;
    this.ctx.storage.transactionSync(() => {
      const rows = input.all
        ? this.#sql
            .exec<{ relay_id: string; entry: string; bytes: number; accepted_at: number }>(
              "SELECT relay_id, entry, bytes, accepted_at FROM dead_letters ORDER BY seq",
            )
            .toArray()
        : input.relayEventIds.flatMap((id) => {
            const r = this.#sql
              .exec<{ relay_id: string; entry: string; bytes: number; accepted_at: number }>(
                "SELECT relay_id, entry, bytes, accepted_at FROM dead_letters WHERE relay_id = ?",
                id,
              )
              .toArray();
            if (r.length === 0) notFound.push(id);
            return r;
          });
      for (const r of rows) {
        this.#sql.exec("DELETE FROM dead_letters WHERE relay_id = ?", r.relay_id);
        this.#sql.exec("DELETE FROM outcomes WHERE relay_id = ?", r.relay_id);
        this.#sql.exec(
          "INSERT INTO queue (relay_id, entry, bytes, accepted_at, queued_at, attempts, next_at) VALUES (?, ?, ?, ?, ?, 0, ?)",
          r.relay_id,
          r.entry,
          r.bytes,
          r.accepted_at,
          now,
          now,
        );
        replayed++;
        bytes += r.bytes;
      }
      this.#queuedEntries += replayed;
      this.#queuedBytes += bytes;
      this.#counters.failed -= replayed;
      this.#counters.deadLettered -= replayed;
      this.#flushCounters();
    });
    if (replayed > 0) await this.#ensureAlarm(now);
    return { replayed, notFound };
  }

  /**
   * Deletes everything this object holds (tenant deletion) except the access state: the revision,
   * the status and every revoked credential survive, so a key still cached somewhere stays refused
   * and a re-created tenant must come with a higher revision. Refuses while events are queued
   * unless forced.
   */
  async purge(input: { v: typeof GATE_PROTOCOL; force: boolean }): Promise<{ purged: boolean; queued: number }> {
    this.#checkProtocol(input.v);
    if (this.#queuedEntries > 0 && !input.force) return { purged: false, queued: this.#queuedEntries };
    const queued = this.#queuedEntries;
    const revoked = this.#sql
      .exec<{ principal: string; revoked_at: number }>("SELECT principal, revoked_at FROM revoked")
      .toArray();
    await this.ctx.storage.deleteAlarm();
    await this.ctx.storage.deleteAll();
    migrate(this.ctx.storage);
    this.ctx.storage.transactionSync(() => {
      if (this.#tenantId) this.#setMeta("tenant_id", this.#tenantId);
      this.#setMeta("revision", String(this.#revision));
      this.#setMeta("status", this.#status);
      for (const r of revoked)
        this.#sql.exec("INSERT INTO revoked (principal, revoked_at) VALUES (?, ?)", r.principal, r.revoked_at);
    });
    for (const c of COUNTERS) this.#counters[c] = 0;
    this.#queuedEntries = 0;
    this.#queuedBytes = 0;
    this.#alarmAt = null;
    this.#lastError = null;
    return { purged: true, queued };
  }

  // ---- The drain ------------------------------------------------------------------------------

  /** Never throws: a throwing alarm is retried only 6 times, then dropped (platform.md). */
  override async alarm(): Promise<void> {
    this.#alarmAt = null;
    let next: number | null = null;
    try {
      this.#housekeep(Date.now());
      next = await this.#drain();
    } catch (e) {
      log.error("drain_failed", { tenantId: this.#tenantId, error: (e as Error)?.message ?? String(e) });
      next = Date.now() + CONFIG_RETRY_MS;
    } finally {
      try {
        const wake = next ?? this.#nextWake(Date.now());
        if (wake !== null) await this.#ensureAlarm(wake);
      } catch (e) {
        log.error("alarm_rearm_failed", { tenantId: this.#tenantId, error: (e as Error)?.message ?? String(e) });
      }
    }
  }

  /** Sends due batches for up to DRAIN_RUN_BUDGET_MS; returns when to run next (null: nothing due). */
  async #drain(): Promise<number | null> {
    const started = Date.now();
    if (this.#queuedEntries === 0 || !this.#tenantId) return null;
    let record: TenantRecord | null;
    try {
      record = await getTenant(this.env.TENANTS, this.#tenantId);
    } catch (e) {
      this.#setLastError("TenantRecordUnreadable", (e as Error).message, started);
      return started + CONFIG_RETRY_MS;
    }
    if (!record) {
      this.#setLastError("TenantRecordMissing", `no tenant record for ${this.#tenantId}`, started);
      return started + CONFIG_RETRY_MS;
    }
    const cfg = relayConfig(this.env);
    let client: AwsClient;
    try {
      client = await awsClientFor(record, this.env.SEALING_KEY);
    } catch (e) {
      invalidateTenant(record.id);
      this.#setLastError("TenantCredentialsUnusable", (e as Error).message, started);
      return started + CONFIG_RETRY_MS;
    }
    const bucket = this.#bucketFor(record.limits, started);
    const endpoint = upstreamEndpoint(record, cfg.allowEndpointOverride);
    const inflight = new Set<Promise<void>>();
    let wake: number | null = null;
    for (;;) {
      const now = Date.now();
      if (now - started >= DRAIN_RUN_BUDGET_MS) {
        wake = now;
        break;
      }
      if (this.#pausedUntil > now) {
        wake = this.#pausedUntil;
        break;
      }
      const wait = bucket.waitMs(now);
      if (wait > 0) {
        if (wait > MAX_INLINE_WAIT_MS) {
          wake = now + wait;
          break;
        }
        await new Promise((r) => setTimeout(r, wait));
        continue;
      }
      const batch = this.#claim(now, cfg.maxBatchBytes);
      if (!batch) {
        if (inflight.size > 0) {
          await Promise.race(inflight);
          continue;
        }
        break;
      }
      bucket.tryTake(now);
      const p: Promise<void> = this.#send(batch, {
        client,
        endpoint,
        region: record.region,
        timeoutMs: cfg.upstreamTimeoutMs,
        tenantId: record.id,
      }).finally(() => inflight.delete(p));
      inflight.add(p);
      if (inflight.size >= DRAIN_CONCURRENCY) await Promise.race(inflight);
    }
    await Promise.allSettled(inflight);
    return wake ?? this.#nextWake(Date.now());
  }

  /** Claims the next packed batch (sync: no other event runs in between). */
  #claim(now: number, maxBytes: number): { rows: ClaimedRow[]; json: string[] } | null {
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
    this.ctx.storage.transactionSync(() => {
      const placeholders = batch.map(() => "?").join(",");
      this.#sql.exec(
        `UPDATE queue SET in_flight = 1, next_at = ?, outcome_unknown = MAX(outcome_unknown, in_flight) WHERE seq IN (${placeholders})`,
        now + DRAIN_LEASE_MS,
        ...batch.map((r) => r.seq),
      );
      if (resentUnknown > 0) {
        this.#counters.duplicatesPossible += resentUnknown;
        this.#flushCounters();
      }
    });
    return {
      rows: batch.map((r) => ({ relayId: r.relay_id, attempts: r.attempts, queuedAt: r.queued_at })),
      json: batch.map((r) => r.entry),
    };
  }

  async #send(
    batch: { rows: ClaimedRow[]; json: string[] },
    up: {
      client: Awaited<ReturnType<typeof awsClientFor>>;
      endpoint: string;
      region: string;
      timeoutMs: number;
      tenantId: string;
    },
  ): Promise<void> {
    let result: PutResult;
    try {
      result = await putPartnerEvents({
        client: up.client,
        endpoint: up.endpoint,
        region: up.region,
        entries: { json: batch.json },
        timeoutMs: up.timeoutMs,
      });
    } catch (e) {
      result = {
        kind: "error",
        errorClass: "network",
        code: "NetworkError",
        message: (e as Error)?.message ?? "send failed",
        status: 0,
        requestId: null,
        outcomeUnknown: true,
      };
    }
    const now = Date.now();
    if (result.kind === "error") {
      this.#setLastError(result.code, result.message, now);
      if (result.errorClass === "throttled") this.#pauseAfterThrottle(now);
      if (result.errorClass === "credentials") invalidateTenant(up.tenantId);
      log.warn("drain_batch_failed", {
        tenantId: up.tenantId,
        entries: batch.rows.length,
        code: result.code,
        status: result.status,
        upstreamRequestId: result.requestId,
      });
    }
    const actions = planBatchOutcome(relayConfig(this.env).retry, batch.rows, result, now, Math.random);
    this.#apply(actions, now, result.kind === "error" && result.outcomeUnknown);
  }

  /** Records one batch's outcome: a few set-based statements, not a round of them per row. */
  #apply(actions: RowAction[], now: number, unknown: boolean): void {
    this.ctx.storage.transactionSync(() => {
      this.#counters.upstreamCalls += 1;
      if (unknown) this.#counters.duplicatesPossible += actions.filter((a) => a.action === "retry").length;
      const ids = actions.map((a) => a.relayId);
      // Rows purged meanwhile are simply absent here and skipped below.
      const present = new Map(
        this.#sql
          .exec<{ relay_id: string; bytes: number }>(
            `SELECT relay_id, bytes FROM queue WHERE relay_id IN (${ids.map(() => "?").join(",")})`,
            ...ids,
          )
          .toArray()
          .map((r) => [r.relay_id, r.bytes]),
      );
      const finished: string[] = [];
      for (const a of actions) {
        const bytes = present.get(a.relayId);
        if (bytes === undefined) continue;
        if (a.action === "retry") {
          this.#sql.exec(
            "UPDATE queue SET in_flight = 0, attempts = ?, next_at = ?, last_code = ?, last_message = ?, outcome_unknown = MAX(outcome_unknown, ?) WHERE relay_id = ?",
            a.attempts,
            a.nextAt,
            a.code,
            a.message,
            a.outcomeUnknown ? 1 : 0,
            a.relayId,
          );
          continue;
        }
        finished.push(a.relayId);
        this.#queuedEntries -= 1;
        this.#queuedBytes -= bytes;
        if (a.action === "delivered") {
          this.#counters.delivered += 1;
          this.#sql.exec(
            "INSERT OR REPLACE INTO outcomes (relay_id, state, event_id, attempts, at) VALUES (?, 'delivered', ?, ?, ?)",
            a.relayId,
            a.eventId,
            a.attempts,
            now,
          );
        } else {
          this.#counters.failed += 1;
          this.#counters.deadLettered += 1;
          this.#sql.exec(
            "INSERT OR REPLACE INTO outcomes (relay_id, state, code, message, attempts, at) VALUES (?, 'failed', ?, ?, ?, ?)",
            a.relayId,
            a.code,
            a.message,
            a.attempts,
            now,
          );
          // The entry moves inside SQLite: it never travels through JS again.
          this.#sql.exec(
            `INSERT OR REPLACE INTO dead_letters (relay_id, entry, bytes, code, message, attempts, accepted_at, failed_at)
             SELECT relay_id, entry, bytes, ?, ?, ?, accepted_at, ? FROM queue WHERE relay_id = ?`,
            a.code,
            a.message,
            a.attempts,
            now,
            a.relayId,
          );
          log.warn("event_dead_lettered", {
            tenantId: this.#tenantId,
            relayEventId: a.relayId,
            code: a.code,
            attempts: a.attempts,
          });
        }
      }
      if (finished.length > 0) {
        this.#sql.exec(`DELETE FROM queue WHERE relay_id IN (${finished.map(() => "?").join(",")})`, ...finished);
      }
      this.#flushCounters();
    });
  }

  /** Prunes expired event outcomes and idempotency records. */
  #housekeep(now: number): void {
    this.ctx.storage.transactionSync(() => {
      this.#sql.exec("DELETE FROM outcomes WHERE at < ?", now - EVENT_STATUS_TTL_MS);
      this.#sql.exec("DELETE FROM idempotency WHERE expires_at < ?", now);
    });
  }

  /** When the object next has work: a due or leased row, or an expiry to prune. */
  #nextWake(now: number): number | null {
    const due = this.#sql.exec<{ t: number | null }>("SELECT MIN(next_at) AS t FROM queue").toArray()[0]?.t ?? null;
    if (due !== null) return Math.max(due, now);
    const outcome = this.#sql.exec<{ t: number | null }>("SELECT MIN(at) AS t FROM outcomes").toArray()[0]?.t ?? null;
    const idem =
      this.#sql.exec<{ t: number | null }>("SELECT MIN(expires_at) AS t FROM idempotency").toArray()[0]?.t ?? null;
    const expiries = [outcome === null ? null : outcome + EVENT_STATUS_TTL_MS, idem].filter(
      (t): t is number => t !== null,
    );
    if (expiries.length === 0) return null;
    return Math.max(Math.min(...expiries), now + HOUSEKEEPING_MIN_MS);
  }

  async #ensureAlarm(at: number): Promise<void> {
    if (this.#alarmAt !== null && this.#alarmAt <= at) return;
    this.#alarmAt = at;
    await this.ctx.storage.setAlarm(at);
  }

  // ---- Internals ------------------------------------------------------------------------------

  #checkProtocol(v: number): void {
    if (v !== GATE_PROTOCOL)
      throw new Error(`tenant gate protocol ${v} is not supported (this object speaks ${GATE_PROTOCOL})`);
  }

  #load(): void {
    const meta = new Map(
      this.#sql
        .exec<{ k: string; v: string }>("SELECT k, v FROM meta")
        .toArray()
        .map((r) => [r.k, r.v]),
    );
    this.#tenantId = meta.get("tenant_id") ?? null;
    this.#revision = Number(meta.get("revision") ?? 0);
    this.#status = meta.get("status") === "disabled" ? "disabled" : "active";
    for (const r of this.#sql.exec<{ principal: string }>("SELECT principal FROM revoked").toArray())
      this.#revoked.add(r.principal);
    const q = this.#sql
      .exec<{ n: number; b: number | null }>("SELECT COUNT(*) AS n, SUM(bytes) AS b FROM queue")
      .toArray()[0];
    this.#queuedEntries = q?.n ?? 0;
    this.#queuedBytes = q?.b ?? 0;
  }

  #setMeta(k: string, v: string): void {
    this.#sql.exec("INSERT INTO meta (k, v) VALUES (?, ?) ON CONFLICT (k) DO UPDATE SET v = excluded.v", k, v);
  }

  /** Remembers the tenant id and adopts a newer revision the Worker read from KV. */
  #learn(tenantId: string, revision: number, status: "active" | "disabled"): void {
    if (this.#tenantId === tenantId && revision <= this.#revision) return;
    this.ctx.storage.transactionSync(() => {
      if (this.#tenantId !== tenantId) {
        this.#tenantId = tenantId;
        this.#setMeta("tenant_id", tenantId);
      }
      if (revision > this.#revision) {
        this.#revision = revision;
        this.#status = status;
        this.#setMeta("revision", String(revision));
        this.#setMeta("status", status);
      }
    });
  }

  #deny(p: Principal): "revoked" | "disabled" | null {
    if (this.#revoked.has(principalKey(p))) return "revoked";
    if (this.#status === "disabled") return "disabled";
    return null;
  }

  #revoke(p: Principal, now: number): void {
    const k = principalKey(p);
    if (this.#revoked.has(k)) return;
    this.#revoked.add(k);
    this.#sql.exec("INSERT OR IGNORE INTO revoked (principal, revoked_at) VALUES (?, ?)", k, now);
  }

  #bucketFor(limits: TenantLimits, now: number): TokenBucket {
    if (!this.#bucket) this.#bucket = new TokenBucket(limits.ratePerSecond, limits.burst, now);
    else this.#bucket.configure(limits.ratePerSecond, limits.burst, now);
    return this.#bucket;
  }

  #rateInfo(now: number): RateInfo {
    const b = this.#bucket;
    if (!b) return { limit: 0, remaining: 0, resetS: 0, windowS: 1 };
    return {
      limit: b.burst,
      remaining: b.remaining(now),
      resetS: Math.ceil(b.waitMs(now) / 1000),
      windowS: Math.max(1, Math.ceil(b.burst / b.rate)),
    };
  }

  #hasRoom(entries: number, bytes: number, limits: TenantLimits): boolean {
    return (
      this.#queuedEntries + entries <= limits.maxQueuedEntries && this.#queuedBytes + bytes <= limits.maxQueuedBytes
    );
  }

  /** Seconds until the drain has likely freed room for `entries` at the tenant's rate. */
  #retryAfterS(entries: number, limits: TenantLimits): number {
    const excess = Math.max(entries, this.#queuedEntries + entries - limits.maxQueuedEntries);
    const requests = Math.ceil(excess / MAX_ENTRIES);
    return Math.min(3600, Math.max(1, Math.ceil(requests / limits.ratePerSecond)));
  }

  #claimIdempotencyKey(key: string, bodyHash: string, now: number): AdmitOutput | null {
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

  /** EventBridge throttled the tenant: the drain waits one backoff step before its next batch. */
  #pauseAfterThrottle(now: number): void {
    this.#pausedUntil = now + backoffMs(relayConfig(this.env).retry, 1, Math.random());
  }

  #setLastError(code: string, message: string, at: number): void {
    this.#lastError = { code, message: message.slice(0, 500), at };
    this.#flushCounters();
  }

  /**
   * Schedules one write of the stats after the current synchronous step (callers may be inside
   * transactionSync, which takes no async storage calls); several changes in a step write once.
   */
  #flushCounters(): void {
    if (this.#statsPending) return;
    this.#statsPending = true;
    queueMicrotask(() => {
      this.#statsPending = false;
      const stats: Stats = { counters: { ...this.#counters }, lastError: this.#lastError };
      this.ctx.storage.put(STATS_KEY, stats, { allowUnconfirmed: true }).catch((e: unknown) => {
        log.error("stats_write_failed", { tenantId: this.#tenantId, error: (e as Error)?.message ?? String(e) });
      });
    });
  }
}
