/**
 * Tenant lifecycle: create, list, show, update, disable, enable, delete. Inputs arrive checked
 * for shape by the caller (the CLI's flags); every record written goes through the tenant schema.
 */
import { KV, TENANT_SCHEMA_VERSION, type TenantLimits, type TenantRecord } from "../tenants/record.ts";
import { applyAccess, applyShards, assertRelayConfigured, planRelay, type RelayOutcome } from "./access.ts";
import { RelayHttpError, RelayUnreachableError } from "./client.ts";
import type { Admin } from "./context.ts";
import { AdminError, conflict } from "./errors.ts";
import {
  assertTenantId,
  deleteInOrder,
  indexKeys,
  type ListedTenant,
  listTenants,
  loadTenant,
  loadTenantOrNull,
  nextRevision,
  type PublicTenant,
  publicView,
  putInOrder,
  recordEntry,
  unknownTenant,
  validateRecord,
} from "./store.ts";

/** True when some source could match both rules (exact names and `prefix*` rules). */
export function rulesOverlap(a: string, b: string): boolean {
  const pa = a.endsWith("*") ? a.slice(0, -1) : null;
  const pb = b.endsWith("*") ? b.slice(0, -1) : null;
  if (pa === null && pb === null) return a === b;
  if (pa !== null && pb !== null) return pa.startsWith(pb) || pb.startsWith(pa);
  if (pa !== null) return b.startsWith(pa);
  return a.startsWith(pb!);
}

/** Refuses (conflict) a source that overlaps another tenant's. */
export function assertNoSharedSources(id: string, sources: readonly string[], others: readonly TenantRecord[]): void {
  for (const other of others) {
    if (other.id === id) continue;
    for (const mine of sources) {
      const clash = other.sources.find((theirs) => rulesOverlap(mine, theirs));
      if (clash) {
        throw conflict(
          `source "${mine}" overlaps tenant ${other.id}'s "${clash}": each partner event source should belong to one ` +
            "tenant. Pass --allow-shared-source if both tenants really send as it.",
        );
      }
    }
  }
}

const ENDPOINT_IGNORED_NOTE =
  "the endpoint override is ignored unless the Worker runs with ALLOW_ENDPOINT_OVERRIDE=true";

// ---- create ------------------------------------------------------------------------------------

export interface NewTenant {
  id: string;
  name: string;
  sources: string[];
  region: string;
  endpoint?: string | null;
  limits?: Partial<TenantLimits>;
  /** Allow sources that overlap another tenant's. */
  allowSharedSource?: boolean;
}

/** A new active tenant with no keys. Duplicate id or overlapping source: conflict. */
export async function createTenant(admin: Admin, input: NewTenant): Promise<TenantRecord> {
  const id = assertTenantId(input.id);
  const now = admin.now();
  const record = validateRecord({
    schemaVersion: TENANT_SCHEMA_VERSION,
    id,
    name: input.name,
    status: "active",
    // Revisions start at the creation time in ms, so a re-created tenant outranks anything the
    // relay's Durable Object still remembers about an earlier tenant with the same id.
    revision: now.getTime(),
    sources: input.sources,
    region: input.region,
    endpoint: input.endpoint ?? null,
    limits: input.limits ?? {},
    credentials: null,
    apiKeys: [],
    sigv4Keys: [],
    createdAt: now.toISOString(),
    updatedAt: now.toISOString(),
  });
  const existing = await listTenants(admin.kv);
  if (existing.some((t) => t.id === id)) throw conflict(`tenant "${id}" already exists (see \`show ${id}\`)`);
  if (!input.allowSharedSource) {
    assertNoSharedSources(
      id,
      record.sources,
      existing.flatMap((t) => (t.record ? [t.record] : [])),
    );
  }
  // Several shards: the control object learns them (and places them by the region) first.
  if (record.limits.shards > 1)
    await applyShards(await planRelay(admin, false), id, record.limits.shards, record.region);
  await putInOrder(admin.kv, [recordEntry(record)]);
  if (record.endpoint && admin.mode === "remote") admin.notices.note(ENDPOINT_IGNORED_NOTE);
  return record;
}

// ---- list / show ---------------------------------------------------------------------------------

/** Every tenant; an unreadable record is listed with the reason (and a warning). */
export async function listAllTenants(admin: Admin): Promise<ListedTenant[]> {
  const tenants = await listTenants(admin.kv);
  for (const t of tenants) if (t.problem) admin.notices.warn(`tenant:${t.id}: ${t.problem}`);
  return tenants;
}

