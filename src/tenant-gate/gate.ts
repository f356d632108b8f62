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
 * - sources.ts      partner event sources and the entries held for them (sources, held);
 *                   the logic is src/sources/ (manager.ts, policy.ts), reached through #sources
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
import { SourceManager, type SourceOp, type SourceView } from "../sources/manager.ts";
import { ownsSource } from "../tenants/record.ts";
import { Access } from "./access.ts";
import { Admission, decide } from "./admission.ts";
import { EntryBuffer } from "./buffer.ts";
import { controlFor } from "./client.ts";
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
  GateStatus,
  HoldInput,
  HoldOutput,
  RateInfo,
  ShardRpc,
  SourceCall,
  SourceCallInput,
  SourcesState,
  StatusInput,
} from "./protocol.ts";
import { GATE_PROTOCOL } from "./protocol.ts";
import { migrate } from "./schema.ts";
import { ShardInfo } from "./shard.ts";
import { SourceTable } from "./sources.ts";

/** Soonest housekeeping alarm when nothing but expiries remain, in ms. */
const HOUSEKEEPING_MIN_MS = 60_000;
/** Shard 0 retries publishing its sources' states this soon after the control object failed, in ms. */
const SOURCES_PUBLISH_RETRY_MS = 5_000;

function earliest(a: number | null, b: number | null): number | null {
  if (a === null) return b;
  if (b === null) return a;
  return Math.min(a, b);
}

