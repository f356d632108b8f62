/**
 * A tenant's partner event sources at run time: the verdict for each source a request names, the
 * hold, the calls to EventBridge's control plane (create, delete, read state, import) within the
 * tenant's budget, the poll the alarm runs, and what a state change does to held entries.
 *
 * Storage-agnostic: it works on a SourceTable (tenant-gate/sources.ts) and reaches the rest of
 * its Durable Object only through SourceHooks (put held entries into the send queue, dead-letter
 * them, take queued entries back, mark the fanned-out states changed). On a tenant with several
 * shards, shard 0's manager makes the calls and polls; every other shard's applies shard 0's
 * states (`mirror`) to its own entries (docs/sources.md "Shards"). Decisions are policy.ts (pure).
 */
import type { AwsClient } from "aws4fetch";
import { relayConfig } from "../config.ts";
import { AssumeRoleError, credentialsFor, forgetCredentials } from "../credentials/resolve.ts";
import {
  type ControlPlane,
  ControlPlaneError,
  createPartnerEventSource,
  deletePartnerEventSource,
  listPartnerEventSourceAccounts,
  listPartnerEventSources,
} from "../eventbridge/control-plane.ts";
import { log } from "../log.ts";
import { TokenBucket } from "../tenant-gate/bucket.ts";
import type { HeldRow, SourceTable } from "../tenant-gate/sources.ts";
import { type TenantRecord, upstreamEndpoint } from "../tenants/record.ts";
import { getTenant } from "../tenants/store.ts";
import {
  applyMirror,
  applyRead,
  CODES,
  CONTROL_PLANE_BURST,
  CONTROL_PLANE_RATE_PER_SECOND,
  CONTROL_PLANE_THROTTLE_PAUSE_MS,
  CONTROL_PLANE_TIMEOUT_MS,
  DEFAULT_MAX_HOLD_MS,
  expired,
  MAX_HELD_BYTES_PER_SOURCE,
  MAX_HELD_PER_SOURCE,
  MAX_SOURCES_PER_TENANT,
  mirrorOf,
  newRecord,
  POLL_MAX_PER_RUN,
  type ReadOutcome,
  readFromAccounts,
  type SourceMirror,
  type SourceRecord,
  sameMirror,
  type Transition,
  UNMANAGED_IDLE_MS,
  type UnmanagedPolicy,
  unverifiableWarning,
  type Verdict,
  verdictFor,
} from "./policy.ts";
import type { SourceCounts, SourceOp, SourceOpError, SourceView } from "./view.ts";

export type { SourceCounts, SourceOp, SourceOpError, SourceView } from "./view.ts";

/** What the manager needs from the object it lives in. */
export interface SourceHooks {
  env: Env;
  storage: DurableObjectStorage;
  tenantId: () => string | null;
  /** Puts held entries into the send queue (in this order, as due now), inside the caller's transaction. */
  release(rows: HeldRow[], now: number): void;
  /** Dead-letters held entries with a reason, inside the caller's transaction. */
  deadLetter(rows: HeldRow[], code: string, message: string, now: number): void;
  /** Takes the entries of `source` still waiting in the send queue (not in flight), in order. */
  takeQueued(source: string): { relayId: string; entry: string; bytes: number; acceptedAt: number }[];
  /**
   * A managed source's fanned-out state (SourceMirror) changed, inside the caller's transaction:
   * shard 0 publishes the new states to the tenant's other shards (docs/sources.md "Shards").
   */
  mirrorChanged?(): void;
}

const iso = (t: number | null) => (t === null ? null : new Date(t).toISOString());

/** The longest an admin call waits for the budget inline, in ms (then it answers 429). */
const MAX_BUDGET_WAIT_MS = 2_000;

export class SourceManager {
  readonly #table: SourceTable;
  readonly #h: SourceHooks;
  readonly #budget: TokenBucket;
  #pausedUntil = 0;
  #throttles = 0;

  constructor(table: SourceTable, hooks: SourceHooks) {
    this.#table = table;
    this.#h = hooks;
    this.#budget = new TokenBucket(CONTROL_PLANE_RATE_PER_SECOND, CONTROL_PLANE_BURST, Date.now());
  }

  // ---- Ingest -----------------------------------------------------------------------------------

