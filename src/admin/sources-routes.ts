/**
 * Partner event sources in the admin API (ADMIN_TOKEN, routes below, mounted by routes.ts;
 * docs/sources.md):
 *
 *   GET    /admin/v1/tenants/{id}/sources                  list
 *   POST   /admin/v1/tenants/{id}/sources    {Name, Account}  create (an existing source is adopted)
 *   GET    /admin/v1/tenants/{id}/sources/{name}           show
 *   DELETE /admin/v1/tenants/{id}/sources/{name}           delete
 *   POST   /admin/v1/tenants/{id}/sources/refresh  {Name?} read the state now (one, or all)
 *   POST   /admin/v1/tenants/{id}/sources/import           adopt what exists under the tenant's names
 *
 * The names must be under the tenant record's source rules, as on the partner API. The CLI's
 * library functions that call these are src/admin/sources.ts.
 */
import { Hono } from "hono";
import { z } from "zod";
import type { RelayEnv } from "../context.ts";
import { errors, type RelayError } from "../errors.ts";
import { MAX_SOURCE_CHARS, SOURCE_PATTERN } from "../limits.ts";
import { createSourceSchema, heldOnEveryShard, ownedName, readJson, unwrap } from "../sources/http.ts";
import { gateCall, gateFor } from "../tenant-gate/client.ts";
import { GATE_PROTOCOL, type SourceCallInput } from "../tenant-gate/protocol.ts";
import { KV, ownsSource, type TenantRecord, tenantIdSchema, tenantRecordSchema } from "../tenants/record.ts";

export const adminSourcesApi = new Hono<RelayEnv>();

const PREFIX = "/admin/v1/tenants/:id/sources";

async function tenantOf(env: Env, raw: string): Promise<TenantRecord> {
  const id = tenantIdSchema.safeParse(raw);
  if (!id.success) {
    throw errors.invalidTenantId(id.error.issues[0]!.message);
  }
  // Read fresh (not the isolate's cache): the admin just changed it, maybe.
  const stored = await env.TENANTS.get(KV.tenant(id.data), "json");
  if (stored === null) throw errors.tenantNotFound(id.data);
  const record = tenantRecordSchema.safeParse(stored);
  if (!record.success) throw errors.tenantMisconfigured(`tenant record ${id.data} does not parse`);
  return record.data;
}

function base(t: TenantRecord): SourceCallInput {
  return { v: GATE_PROTOCOL, tenantId: t.id, principal: null, revision: t.revision, status: t.status };
}

const never = (): RelayError => errors.internalError("unexpected gate answer from a source call");

adminSourcesApi.get(PREFIX, async function adminListSources(c) {
  const t = await tenantOf(c.env, c.req.param("id"));
  const out = await gateCall(() => gateFor(c.env, t.id).sourceList(base(t)), { retry: true });
  return c.json({ sources: await heldOnEveryShard(c.env, t, unwrap(out, never)) });
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
  return c.json({ sources: await heldOnEveryShard(c.env, t, unwrap(out, never)) });
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
  return c.json((await heldOnEveryShard(c.env, t, [v]))[0]!);
});

adminSourcesApi.delete(`${PREFIX}/:name{.+}`, async function adminDeleteSource(c) {
  const t = await tenantOf(c.env, c.req.param("id"));
  const name = ownedName(c.req.param("name"), t.sources);
  const out = await gateCall(() => gateFor(c.env, t.id).sourceDelete({ ...base(t), name }));
  return c.json(unwrap(out, never));
});
