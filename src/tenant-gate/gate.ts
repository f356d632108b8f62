/**
 * TenantGate: one SQLite-backed Durable Object per tenant, the RPC surface and the alarm's owner.
 * Each job is a module that owns its tables (docs/architecture.md):
 *
 * - access.ts       the access authority: revision, status, revocations (meta, revoked)
 * - admission.ts    the token bucket toward EventBridge and the send/queue/full decision (memory)
 * - buffer.ts       the durable buffer (queue)
 * - drain.ts        the alarm's drain: claim, send, apply outcomes (no table)
 * - idempotency.ts  Idempotency-Key records (idempotency)
 * - events.ts       per-event status and dead letters (outcomes, dead_letters)
 * - counters.ts     counters and the last upstream error (the `stats` key)
 * - shard.ts        which shard this is and the fanned-out directory (meta rows)
 *
 * One tenant has 1 to MAX_SHARDS of these (docs/scaling.md): shard 0 is named by the tenant id,
 * shard i by `<tenantId>#<i>`; each takes its slice of the tenant's rate and buffer. The access
 * state here is a copy the tenant's control object (control.ts) fans out (`applyState`), plus
 * what the Worker's requests bring (a newer record revision).
 *
 * This class wires them, and each RPC method is the short composition of them one call needs.
 * Only the RPC methods below are callable; the modules sit in #private fields (TypeScript
 * `private` hides nothing at run time). Inputs follow protocol.ts's additive rule: a missing
 * optional field is its default, an unknown one is ignored, `v` is never checked.
 */
import { DurableObject } from "cloudflare:workers";
import { relayConfig } from "../config.ts";
import { log } from "../log.ts";
import { Access } from "./access.ts";
import { Admission, decide } from "./admission.ts";
import { EntryBuffer } from "./buffer.ts";
import { Counters } from "./counters.ts";
import { CONFIG_RETRY_MS, Drain } from "./drain.ts";
import { Events } from "./events.ts";
import { Idempotency } from "./idempotency.ts";
import type {
  AccessExport,
  AccessInput,
  AdmitInput,
  AdmitOutput,
  ApplyStateInput,
  ApplyStateOutput,
  DeadLetter,
  Denied,
  DirectoryState,
  EnqueueInput,
  EnqueueOutput,
  EventStatus,
  EventStatusInput,
  FinishInput,
  GATE_PROTOCOL,
  GateStatus,
  ShardRpc,
  StatusInput,
} from "./protocol.ts";
import { migrate } from "./schema.ts";
import { ShardInfo } from "./shard.ts";

/** Soonest housekeeping alarm when nothing but expiries remain, in ms. */
const HOUSEKEEPING_MIN_MS = 60_000;

