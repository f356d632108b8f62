/**
 * Partner event sources, pure: the states, what ingest does with an entry in each, when the
 * state is read next, and what a read changes. No I/O here (the table is
 * tenant-gate/sources.ts; the calls are manager.ts). Facts: partner-sources.md; the whole story
 * for operators: docs/sources.md.
 *
 * States are AWS's (PENDING / ACTIVE / DELETED, from ListPartnerEventSourceAccounts for the
 * source's account) plus UNKNOWN: not read yet, or the upstream cannot tell (`unverifiable`).
 */

export type SourceState = "PENDING" | "ACTIVE" | "DELETED" | "UNKNOWN";

/**
 * Why a source's state cannot be read, when it cannot: "denied" (the credentials may not call
 * ListPartnerEventSourceAccounts: AccessDenied), "not-implemented" (the upstream lacks it: moto).
 * Such a source is forwarded as before, with this warning in its record and the tenant's status.
 */
export type Unverifiable = "denied" | "not-implemented";

/** What the relay does with events for a source it does not manage (the tenant record's `unmanagedSources`). */
export type UnmanagedPolicy = "verify" | "hold" | "forward";

/** A source as the gate keeps it (one row of `sources`). Times in epoch ms. */
export interface SourceRecord {
  name: string;
  /** The customer's AWS account (null: an unmanaged source whose account the relay never learned). */
  account: string | null;
  /** true: created or adopted through the relay; false: looked up on first use. */
  managed: boolean;
  state: SourceState;
  unverifiable: Unverifiable | null;
  arn: string | null;
  /** As AWS reports them for the account. */
  creationTime: number | null;
  expirationTime: number | null;
  /** When the state was last read successfully. */
  checkedAt: number | null;
  nextCheckAt: number | null;
  /** Consecutive failed reads (backoff), and the last one's code. */
  failures: number;
  lastError: string | null;
  /** When the source last entered PENDING (the PENDING poll backs off from there). */
  pendingSince: number | null;
  createdAt: number;
  updatedAt: number;
  /** Last time an event named it (unmanaged sources are forgotten after UNMANAGED_IDLE_MS). */
  lastUsedAt: number | null;
}

// ---- Cadence and budget (docs/sources.md "Polling") ---------------------------------------------

/** A PENDING source is read this soon after it entered PENDING, in ms... */
export const POLL_PENDING_MIN_MS = 10_000;
/** ...then at doubling intervals up to this one, in ms (a customer usually activates within minutes or days). */
export const POLL_PENDING_MAX_MS = 300_000;
/**
 * An ACTIVE source is re-read this often, in ms: the longest a deleted bus or a deactivated source
 * goes unnoticed is this plus one poll's delay (the alarm, the budget). Events sent meanwhile are
 * dropped by AWS.
 */
export const POLL_ACTIVE_INTERVAL_MS = 300_000;
/** A source whose state cannot be read (AccessDenied, not implemented) is tried again this often, in ms. */
export const POLL_UNVERIFIABLE_MS = 3_600_000;
/** After a failed read (throttled, 5xx, timeout) the next one waits base × 2^(failures-1), capped, in ms. */
export const POLL_ERROR_BASE_MS = 30_000;
export const POLL_ERROR_CAP_MS = 900_000;
/**
 * The tenant's control-plane budget, in calls per second and burst: AWS allows 50 requests/s per
 * account and region for these APIs together (partner-sources.md; the tenant's own tools share
 * it), so the relay keeps to a tenth of it.
 */
export const CONTROL_PLANE_RATE_PER_SECOND = 5;
export const CONTROL_PLANE_BURST = 10;
/** A control-plane throttle pauses the tenant's polling for this long, in ms (then it doubles per throttle, capped). */
export const CONTROL_PLANE_THROTTLE_PAUSE_MS = 30_000;
/** Sources read per alarm run at most (the rest wait for the next run). */
export const POLL_MAX_PER_RUN = 50;
/** Timeout of one control-plane call, in ms. */
export const CONTROL_PLANE_TIMEOUT_MS = 10_000;

// ---- Limits on what is held -----------------------------------------------------------------------

