/**
 * The admin API (/admin/v1), for tenant administration (src/admin/, `npm run tenant`): what only
 * the tenant's Durable Objects hold (access authority, shard directory, counters, dead letters), all
 * through the tenant's control object (control.ts), which fans changes out to every shard and sums
 * their reads. Tenant records
 * themselves are written to KV by the library (src/admin/store.ts). Bearer ADMIN_TOKEN (a Worker
 * secret, RFC 6750 token characters), checked by Hono's bearerAuth in constant time; inputs are
 * checked by Hono's validator with zod. The routes are chained so `AdminApi` (their type) gives
 * the typed client (`hc<AdminApi>`, src/admin/client.ts).
 */
import { Hono } from "hono";
import { bearerAuth } from "hono/bearer-auth";
import { createMiddleware } from "hono/factory";
import { HTTPException } from "hono/http-exception";
import { validator } from "hono/validator";
import { z } from "zod";
import { timingSafeEqual } from "../auth/api-key.ts";
import type { RelayEnv } from "../context.ts";
import { errors, type RelayError } from "../errors.ts";
import { MAX_SHARDS } from "../limits.ts";
import { controlFor, gateCall } from "../tenant-gate/client.ts";
import { type FanOutResult, GATE_PROTOCOL } from "../tenant-gate/protocol.ts";
import { regionSchema, tenantIdSchema } from "../tenants/record.ts";
import { getTenant } from "../tenants/store.ts";
import { adminSourcesApi } from "./sources-routes.ts";

/**
 * The tenant's region, to place its control object near it when its record is readable (an
 * object is created near its first `get()`, and this may be the first: docs/scaling.md).
 */
async function regionOf(env: Env, tenantId: string): Promise<string> {
  const record = await getTenant(env.TENANTS, tenantId).catch(() => null);
  return record?.region ?? "";
}

/**
 * A change recorded by the control object that has not reached every shard yet: 503, so the
 * caller stops before its next step (docs/scaling.md). The control object's alarm keeps retrying;
 * re-running the command sends it again at once.
 */
function fannedOut<T>(out: FanOutResult<T>): T {
  if (out.kind === "ok") return out.value;
  throw errors.fanOutIncomplete(out.pendingShards);
}

const shardsSchema = z.strictObject({
  shards: z.number().int().min(1).max(MAX_SHARDS),
  /** The tenant's region, for placing new shards when its record may not have reached KV yet. */
  region: regionSchema.optional(),
});

const REALM = "eventbridge-relay-admin";
const CHALLENGE = `Bearer realm="${REALM}"`;
/** What today's clients send: `Bearer <token>` (any case, spaces around). */
const BEARER_HEADER = /^Bearer +(\S+) *$/i;

/** The admin API answers problem+json, and is off (503) while ADMIN_TOKEN is not set. */
const adminEnabled = createMiddleware<RelayEnv>(async function adminEnabled(c, next) {
  c.set("errorFormat", "problem");
  if (!c.env.ADMIN_TOKEN) {
    throw errors.adminDisabled();
  }
  await next();
});

/**
 * bearerAuth with the relay's own refusals: thrown as RelayErrors, so onError writes them as
 * problem+json (with the request id). A header that is not `Bearer <token68>` is refused like a
 * missing one, unless it carries some other token, which is refused as wrong (as before the move).
 */
const adminAuth = bearerAuth<RelayEnv>({
  realm: REALM,
  verifyToken: (token, c) => timingSafeEqual(token, c.env.ADMIN_TOKEN),
  noAuthenticationHeader: {
    message: () => {
      throw errors.missingAdminToken(CHALLENGE);
    },
  },
  invalidAuthenticationHeader: {
    message: (c) => {
      throw BEARER_HEADER.test(c.req.header("authorization") ?? "")
        ? errors.invalidAdminToken(CHALLENGE)
        : errors.missingAdminToken(CHALLENGE);
    },
  },
  invalidToken: {
    message: () => {
      throw errors.invalidAdminToken(CHALLENGE);
    },
  },
});

const tenantParam = validator("param", (value: Record<string, string>) => {
  const r = tenantIdSchema.safeParse(value.id);
  if (!r.success) throw errors.invalidTenantId(r.error.issues[0]!.message);
  return { id: r.data };
});

function bodyIssue(error: z.ZodError): RelayError {
  const i = error.issues[0]!;
  return errors.invalidRequest(`${i.path.join(".") || "body"}: ${i.message}`);
}

/**
 * The JSON body checked with `schema`. Like the API always did, the body is read as JSON whatever
 * its content-type says, and malformed JSON is `invalid_json` (Hono's validator would answer a
 * plain 400 for it, and skip a body sent without a JSON content-type).
 */
function jsonBody<S extends z.ZodType>(schema: S) {
  const inner = validator("json", async (value: unknown, c) => {
    let raw = value;
    if (!/^application\/([\w.-]+\+)?json$/i.test((c.req.header("content-type") ?? "").split(";")[0]!.trim())) {
      try {
        raw = await c.req.json();
      } catch {
        throw errors.invalidJson();
      }
    }
    const r = schema.safeParse(raw);
    if (!r.success) throw bodyIssue(r.error);
    return r.data as z.output<S>;
  });
  const wrapped: typeof inner = async (c, next) => {
    let handled = false;
    try {
      return await inner(c, async () => {
        handled = true;
        await next();
      });
    } catch (e) {
      if (!handled && e instanceof HTTPException) throw errors.invalidJson();
      throw e;
    }
  };
  return wrapped;
}