/** What `list --json` prints. */
export function listView(
  tenants: readonly ListedTenant[],
  now: Date,
): { tenants: (PublicTenant | { id: string; invalid: string | undefined })[] } {
  return { tenants: tenants.map((t) => (t.record ? publicView(t.record, now) : { id: t.id, invalid: t.problem })) };
}

export async function showTenant(admin: Admin, id: string): Promise<TenantRecord> {
  return loadTenant(admin.kv, assertTenantId(id));
}

// ---- update --------------------------------------------------------------------------------------

export interface TenantChanges {
  name?: string;
  /** Replaces the whole list. */
  sources?: string[];
  region?: string;
  /** null: back to the region's AWS endpoint. */
  endpoint?: string | null;
  limits?: Partial<TenantLimits>;
  allowSharedSource?: boolean;
}

export function hasChanges(c: TenantChanges): boolean {
  return (
    c.name !== undefined ||
    c.sources !== undefined ||
    c.region !== undefined ||
    c.endpoint !== undefined ||
    Object.keys(c.limits ?? {}).length > 0
  );
}

export async function updateTenant(admin: Admin, rawId: string, changes: TenantChanges): Promise<TenantRecord> {
  const id = assertTenantId(rawId);
  let record: TenantRecord;
  if (changes.sources && !changes.allowSharedSource) {
    // One listing gives the record and everyone else's sources.
    const all = await listTenants(admin.kv);
    const mine = all.find((t) => t.id === id);
    if (!mine) throw unknownTenant(id);
    if (!mine.record) throw new AdminError(mine.problem ?? `tenant:${id} is unreadable`);
    record = mine.record;
    assertNoSharedSources(
      id,
      changes.sources,
      all.flatMap((t) => (t.record ? [t.record] : [])),
    );
  } else {
    record = await loadTenant(admin.kv, id);
  }
  const next = nextRevision(
    record,
    {
      ...(changes.name !== undefined ? { name: changes.name } : {}),
      ...(changes.sources !== undefined ? { sources: changes.sources } : {}),
      ...(changes.region !== undefined ? { region: changes.region } : {}),
      ...(changes.endpoint !== undefined ? { endpoint: changes.endpoint } : {}),
      limits: { ...record.limits, ...changes.limits },
    },
    admin.now(),
  );
  // A new shard count reaches the relay first: new shards are seeded with the access state
  // before any Worker reads a record that routes to them (docs/scaling.md).
  if (next.limits.shards !== record.limits.shards)
    await applyShards(await planRelay(admin, false), id, next.limits.shards, next.region);
  await putInOrder(admin.kv, [recordEntry(next)]);
  if (changes.endpoint && admin.mode === "remote") admin.notices.note(ENDPOINT_IGNORED_NOTE);
  return next;
}

// ---- disable / enable ----------------------------------------------------------------------------

export interface RelayOptions {
  /** Do not tell the relay (KV only): the change then takes up to ~60 s to reach every location. */
  skipRelay?: boolean;
}

export interface StatusChange {
  tenantId: string;
  status: "active" | "disabled";
  revision: number;
  relay: RelayOutcome;
}

/** (1) the Durable Object is set to disabled at the new revision, (2) the record is written. */
export async function disableTenant(admin: Admin, rawId: string, opts: RelayOptions = {}): Promise<StatusChange> {
  const id = assertTenantId(rawId);
  const skip = opts.skipRelay === true;
  assertRelayConfigured(admin, skip);
  const record = await loadTenant(admin.kv, id);
  const plan = await planRelay(admin, skip);
  const next = nextRevision(record, { status: "disabled" }, admin.now());
  await applyAccess(plan, id, {
    revision: next.revision,
    status: "disabled",
    revokeApiKeyIds: [],
    revokeAccessKeyIds: [],
  });
  await putInOrder(admin.kv, [recordEntry(next)]);
  return { tenantId: id, status: next.status, revision: next.revision, relay: plan.outcome };
}