  /**
   * The verdicts for the sources a request names (only those not simply "send" are returned),
   * starting to track sources seen for the first time under verify / hold. `wake` is set when a
   * read should happen now.
   */
  verdicts(
    sources: readonly { source: string; entries: number; bytes: number }[],
    policy: UnmanagedPolicy,
    now: number,
  ): { verdicts: Record<string, Verdict>; withheld: number; withheldBytes: number; wake: boolean } {
    const out: Record<string, Verdict> = {};
    let withheld = 0;
    let withheldBytes = 0;
    let wake = false;
    const seen: string[] = [];
    for (const s of sources) {
      const record = this.#table.get(s.source);
      let v: Verdict = verdictFor(s.source, record, policy);
      if ("firstUse" in v) {
        if (this.#table.size < MAX_SOURCES_PER_TENANT) {
          const r = newRecord(s.source, null, { managed: false, state: "UNKNOWN", arn: null }, now);
          r.lastUsedAt = now;
          this.#table.put(r);
          wake = true;
          v = v.action === "hold" ? { action: "hold", reason: v.reason } : { action: "send" };
        } else {
          // No room to track it: it could never be read, so it is forwarded as before.
          v = { action: "send", warning: `this tenant already tracks ${MAX_SOURCES_PER_TENANT} sources` };
        }
      } else if (record) {
        seen.push(s.source);
      }
      if (v.action === "send" && !v.warning) continue;
      out[s.source] = v;
      if (v.action !== "send") {
        withheld += s.entries;
        withheldBytes += s.bytes;
      }
    }
    this.#table.touch(seen, now);
    return { verdicts: out, withheld, withheldBytes, wake };
  }