export class TenantGate extends DurableObject<Env> implements ShardRpc {
  readonly #access: Access;
  readonly #shard: ShardInfo;
  readonly #admission: Admission;
  readonly #buffer: EntryBuffer;
  readonly #idempotency: Idempotency;
  readonly #events: Events;
  readonly #counters: Counters;
  readonly #drain: Drain;
  readonly #sourceTable: SourceTable;
  readonly #sources: SourceManager;
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
    this.#sourceTable = new SourceTable(storage.sql, () => this.#shard.index);
    this.#sources = new SourceManager(this.#sourceTable, {
      env,
      storage,
      tenantId,
      release: (rows, now) => this.#buffer.requeue(rows, now),
      deadLetter: (rows, code, message, now) => {
        for (const r of rows) {
          this.#events.deadLettered({ relayId: r.relayId, action: "dead", code, message, attempts: 0 }, r, now);
        }
        this.#counters.add("failed", rows.length);
        this.#counters.add("deadLettered", rows.length);
        this.#counters.flush();
      },
      takeQueued: (source) => this.#buffer.takeSource(source),
      mirrorChanged: () => this.#sourceTable.bumpVersion(Date.now()),
    });
    void ctx.blockConcurrencyWhile(async () => {
      migrate(storage);
      this.#sourceTable.load();
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
    // Entries for sources that are not ACTIVE are held or refused, not sent (src/sources/).
    const sv = input.sources?.length
      ? this.#sources.verdicts(input.sources, input.unmanagedSources ?? "verify", now)
      : null;
    const sendable = sv ? { entries: input.entries - sv.withheld, bytes: input.bytes - sv.withheldBytes } : input;
    if (sv?.wake) await this.#ensureAlarm(now);
    const sources = sv && Object.keys(sv.verdicts).length > 0 ? { sources: sv.verdicts } : {};
    const decision = decide(sendable, this.#admission.slice(input.limits), now, bucket, this.#buffer);
    // The entries came along (this shard is buffering): commit them now, one call instead of two.
    if (decision.kind === "queue" && input.queue?.length === input.entries && !("sources" in sources)) {
      const queued = await this.#commitEntries(input.queue, input.limits, now);
      return queued.kind === "queued"
        ? { kind: "queued", relayEventIds: queued.relayEventIds, revision: access.revision, rate: queued.rate }
        : { kind: "full", retryAfterS: queued.retryAfterS, revision: access.revision, rate: queued.rate };
    }
    const rate = this.#admission.rate(now);
    if (decision.kind === "full")
      return { kind: "full", retryAfterS: decision.retryAfterS, revision: access.revision, rate, ...sources };
    return { kind: decision.kind, revision: access.revision, rate, ...sources };
  }

  /** Commits entries to the buffer (all or none) and returns their relay ids. */
  async enqueue(input: EnqueueInput): Promise<EnqueueOutput> {
    const now = Date.now();
    this.#access.learn(input.tenantId, 0, "active");
    this.#shard.learnIndex(input.shard);
    this.#admission.bucket(input.limits, now);
    const out = await this.#commitEntries(input.entries, input.limits, now);
    return out.kind === "queued" ? { kind: "queued", relayEventIds: out.relayEventIds } : out;
  }

  /** enqueue()'s work, also done by admit() for entries sent along with it. */
  async #commitEntries(
    entries: EnqueueInput["entries"],
    tenantLimits: EnqueueInput["limits"],
    now: number,
  ): Promise<{ kind: "queued"; relayEventIds: string[]; rate: RateInfo } | Extract<EnqueueOutput, { kind: "full" }>> {
    const limits = this.#admission.slice(tenantLimits);
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
    return { kind: "queued", relayEventIds, rate: this.#admission.rate(now) };
  }

  /**
   * Holds entries whose source admit() said is not ACTIVE (bounded per source and by the tenant's
   * buffer caps). A source that became sendable meanwhile has its entries queued instead; one
   * that became DELETED has them refused.
   */
  async hold(input: HoldInput): Promise<HoldOutput> {
    const now = Date.now();
    this.#access.learn(input.tenantId, 0, "active");
    const policy = input.unmanagedSources ?? "verify";
    const results: HoldOutput["results"] = new Array(input.entries.length);
    const bySource = new Map<string, number[]>();
    input.entries.forEach((e, i) => bySource.set(e.source, [...(bySource.get(e.source) ?? []), i]));
    let accepted = 0;
    for (const [source, idx] of bySource) {
      const entries = idx.map((i) => ({
        entry: JSON.stringify(input.entries[i]!.entry),
        bytes: input.entries[i]!.bytes,
      }));
      const room = {
        entries: input.limits.maxQueuedEntries - this.#buffer.queuedEntries - this.#sourceTable.heldEntries,
        bytes: input.limits.maxQueuedBytes - this.#buffer.queuedBytes - this.#sourceTable.heldBytes,
      };
      const out = this.ctx.storage.transactionSync(() => this.#sources.hold(source, entries, policy, room, now));
      if (out.kind === "held") {
        idx.forEach((i, k) => {
          const id = out.relayEventIds[k];
          results[i] = id !== undefined ? { relayEventId: id } : out.refused!;
        });
        accepted += out.relayEventIds.length;
      } else if (out.kind === "refuse") {
        for (const i of idx) results[i] = { code: out.code, message: out.message };
      } else {
        const queued = await this.enqueue({
          v: input.v,
          tenantId: input.tenantId,
          limits: input.limits,
          entries: idx.map((i) => ({ entry: input.entries[i]!.entry, bytes: input.entries[i]!.bytes })),
        });
        idx.forEach((i, k) => {
          results[i] =
            queued.kind === "queued"
              ? { relayEventId: queued.relayEventIds[k]! }
              : { code: "EventSourceHoldFull", message: "the relay's buffer is full; resend this entry later" };
        });
      }
    }
    if (accepted > 0) {
      this.#counters.add("accepted", accepted);
      this.#counters.flush();
    }
    await this.#ensureSourcesAlarm(now);
    return { results };
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
    const held = this.#sources.heldStatus(input.relayEventId);
    const event: EventStatus | null = held
      ? { state: "held", ...held }
      : (this.#buffer.statusOf(input.relayEventId) ?? this.#events.statusOf(input.relayEventId));
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
        sources: { ...this.#sources.counts(), items: this.#sources.list().slice(0, 100) },
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
    if (input.tenantId) this.#access.learn(input.tenantId, 0, "active");
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
        case "sources":
          this.#applySources(m.body as SourcesState | null, now);
          applied.push(m.kind);
          break;
        default:
          unknown.push(m.kind);
      }
    }
    // Released entries need a drain; shard 0 with states the control object has not taken (a
    // change made before it knew of other shards) publishes them from its alarm.
    if (applied.includes("sources")) await this.#ensureSourcesAlarm(now);
    if (this.#shard.index === 0 && this.#sourceTable.unpublished) await this.#ensureAlarm(now);
    return { applied, unknown };
  }

  /**
   * Shard 0's managed sources' states, on another shard: each change carried out on this shard's
   * held and queued entries (src/sources/manager.ts, mirror). Shard 0 is their source: it ignores
   * its own states coming back. A version applied already is not applied again.
   */
  #applySources(state: SourcesState | null, now: number): void {
    if (this.#shard.index === 0 || !state || !Array.isArray(state.sources)) return;
    if (state.version <= this.#sourceTable.applied) return;
    this.ctx.storage.transactionSync(() => {
      const changed = this.#sources.mirror(state.sources, now);
      this.#sourceTable.setApplied(state.version);
      if (changed > 0)
        log.info("sources_mirrored", { tenantId: this.#access.tenantId, shard: this.#shard.index, changed });
    });
  }

  /** Shard 0's managed sources' states (null elsewhere), for the control object to seed new shards. */
  async exportSources(_input: { v: typeof GATE_PROTOCOL }): Promise<SourcesState | null> {
    if (this.#shard.index !== 0) return null;
    return { version: this.#sourceTable.version, sources: this.#sources.exportMirror() };
  }

  async heldBySource(_input: { v: typeof GATE_PROTOCOL }): Promise<Record<string, { entries: number; bytes: number }>> {
    return this.#sourceTable.heldBySource();
  }

  /**
   * On shard 0, after a change to a managed source: the new states go to the control object, which
   * fans them out to every shard it knows (and retries those it cannot reach) before it answers,
   * so a source call reports success once every shard gives the new verdict. Done for a tenant of
   * one shard too (the record may say more before the control object has been told; source
   * changes are rare). When the control object cannot be reached, the alarm tries again.
   */
  async #publishSources(): Promise<void> {
    const table = this.#sourceTable;
    const tenantId = this.#access.tenantId;
    if (this.#shard.index !== 0 || !table.unpublished || !tenantId) return;
    const state: SourcesState = { version: table.version, sources: this.#sources.exportMirror() };
    try {
      const out = await controlFor(this.env, tenantId).setState({
        v: GATE_PROTOCOL,
        tenantId,
        kind: "sources",
        body: state,
        version: state.version,
      });
      table.setPublished(state.version);
      if (out.kind === "incomplete")
        log.warn("sources_fan_out_incomplete", { tenantId, pendingShards: out.pendingShards.join(",") });
    } catch (e) {
      log.warn("sources_publish_failed", { tenantId, error: (e as Error)?.message ?? String(e) });
      await this.#ensureAlarm(Date.now() + SOURCES_PUBLISH_RETRY_MS);
    }
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
      // Entries of a source that is not ACTIVE go back to the hold, not to the send queue.
      const hold = (r: { entry: string }) => {
        const source = (JSON.parse(r.entry) as { Source?: string }).Source ?? "";
        return this.#sources.verdict(source, "verify").action === "hold" ? source : null;
      };
      const held = t.rows.filter((r) => hold(r) !== null);
      for (const r of held) this.#sourceTable.hold(hold(r)!, [r], now, now + this.#sources.maxHoldMs());
      this.#buffer.requeue(
        t.rows.filter((r) => !held.includes(r)),
        now,
      );
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
    const queued = this.#buffer.queuedEntries + this.#sourceTable.heldEntries;
    if (queued > 0 && !input.force) return { purged: false, queued };
    const kept = this.#access.export();
    await this.ctx.storage.deleteAlarm();
    await this.ctx.storage.deleteAll();
    migrate(this.ctx.storage);
    this.#access.restore(kept);
    this.#shard.restore();
    this.#buffer.reset();
    this.#counters.reset();
    this.#sources.reset();
    this.#alarmAt = null;
    return { purged: true, queued };
  }

  // ---- The alarm ------------------------------------------------------------------------------

  /** Housekeeping, then the drain. Never throws: a throwing alarm is retried only 6 times, then dropped. */
  override async alarm(): Promise<void> {
    this.#alarmAt = null;
    let next: number | null = null;
    let sourcesNext: number | null = null;
    try {
      // The table is the truth; the records in memory are the hot path's cache: re-read them.
      this.#sourceTable.load();
      this.#housekeep(Date.now());
      // Read due source states first: a source that became ACTIVE releases its held entries
      // into the queue this same run drains.
      try {
        sourcesNext = await this.#sources.poll(Date.now());
      } catch (e) {
        log.error("source_poll_failed", { tenantId: this.#access.tenantId, error: (e as Error)?.message ?? String(e) });
        sourcesNext = Date.now() + CONFIG_RETRY_MS;
      }
      await this.#publishSources();
      next = await this.#drain.run();
    } catch (e) {
      log.error("drain_failed", { tenantId: this.#access.tenantId, error: (e as Error)?.message ?? String(e) });
      next = Date.now() + CONFIG_RETRY_MS;
    } finally {
      try {
        const drainWake = next ?? this.#nextWake(Date.now());
        const wake = earliest(drainWake, sourcesNext);
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
    this.#sources.housekeep(now);
  }

  /** When the object next has work: a due or leased row, or an expiry to prune. */
  #nextWake(now: number): number | null {
    const due = this.#buffer.nextDueAt();
    if (due !== null) return earliest(Math.max(due, now), this.#sources.nextWake());
    const expiries = [this.#events.nextExpiry(), this.#idempotency.nextExpiry()].filter((t): t is number => t !== null);
    const sources = this.#sources.nextWake();
    if (expiries.length === 0) return sources;
    return earliest(Math.max(Math.min(...expiries), now + HOUSEKEEPING_MIN_MS), sources);
  }

  // ---- RPC: partner event sources (src/sources/; the partner API and the admin API) ------------

  async sourceList(input: SourceCallInput): Promise<SourceCall<SourceView[]>> {
    return this.#sourceCall(input, async () => ({ kind: "ok", value: this.#sources.list() }));
  }

  async sourceGet(input: SourceCallInput & { name: string }): Promise<SourceCall<SourceView | null>> {
    return this.#sourceCall(input, async () => ({ kind: "ok", value: this.#sources.get(input.name) }));
  }

  async sourceCreate(
    input: SourceCallInput & { name: string; account: string },
  ): Promise<SourceCall<{ source: SourceView; created: boolean }>> {
    return this.#sourceCall(input, async () => this.#sources.create(input.name, input.account));
  }

  async sourceDelete(input: SourceCallInput & { name: string }): Promise<SourceCall<SourceView>> {
    return this.#sourceCall(input, () => this.#sources.remove(input.name));
  }

  async sourceRefresh(input: SourceCallInput & { name: string | null }): Promise<SourceCall<SourceView[]>> {
    return this.#sourceCall(input, () => this.#sources.refresh(input.name));
  }

  async sourceImport(
    input: SourceCallInput & { rules: string[] },
  ): Promise<SourceCall<{ imported: string[]; skipped: string[]; complete: boolean }>> {
    return this.#sourceCall(input, () => this.#sources.import(input.rules, (name) => ownsSource(input.rules, name)));
  }

  /** Authorises like a request (the admin API passes no principal), runs, and re-arms the alarm. */
  async #sourceCall<T>(input: SourceCallInput, run: () => Promise<SourceOp<T>>): Promise<SourceCall<T>> {
    const access = this.#access;
    access.learn(input.tenantId, input.revision, input.status);
    if (input.principal) {
      const denied = access.deny(input.principal);
      if (denied) return { kind: "denied", reason: denied };
    }
    const out = await run();
    await this.#publishSources();
    await this.#ensureSourcesAlarm(Date.now());
    return out;
  }

  /** Arms the alarm for what the sources need next: a read, a hold running out, released entries. */
  async #ensureSourcesAlarm(now: number): Promise<void> {
    const wake = earliest(this.#sources.nextWake(), this.#buffer.nextDueAt());
    if (wake !== null) await this.#ensureAlarm(Math.max(wake, now));
  }

  async #ensureAlarm(at: number): Promise<void> {
    if (this.#alarmAt !== null && this.#alarmAt <= at) return;
    this.#alarmAt = at;
    await this.ctx.storage.setAlarm(at);
  }
}