/** Sources a tenant's gate tracks at most (managed and looked-up together). */
export const MAX_SOURCES_PER_TENANT = 1_000;
/** Entries held per source at most (beyond: the entry fails with EventSourceHoldFull). */
export const MAX_HELD_PER_SOURCE = 10_000;
/** Bytes held per source at most (AWS size formula). */
export const MAX_HELD_BYTES_PER_SOURCE = 64 * 1_048_576;
/** Default longest hold, in ms (Worker var SOURCE_MAX_HOLD_MS): then the entry is dead-lettered. */
export const DEFAULT_MAX_HOLD_MS = 7 * 24 * 3_600_000;
/** An unmanaged source nobody posted to for this long is forgotten (looked up again on next use), in ms. */
export const UNMANAGED_IDLE_MS = 7 * 24 * 3_600_000;

// ---- Relay codes (docs/sources.md "Codes") --------------------------------------------------------

export const CODES = {
  /** Per entry: the source is DELETED (or does not exist): nothing is sent. */
  deleted: "EventSourceDeleted",
  /** Per entry: the source's hold is full. */
  holdFull: "EventSourceHoldFull",
  /** Dead-letter reason: held longer than the maximum hold. */
  holdExpired: "EventSourceHoldExpired",
} as const;

// ---- What ingest does -----------------------------------------------------------------------------

export type Verdict =
  | { action: "send"; warning?: string }
  | { action: "hold"; reason: string }
  | { action: "refuse"; code: string; message: string };

/**
 * The verdict for entries naming `name`, from its record (undefined: not tracked) and the
 * tenant's policy for unmanaged sources. `firstUse` tells the caller to start tracking it.
 */
export function verdictFor(
  name: string,
  record: SourceRecord | undefined,
  policy: UnmanagedPolicy,
): Verdict & { firstUse?: true } {
  if (!record) {
    if (policy === "forward") return { action: "send" };
    if (policy === "hold") {
      return { action: "hold", reason: "the relay is reading this source's state (first use)", firstUse: true };
    }
    return { action: "send", firstUse: true };
  }
  if (record.unverifiable) {
    return { action: "send", warning: unverifiableWarning(record.unverifiable) };
  }
  switch (record.state) {
    case "ACTIVE":
      return { action: "send" };
    case "PENDING":
      return {
        action: "hold",
        reason: `the partner event source ${name} is PENDING: the customer has not created its event bus (or deleted it, or deactivated the source); AWS would drop the event`,
      };
    case "DELETED":
      return {
        action: "refuse",
        code: CODES.deleted,
        message: `the partner event source ${name} is DELETED${record.lastError === "ResourceNotFoundException" ? " (EventBridge does not know it)" : ""}; AWS would drop the event, so the relay did not send it`,
      };
    case "UNKNOWN":
      // Managed, or looked up under "hold": not read yet, hold until it is. Under "verify", an
      // unmanaged source is forwarded while its first read is outstanding.
      if (!record.managed && policy !== "hold") return { action: "send" };
      return { action: "hold", reason: `the relay has not read the state of ${name} yet` };
  }
}

export function unverifiableWarning(u: Unverifiable): string {
  return u === "denied"
    ? "the tenant's AWS credentials may not call ListPartnerEventSourceAccounts (AccessDenied): the relay cannot tell whether this source is ACTIVE and forwards its events as they come"
    : "the upstream does not implement ListPartnerEventSourceAccounts: the relay cannot tell whether this source is ACTIVE and forwards its events as they come";
}

// ---- Reads and the schedule -----------------------------------------------------------------------

/** The outcome of reading one source's state. */
export type ReadOutcome =
  | {
      kind: "read";
      state: "PENDING" | "ACTIVE" | "DELETED";
      creationTime: number | null;
      expirationTime: number | null;
      /** Set when the source's account was learned from the read (an unmanaged one). */
      account?: string;
    }
  /** ResourceNotFound, or the account is not among the source's accounts. */
  | { kind: "not-found" }
  | { kind: "unverifiable"; why: Unverifiable; code: string }
  | { kind: "error"; code: string; throttled: boolean };

