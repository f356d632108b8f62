/** Driving a tenant's gate from tests: the admin API, and running its alarm until the buffer is empty. */
import { runDurableObjectAlarm } from "cloudflare:test";
import { env, exports } from "cloudflare:workers";
import { shardName } from "../../src/tenant-gate/client.ts";

export const ADMIN_TOKEN = "test-admin-token-0123456789abcdef";

/** One of the tenant's gate shards (shard 0: the object named by the tenant id). */
export function gateStub(tenantId: string, shard = 0): DurableObjectStub {
  return env.TENANT_GATE.getByName(shardName(tenantId, shard));
}

/** The tenant's control object. */
export function controlStub(tenantId: string): DurableObjectStub {
  return env.TENANT_CONTROL.getByName(tenantId);
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export interface AdminStatus {
  queued: number;
  accepted: number;
  delivered: number;
  failed: number;
  deadLetters: number;
  duplicatesPossible: number;
  upstreamCalls: number;
  lastUpstreamError: { code: string; message: string } | null;
  /** Per shard (the control object's view): which are routed, what each holds. */
  shards: { shard: number; routed: boolean; queued: number; deadLetters: number; upstreamCalls: number }[];
}

export async function adminStatus(tenantId: string): Promise<AdminStatus> {
  const res = await admin(`/admin/v1/tenants/${tenantId}/status`);
  if (res.status !== 200) throw new Error(`admin status ${res.status}: ${await res.text()}`);
  return res.json();
}

/**
 * Runs the alarms (the drain) of every shard still holding entries, side by side as the platform
 * would, until nothing is queued. Bounded: throws after `maxRuns`. Retries are scheduled a few ms
 * ahead (test backoff), so it pauses briefly between runs.
 */
export async function drain(tenantId: string, maxRuns = 2000): Promise<number> {
  let status = await adminStatus(tenantId);
  for (let runs = 0; runs < maxRuns; runs++) {
    const busy = status.shards.filter((s) => s.queued > 0).map((s) => s.shard);
    const ran = await Promise.all(busy.map((s) => runDurableObjectAlarm(gateStub(tenantId, s))));
    status = await adminStatus(tenantId);
    if (status.queued === 0) return runs;
    await sleep(ran.some(Boolean) ? 1 : 5);
  }
  throw new Error(`tenant ${tenantId} still has queued events after ${maxRuns} alarm runs`);
}

export function admin(path: string, init: RequestInit = {}): Promise<Response> {
  return exports.default.fetch(`http://relay.test${path}`, {
    ...init,
    headers: {
      authorization: `Bearer ${ADMIN_TOKEN}`,
      "content-type": "application/json",
      ...(init.headers as Record<string, string> | undefined),
    },
  });
}

/** Drops whatever a test left in these tenants' gates, so no alarm fires after the test. */
export async function purgeGates(tenantIds: Iterable<string>): Promise<void> {
  for (const id of tenantIds) await admin(`/admin/v1/tenants/${id}?force=true`, { method: "DELETE" });
}