const accessSchema = z.strictObject({
  revision: z.number().int().min(1),
  status: z.enum(["active", "disabled"]),
  revokeApiKeyIds: z.array(z.string().min(1).max(100)).max(1000).default([]),
  revokeAccessKeyIds: z.array(z.string().min(1).max(128)).max(1000).default([]),
});

/** A query value as the client sent it (the first, when a name is repeated). */
function first(v: string | string[] | undefined): string | undefined {
  return Array.isArray(v) ? v[0] : v;
}

const deadLetterQuery = validator("query", (value: { limit?: string; after?: string }) => {
  const limit = Number(first(value.limit) ?? 100);
  // A cursor is `<shard>:<seq>` from a previous page (a bare number: one from before shards).
  const after = first(value.after) ?? null;
  if (
    !Number.isInteger(limit) ||
    limit < 1 ||
    limit > 1000 ||
    (after !== null && !/^(\d{1,2}:)?\d{1,15}$/.test(after))
  ) {
    throw errors.invalidRequest("limit is 1-1000 and after is a cursor from a previous page.");
  }
  return { limit, after };
});

const replaySchema = z.union([
  z.strictObject({ all: z.literal(true) }),
  z.strictObject({ relayEventIds: z.array(z.string().min(1).max(64)).min(1).max(1000) }),
]);

const purgeQuery = validator("query", (value: { force?: string }) => ({ force: first(value.force) === "true" }));

export const adminApi = new Hono<RelayEnv>()
  .use("/admin/*", adminEnabled, adminAuth)
  .put("/admin/v1/tenants/:id/access", tenantParam, jsonBody(accessSchema), async function putAccess(c) {
    const { id: tenantId } = c.req.valid("param");
    const body = c.req.valid("json");
    const region = await regionOf(c.env, tenantId);
    const out = await gateCall(
      () => controlFor(c.env, tenantId, region).setAccess({ v: GATE_PROTOCOL, tenantId, ...body }),
      { retry: true },
    );
    return c.json(fannedOut(out));
  })
  /**
   * Sets how many shards the tenant is spread over. Call it BEFORE writing the tenant record with
   * the new `limits.shards`: new shards are seeded with the access state first (docs/scaling.md).
   */
  .put("/admin/v1/tenants/:id/shards", tenantParam, jsonBody(shardsSchema), async function putShards(c) {
    const { id: tenantId } = c.req.valid("param");
    const body = c.req.valid("json");
    const region = body.region ?? (await regionOf(c.env, tenantId));
    const out = await gateCall(
      () =>
        controlFor(c.env, tenantId, region).setShards({
          v: GATE_PROTOCOL,
          tenantId,
          shards: body.shards,
          ...(region ? { region } : {}),
        }),
      { retry: true },
    );
    return c.json(fannedOut(out));
  })
  .get("/admin/v1/tenants/:id/status", tenantParam, async function getStatus(c) {
    const { id: tenantId } = c.req.valid("param");
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
  })
  .get("/admin/v1/tenants/:id/dead-letters", tenantParam, deadLetterQuery, async function listDeadLetters(c) {
    const { id: tenantId } = c.req.valid("param");
    const { limit, after } = c.req.valid("query");
    const region = await regionOf(c.env, tenantId);
    const out = await gateCall(
      () => controlFor(c.env, tenantId, region).deadLetters({ v: GATE_PROTOCOL, tenantId, limit, after }),
      { retry: true },
    );
    return c.json({ items: out.items, next: out.next });
  })
  .post("/admin/v1/tenants/:id/dead-letters/replay", tenantParam, jsonBody(replaySchema), async function replay(c) {
    const { id: tenantId } = c.req.valid("param");
    const body = c.req.valid("json");
    const region = await regionOf(c.env, tenantId);
    const out = await gateCall(() =>
      controlFor(c.env, tenantId, region).replay({
        v: GATE_PROTOCOL,
        tenantId,
        all: "all" in body,
        relayEventIds: "relayEventIds" in body ? body.relayEventIds : [],
      }),
    );
    return c.json(out);
  })
  .delete("/admin/v1/tenants/:id", tenantParam, purgeQuery, async function purge(c) {
    const { id: tenantId } = c.req.valid("param");
    const { force } = c.req.valid("query");
    const region = await regionOf(c.env, tenantId);
    const out = await gateCall(() => controlFor(c.env, tenantId, region).purge({ v: GATE_PROTOCOL, tenantId, force }));
    if (!out.purged) {
      throw errors.eventsQueued(tenantId, out.queued);
    }
    return c.json(out);
  })
  // Partner event sources (src/admin/sources-routes.ts).
  .route("/", adminSourcesApi);

/** The admin API's routes and their types, for `hc<AdminApi>` (src/admin/client.ts). */
export type AdminApi = typeof adminApi;
