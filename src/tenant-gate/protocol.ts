/**
 * The tenant gate's RPC surface, as the Worker (client.ts) and the object (gate.ts) share it.
 *
 * Compatibility across a deploy: while a deploy rolls out, new Worker code can talk to an object
 * still running the old code for a while, and old Worker code to a new object (Cloudflare's
 * Durable Objects documentation). So the surface changes by additions only, and nothing refuses a
 * call for its version (docs/architecture.md):
 *
 * - allowed: a new method; a new optional input field whose default, applied by the object,
 *   means what the old code did (`x?: T`, read as `input.x ?? default`); a new output field or
 *   variant only where the caller tolerates its absence (an old object never sends it);
 * - never: removing or renaming a field, changing its type or meaning, making an optional field
 *   required, or making the Worker depend on a new method before every object has it;
 * - an old object ignores input fields it does not know (RPC passes the whole object, and the old
 *   code never reads them); a new object treats a missing field as its default.
 *
 * test/integration/gate-protocol.test.ts holds the rule to that: a call without the fields a
 * caller may leave out, and a call with a field this code does not know, both work.
 */
import type { WireEntry } from "../entries/schema.ts";
import type { SourceMirror, UnmanagedPolicy, Verdict } from "../sources/policy.ts";
import type { SourceCounts, SourceOp, SourceView } from "../sources/view.ts";
import type { TenantLimits } from "../tenants/record.ts";

/**
 * Sent as `v` on every call and never checked by the object. Objects deployed before the rule
 * above refuse any `v` other than 1, so this stays 1 for good: compatibility comes from additive
 * changes, not from a number.
 */
export const GATE_PROTOCOL = 1 as const;

/** Who is calling: an API key (by key id) or a SigV4 key pair (by access key id). */
export interface Principal {
  kind: "api-key" | "sigv4";
  id: string;
}

export interface AdmitInput {
  v: typeof GATE_PROTOCOL;
  tenantId: string;
  principal: Principal;
  /** The record revision the Worker authenticated against, and the status it says. */
  revision: number;
  status: "active" | "disabled";
  limits: TenantLimits;
  /** Valid entries in the request and their size by AWS's formula. */
  entries: number;
  bytes: number;
  idempotency: { key: string; bodyHash: string } | null;
  /**
   * The distinct sources of the valid entries, with their entries and bytes (src/sources/). Default
   * []: no source verdicts (everything is sent as before).
   */
  sources?: { source: string; entries: number; bytes: number }[];
  /** The tenant record's policy for sources the relay does not manage. Default "verify". */
  unmanagedSources?: UnmanagedPolicy;
  /** Which of the tenant's shards this object is (0: the one named by the tenant id). Default 0. */
  shard?: number;
  /**
   * The valid entries themselves, sent along when the Worker expects this shard to queue them (it
   * queued this shard's last request: it is buffering). A `queue` decision then commits them in
   * this call, as enqueue() would, and answers `queued`; any other decision ignores them. Not
   * used when a source verdict applies (the Worker holds or refuses some first). Default: absent
   * (enqueue() is a second call). The Worker never retries an admit that carries them.
   */
  queue?: QueuedEntryInput[];
}

/**
 * Per source, what to do with its entries when it is not simply "send": "hold" (call hold()),
 * "refuse" (fail each entry with the code), or "send" with a warning. Absent: send them all.
 */
export type SourceVerdicts = Record<string, Verdict>;

export type AdmitOutput =
  | { kind: "denied"; reason: "revoked" | "disabled"; revision: number }
  | { kind: "replay"; status: number; body: string; contentType: string }
  | { kind: "idempotency-mismatch" }
  | { kind: "idempotency-in-progress"; retryAfterS: number }
  /** Send now: a token was taken (none when entries is 0). */
  | { kind: "direct"; revision: number; rate: RateInfo; sources?: SourceVerdicts }
  /** Over the rate: call enqueue() with the entries. */
  | { kind: "queue"; revision: number; rate: RateInfo; sources?: SourceVerdicts }
  /** Over the rate, and the entries sent along (`queue`) are committed: their relay ids, in order. */
  | { kind: "queued"; revision: number; rate: RateInfo; relayEventIds: string[] }
  | { kind: "full"; retryAfterS: number; revision: number; rate: RateInfo; sources?: SourceVerdicts };

/** Entries for sources admit() said to hold (called only after such a verdict: an old object never gives one). */
export interface HoldInput {
  v: typeof GATE_PROTOCOL;
  tenantId: string;
  limits: TenantLimits;
  unmanagedSources?: UnmanagedPolicy;
  entries: { source: string; entry: WireEntry; bytes: number }[];
}

