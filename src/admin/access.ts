/**
 * Telling the tenant's Durable Object about access changes, the strongly consistent authority on
 * revocation and disabling (KV takes ~60 s to reach every location). The order of operations in
 * the commands (docs/admin.md "Order of operations") makes a crash between steps fail closed:
 *
 *   revoke  = (1) PUT access with the id revoked, (2) write the record without it, (3) delete the index entry
 *   disable = (1) PUT access disabled at the new revision, (2) write the record
 *   enable  = (1) write the record, (2) PUT access active at the new revision
 *   delete  = (1) PUT access disabled + every key revoked, (2) delete index entries, (3) delete the
 *             record, (4) DELETE the Durable Object's state, (5) the access update of (1) again
 *
 * Before the first step the relay is probed. Remotely an unreachable relay aborts before any KV
 * write unless the relay is skipped. Locally, no relay running is a note (a local relay reads local
 * KV directly and has no edge cache), but a relay `npm start` recorded as running on this state
 * that does not answer aborts too: a change that must take effect at once never reports success
 * while a running relay did not get it.
 */
import type { AccessUpdate, AdminClient } from "./client.ts";
import type { Admin } from "./context.ts";
import { AdminError } from "./errors.ts";

export type RelayOutcome = "applied" | "unreachable" | "skipped";

/** The ~60 s window a skipped relay leaves, for messages (platform: KV propagation). */
export const KV_PROPAGATION_NOTE = "up to ~60 s (KV propagation) at locations that cached the old record";

export interface RelayPlan {
  /** The client to use, or null when the relay is skipped or (locally) not running. */
  client: AdminClient | null;
  outcome: RelayOutcome;
}

/** Checks the relay settings (URL, token) before any KV call, so bad settings fail fast. */
export function assertRelayConfigured(admin: Pick<Admin, "relay">, skip: boolean): void {
  if (!skip) admin.relay();
}

/** Decides, before anything is written, whether the relay takes part. */
export async function planRelay(
  admin: Pick<Admin, "relay" | "mode" | "notices"> & Partial<Pick<Admin, "runningRelay">>,
  skip: boolean,
): Promise<RelayPlan> {
  if (skip) {
    admin.notices.warn(`--skip-relay: the relay is not told, so the change takes effect after ${KV_PROPAGATION_NOTE}`);
    return { client: null, outcome: "skipped" };
  }
  const client = admin.relay();
  if (await client.reachable()) return { client, outcome: "applied" };
  if (admin.mode === "local") {
    const running = admin.runningRelay?.() ?? null;
    if (running) {
      const where =
        running.url === client.baseUrl ? running.url : `${running.url} (this command tried ${client.baseUrl})`;
      throw new AdminError(
        `the local relay \`npm start\` runs on this state (pid ${running.pid}, ${where}) did not answer, so nothing was ` +
          "written: the change would not reach it at once. Check that it is still starting or stuck, then run this " +
          `again; if it is gone, remove ${running.file}.`,
      );
    }
    admin.notices.note(
      `no relay running at ${client.baseUrl}; local KV only (a local relay reads it directly when it starts)`,
    );
    return { client: null, outcome: "unreachable" };
  }
  throw new AdminError(
    `the relay at ${client.baseUrl} is unreachable, so nothing was written. Check RELAY_URL and the deployment ` +
      `(\`npx wrangler deployments list\`), or rerun with --skip-relay to write KV only (the change then takes ${KV_PROPAGATION_NOTE}).`,
  );
}

/**
 * Tells the tenant's control object its new shard count (docs/scaling.md): new shards are
 * seeded with the access state, retired ones keep draining. Before the record with the new
 * `limits.shards` is written, so no request reaches an unseeded shard.
 */
export async function applyShards(plan: RelayPlan, tenantId: string, shards: number, region: string): Promise<void> {
  if (!plan.client) return;
  await plan.client.putShards(tenantId, { shards, region });
}

/** Sends the access update and checks the Durable Object now holds it. */
export async function applyAccess(
  plan: RelayPlan,
  tenantId: string,
  update: AccessUpdate,
  kvWritten = false,
): Promise<void> {
  if (!plan.client) return;
  const state = await plan.client.putAccess(tenantId, update);
  if (
    state &&
    typeof state.revision === "number" &&
    state.revision > update.revision &&
    state.status !== update.status
  ) {
    throw new AdminError(
      `the relay already holds a newer revision (${state.revision}, ${state.status}) of tenant ${tenantId} than this ` +
        `record (${update.revision}); the KV record is older than what the relay has seen.` +
        (kvWritten ? "" : " Nothing was written to KV."),
    );
  }
}