export class TenantGate extends DurableObject<Env> implements ShardRpc {
  readonly #access: Access;
  readonly #shard: ShardInfo;
  readonly #admission: Admission;
  readonly #buffer: EntryBuffer;
  readonly #idempotency: Idempotency;
  readonly #events: Events;
  readonly #counters: Counters;
  readonly #drain: Drain;
  #alarmAt: number | null = null;

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    const storage = ctx.storage;
    const tenantId = () => this.#access.tenantId;
    this.#access = new Access(storage);
    this.#shard = new ShardInfo(storage);
    this.#admission = new Admission(() => this.#shard.directory?.senders ?? 1);
    this.#buffer = new EntryBuffer(storage);
    this.#idempotency = new Idempotency(storage.sql);
    this.#events = new Events(storage.sql, tenantId);
    this.#counters = new Counters(storage, tenantId);
    this.#drain = new Drain({
      env,
      storage,
      tenantId,
      admission: this.#admission,
      buffer: this.#buffer,
      events: this.#events,
      counters: this.#counters,
    });
    void ctx.blockConcurrencyWhile(async () => {
      migrate(storage);
      this.#access.load();
      this.#shard.load();
      this.#buffer.load();
      await this.#counters.load();
      this.#alarmAt = await storage.getAlarm();
      // Entries with no alarm to drain them (a lost re-arm, or a migrated buffer): drain now.
      if (this.#alarmAt === null && this.#buffer.queuedEntries > 0) {
        this.#alarmAt = Date.now();
        await storage.setAlarm(this.#alarmAt);
      }
    });
  }

  // ---- RPC: the hot path ----------------------------------------------------------------------

  /** Decides one request: denied, replayed, sent now (token taken), queued, or refused as full. */
  async admit(input: AdmitInput): Promise<AdmitOutput> {
    const now = Date.now();
    const access = this.#access;
    access.learn(input.tenantId, input.revision, input.status);
    const denied = access.deny(input.principal);
    if (denied) return { kind: "denied", reason: denied, revision: access.revision };
    this.#shard.learnIndex(input.shard);
    const bucket = this.#admission.bucket(input.limits, now);
    if (input.idempotency) {
      const verdict = this.#idempotency.claim(input.idempotency.key, input.idempotency.bodyHash, now);
      if (verdict) return verdict;
    }
    const decision = decide(input, this.#admission.slice(input.limits), now, bucket, this.#buffer);
    const rate = this.#admission.rate(now);
    if (decision.kind === "full")
      return { kind: "full", retryAfterS: decision.retryAfterS, revision: access.revision, rate };
    return { kind: decision.kind, revision: access.revision, rate };
  }

  /** Commits entries to the buffer (all or none) and returns their relay ids. */
  async enqueue(input: EnqueueInput): Promise<EnqueueOutput> {
    const now = Date.now();
    this.#access.learn(input.tenantId, 0, "active");
    this.#shard.learnIndex(input.shard);
    this.#admission.bucket(input.limits, now);
    const limits = this.#admission.slice(input.limits);
    const entries = input.entries;
    const bytes = entries.reduce((n, e) => n + e.bytes, 0);
    if (!this.#buffer.hasRoom(entries.length, bytes, limits)) {
      return {
        kind: "full",
        retryAfterS: this.#buffer.retryAfterS(entries.length, limits),
        rate: this.#admission.rate(now),
      };
    }
    const { relayEventIds, earliest } = this.#buffer.enqueue(
      entries,
      now,
      relayConfig(this.env).retry,
      this.#shard.index,
    );
    this.#counters.add("accepted", entries.length);
    // A direct send with no answer may have reached EventBridge: delivering it again may duplicate it.
    this.#counters.add("duplicatesPossible", entries.filter((e) => e.outcomeUnknown).length);
    this.#counters.flush();
    // Entries queued because a direct send failed: record why now (the direct path's own report
    // arrives later), and let EventBridge's throttling slow the drain too.
    const failedWith = entries.find((e) => e.lastCode);
    if (failedWith?.lastCode) {
      this.#counters.setLastError(failedWith.lastCode, failedWith.lastMessage ?? "", now);
      if (failedWith.lastCode === "ThrottlingException") this.#drain.pauseAfterThrottle(now);
    }
    await this.#ensureAlarm(Math.max(earliest, now + this.#admission.waitMs(now)));
    return { kind: "queued", relayEventIds };
  }

  /** After a direct send: counters, the last upstream error, and the idempotent response. */
  async finish(input: FinishInput): Promise<void> {
    const now = Date.now();
    const counters = this.#counters;
    counters.add("accepted", input.delivered + input.failed);
    counters.add("delivered", input.delivered);
    counters.add("failed", input.failed);
    if (input.delivered + input.failed > 0 || input.lastUpstreamError) counters.add("upstreamCalls", 1);
    if (input.duplicatesPossible) counters.add("duplicatesPossible", input.duplicatesPossible);
    if (input.lastUpstreamError)
      counters.setLastError(input.lastUpstreamError.code, input.lastUpstreamError.message, now);
    counters.flush();
    if (input.idempotency) this.#idempotency.finish(input.idempotency);
    if (input.upstreamThrottled) this.#drain.pauseAfterThrottle(now);
  }

  // ---- RPC: partner reads ---------------------------------------------------------------------

  /** The status of one of this tenant's events, or missing (unknown here: maybe another tenant's). */
  async eventStatus(
    input: EventStatusInput,
  ): Promise<Denied | { kind: "found"; event: EventStatus } | { kind: "missing" }> {
    this.#access.learn(input.tenantId, input.revision, input.status);
    const denied = this.#access.deny(input.principal);
    if (denied) return { kind: "denied", reason: denied };
    const event = this.#buffer.statusOf(input.relayEventId) ?? this.#events.statusOf(input.relayEventId);
    return event ? { kind: "found", event } : { kind: "missing" };
  }

  /** Counters for /v1/status (authorised like a request) and for the admin API (principal null). */
  async status(input: StatusInput): Promise<Denied | { kind: "ok"; status: GateStatus }> {
    const access = this.#access;
    access.learn(input.tenantId, input.revision, input.status);
    if (input.principal) {
      const denied = access.deny(input.principal);
      if (denied) return { kind: "denied", reason: denied };
    }
    const now = Date.now();
    const oldest = this.#buffer.oldestAcceptedAt();
    return {
      kind: "ok",
      status: {
        tenantId: access.tenantId,
        revision: access.revision,
        status: access.status,
        ...this.#counters.values(),
        queued: this.#buffer.queuedEntries,
        queuedBytes: this.#buffer.queuedBytes,
        oldestQueuedAgeMs: oldest === null ? null : now - oldest,
        deadLetters: this.#events.deadLetterCount(),
        lastUpstreamError: this.#counters.lastError,
        rate: this.#admission.rate(now),
        nextDrainAt: this.#alarmAt,
        shard: this.#shard.index,
      },
    };
  }

  // ---- RPC: from the tenant's control object (control.ts) ---------------------------------------

  /**
   * Applies the control object's fanned-out state (each message the whole state of its kind):
   * durable before the answer (the output gate), so an ack means the next request here sees it.
   * A kind this code does not know is not acked: the control object keeps it and retries.
   */
  async applyState(input: ApplyStateInput): Promise<ApplyStateOutput> {
    const now = Date.now();
    const applied: string[] = [];
    const unknown: string[] = [];
    this.#shard.learnIndex(input.shard);
    for (const m of input.states) {
      switch (m.kind) {
        case "access":
          this.#access.merge(m.body as AccessExport, now);
          applied.push(m.kind);
          break;
        case "directory":
          this.#shard.setDirectory(m.body as DirectoryState);
          applied.push(m.kind);
          break;
        default:
          unknown.push(m.kind);
      }
    }
    if (input.tenantId) this.#access.learn(input.tenantId, 0, "active");
    return { applied, unknown };
  }

  /** This shard's access state (the control object adopts shard 0's when it is created after it). */
  async exportAccess(_input: { v: typeof GATE_PROTOCOL }): Promise<AccessExport> {
    return this.#access.export();
  }

  // ---- RPC: administration (reached only through the ADMIN_TOKEN-protected admin API) ----------

  /** Records a revocation or status change; revocations are permanent, status follows revisions. */
  async setAccess(input: AccessInput): Promise<{ revision: number; status: "active" | "disabled" }> {
    return this.#access.apply(input, Date.now());
  }

  async deadLetters(input: {
    v: typeof GATE_PROTOCOL;
    limit: number;
    after: number | null;
  }): Promise<{ items: DeadLetter[]; next: number | null }> {
    return this.#events.listDeadLetters(input.limit, input.after);
  }

  /** Moves dead letters back into the buffer (attempts and age start again). */
  async replay(input: {
    v: typeof GATE_PROTOCOL;
    all: boolean;
    relayEventIds: string[];
  }): Promise<{ replayed: number; notFound: string[] }> {
    const now = Date.now();
    const taken = this.ctx.storage.transactionSync(() => {
      const t = this.#events.takeDeadLetters(input.all, input.relayEventIds);
      this.#buffer.requeue(t.rows, now);
      this.#counters.add("failed", -t.rows.length);
      this.#counters.add("deadLettered", -t.rows.length);
      this.#counters.flush();
      return t;
    });
    if (taken.rows.length > 0) await this.#ensureAlarm(now);
    return { replayed: taken.rows.length, notFound: taken.notFound };
  }

  /**
   * Deletes everything this object holds (tenant deletion) except the access state: the revision,
   * the status and every revoked credential survive, so a key still cached somewhere stays refused
   * and a re-created tenant must come with a higher revision. Refuses while events are queued
   * unless forced.
   */
  async purge(input: { v: typeof GATE_PROTOCOL; force: boolean }): Promise<{ purged: boolean; queued: number }> {
    const queued = this.#buffer.queuedEntries;
    if (queued > 0 && !input.force) return { purged: false, queued };
    const kept = this.#access.export();
    await this.ctx.storage.deleteAlarm();
    await this.ctx.storage.deleteAll();
    migrate(this.ctx.storage);
    this.#access.restore(kept);
    this.#shard.restore();
    this.#buffer.reset();
    this.#counters.reset();
    this.#alarmAt = null;
    return { purged: true, queued };
  }

  // ---- The alarm ------------------------------------------------------------------------------

  /** Housekeeping, then the drain. Never throws: a throwing alarm is retried only 6 times, then dropped. */
  override async alarm(): Promise<void> {
    this.#alarmAt = null;
    let next: number | null = null;
    try {
      this.#housekeep(Date.now());
      next = await this.#drain.run();
    } catch (e) {
      log.error("drain_failed", { tenantId: this.#access.tenantId, error: (e as Error)?.message ?? String(e) });
      next = Date.now() + CONFIG_RETRY_MS;
    } finally {
      try {
        const wake = next ?? this.#nextWake(Date.now());
        if (wake !== null) await this.#ensureAlarm(wake);
      } catch (e) {
        log.error("alarm_rearm_failed", {
          tenantId: this.#access.tenantId,
          error: (e as Error)?.message ?? String(e),
        });
      }
    }
  }

  /** Prunes expired event statuses and idempotency records. */
  #housekeep(now: number): void {
    this.ctx.storage.transactionSync(() => {
      this.#events.prune(now);
      this.#idempotency.prune(now);
    });
  }

  /** When the object next has work: a due or leased row, or an expiry to prune. */
  #nextWake(now: number): number | null {
    const due = this.#buffer.nextDueAt();
    if (due !== null) return Math.max(due, now);
    const expiries = [this.#events.nextExpiry(), this.#idempotency.nextExpiry()].filter((t): t is number => t !== null);
    if (expiries.length === 0) return null;
    return Math.max(Math.min(...expiries), now + HOUSEKEEPING_MIN_MS);
  }

  async #ensureAlarm(at: number): Promise<void> {
    if (this.#alarmAt !== null && this.#alarmAt <= at) return;
    this.#alarmAt = at;
    await this.ctx.storage.setAlarm(at);
  }
}