/** Per entry, in order: its relay id (held, or queued when the source became sendable), or why not. */
export interface HoldOutput {
  results: ({ relayEventId: string } | { code: string; message: string })[];
}

/** Who asks about sources: the partner (a principal, checked like a request) or the admin API (null). */
export interface SourceCallInput {
  v: typeof GATE_PROTOCOL;
  tenantId: string;
  principal: Principal | null;
  revision: number;
  status: "active" | "disabled";
}

export type SourceCall<T> = Denied | SourceOp<T>;

/** The token bucket as RateLimit header fields report it. */
export interface RateInfo {
  limit: number;
  remaining: number;
  resetS: number;
  windowS: number;
}

/**
 * An entry to buffer. The retry metadata is optional (absent: a fresh entry, as the admission
 * path queues it): the direct path fills it in when it queues an entry after a failed send.
 */
export interface QueuedEntryInput {
  entry: WireEntry;
  bytes: number;
  /** Attempts already made (1 when the direct send failed retryably). Default 0. */
  attempts?: number;
  /** The direct send's error. Default null. */
  lastCode?: string | null;
  lastMessage?: string | null;
  /** The direct send's outcome is unknown: a later delivery may duplicate it. Default false. */
  outcomeUnknown?: boolean;
}

export interface EnqueueInput {
  v: typeof GATE_PROTOCOL;
  tenantId: string;
  limits: TenantLimits;
  entries: QueuedEntryInput[];
  /** Which of the tenant's shards this object is; it names the relay ids. Default 0. */
  shard?: number;
}

export type EnqueueOutput =
  | { kind: "queued"; relayEventIds: string[] }
  | { kind: "full"; retryAfterS: number; rate: RateInfo };

export interface FinishInput {
  v: typeof GATE_PROTOCOL;
  /** Entries EventBridge accepted / the relay reported as failed on the direct path. */
  delivered: number;
  failed: number;
  /** Whole-call or per-entry upstream error seen, for /v1/status. */
  lastUpstreamError: { code: string; message: string } | null;
  /** EventBridge throttled the direct send: the drain should back off too. */
  upstreamThrottled: boolean;
  /** Store the response for replay (status < 500), or release the key (null response). */
  idempotency: { key: string; response: { status: number; body: string; contentType: string } | null } | null;
  /**
   * Entries of a direct send whose outcome is unknown (answer lost, 5xx, timeout) that the relay
   * could not queue and handed back to the partner to resend: possible duplicates. Optional
   * (added later; absent means 0).
   */
  duplicatesPossible?: number;
}

export type EventStatus =
  | { state: "queued"; attempts: number; lastErrorCode: string | null; acceptedAt: number; nextAttemptAt: number }
  | { state: "delivered"; eventId: string | null; attempts: number; at: number }
  | { state: "failed"; errorCode: string; errorMessage: string; attempts: number; at: number; deadLettered: boolean }
  /** Held for a source that is not ACTIVE (src/sources/): not sent yet. */
  | { state: "held"; source: string; reason: string; acceptedAt: number; holdUntil: number };

export interface GateStatus {
  tenantId: string | null;
  revision: number;
  status: "active" | "disabled";
  accepted: number;
  delivered: number;
  failed: number;
  queued: number;
  queuedBytes: number;
  oldestQueuedAgeMs: number | null;
  deadLetters: number;
  duplicatesPossible: number;
  upstreamCalls: number;
  lastUpstreamError: { code: string; message: string; at: number } | null;
  rate: RateInfo;
  nextDrainAt: number | null;
  /** The tenant's partner event sources (absent from an object older than them). */
  sources?: SourceCounts & { items: SourceView[] };
  /** This object's shard index (absent from objects deployed before shards: 0). */
  shard?: number;
}

export interface AccessInput {
  v: typeof GATE_PROTOCOL;
  tenantId: string;
  revision: number;
  status: "active" | "disabled";
  revokeApiKeyIds: string[];
  revokeAccessKeyIds: string[];
}

export interface DeadLetter {
  relayEventId: string;
  entry: WireEntry;
  errorCode: string;
  errorMessage: string;
  attempts: number;
  acceptedAt: string;
  failedAt: string;
}

export type Denied = { kind: "denied"; reason: "revoked" | "disabled" };

/**
 * The gate's RPC methods as callers see them. TenantGate implements it (checked by `implements`),
 * and callers use this plain interface rather than the stub's mapped RPC types.
 */
