/**
 * What the tenant's Durable Object holds: counters (`status`) and dead letters (list, replay).
 * These need the relay; an unreachable relay is an error here, also locally.
 */
import { type AdminClient, type DeadLetterPage, RelayUnreachableError, type TenantStatus } from "./client.ts";
import type { Admin } from "./context.ts";
import { AdminError, clip, invalidInput, notFound } from "./errors.ts";
import { assertTenantId, loadTenant } from "./store.ts";

/** Dead letters per page, default and most (admin API pages). */
export const DLQ_DEFAULT_LIMIT = 50;
export const DLQ_MAX_LIMIT = 1000;
/** Relay event ids are EventBridge-sized (limits.ts MAX_EVENT_ID_CHARS). */
const RELAY_EVENT_ID_PATTERN = /^[\w.:-]{1,64}$/;

/** The admin client, with an unreachable relay turned into a message saying how to start one. */
async function withRelay<T>(admin: Admin, fn: (client: AdminClient) => Promise<T>): Promise<T> {
  const client = admin.relay();
  try {
    return await fn(client);
  } catch (e) {
    if (e instanceof RelayUnreachableError) {
      throw new AdminError(
        admin.mode === "local"
          ? `this command needs the relay, and none answers at ${client.baseUrl}: start it with \`npm start\` (or pass --url / set RELAY_URL).`
          : `this command needs the relay, and ${client.baseUrl} does not answer (${e.message}). Check RELAY_URL and the deployment.`,
      );
    }
    throw e;
  }
}

/** Checks the relay settings, then that the tenant exists, then asks its Durable Object. */
async function forTenant<T>(
  admin: Admin,
  rawId: string,
  fn: (client: AdminClient, id: string) => Promise<T>,
): Promise<T> {
  const id = assertTenantId(rawId);
  admin.relay(); // fail on missing relay settings before any KV call
  await loadTenant(admin.kv, id);
  return withRelay(admin, (c) => fn(c, id));
}

/** The Durable Object's counters; `tenantId` is the one it holds (null before its first request). */
export async function tenantStatus(admin: Admin, rawId: string): Promise<TenantStatus> {
  const id = assertTenantId(rawId);
  const s = await forTenant(admin, id, (c) => c.status(id));
  // As the CLI always printed it: the tenant asked for, unless the answer names one.
  return Object.assign({ tenantId: id }, s);
}

export async function listDeadLetters(
  admin: Admin,
  rawId: string,
  opts: { limit?: number; after?: string } = {},
): Promise<{ tenantId: string } & DeadLetterPage> {
  const page = await forTenant(admin, rawId, (c, id) => c.deadLetters(id, opts.limit ?? DLQ_DEFAULT_LIMIT, opts.after));
  return { tenantId: rawId, items: Array.isArray(page.items) ? page.items : [], next: page.next ?? null };
}

/**
 * Puts dead letters back in the queue: all, or the ids given. Returns what was replayed and the
 * ids the relay does not hold; the caller decides whether those are an error (the CLI: exit 3).
 */
export async function replayDeadLetters(
  admin: Admin,
  rawId: string,
  which: { all: true } | { relayEventIds: string[] },
): Promise<{ tenantId: string; replayed: number; notFound: string[] }> {
  const id = assertTenantId(rawId);
  if ("relayEventIds" in which) {
    if (which.relayEventIds.length === 0) throw invalidInput("dlq replay needs --all or at least one relay event id");
    for (const e of which.relayEventIds) {
      if (!RELAY_EVENT_ID_PATTERN.test(e)) throw invalidInput(`"${clip(e)}" is not a relay event id`);
    }
  }
  const body = "all" in which ? { all: true as const } : { relayEventIds: [...new Set(which.relayEventIds)] };
  const r = await forTenant(admin, id, (c) => c.replay(id, body));
  return { tenantId: id, replayed: r.replayed ?? 0, notFound: Array.isArray(r.notFound) ? r.notFound : [] };
}

/** The error for ids `replayDeadLetters` did not find. */
export function notDeadLetters(tenantId: string, ids: readonly string[]): AdminError {
  return notFound(`${ids.length} relay event id(s) are not dead letters of tenant ${tenantId}`);
}
