/**
 * Partner event sources in the admin API (ADMIN_TOKEN, routes below, mounted by routes.ts), and
 * the library functions `npm run tenant -- source ...` calls them with (docs/sources.md):
 *
 *   GET    /admin/v1/tenants/{id}/sources                  list
 *   POST   /admin/v1/tenants/{id}/sources    {Name, Account}  create (an existing source is adopted)
 *   GET    /admin/v1/tenants/{id}/sources/{name}           show
 *   DELETE /admin/v1/tenants/{id}/sources/{name}           delete
 *   POST   /admin/v1/tenants/{id}/sources/refresh  {Name?} read the state now (one, or all)
 *   POST   /admin/v1/tenants/{id}/sources/import           adopt what exists under the tenant's names
 *
 * The names must be under the tenant record's source rules, as on the partner API.
 */
import { Hono } from "hono";
import { z } from "zod";
import type { RelayEnv } from "../context.ts";
import { errors, type RelayError } from "../errors.ts";
import { MAX_SOURCE_CHARS, SOURCE_PATTERN } from "../limits.ts";
import { createSourceSchema, ownedName, readJson, unwrap } from "../sources/http.ts";
import type { SourceView } from "../sources/manager.ts";
import { gateCall, gateFor } from "../tenant-gate/client.ts";
import { GATE_PROTOCOL, type SourceCallInput } from "../tenant-gate/protocol.ts";
import { ownsSource, type TenantRecord, tenantIdSchema } from "../tenants/record.ts";
import { getTenant } from "../tenants/store.ts";

export const adminSourcesApi = new Hono<RelayEnv>();

const PREFIX = "/admin/v1/tenants/:id/sources";

async function tenantOf(env: Env, raw: string): Promise<TenantRecord> {
  const id = tenantIdSchema.safeParse(raw);
  if (!id.success) {
    throw errors.invalidTenantId(id.error.issues[0]!.message);
  }
  const record = await getTenant(env.TENANTS, id.data, { fresh: true });
  if (!record) throw errors.tenantNotFound(id.data);
  return record;
}

function base(t: TenantRecord): SourceCallInput {
  return { v: GATE_PROTOCOL, tenantId: t.id, principal: null, revision: t.revision, status: t.status };
}

const never = (): RelayError => errors.internalError("unexpected gate answer from a source call");

adminSourcesApi.get(PREFIX, async function adminListSources(c) {
  const t = await tenantOf(c.env, c.req.param("id"));
  const out = await gateCall(() => gateFor(c.env, t.id).sourceList(base(t)), { retry: true });
  return c.json({ sources: unwrap(out, never) });
});

adminSourcesApi.post(PREFIX, async function adminCreateSource(c) {
  const t = await tenantOf(c.env, c.req.param("id"));
  const body = await readJson(c.req.raw, createSourceSchema);
  if (!ownsSource(t.sources, body.Name)) {
    throw errors.sourceNotOwned(body.Name, t.sources);
  }
  const out = await gateCall(() =>
    gateFor(c.env, t.id).sourceCreate({ ...base(t), name: body.Name, account: body.Account }),
  );
  const v = unwrap(out, never);
  return c.json(v, v.created ? 201 : 200);
});

const refreshSchema = z.strictObject({
  Name: z.string().max(MAX_SOURCE_CHARS).regex(SOURCE_PATTERN).optional(),
});

adminSourcesApi.post(`${PREFIX}/refresh`, async function adminRefreshSources(c) {
  const t = await tenantOf(c.env, c.req.param("id"));
  const body = await readJson(c.req.raw, refreshSchema);
  const out = await gateCall(() => gateFor(c.env, t.id).sourceRefresh({ ...base(t), name: body.Name ?? null }));
  return c.json({ sources: unwrap(out, never) });
});

adminSourcesApi.post(`${PREFIX}/import`, async function adminImportSources(c) {
  const t = await tenantOf(c.env, c.req.param("id"));
  const out = await gateCall(() => gateFor(c.env, t.id).sourceImport({ ...base(t), rules: t.sources }));
  return c.json(unwrap(out, never));
});

