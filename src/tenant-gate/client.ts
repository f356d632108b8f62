/**
 * The Worker side of the tenant gate: reaching a tenant's gate, and turning Durable Object
 * failures into clear 503s.
 */
import { errors, type RelayError } from "../errors.ts";
import { TENANT_CACHE_MAX_ENTRIES } from "../limits.ts";
import { log } from "../log.ts";
import type { GateRpc } from "./protocol.ts";

/**
 * Durable Object ids by tenant, per namespace: deriving one hashes the name on every call. Kept
 * for as many tenants as the record cache holds, then started over.
 */
const ids = new WeakMap<Env["TENANT_GATE"], Map<string, DurableObjectId>>();

/** The tenant's gate: one Durable Object per tenant, named by the tenant id. */
export function gateFor(env: Env, tenantId: string): GateRpc {
  const ns = env.TENANT_GATE;
  let byName = ids.get(ns);
  if (!byName) ids.set(ns, (byName = new Map()));
  let id = byName.get(tenantId);
  if (!id) {
    if (byName.size >= TENANT_CACHE_MAX_ENTRIES) byName.clear();
    id = ns.idFromName(tenantId);
    byName.set(tenantId, id);
  }
  return ns.get(id) as unknown as GateRpc;
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