export interface GateRpc {
  admit(input: AdmitInput): Promise<AdmitOutput>;
  enqueue(input: EnqueueInput): Promise<EnqueueOutput>;
  finish(input: FinishInput): Promise<void>;
  eventStatus(input: EventStatusInput): Promise<Denied | { kind: "found"; event: EventStatus } | { kind: "missing" }>;
  status(input: StatusInput): Promise<Denied | { kind: "ok"; status: GateStatus }>;
  setAccess(input: AccessInput): Promise<{ revision: number; status: "active" | "disabled" }>;
  deadLetters(input: {
    v: typeof GATE_PROTOCOL;
    limit: number;
    after: number | null;
  }): Promise<{ items: DeadLetter[]; next: number | null }>;
  replay(input: {
    v: typeof GATE_PROTOCOL;
    all: boolean;
    relayEventIds: string[];
  }): Promise<{ replayed: number; notFound: string[] }>;
  purge(input: { v: typeof GATE_PROTOCOL; force: boolean }): Promise<{ purged: boolean; queued: number }>;
  hold(input: HoldInput): Promise<HoldOutput>;
  sourceList(input: SourceCallInput): Promise<SourceCall<SourceView[]>>;
  sourceGet(input: SourceCallInput & { name: string }): Promise<SourceCall<SourceView | null>>;
  sourceCreate(
    input: SourceCallInput & { name: string; account: string },
  ): Promise<SourceCall<{ source: SourceView; created: boolean }>>;
  sourceDelete(input: SourceCallInput & { name: string }): Promise<SourceCall<SourceView>>;
  sourceRefresh(input: SourceCallInput & { name: string | null }): Promise<SourceCall<SourceView[]>>;
  sourceImport(
    input: SourceCallInput & { rules: string[] },
  ): Promise<SourceCall<{ imported: string[]; skipped: string[]; complete: boolean }>>;
}

export interface EventStatusInput {
  v: typeof GATE_PROTOCOL;
  tenantId: string;
  principal: Principal;
  revision: number;
  status: "active" | "disabled";
  relayEventId: string;
}

export interface StatusInput {
  v: typeof GATE_PROTOCOL;
  tenantId: string;
  /** null for the admin API (no partner credential to check). */
  principal: Principal | null;
  revision: number;
  status: "active" | "disabled";
}

/**
 * A piece of per-tenant state the control object (control.ts) owns and fans out to every shard:
 * the whole current state of that kind each time (so delivering it twice, or an older copy after
 * a newer one, changes nothing), keyed by `kind`. Kinds today: `access` (AccessState: revision,
 * status, every revoked principal) and `directory` ({shards, senders}: how many shards the
 * tenant routes to, and how many may be sending upstream, which divides the tenant's rate),
 * both produced by the control object, and `sources` (SourcesState: the managed partner event
 * sources' states, produced by shard 0, which manages them, through `setState`). A new kind is
 * one more case in the shard's `applyState` and one more producer.
 */
export interface ShardStateMessage {
  kind: string;
  body: unknown;
}

export interface DirectoryState {
  /** Shards the Worker routes new requests to (the tenant record's limits.shards once written). */
  shards: number;
  /** Shards that may send upstream: the routed ones plus retired ones still draining a backlog. */
  senders: number;
}

/**
 * The `sources` kind: every managed source's state as shard 0 has it (docs/sources.md "Shards").
 * `version` rises with every change (epoch-ms based, so across a purge too): the control object
 * keeps the newest it was given, a shard applies a version once.
 */
export interface SourcesState {
  version: number;
  sources: SourceMirror[];
}

export interface ApplyStateInput {
  v: typeof GATE_PROTOCOL;
  tenantId: string;
  /** The receiving shard's index. */
  shard: number;
  states: ShardStateMessage[];
}

/** Kinds applied (durably, before this answer), and kinds this shard's code does not know. */
export interface ApplyStateOutput {
  applied: string[];
  unknown: string[];
}

/** The shard-side calls the control object makes (TenantGate implements them). */
export interface ShardRpc extends GateRpc {
  applyState(input: ApplyStateInput): Promise<ApplyStateOutput>;
  /** This shard's access state, for a control object created after the shard (an existing tenant). */
  exportAccess(input: { v: typeof GATE_PROTOCOL }): Promise<AccessExport>;
  /**
   * Shard 0's managed sources' states (null on another shard, or with none ever managed): the
   * control object seeds new shards with them (setShards).
   */
  exportSources(input: { v: typeof GATE_PROTOCOL }): Promise<SourcesState | null>;
  /** The entries this shard holds, per source (the source views count every shard's). */
  heldBySource(input: { v: typeof GATE_PROTOCOL }): Promise<Record<string, { entries: number; bytes: number }>>;
}

