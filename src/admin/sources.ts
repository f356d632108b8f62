/**
 * Partner event sources as tenant administration (docs/sources.md): the library behind
 * `npm run tenant -- source create|list|show|refresh|delete|import`. Each function checks its
 * input, that the tenant exists, then calls one admin API route (src/admin/sources-routes.ts)
 * through the admin client, and returns the relay's answer or throws an AdminError.
 */
import { MAX_SOURCE_CHARS, SOURCE_PATTERN } from "../limits.ts";
import type { SourceView } from "../sources/view.ts";
import { type AdminClient, RelayUnreachableError } from "./client.ts";
import type { Admin } from "./context.ts";
import { AdminError, clip, invalidInput } from "./errors.ts";
import { assertTenantId, loadTenant } from "./store.ts";

const ACCOUNT_PATTERN = /^\d{12}$/;

/** A partner event source name, or a usage error. */
export function assertSourceName(raw: string | undefined, what = "the source name"): string {
  if (!raw) throw invalidInput(`${what} is required: aws.partner/<partner>/<namespace>/<name>`);
  if (raw.length > MAX_SOURCE_CHARS || !SOURCE_PATTERN.test(raw)) {
    throw invalidInput(
      `${what} "${clip(raw)}" is not a partner event source name (aws.partner/<partner>/<namespace>/<name>)`,
    );
  }
  return raw;
}

/** Checks the relay settings, then the tenant, then calls its sources route; an unreachable relay says how to start one. */
async function forTenant<T>(admin: Admin, rawId: string, fn: (c: AdminClient, id: string) => Promise<T>): Promise<T> {
  const id = assertTenantId(rawId);
  const client = admin.relay(); // fail on missing relay settings before any KV call
  await loadTenant(admin.kv, id);
  try {
    return await fn(client, id);
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

const path = (id: string, rest = "") => `/admin/v1/tenants/${encodeURIComponent(id)}/sources${rest}`;

/** CreatePartnerEventSource for the customer's account; an existing source is adopted (`created: false`). */
export function createSource(
  admin: Admin,
  rawId: string,
  name: string,
  account: string,
): Promise<{ source: SourceView; created: boolean }> {
  const n = assertSourceName(name);
  if (!ACCOUNT_PATTERN.test(account)) throw invalidInput("the account is the customer's 12-digit AWS account id");
  return forTenant(admin, rawId, (c, id) =>
    c.call(`POST`, path(id), { Name: n, Account: account }, "the source creation"),
  );
}

export async function listSources(admin: Admin, rawId: string): Promise<SourceView[]> {
  const out = await forTenant(admin, rawId, (c, id) =>
    c.call<{ sources: SourceView[] }>("GET", path(id), undefined, "the source listing"),
  );
  return out.sources;
}

export function showSource(admin: Admin, rawId: string, name: string): Promise<SourceView> {
  const n = assertSourceName(name);
  return forTenant(admin, rawId, (c, id) =>
    c.call("GET", path(id, `/${encodeURIComponent(n)}`), undefined, "the source lookup"),
  );
}

/** Reads the state now: one source, or (name null) every one not DELETED. */
export async function refreshSources(admin: Admin, rawId: string, name: string | null): Promise<SourceView[]> {
  const n = name === null ? null : assertSourceName(name);
  const out = await forTenant(admin, rawId, (c, id) =>
    c.call<{ sources: SourceView[] }>("POST", path(id, "/refresh"), n ? { Name: n } : {}, "the source refresh"),
  );
  return out.sources;
}

/** DeletePartnerEventSource; the source reads DELETED and its held entries are dead-lettered. */
export function deleteSource(admin: Admin, rawId: string, name: string): Promise<SourceView> {
  const n = assertSourceName(name);
  return forTenant(admin, rawId, (c, id) =>
    c.call("DELETE", path(id, `/${encodeURIComponent(n)}`), undefined, "the source deletion"),
  );
}

/** Adopts the sources that exist under the tenant's names; `complete: false` when the budget stopped it. */
export function importSources(
  admin: Admin,
  rawId: string,
): Promise<{ imported: string[]; skipped: string[]; complete: boolean }> {
  return forTenant(admin, rawId, (c, id) => c.call("POST", path(id, "/import"), {}, "the source import"));
}

/** One line per source, for the CLI's output. */
export function formatSource(s: SourceView): string {
  const held = s.held.entries > 0 ? `  held ${s.held.entries}` : "";
  const warn = s.warning ? "  (unverifiable: forwarded as before)" : "";
  return `${s.state.padEnd(8)} ${s.name}  account ${s.account ?? "?"}${s.managed ? "" : "  (looked up)"}  read ${s.checkedAt ?? "never"}${held}${warn}`;
}