adminSourcesApi.get(`${PREFIX}/:name{.+}`, async function adminShowSource(c) {
  const t = await tenantOf(c.env, c.req.param("id"));
  const name = ownedName(c.req.param("name"), t.sources);
  const out = await gateCall(() => gateFor(c.env, t.id).sourceGet({ ...base(t), name }), { retry: true });
  const v = unwrap(out, never);
  if (!v) throw errors.sourceNotFound(`Tenant ${t.id} has no source ${name}.`);
  return c.json(v);
});

adminSourcesApi.delete(`${PREFIX}/:name{.+}`, async function adminDeleteSource(c) {
  const t = await tenantOf(c.env, c.req.param("id"));
  const name = ownedName(c.req.param("name"), t.sources);
  const out = await gateCall(() => gateFor(c.env, t.id).sourceDelete({ ...base(t), name }));
  return c.json(unwrap(out, never));
});

// ---- Library functions (the CLI's `source` commands call these over HTTP) ----------------------

export interface AdminTarget {
  /** The relay's origin, e.g. http://127.0.0.1:8787 */
  url: string;
  token: string;
  fetch?: typeof fetch;
}

export class AdminApiError extends Error {
  readonly status: number;
  readonly code: string;
  constructor(status: number, code: string, detail: string) {
    super(detail);
    this.name = "AdminApiError";
    this.status = status;
    this.code = code;
  }
}

async function call<T>(t: AdminTarget, method: string, path: string, body?: unknown): Promise<T> {
  const res = await (t.fetch ?? fetch)(`${t.url.replace(/\/$/, "")}${path}`, {
    method,
    headers: {
      authorization: `Bearer ${t.token}`,
      ...(body !== undefined ? { "content-type": "application/json" } : {}),
    },
    ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
  });
  const text = await res.text();
  let json: unknown = null;
  try {
    json = text ? JSON.parse(text) : null;
  } catch {
    // not JSON: reported below
  }
  if (!res.ok) {
    const p = (json ?? {}) as { code?: string; detail?: string };
    throw new AdminApiError(
      res.status,
      p.code ?? `http_${res.status}`,
      p.detail ?? (text.slice(0, 300) || res.statusText),
    );
  }
  return json as T;
}

const sourcesPath = (tenantId: string) => `/admin/v1/tenants/${encodeURIComponent(tenantId)}/sources`;

export function createSource(
  t: AdminTarget,
  tenantId: string,
  name: string,
  account: string,
): Promise<{ source: SourceView; created: boolean }> {
  return call(t, "POST", sourcesPath(tenantId), { Name: name, Account: account });
}

export async function listSources(t: AdminTarget, tenantId: string): Promise<SourceView[]> {
  return (await call<{ sources: SourceView[] }>(t, "GET", sourcesPath(tenantId))).sources;
}

export function showSource(t: AdminTarget, tenantId: string, name: string): Promise<SourceView> {
  return call(t, "GET", `${sourcesPath(tenantId)}/${encodeURIComponent(name)}`);
}

export async function refreshSources(t: AdminTarget, tenantId: string, name: string | null): Promise<SourceView[]> {
  return (
    await call<{ sources: SourceView[] }>(t, "POST", `${sourcesPath(tenantId)}/refresh`, name ? { Name: name } : {})
  ).sources;
}

export function deleteSource(t: AdminTarget, tenantId: string, name: string): Promise<SourceView> {
  return call(t, "DELETE", `${sourcesPath(tenantId)}/${encodeURIComponent(name)}`);
}

export function importSources(
  t: AdminTarget,
  tenantId: string,
): Promise<{ imported: string[]; skipped: string[]; complete: boolean }> {
  return call(t, "POST", `${sourcesPath(tenantId)}/import`, {});
}

/** One line per source, for the CLI's table output. */
export function formatSource(s: SourceView): string {
  const held = s.held.entries > 0 ? `  held ${s.held.entries}` : "";
  const warn = s.warning ? `  (unverifiable: ${s.warning.split(":")[0]})` : "";
  return `${s.state.padEnd(8)} ${s.name}  account ${s.account ?? "?"}${s.managed ? "" : "  (looked up)"}  checked ${s.checkedAt ?? "never"}${held}${warn}`;
}
