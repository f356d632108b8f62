/** Driving a tenant's gate from tests: the admin API, and running its alarm until the buffer is empty. */
import { runDurableObjectAlarm } from "cloudflare:test";
import { env, exports } from "cloudflare:workers";

export const ADMIN_TOKEN = "test-admin-token-0123456789abcdef";

export function gateStub(tenantId: string): DurableObjectStub {
  return env.TENANT_GATE.getByName(tenantId);
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
}

export async function adminStatus(tenantId: string): Promise<AdminStatus> {
  const res = await admin(`/admin/v1/tenants/${tenantId}/status`);
  if (res.status !== 200) throw new Error(`admin status ${res.status}: ${await res.text()}`);
  return res.json();
}

/**
 * Runs the tenant's alarm (the drain) until nothing is queued. Bounded: throws after `maxRuns`.
 * Retries are scheduled a few ms ahead (test backoff), so it pauses briefly between runs.
 */
export async function drain(tenantId: string, maxRuns = 2000): Promise<number> {
  const stub = gateStub(tenantId);
  for (let runs = 0; runs < maxRuns; runs++) {
    const ran = await runDurableObjectAlarm(stub);
    const { queued } = await adminStatus(tenantId);
    if (queued === 0) return runs;
    await sleep(ran ? 1 : 5);
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