/** The transition a read causes (what the gate does with held and queued entries). */
export type Transition = "activated" | "deactivated" | "deleted" | null;

/** Applies a read to a record: the new record and the transition it makes. */
export function applyRead(
  r: SourceRecord,
  read: ReadOutcome,
  now: number,
): { record: SourceRecord; transition: Transition } {
  const next: SourceRecord = { ...r, updatedAt: now };
  const before = r.state;
  switch (read.kind) {
    case "read": {
      next.state = read.state;
      next.creationTime = read.creationTime;
      next.expirationTime = read.expirationTime;
      if (read.account && !next.account) next.account = read.account;
      next.unverifiable = null;
      next.failures = 0;
      next.lastError = null;
      next.checkedAt = now;
      break;
    }
    case "not-found":
      next.state = "DELETED";
      next.unverifiable = null;
      next.failures = 0;
      next.lastError = "ResourceNotFoundException";
      next.checkedAt = now;
      break;
    case "unverifiable":
      next.unverifiable = read.why;
      next.failures = 0;
      next.lastError = read.code;
      break;
    case "error":
      next.failures = r.failures + 1;
      next.lastError = read.code;
      break;
  }
  if (next.state === "PENDING" && before !== "PENDING") next.pendingSince = now;
  if (next.state !== "PENDING") next.pendingSince = null;
  next.nextCheckAt = nextCheckAt(next, now);
  let transition: Transition = null;
  if (read.kind === "unverifiable" && r.unverifiable === null)
    transition = "activated"; // forwarded as before
  else if (next.state === "ACTIVE" && before !== "ACTIVE") transition = "activated";
  else if (next.state === "DELETED" && before !== "DELETED") transition = "deleted";
  else if (next.state === "PENDING" && before === "ACTIVE") transition = "deactivated";
  return { record: next, transition };
}

/** When a source is read next (null: never again, DELETED is final). */
export function nextCheckAt(r: SourceRecord, now: number): number | null {
  if (r.failures > 0) return now + Math.min(POLL_ERROR_CAP_MS, POLL_ERROR_BASE_MS * 2 ** Math.min(20, r.failures - 1));
  if (r.unverifiable) return now + POLL_UNVERIFIABLE_MS;
  switch (r.state) {
    case "DELETED":
      return null;
    case "ACTIVE":
      return now + POLL_ACTIVE_INTERVAL_MS;
    case "UNKNOWN":
      return now;
    case "PENDING": {
      // Read soon after it entered PENDING, then at doubling intervals: 10 s, 20 s, 40 s ... 5 min.
      const since = Math.max(0, now - (r.pendingSince ?? now));
      let step = POLL_PENDING_MIN_MS;
      while (step < POLL_PENDING_MAX_MS && step <= since) step *= 2;
      return now + Math.min(step, POLL_PENDING_MAX_MS);
    }
  }
}

/**
 * A PENDING source past the ExpirationTime AWS reported is deleted by AWS: the relay treats it
 * as DELETED without waiting for the next read.
 */
export function expired(r: SourceRecord, now: number): boolean {
  return r.state === "PENDING" && r.expirationTime !== null && r.expirationTime <= now;
}

/** A new record: a managed source just created (PENDING, as AWS creates it) or adopted / first used (UNKNOWN). */
export function newRecord(
  name: string,
  account: string | null,
  opts: { managed: boolean; state: "PENDING" | "UNKNOWN"; arn: string | null },
  now: number,
): SourceRecord {
  const r: SourceRecord = {
    name,
    account,
    managed: opts.managed,
    state: opts.state,
    unverifiable: null,
    arn: opts.arn,
    creationTime: opts.state === "PENDING" ? now : null,
    expirationTime: null,
    checkedAt: null,
    nextCheckAt: null,
    failures: 0,
    lastError: null,
    pendingSince: opts.state === "PENDING" ? now : null,
    createdAt: now,
    updatedAt: now,
    lastUsedAt: null,
  };
  r.nextCheckAt = opts.state === "PENDING" ? now + POLL_PENDING_MIN_MS : now;
  return r;
}