/** (1) the record is written, (2) the Durable Object is set to active at the new revision. */
export async function enableTenant(admin: Admin, rawId: string, opts: RelayOptions = {}): Promise<StatusChange> {
  const id = assertTenantId(rawId);
  const skip = opts.skipRelay === true;
  assertRelayConfigured(admin, skip);
  const record = await loadTenant(admin.kv, id);
  const plan = await planRelay(admin, skip);
  const next = nextRevision(record, { status: "active" }, admin.now());
  await putInOrder(admin.kv, [recordEntry(next)]);
  await applyAccess(
    plan,
    id,
    { revision: next.revision, status: "active", revokeApiKeyIds: [], revokeAccessKeyIds: [] },
    true,
  );
  return { tenantId: id, status: next.status, revision: next.revision, relay: plan.outcome };
}

// ---- delete --------------------------------------------------------------------------------------

export interface DeleteOptions extends RelayOptions {
  /** Delete even with queued events (dropped); also purges relay state of a record already gone. */
  force?: boolean;
}

export interface DeleteResult {
  tenantId: string;
  deleted: boolean;
  indexEntriesDeleted: number;
  relay: RelayOutcome;
  relayState: "purged" | "skipped";
  /** The deleted record's key counts, for people. */
  apiKeys: number;
  sigv4Keys: number;
}

/**
 * (0) refuse with queued events (unless force), (1) Durable Object disabled with every key revoked,
 * (2) index entries and (3) the record deleted, (4) the Durable Object purged, (5) (1) again as a
 * tombstone.
 */
export async function deleteTenant(admin: Admin, rawId: string, opts: DeleteOptions = {}): Promise<DeleteResult> {
  const id = assertTenantId(rawId);
  const force = opts.force === true;
  const skip = opts.skipRelay === true;
  assertRelayConfigured(admin, skip);
  const record = await loadTenantOrNull(admin.kv, id);
  if (!record && !force) throw unknownTenant(id);
  const plan = await planRelay(admin, skip);
  if (plan.client && !force) {
    let queued = 0;
    try {
      const status = await plan.client.status(id);
      queued = Number(status.queued ?? 0);
    } catch (e) {
      if (!(e instanceof RelayHttpError && e.status === 404)) throw e;
    }
    if (queued > 0) {
      throw conflict(
        `tenant ${id} still has ${queued} queued event(s) the relay has accepted but not delivered. Wait for them ` +
          "(`status " +
          id +
          "`), or pass --force to drop them. Nothing was changed.",
      );
    }
  }
  // Without a record (an earlier delete stopped after step 3), the ids are unknown, but a
  // disabled status at the current time still outranks any record a cache may hold.
  const tombstone = record
    ? {
        revision: record.revision + 1,
        status: "disabled" as const,
        revokeApiKeyIds: record.apiKeys.map((k) => k.id),
        revokeAccessKeyIds: record.sigv4Keys.map((k) => k.accessKeyId),
      }
    : { revision: admin.now().getTime(), status: "disabled" as const, revokeApiKeyIds: [], revokeAccessKeyIds: [] };
  if (record) {
    await applyAccess(plan, id, tombstone);
    // (2) then (3): the index entries first, the record last.
    await deleteInOrder(admin.kv, [...indexKeys(record), KV.tenant(id)]);
  } else {
    admin.notices.note(`no record tenant:${id} in KV; purging the relay state only`);
  }
  let purged: "purged" | "skipped" = "skipped";
  if (plan.client) {
    try {
      await plan.client.purge(id, force);
      purged = "purged";
      // (5) The purge also wiped the revocations and the disabled status, while Worker isolates
      // and KV edge caches may still hold the old record for a minute: leave a tombstone.
      await applyAccess(plan, id, tombstone);
    } catch (e) {
      if (e instanceof RelayHttpError && e.status === 404) purged = "purged";
      else if (e instanceof RelayHttpError && e.status === 409) {
        throw new AdminError(
          `tenant ${id} is deleted from KV and disabled in the relay, but events were queued meanwhile and the relay kept ` +
            `its state: run \`delete ${id} --force\` to drop them.`,
          "conflict",
        );
      } else if (e instanceof RelayUnreachableError) {
        throw new AdminError(
          `tenant ${id} is deleted from KV and disabled in the relay, but the final purge failed (${e.message}): run \`delete ${id} --force\` again.`,
        );
      } else throw e;
    }
  }
  return {
    tenantId: id,
    deleted: record !== null,
    indexEntriesDeleted: record ? indexKeys(record).length : 0,
    relay: plan.outcome,
    relayState: purged,
    apiKeys: record?.apiKeys.length ?? 0,
    sigv4Keys: record?.sigv4Keys.length ?? 0,
  };
}