export interface AccessExport {
  tenantId: string | null;
  revision: number;
  status: "active" | "disabled";
  revoked: { principal: string; revoked_at: number }[];
}

/** Admin answers of the control object: done on every shard, or not yet (re-run, or its alarm finishes). */
export type FanOutResult<T> = { kind: "ok"; value: T } | { kind: "incomplete"; pendingShards: number[]; value: T };

export interface ControlRpc {
  setAccess(input: AccessInput): Promise<FanOutResult<{ revision: number; status: "active" | "disabled" }>>;
  setShards(input: {
    v: typeof GATE_PROTOCOL;
    tenantId: string;
    shards: number;
    /** The tenant's AWS region, for placing new shards (default: the record's, read from KV). */
    region?: string;
  }): Promise<FanOutResult<DirectoryState & { known: number }>>;
  /**
   * Stores a state of another kind (`sources`, from shard 0) and fans it out like access. With
   * `version`, an older or equal version than the one stored is not stored (a late call after a
   * newer one changes nothing); whatever is stored is still fanned out.
   */
  setState(input: {
    v: typeof GATE_PROTOCOL;
    tenantId: string;
    kind: string;
    body: unknown;
    version?: number;
  }): Promise<FanOutResult<null>>;
  /** Every shard's held entries per source, summed (the source views of a tenant with shards). */
  heldBySource(input: {
    v: typeof GATE_PROTOCOL;
    tenantId: string;
  }): Promise<Record<string, { entries: number; bytes: number }>>;
  status(input: StatusInput): Promise<Denied | { kind: "ok"; status: GateStatus; shards: ShardSummary[] }>;
  deadLetters(input: {
    v: typeof GATE_PROTOCOL;
    tenantId: string;
    limit: number;
    after: string | null;
  }): Promise<{ items: DeadLetter[]; next: string | null }>;
  replay(input: {
    v: typeof GATE_PROTOCOL;
    tenantId: string;
    all: boolean;
    relayEventIds: string[];
  }): Promise<{ replayed: number; notFound: string[] }>;
  purge(input: {
    v: typeof GATE_PROTOCOL;
    tenantId: string;
    force: boolean;
  }): Promise<{ purged: boolean; queued: number }>;
}

/** One shard's share of GET /v1/status (admin API only). */
export interface ShardSummary {
  shard: number;
  routed: boolean;
  queued: number;
  deadLetters: number;
  upstreamCalls: number;
}

/**
 * A relay event id names its shard and keeps the format partners already know, `relay-<uuid>`
 * (42 characters, within EventBridge's 64 for the AWS front door): since shards, the uuid is a
 * version 8 ("custom") one laid out as `xxxxxxxx-xxxx-8SSS-vxxx-xxxxxxxxxxII`: SSS the shard
 * (hex), II the entry's index in its request (hex), the rest random (100 bits). Everything but
 * II names the committed request. Ids issued before shards are version 4 uuids: shard 0's.
 */
export const RELAY_ID_PATTERN = /^relay-[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

export interface RelayIdParts {
  shard: number;
  /** The committed request's id (the relay id without its index), or null for an id from before shards. */
  request: string | null;
  index: number;
}

export function parseRelayId(id: string): RelayIdParts | null {
  if (!RELAY_ID_PATTERN.test(id)) return null;
  if (id[20] !== "8") return { shard: 0, request: null, index: 0 };
  return {
    shard: Number.parseInt(id.slice(21, 24), 16),
    request: id.slice(0, 40),
    index: Number.parseInt(id.slice(40), 16),
  };
}

export function relayIdShard(id: string): number | null {
  return parseRelayId(id)?.shard ?? null;
}

/** A new request id for `shard` (40 characters); entry k's relay id is it plus k as two hex digits. */
export function newRequestId(shard: number): string {
  const b = crypto.getRandomValues(new Uint8Array(13));
  const h = Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
  const variant = (8 + (b[12]! & 3)).toString(16);
  return `relay-${h.slice(0, 8)}-${h.slice(8, 12)}-8${shard.toString(16).padStart(3, "0")}-${variant}${h.slice(12, 15)}-${h.slice(15, 25)}`;
}

export function relayIdAt(request: string, index: number): string {
  return request + index.toString(16).padStart(2, "0");
}
