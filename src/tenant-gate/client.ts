/**
 * The Worker side of the tenant gate: reaching a tenant's gate, and turning Durable Object
 * failures into clear 503s.
 */
import { errors, type RelayError } from "../errors.ts";
import { locationHintFor, TENANT_CACHE_MAX_ENTRIES } from "../limits.ts";
import { log } from "../log.ts";
import type { ControlRpc, ShardRpc } from "./protocol.ts";

/**
 * Durable Object ids by name, per namespace: deriving one hashes the name on every call. Kept
 * for as many names as the record cache holds tenants, then started over.
 */
const ids = new WeakMap<DurableObjectNamespace, Map<string, DurableObjectId>>();

function idFor(ns: DurableObjectNamespace, name: string): DurableObjectId {
  let byName = ids.get(ns);
  if (!byName) ids.set(ns, (byName = new Map()));
  let id = byName.get(name);
  if (!id) {
    if (byName.size >= TENANT_CACHE_MAX_ENTRIES) byName.clear();
    id = ns.idFromName(name);
    byName.set(name, id);
  }
  return id;
}

/** What routing needs of a tenant: its id, its AWS region (placement) and its shard count. */
export interface TenantRef {
  id: string;
  region: string;
  limits: { shards?: number };
}

/**
 * A shard's Durable Object name: shard 0 is the tenant id itself (the one object a tenant had
 * before shards, so existing tenants keep their data), shard i is `<tenantId>#<i>` (`#` is not a
 * tenant-id character, so no tenant's name collides with another's shard).
 */
export function shardName(tenantId: string, shard: number): string {
  return shard === 0 ? tenantId : `${tenantId}#${shard}`;
}

/**
 * Which shard takes a request: hash(Idempotency-Key) when there is one (a retry finds its
 * first attempt's record), otherwise uniformly at random, which spreads load evenly with no
 * shared counter (docs/scaling.md). `random` is passed in for tests.
 */
export function pickShard(shards: number, idempotencyKey: string | null, random: () => number = Math.random): number {
  if (shards <= 1) return 0;
  if (idempotencyKey === null) return Math.floor(random() * shards) % shards;
  // FNV-1a, 32 bits: cheap, and even enough over keys for a modulus this small.
  let h = 0x811c9dc5;
  for (let i = 0; i < idempotencyKey.length; i++) {
    h ^= idempotencyKey.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return (h >>> 0) % shards;
}

/**
 * One shard of the tenant, placed near its AWS region (`locationHint`, honoured on the object's
 * first `get()` only; limits.ts, REGION_LOCATION_HINTS).
 */
export function shardOf(env: Env, tenant: Pick<TenantRef, "id" | "region">, shard: number): ShardRpc {
  const ns = env.TENANT_GATE as unknown as DurableObjectNamespace;
  const hint = locationHintFor(tenant.region);
  const id = idFor(ns, shardName(tenant.id, shard));
  return (hint ? ns.get(id, { locationHint: hint }) : ns.get(id)) as unknown as ShardRpc;
}

/** The shard a request goes to (pickShard), and its stub. */
export function shardFor(
  env: Env,
  tenant: TenantRef,
  idempotencyKey: string | null,
): { shard: number; gate: ShardRpc } {
  const shard = pickShard(tenant.limits.shards ?? 1, idempotencyKey);
  return { shard, gate: shardOf(env, tenant, shard) };
}

/** The tenant's shard 0 (the object named by the tenant id). */
export function gateFor(env: Env, tenantId: string, region = ""): ShardRpc {
  return shardOf(env, { id: tenantId, region }, 0);
}

/** The tenant's control object (control.ts), named by the tenant id, placed like its shards. */
export function controlFor(env: Env, tenantId: string, region = ""): ControlRpc {
  const ns = env.TENANT_CONTROL as unknown as DurableObjectNamespace;
  const hint = locationHintFor(region);
  const id = idFor(ns, tenantId);
  return (hint ? ns.get(id, { locationHint: hint }) : ns.get(id)) as unknown as ControlRpc;
}

interface DurableObjectError extends Error {
  retryable?: boolean;
  overloaded?: boolean;
}

/**
 * Calls the gate. `retry` once on a retryable error (only for calls that are safe to repeat);
 * an overloaded object is never retried (platform.md): the partner gets 503 + Retry-After.
 */
export async function gateCall<T>(fn: () => Promise<T>, opts: { retry?: boolean } = {}): Promise<T> {
  try {
    return await fn();
  } catch (e) {
    const err = e as DurableObjectError;
    if (opts.retry && err?.retryable && !err.overloaded) {
      try {
        return await fn();
      } catch (e2) {
        throw unavailable(e2 as DurableObjectError);
      }
    }
    throw unavailable(err);
  }
}

function unavailable(err: DurableObjectError): RelayError {
  log.error("tenant_gate_failed", { error: err?.message ?? String(err), overloaded: !!err?.overloaded });
  return err?.overloaded ? errors.tenantOverloaded(err?.message) : errors.tenantGateUnavailable(err?.message);
}
