/**
 * The partner's own source management (docs/sources.md), with the tenant's API keys:
 *
 *   POST   /v1/sources          {"Name", "Account"}  CreatePartnerEventSource (an existing one is adopted)
 *   GET    /v1/sources                               the tenant's sources with their states
 *   GET    /v1/sources/{name}                        one source
 *   DELETE /v1/sources/{name}                        DeletePartnerEventSource
 *
 * Scoped to the tenant's own sources: a name outside its source rules is 403 on create and 404
 * otherwise (another tenant's sources live in another tenant's gate, never reached from here).
 * `{name}` may be percent-encoded (`aws.partner%2Fexample.com%2F...`) or written with its slashes.
 */
import { Hono } from "hono";
import { apiKeyAuth } from "../auth/api-key-auth.ts";
import type { RelayEnv } from "../context.ts";
import { errors } from "../errors.ts";
import { createSourceSchema, heldOnEveryShard, ownedName, readJson, unwrap } from "../sources/http.ts";
import { gateCall, gateFor } from "../tenant-gate/client.ts";
import { GATE_PROTOCOL, type SourceCallInput } from "../tenant-gate/protocol.ts";
import { ownsSource } from "../tenants/record.ts";
import { deniedError } from "./pipeline.ts";

export const sourcesApi = new Hono<RelayEnv>();

const NO_STORE = { "cache-control": "no-store" };

function base(c: { var: RelayEnv["Variables"] }): SourceCallInput {
  const { tenant, principal } = c.var.caller;
  return { v: GATE_PROTOCOL, tenantId: tenant.id, principal, revision: tenant.revision, status: tenant.status };
}

sourcesApi.post("/v1/sources", apiKeyAuth(), async function createSource(c) {
  const body = await readJson(c.req.raw, createSourceSchema);
  const caller = c.var.caller;
  if (!ownsSource(caller.tenant.sources, body.Name)) {
    throw errors.sourceNotOwned(body.Name, caller.tenant.sources);
  }
  const out = await gateCall(() =>
    gateFor(c.env, caller.tenant.id).sourceCreate({ ...base(c), name: body.Name, account: body.Account }),
  );
  const v = unwrap(out, (r) => deniedError(caller, r));
  return c.json(v.source, v.created ? 201 : 200, NO_STORE);
});

sourcesApi.get("/v1/sources", apiKeyAuth(), async function listSources(c) {
  const caller = c.var.caller;
  const out = await gateCall(() => gateFor(c.env, caller.tenant.id).sourceList(base(c)), { retry: true });
  const items = unwrap(out, (r) => deniedError(caller, r)).filter((s) => ownsSource(caller.tenant.sources, s.name));
  return c.json({ sources: await heldOnEveryShard(c.env, caller.tenant, items) }, 200, NO_STORE);
});

sourcesApi.get("/v1/sources/:name{.+}", apiKeyAuth(), async function getSource(c) {
  const caller = c.var.caller;
  const name = ownedName(c.req.param("name"), caller.tenant.sources);
  const out = await gateCall(() => gateFor(c.env, caller.tenant.id).sourceGet({ ...base(c), name }), {
    retry: true,
  });
  const v = unwrap(out, (r) => deniedError(caller, r));
  if (!v) {
    throw errors.sourceNotFound(`This tenant has no source ${name}.`);
  }
  return c.json((await heldOnEveryShard(c.env, caller.tenant, [v]))[0]!, 200, NO_STORE);
});

sourcesApi.delete("/v1/sources/:name{.+}", apiKeyAuth(), async function deleteSource(c) {
  const caller = c.var.caller;
  const name = ownedName(c.req.param("name"), caller.tenant.sources);
  const out = await gateCall(() => gateFor(c.env, caller.tenant.id).sourceDelete({ ...base(c), name }));
  return c.json(
    unwrap(out, (r) => deniedError(caller, r)),
    200,
    NO_STORE,
  );
});