/** Reads one account's state out of ListPartnerEventSourceAccounts' answer. */
export function readFromAccounts(
  accounts: readonly {
    account: string;
    state: "PENDING" | "ACTIVE" | "DELETED";
    creationTime: number | null;
    expirationTime: number | null;
  }[],
  account: string | null,
): ReadOutcome {
  if (account) {
    const a = accounts.find((x) => x.account === account);
    if (!a) return { kind: "not-found" };
    return { kind: "read", state: a.state, creationTime: a.creationTime, expirationTime: a.expirationTime };
  }
  // An unmanaged source: the relay does not know the account. ACTIVE if any account is (that is
  // where PutPartnerEvents delivers), else PENDING if any is, else DELETED.
  if (accounts.length === 0) return { kind: "not-found" };
  const pick =
    accounts.find((a) => a.state === "ACTIVE") ?? accounts.find((a) => a.state === "PENDING") ?? accounts[0]!;
  return {
    kind: "read",
    state: pick.state,
    creationTime: pick.creationTime,
    expirationTime: pick.expirationTime,
    ...(accounts.length === 1 ? { account: pick.account } : {}),
  };
}

// ---- The states shard 0 fans out to the tenant's other shards (docs/sources.md "Shards") -----------

/**
 * What another shard needs of a managed source to give the verdict shard 0 would: its state and
 * what the verdict's messages name. Reads that change nothing of it (checkedAt, nextCheckAt, a
 * failed read's lastError) are not part of it, so they are never fanned out.
 */
export interface SourceMirror {
  name: string;
  account: string | null;
  state: SourceState;
  unverifiable: Unverifiable | null;
  arn: string | null;
  creationTime: number | null;
  expirationTime: number | null;
  /** Only for a DELETED source: why (ResourceNotFoundException, Expired), as its refusal says. */
  lastError: string | null;
}

export function mirrorOf(r: SourceRecord): SourceMirror {
  return {
    name: r.name,
    account: r.account,
    state: r.state,
    unverifiable: r.unverifiable,
    arn: r.arn,
    creationTime: r.creationTime,
    expirationTime: r.expirationTime,
    lastError: r.state === "DELETED" ? r.lastError : null,
  };
}

export function sameMirror(a: SourceMirror, b: SourceMirror): boolean {
  return (
    a.name === b.name &&
    a.account === b.account &&
    a.state === b.state &&
    a.unverifiable === b.unverifiable &&
    a.arn === b.arn &&
    a.creationTime === b.creationTime &&
    a.expirationTime === b.expirationTime &&
    a.lastError === b.lastError
  );
}

/**
 * A shard's copy of a managed source after shard 0's state `m` arrives: managed, never read from
 * here (shard 0 polls), and the transition its held and queued entries go through. Unlike a
 * read, the transition does not depend on the shard's old state alone: what this shard did with
 * the source before (an unmanaged source it forwarded, say) may have left entries in its send
 * queue, so any change makes the shard line its entries up with the new verdict: sendable
 * releases what it held, PENDING / UNKNOWN takes queued entries back into the hold, DELETED
 * dead-letters both.
 */
export function applyMirror(
  local: SourceRecord | undefined,
  m: SourceMirror,
  now: number,
): { record: SourceRecord; transition: Transition } {
  const base = local ?? newRecord(m.name, m.account, { managed: true, state: "UNKNOWN", arn: m.arn }, now);
  const record: SourceRecord = {
    ...base,
    ...m,
    managed: true,
    lastError: m.lastError,
    failures: 0,
    checkedAt: now,
    nextCheckAt: null,
    pendingSince: m.state === "PENDING" ? (base.state === "PENDING" ? (base.pendingSince ?? now) : now) : null,
    updatedAt: now,
  };
  if (local?.managed && sameMirror(mirrorOf(local), m)) return { record, transition: null };
  let transition: Transition;
  if (m.unverifiable !== null || m.state === "ACTIVE") transition = "activated";
  else if (m.state === "DELETED") transition = local?.state === "DELETED" ? null : "deleted";
  else transition = "deactivated";
  return { record, transition };
}
