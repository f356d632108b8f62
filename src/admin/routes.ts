/**
 * The admin API, for `npm run tenant` (scripts/tenant.ts): what only the tenant's Durable Object
 * holds (access authority, counters, dead letters). Tenant records themselves are written to KV
 * by the CLI through wrangler. Bearer ADMIN_TOKEN (a Worker secret), compared in constant time.
 */
import { Hono } from "hono";
import { z } from "zod";
import { timingSafeEqual } from "../auth/api-key.ts";
import type { RelayEnv } from "../context.ts";
import { errors } from "../errors.ts";
import { gateCall, gateFor } from "../tenant-gate/client.ts";
import { GATE_PROTOCOL } from "../tenant-gate/protocol.ts";
import { tenantIdSchema } from "../tenants/record.ts";
import { adminSourcesApi } from "./sources-routes.ts";

export const adminApi = new Hono<RelayEnv>();

const CHALLENGE = 'Bearer realm="eventbridge-relay-admin"';

adminApi.use("/admin/*", async function adminAuth(c, next) {
  c.set("errorFormat", "problem");
  const token = c.env.ADMIN_TOKEN;
  if (!token) {
    throw errors.adminDisabled();
  }
  const m = /^Bearer +(\S+) *$/i.exec(c.req.header("authorization") ?? "");
  if (!m) {
    throw errors.missingAdminToken(CHALLENGE);
  }
  if (!timingSafeEqual(m[1]!, token)) {
    throw errors.invalidAdminToken(CHALLENGE);
  }
  await next();
});

function tenantParam(raw: string): string {
  const r = tenantIdSchema.safeParse(raw);
  if (!r.success) throw errors.invalidTenantId(r.error.issues[0]!.message);
  return r.data;
}

async function jsonBody<T>(req: Request, schema: z.ZodType<T>): Promise<T> {
  let raw: unknown;
  try {
    raw = await req.json();
  } catch {
    throw errors.invalidJson();
  }
  const r = schema.safeParse(raw);
  if (!r.success) {
    const i = r.error.issues[0]!;
    throw errors.invalidRequest(`${i.path.join(".") || "body"}: ${i.message}`);
  }
  return r.data;
}

const accessSchema = z.strictObject({
  revision: z.number().int().min(1),
  status: z.enum(["active", "disabled"]),
  revokeApiKeyIds: z.array(z.string().min(1).max(100)).max(1000).default([]),
  revokeAccessKeyIds: z.array(z.string().min(1).max(128)).max(1000).default([]),
});

adminApi.put("/admin/v1/tenants/:id/access", async function putAccess(c) {
  const tenantId = tenantParam(c.req.param("id"));
  const body = await jsonBody(c.req.raw, accessSchema);
  const out = await gateCall(() => gateFor(c.env, tenantId).setAccess({ v: GATE_PROTOCOL, tenantId, ...body }), {
    retry: true,
  });
  return c.json(out);
});

adminApi.get("/admin/v1/tenants/:id/status", async function getStatus(c) {
  const tenantId = tenantParam(c.req.param("id"));
  const out = await gateCall(
    () =>
      gateFor(c.env, tenantId).status({ v: GATE_PROTOCOL, tenantId, principal: null, revision: 0, status: "active" }),
    { retry: true },
  );
  if (out.kind !== "ok") throw errors.internalError("unexpected gate answer");
  const s = out.status;
  return c.json({
    ...s,
    lastUpstreamError: s.lastUpstreamError
      ? { ...s.lastUpstreamError, at: new Date(s.lastUpstreamError.at).toISOString() }
      : null,
    nextDrainAt: s.nextDrainAt === null ? null : new Date(s.nextDrainAt).toISOString(),
  });
});

adminApi.get("/admin/v1/tenants/:id/dead-letters", async function listDeadLetters(c) {
  const tenantId = tenantParam(c.req.param("id"));
  const limit = Number(c.req.query("limit") ?? 100);
  const afterRaw = c.req.query("after");
  const after = afterRaw === undefined ? null : Number(afterRaw);
  if (!Number.isInteger(limit) || limit < 1 || limit > 1000 || (after !== null && !Number.isInteger(after))) {
    throw errors.invalidRequest("limit is 1-1000 and after is a cursor from a previous page.");
  }
  const out = await gateCall(() => gateFor(c.env, tenantId).deadLetters({ v: GATE_PROTOCOL, limit, after }), {
    retry: true,
  });
  return c.json({ items: out.items, next: out.next === null ? null : String(out.next) });
});

const replaySchema = z.union([
  z.strictObject({ all: z.literal(true) }),
  z.strictObject({ relayEventIds: z.array(z.string().min(1).max(64)).min(1).max(1000) }),
]);

adminApi.post("/admin/v1/tenants/:id/dead-letters/replay", async function replay(c) {
  const tenantId = tenantParam(c.req.param("id"));
  const body = await jsonBody(c.req.raw, replaySchema);
  const out = await gateCall(() =>
    gateFor(c.env, tenantId).replay({
      v: GATE_PROTOCOL,
      all: "all" in body,
      relayEventIds: "relayEventIds" in body ? body.relayEventIds : [],
    }),
  );
  return c.json(out);
});

adminApi.delete("/admin/v1/tenants/:id", async function purge(c) {
  const tenantId = tenantParam(c.req.param("id"));
  const force = c.req.query("force") === "true";
  const out = await gateCall(() => gateFor(c.env, tenantId).purge({ v: GATE_PROTOCOL, force }));
  if (!out.purged) {
    throw errors.eventsQueued(tenantId, out.queued);
  }
  return c.json(out);
});

// Partner event sources (src/admin/sources-routes.ts).
adminApi.route("/", adminSourcesApi);