  /**
   * Holds entries for one source (re-checking its verdict: it may have changed since admit).
   * "send": the source is sendable now, the caller queues them; "refuse": per-entry failure.
   */
  hold(
    source: string,
    entries: readonly { entry: string; bytes: number }[],
    policy: UnmanagedPolicy,
    room: { entries: number; bytes: number },
    now: number,
  ): /** The first relayEventIds.length entries are held; the rest (if any) refused as `refused`. */
    | { kind: "held"; relayEventIds: string[]; refused?: { code: string; message: string } }
    | { kind: "send" }
    | { kind: "refuse"; code: string; message: string } {
    const v = verdictFor(source, this.#table.get(source), policy);
    if (v.action === "send") return { kind: "send" };
    if (v.action === "refuse") return { kind: "refuse", code: v.code, message: v.message };
    // As many as fit, in order: the first ones are held, the rest refused (resent later, the
    // order is kept).
    const h = this.#table.heldOf(source);
    let n = 0;
    let bytes = 0;
    for (const e of entries) {
      if (
        h.entries + n + 1 > MAX_HELD_PER_SOURCE ||
        h.bytes + bytes + e.bytes > MAX_HELD_BYTES_PER_SOURCE ||
        n + 1 > room.entries ||
        bytes + e.bytes > room.bytes
      ) {
        break;
      }
      n++;
      bytes += e.bytes;
    }
    const ids = n > 0 ? this.#table.hold(source, entries.slice(0, n), now, now + this.maxHoldMs()) : [];
    return {
      kind: "held",
      relayEventIds: ids,
      ...(n < entries.length
        ? {
            refused: {
              code: CODES.holdFull,
              message: `the relay holds ${h.entries + n} entries for ${source}, which is not ACTIVE, and no more fit (at most ${MAX_HELD_PER_SOURCE} entries / ${MAX_HELD_BYTES_PER_SOURCE} bytes per source, within the tenant's buffer); this entry was not accepted: resend it once the source is ACTIVE`,
            },
          }
        : {}),
    };
  }

  /** The verdict for one source now (the replay of dead letters asks it). */
  verdict(source: string, policy: UnmanagedPolicy): Verdict {
    return verdictFor(source, this.#table.get(source), policy);
  }

  /** A held entry's status for GET /v1/events/{id}, or null. */
  heldStatus(relayId: string): { source: string; reason: string; acceptedAt: number; holdUntil: number } | null {
    const s = this.#table.statusOf(relayId);
    if (!s) return null;
    const v = verdictFor(s.source, this.#table.get(s.source), "hold");
    return {
      ...s,
      reason: v.action === "hold" ? v.reason : "the source's state changed: it is released at the next alarm",
    };
  }

  maxHoldMs(): number {
    const raw = this.#h.env.SOURCE_MAX_HOLD_MS;
    const n = raw === undefined || raw === "" ? DEFAULT_MAX_HOLD_MS : Number(raw);
    return Number.isInteger(n) && n >= 1_000 && n <= 30 * 86_400_000 ? n : DEFAULT_MAX_HOLD_MS;
  }

  // ---- Views ------------------------------------------------------------------------------------

  view(r: SourceRecord): SourceView {
    return {
      name: r.name,
      account: r.account,
      managed: r.managed,
      state: r.state,
      warning: r.unverifiable ? unverifiableWarning(r.unverifiable) : null,
      arn: r.arn,
      creationTime: iso(r.creationTime),
      expirationTime: iso(r.expirationTime),
      checkedAt: iso(r.checkedAt),
      nextCheckAt: iso(r.nextCheckAt),
      lastError: r.lastError,
      held: this.#table.heldOf(r.name),
    };
  }

  list(): SourceView[] {
    return this.#table.all().map((r) => this.view(r));
  }

  get(name: string): SourceView | null {
    const r = this.#table.get(name);
    return r ? this.view(r) : null;
  }

  counts(): SourceCounts {
    const all = this.#table.all();
    return {
      tracked: all.length,
      managed: all.filter((r) => r.managed).length,
      pending: all.filter((r) => r.state === "PENDING").length,
      active: all.filter((r) => r.state === "ACTIVE").length,
      deleted: all.filter((r) => r.state === "DELETED").length,
      unknown: all.filter((r) => r.state === "UNKNOWN").length,
      unverifiable: all.filter((r) => r.unverifiable !== null).length,
      heldEntries: this.#table.heldEntries,
      heldBytes: this.#table.heldBytes,
    };
  }

  // ---- Operations (admin API, partner API) ------------------------------------------------------

  /**
   * CreatePartnerEventSource for the customer's account; an existing one is adopted. The state is
   * read at once (adopted: it may be ACTIVE already; an upstream that cannot tell: forwarded).
   */
  async create(name: string, account: string): Promise<SourceOp<{ source: SourceView; created: boolean }>> {
    const now = Date.now();
    const existing = this.#table.get(name);
    if (existing?.account && existing.account !== account && existing.state !== "DELETED") {
      return err(
        409,
        "source_exists",
        `${name} is already a source of account ${existing.account}: a partner event source belongs to one customer account (delete it first)`,
      );
    }
    if (existing?.managed && existing.account === account && existing.state !== "DELETED") {
      return { kind: "ok", value: { source: this.view(existing), created: false } };
    }
    if (!existing && this.#table.size >= MAX_SOURCES_PER_TENANT) {
      return err(409, "too_many_sources", `this tenant already tracks ${MAX_SOURCES_PER_TENANT} sources`);
    }
    const cp = await this.#controlPlane(now);
    if (cp.kind === "error") return cp;
    let created = true;
    let arn: string | null = null;
    try {
      arn = await createPartnerEventSource(cp.value, name, account);
    } catch (e) {
      if (!(e instanceof ControlPlaneError)) throw e;
      if (e.kind !== "exists") return this.#opError(e, "CreatePartnerEventSource", now);
      created = false; // adopted
    }
    const r = newRecord(name, account, { managed: true, state: created ? "PENDING" : "UNKNOWN", arn }, now);
    if (existing) r.createdAt = existing.createdAt;
    this.#commit(existing, r, null, now);
    log.info("source_created", { tenantId: this.#h.tenantId(), source: name, adopted: !created });
    await this.#readNow(name, cp.value);
    return { kind: "ok", value: { source: this.view(this.#table.get(name)!), created } };
  }

  /** DeletePartnerEventSource; the source reads DELETED here, its held entries are dead-lettered. */
  async remove(name: string): Promise<SourceOp<SourceView>> {
    const now = Date.now();
    const r = this.#table.get(name);
    if (!r) return err(404, "source_not_found", `this tenant has no source ${name}`);
    if (!r.account) {
      return err(
        409,
        "source_account_unknown",
        `the relay does not know which customer account ${name} belongs to (it was looked up, not created here): delete it with the account in AWS, or create it here first`,
      );
    }
    if (r.state !== "DELETED") {
      const cp = await this.#controlPlane(now);
      if (cp.kind === "error") return cp;
      try {
        await deletePartnerEventSource(cp.value, name, r.account);
      } catch (e) {
        if (!(e instanceof ControlPlaneError)) throw e;
        if (e.kind !== "not-found") return this.#opError(e, "DeletePartnerEventSource", now);
      }
    }
    const next: SourceRecord = {
      ...r,
      managed: true,
      state: "DELETED",
      expirationTime: null,
      nextCheckAt: null,
      pendingSince: null,
      updatedAt: now,
      lastError: null,
    };
    this.#commit(r, next, "deleted", now, "the partner deleted the source through the relay");
    return { kind: "ok", value: this.view(next) };
  }

  /** Reads the state now: one source, or every one not DELETED (within the budget). */
  async refresh(name: string | null): Promise<SourceOp<SourceView[]>> {
    const now = Date.now();
    const targets = name === null ? this.#table.all().filter((r) => r.state !== "DELETED") : [this.#table.get(name)];
    if (targets.some((r) => r === undefined)) return err(404, "source_not_found", `this tenant has no source ${name}`);
    const cp = await this.#controlPlane(now);
    if (cp.kind === "error") return cp;
    for (const r of targets as SourceRecord[]) {
      const ok = await this.#readNow(r.name, cp.value);
      if (!ok) {
        if (name !== null) {
          const after = this.#table.get(r.name)!;
          if (after.lastError === "ThrottlingException" || after.lastError === "RelayBudget") {
            return err(429, "control_plane_throttled", `reading ${r.name} was throttled; retry later`, 5);
          }
        }
        break;
      }
    }
    return { kind: "ok", value: (targets as SourceRecord[]).map((r) => this.view(this.#table.get(r.name)!)) };
  }

  /**
   * Adopts the sources that exist under the tenant's names (ListPartnerEventSources per owned
   * prefix, ListPartnerEventSourceAccounts per source). Stops at the budget: `complete` says so.
   */
  async import(
    rules: readonly string[],
    owns: (name: string) => boolean,
  ): Promise<SourceOp<{ imported: string[]; skipped: string[]; complete: boolean }>> {
    const now = Date.now();
    const cp = await this.#controlPlane(now);
    if (cp.kind === "error") return cp;
    const imported: string[] = [];
    const skipped: string[] = [];
    const prefixes = [...new Set(rules.map((r) => (r.endsWith("*") ? r.slice(0, -1) : r)))];
    try {
      for (const prefix of prefixes) {
        let token: string | null = null;
        do {
          if (!(await this.#takeBudget())) return { kind: "ok", value: { imported, skipped, complete: false } };
          const page = await listPartnerEventSources(cp.value, prefix, token);
          token = page.nextToken;
          for (const s of page.sources) {
            if (!owns(s.name) || imported.includes(s.name)) continue;
            const existing = this.#table.get(s.name);
            if (existing?.managed && existing.state !== "DELETED") {
              skipped.push(s.name);
              continue;
            }
            if (!existing && this.#table.size >= MAX_SOURCES_PER_TENANT) {
              return { kind: "ok", value: { imported, skipped, complete: false } };
            }
            if (!(await this.#takeBudget())) return { kind: "ok", value: { imported, skipped, complete: false } };
            let accounts: Awaited<ReturnType<typeof listPartnerEventSourceAccounts>>["accounts"] = [];
            try {
              accounts = (await listPartnerEventSourceAccounts(cp.value, s.name, 1)).accounts;
            } catch (e) {
              if (!(e instanceof ControlPlaneError) || (e.kind !== "not-implemented" && e.kind !== "denied")) throw e;
            }
            const live = accounts.find((a) => a.state !== "DELETED") ?? accounts[0];
            const r = newRecord(
              s.name,
              live?.account ?? null,
              { managed: true, state: "UNKNOWN", arn: s.arn || null },
              now,
            );
            if (live) {
              const read = applyRead(
                r,
                {
                  kind: "read",
                  state: live.state,
                  creationTime: live.creationTime,
                  expirationTime: live.expirationTime,
                },
                now,
              );
              this.#commit(existing, read.record, read.transition, now);
            } else {
              this.#commit(existing, r, null, now);
            }
            imported.push(s.name);
          }
        } while (token);
      }
    } catch (e) {
      if (!(e instanceof ControlPlaneError)) throw e;
      return this.#opError(e, "ListPartnerEventSources", now);
    }
    return { kind: "ok", value: { imported, skipped, complete: true } };
  }

  // ---- The alarm --------------------------------------------------------------------------------

  /**
   * Sync housekeeping: a PENDING source past its ExpirationTime is DELETED (its held entries are
   * dead-lettered), holds past the maximum are dead-lettered, idle looked-up sources forgotten.
   */
  housekeep(now: number): void {
    for (const r of this.#table.all()) {
      if (expired(r, now)) {
        const next: SourceRecord = {
          ...r,
          state: "DELETED",
          expirationTime: null,
          nextCheckAt: null,
          pendingSince: null,
          lastError: "Expired",
          updatedAt: now,
        };
        this.#commit(
          r,
          next,
          "deleted",
          now,
          `the source stayed PENDING past its ExpirationTime (${iso(r.expirationTime)}): AWS deletes it`,
        );
      } else if (
        !r.managed &&
        r.lastUsedAt !== null &&
        now - r.lastUsedAt > UNMANAGED_IDLE_MS &&
        this.#table.heldOf(r.name).entries === 0
      ) {
        this.#table.remove(r.name);
      }
    }
    const stale = this.#table.takeExpired(now);
    if (stale.length > 0) {
      this.#h.storage.transactionSync(() =>
        this.#h.deadLetter(
          stale,
          CODES.holdExpired,
          `held longer than the relay's maximum hold (${this.maxHoldMs()} ms) because its source never became ACTIVE`,
          now,
        ),
      );
    }
  }

  /** Reads due sources within the budget. Returns when it wants to run next (null: nothing due). */
  async poll(now: number): Promise<number | null> {
    if (this.#pausedUntil > now) return this.#pausedUntil;
    const due = this.#table.due(now, POLL_MAX_PER_RUN);
    if (due.length === 0) return this.nextWake();
    const cp = await this.#controlPlane(now);
    if (cp.kind === "error") {
      // No usable record or credentials: try again later, hold what is held.
      this.#pausedUntil = now + CONTROL_PLANE_THROTTLE_PAUSE_MS;
      return this.#pausedUntil;
    }
    for (const r of due) {
      if (this.#pausedUntil > Date.now()) break;
      if (!this.#budget.tryTake(Date.now())) return Date.now() + this.#budget.waitMs(Date.now());
      await this.#read(r.name, cp.value);
    }
    return this.#pausedUntil > Date.now() ? this.#pausedUntil : this.nextWake();
  }

  /** The soonest time the sources need the alarm: a read, a hold running out, an expiry. */
  nextWake(): number | null {
    const times = [this.#table.nextCheckAt(), this.#table.nextHoldExpiry()];
    for (const r of this.#table.all())
      if (r.state === "PENDING" && r.expirationTime !== null) times.push(r.expirationTime);
    const t = times.filter((x): x is number => x !== null);
    if (t.length === 0) return null;
    return Math.max(Math.min(...t), this.#pausedUntil);
  }

  // ---- Shards (docs/sources.md "Shards") -------------------------------------------------------

  /** The managed sources' states as shard 0 fans them out to the tenant's other shards. */
  exportMirror(): SourceMirror[] {
    return this.#table
      .all()
      .filter((r) => r.managed)
      .map(mirrorOf);
  }

  /**
   * On a shard other than 0: applies shard 0's states (the whole set of managed sources, each
   * compared with this shard's copy), carrying out each change on this shard's held and queued
   * entries as shard 0 did on its own. Returns how many sources changed.
   */
  mirror(items: readonly SourceMirror[], now: number): number {
    let changed = 0;
    for (const m of items) {
      const local = this.#table.get(m.name);
      if (local?.managed && sameMirror(mirrorOf(local), m)) continue;
      if (!local && this.#table.size >= MAX_SOURCES_PER_TENANT) {
        // Shard 0 tracks at most as many as this shard can: only looked-up sources fill the room.
        const idle = this.#table.all().find((r) => !r.managed && this.#table.heldOf(r.name).entries === 0);
        if (idle) this.#table.remove(idle.name);
      }
      const { record, transition } = applyMirror(local, m, now);
      this.#commit(
        local,
        record,
        transition,
        now,
        m.lastError === "Expired" ? "the source stayed PENDING past its ExpirationTime: AWS deletes it" : undefined,
      );
      changed++;
    }
    return changed;
  }

  /** Forgets the memory (the tenant was purged). */
  reset(): void {
    this.#table.reset();
    this.#pausedUntil = 0;
    this.#throttles = 0;
  }

  // ---- Internals --------------------------------------------------------------------------------

  /** A read for an admin call: waits briefly for the budget. false: not read (budget, throttle). */
  async #readNow(name: string, cp: ControlPlane): Promise<boolean> {
    if (!(await this.#takeBudget())) {
      const r = this.#table.get(name)!;
      this.#table.put({
        ...r,
        lastError: "RelayBudget",
        nextCheckAt: Math.min(r.nextCheckAt ?? Infinity, Date.now() + 1_000),
      });
      return false;
    }
    return this.#read(name, cp);
  }

  async #takeBudget(): Promise<boolean> {
    const deadline = Date.now() + MAX_BUDGET_WAIT_MS;
    for (;;) {
      const now = Date.now();
      if (this.#pausedUntil > now) return false;
      if (this.#budget.tryTake(now)) return true;
      const wait = this.#budget.waitMs(now);
      if (now + wait > deadline) return false;
      await new Promise((r) => setTimeout(r, wait));
    }
  }

  /** One ListPartnerEventSourceAccounts for `name`, applied. false when it failed. */
  async #read(name: string, cp: ControlPlane): Promise<boolean> {
    let outcome: ReadOutcome;
    const before = this.#table.get(name);
    if (!before) return false;
    try {
      const { accounts } = await listPartnerEventSourceAccounts(cp, name, 1);
      outcome = readFromAccounts(accounts, before.account);
    } catch (e) {
      if (!(e instanceof ControlPlaneError)) throw e;
      // A role session EventBridge no longer takes (expired, unknown) is dropped and the read is
      // tried again with a fresh one; it says nothing about the tenant's IAM.
      const sessionDropped = e.kind === "denied" && forgetCredentials(this.#h.tenantId() ?? "", e.code);
      outcome =
        e.kind === "not-found"
          ? { kind: "not-found" }
          : !sessionDropped && (e.kind === "denied" || e.kind === "not-implemented")
            ? { kind: "unverifiable", why: e.kind, code: e.code }
            : { kind: "error", code: e.code, throttled: e.kind === "throttled" };
      if (e.kind === "throttled") this.#throttled();
      log.warn("source_read_failed", { tenantId: this.#h.tenantId(), source: name, code: e.code, kind: e.kind });
    }
    if (outcome.kind === "read" || outcome.kind === "not-found") this.#throttles = 0;
    const now = Date.now();
    const current = this.#table.get(name);
    if (!current) return false; // removed meanwhile
    const { record, transition } = applyRead(current, outcome, now);
    this.#commit(current, record, transition, now);
    return outcome.kind !== "error";
  }

  /** A throttle pauses every read of this tenant: 30 s, doubling per throttle in a row, up to 15 min. */
  #throttled(): void {
    this.#throttles++;
    this.#pausedUntil = Date.now() + Math.min(900_000, CONTROL_PLANE_THROTTLE_PAUSE_MS * 2 ** (this.#throttles - 1));
  }

  /** Writes a record and carries out its transition on held and queued entries, in one transaction. */
  #commit(
    before: SourceRecord | undefined,
    next: SourceRecord,
    transition: Transition,
    now: number,
    why?: string,
  ): void {
    const { storage } = this.#h;
    storage.transactionSync(() => {
      this.#table.put(next);
      if ((next.managed || before?.managed) && !(before && sameMirror(mirrorOf(before), mirrorOf(next))))
        this.#h.mirrorChanged?.();
      if (transition === "activated") {
        const rows = this.#table.take(next.name);
        if (rows.length > 0) this.#h.release(rows, now);
      } else if (transition === "deleted") {
        const rows = this.#table.take(next.name);
        // Entries waiting in the send queue would be dropped by AWS too: dead-letter them as well.
        const queued = this.#h.takeQueued(next.name).map((q) => ({ ...q, source: next.name, holdUntil: now }));
        const all = [...rows, ...queued];
        if (all.length > 0) {
          this.#h.deadLetter(
            all,
            CODES.deleted,
            `the partner event source ${next.name} is DELETED: ${why ?? (next.lastError === "ResourceNotFoundException" ? "EventBridge does not know it" : "AWS reports it DELETED")}`,
            now,
          );
        }
      } else if (transition === "deactivated") {
        // Back to PENDING: what waits in the send queue for it is held again, in order.
        const queued = this.#h.takeQueued(next.name);
        if (queued.length > 0) {
          this.#table.hold(
            next.name,
            queued.map((q) => ({ entry: q.entry, bytes: q.bytes, acceptedAt: q.acceptedAt, relayId: q.relayId })),
            now,
            now + this.maxHoldMs(),
          );
        }
      }
    });
    if (transition && before?.state !== next.state) {
      log.warn("source_state_changed", {
        tenantId: this.#h.tenantId(),
        source: next.name,
        from: before?.state ?? null,
        to: next.state,
        unverifiable: next.unverifiable,
      });
    }
  }

  async #controlPlane(now: number): Promise<SourceOp<ControlPlane>> {
    const tenantId = this.#h.tenantId();
    if (!tenantId) return err(503, "tenant_misconfigured", "this tenant's gate has not seen its tenant yet");
    let record: TenantRecord | null;
    try {
      record = await getTenant(this.#h.env.TENANTS, tenantId);
    } catch (e) {
      return err(503, "tenant_misconfigured", `the tenant record is unreadable: ${(e as Error).message}`);
    }
    if (!record) return err(404, "tenant_not_found", tenantId);
    let client: AwsClient;
    try {
      // Static keys, or a role's session assumed with STS (src/credentials/): as PutPartnerEvents.
      client = await credentialsFor(record, this.#h.env);
    } catch (e) {
      if (e instanceof AssumeRoleError) return this.#stsError(e);
      return err(503, "tenant_misconfigured", `the tenant's AWS credentials are unusable: ${(e as Error).message}`);
    }
    void now;
    const cfg = relayConfig(this.#h.env);
    return {
      kind: "ok",
      value: {
        client,
        endpoint: upstreamEndpoint(record, cfg.allowEndpointOverride),
        region: record.region,
        timeoutMs: Math.min(CONTROL_PLANE_TIMEOUT_MS, cfg.upstreamTimeoutMs),
      },
    };
  }

  /** STS would not give this role tenant a session: nothing was called; the codes the control plane's own failures use. */
  #stsError(e: AssumeRoleError): SourceOpError {
    const f = e.failure;
    const upstream = `AWS STS answered AssumeRole for this tenant's role with ${f.code}${f.message ? `: ${f.message}` : ""}`;
    switch (f.errorClass) {
      case "throttled":
        this.#throttled();
        return err(429, "control_plane_throttled", `${upstream}. Retry later.`, 30);
      case "credentials":
      case "rejected":
        return err(
          502,
          "control_plane_denied",
          `${upstream}. The role's trust policy, its external id or the relay's AWS identity must be fixed (docs/credentials.md).`,
        );
      default:
        return err(502, "control_plane_unavailable", `${upstream}. Retry later.`);
    }
  }

  #opError(e: ControlPlaneError, operation: string, now: number): SourceOpError {
    void now;
    const upstream = `EventBridge answered ${operation} with ${e.code}${e.message ? `: ${e.message}` : ""}`;
    switch (e.kind) {
      case "throttled":
        this.#throttled();
        return err(429, "control_plane_throttled", `${upstream}. Retry later.`, 30);
      case "denied":
        if (forgetCredentials(this.#h.tenantId() ?? "", e.code)) {
          return err(502, "control_plane_unavailable", `${upstream}. The role's session was dropped; retry.`);
        }
        return err(
          502,
          "control_plane_denied",
          `${upstream}. The tenant's AWS credentials need events:${operation} (docs/sources.md, "IAM").`,
        );
      case "not-implemented":
        return err(502, "control_plane_not_implemented", `${upstream}. This upstream does not implement ${operation}.`);
      case "invalid":
      case "not-found":
      case "exists":
        return err(400, "invalid_source", upstream);
      case "unavailable":
        return err(502, "control_plane_unavailable", `${upstream}. Retry later.`);
    }
  }
}

function err(status: number, code: string, detail: string, retryAfterS?: number): SourceOpError {
  return { kind: "error", status, code, detail, ...(retryAfterS !== undefined ? { retryAfterS } : {}) };
}
