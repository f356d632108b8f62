/**
 * The admin API, for `npm run tenant` (scripts/tenant.ts): what only the tenant's Durable Objects
 * hold (access authority, shard directory, counters, dead letters), all through the tenant's
 * control object (control.ts), which fans changes out to every shard and sums their reads.
 * Tenant records themselves are written to KV by the CLI through wrangler. Bearer ADMIN_TOKEN (a Worker secret), compared in constant time.
 */
import { Hono } from "hono";
import { z } from "zod";
import { timingSafeEqual } from "../auth/api-key.ts";
import type { RelayEnv } from "../context.ts";
import { errors } from "../errors.ts";
import { MAX_SHARDS } from "../limits.ts";
import { controlFor, gateCall } from "../tenant-gate/client.ts";
import { type FanOutResult, GATE_PROTOCOL } from "../tenant-gate/protocol.ts";
import { tenantIdSchema } from "../tenants/record.ts";
import { getTenant } from "../tenants/store.ts";

export const adminApi = new Hono<RelayEnv>();

/**
 * The tenant's region, to place its control object near it when its record is readable (an
 * object is created near its first `get()`, and this may be the first: docs/scaling.md).
 */
async function regionOf(env: Env, tenantId: string): Promise<string> {
  const record = await getTenant(env.TENANTS, tenantId).catch(() => null);
  return record?.region ?? "";
}

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

/**
 * A change recorded by the control object that has not reached every shard yet: 503, so the
 * CLI stops before its next step (docs/admin.md). The control object's alarm keeps retrying;
 * re-running the command sends it again at once.
 */
function fannedOut<T>(out: FanOutResult<T>): T {
  if (out.kind === "ok") return out.value;
  throw errors.fanOutIncomplete(out.pendingShards);
}

adminApi.put("/admin/v1/tenants/:id/access", async function putAccess(c) {
  const tenantId = tenantParam(c.req.param("id"));
  const region = await regionOf(c.env, tenantId);
  const body = await jsonBody(c.req.raw, accessSchema);
  const out = await gateCall(
    () => controlFor(c.env, tenantId, region).setAccess({ v: GATE_PROTOCOL, tenantId, ...body }),
    {
      retry: true,
    },
  );
  return c.json(fannedOut(out));
});

const shardsSchema = z.strictObject({ shards: z.number().int().min(1).max(MAX_SHARDS) });

/**
 * Sets how many shards the tenant is spread over. Call it BEFORE writing the tenant record with
 * the new `limits.shards`: new shards are seeded with the access state first (docs/admin.md).
 */
adminApi.put("/admin/v1/tenants/:id/shards", async function putShards(c) {
  const tenantId = tenantParam(c.req.param("id"));
  const region = await regionOf(c.env, tenantId);
  const body = await jsonBody(c.req.raw, shardsSchema);
  const out = await gateCall(
    () => controlFor(c.env, tenantId, region).setShards({ v: GATE_PROTOCOL, tenantId, shards: body.shards }),
    { retry: true },
  );
  return c.json(fannedOut(out));
});

adminApi.get("/admin/v1/tenants/:id/status", async function getStatus(c) {
  const tenantId = tenantParam(c.req.param("id"));
  const region = await regionOf(c.env, tenantId);
  const out = await gateCall(
    () =>
      controlFor(c.env, tenantId, region).status({
        v: GATE_PROTOCOL,
        tenantId,
        principal: null,
        revision: 0,
        status: "active",
      }),
    { retry: true },
  );
  if (out.kind !== "ok") throw errors.internalError("unexpected gate answer");
  const s = out.status;
  return c.json({
    ...s,
    shards: out.shards,
    lastUpstreamError: s.lastUpstreamError
      ? { ...s.lastUpstreamError, at: new Date(s.lastUpstreamError.at).toISOString() }
      : null,
    nextDrainAt: s.nextDrainAt === null ? null : new Date(s.nextDrainAt).toISOString(),
  });
});

adminApi.get("/admin/v1/tenants/:id/dead-letters", async function listDeadLetters(c) {
  const tenantId = tenantParam(c.req.param("id"));
  const region = await regionOf(c.env, tenantId);
  const limit = Number(c.req.query("limit") ?? 100);
  const after = c.req.query("after") ?? null;
  // A cursor is `<shard>:<seq>` from a previous page (a bare number: one from before shards).
  if (
    !Number.isInteger(limit) ||
    limit < 1 ||
    limit > 1000 ||
    (after !== null && !/^(\d{1,2}:)?\d{1,15}$/.test(after))
  ) {
    throw errors.invalidRequest("limit is 1-1000 and after is a cursor from a previous page.");
  }
  const out = await gateCall(
    () => controlFor(c.env, tenantId, region).deadLetters({ v: GATE_PROTOCOL, tenantId, limit, after }),
    { retry: true },
  );
  return c.json({ items: out.items, next: out.next });
});

const replaySchema = z.union([
  z.strictObject({ all: z.literal(true) }),
  z.strictObject({ relayEventIds: z.array(z.string().min(1).max(64)).min(1).max(1000) }),
]);

adminApi.post("/admin/v1/tenants/:id/dead-letters/replay", async function replay(c) {
  const tenantId = tenantParam(c.req.param("id"));
  const region = await regionOf(c.env, tenantId);
  const body = await jsonBody(c.req.raw, replaySchema);
  const out = await gateCall(() =>
    controlFor(c.env, tenantId, region).replay({
      v: GATE_PROTOCOL,
      tenantId,
      all: "all" in body,
      relayEventIds: "relayEventIds" in body ? body.relayEventIds : [],
    }),
  );
  return c.json(out);
});

adminApi.delete("/admin/v1/tenants/:id", async function purge(c) {
  const tenantId = tenantParam(c.req.param("id"));
  const region = await regionOf(c.env, tenantId);
  const force = c.req.query("force") === "true";
  const out = await gateCall(() => controlFor(c.env, tenantId, region).purge({ v: GATE_PROTOCOL, tenantId, force }));
  if (!out.purged) {
    throw errors.eventsQueued(tenantId, out.queued);
  }
  return c.json(out);
});
