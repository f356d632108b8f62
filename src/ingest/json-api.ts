/**
 * The JSON API front door: `POST /v1/events` with an API key, answers in EventBridge's output
 * shape (HTTP 200, or 202 when any entry was queued), errors as problem+json. Also the partner's
 * own reads: `GET /v1/events/{relayEventId}` and `GET /v1/status`.
 */
import { Hono } from "hono";
import { toHex } from "../auth/api-key.ts";
import { apiKeyAuth } from "../auth/api-key-auth.ts";
import { relayConfig } from "../config.ts";
import type { RelayEnv } from "../context.ts";
import { errors } from "../errors.ts";
import { MAX_IDEMPOTENCY_KEY_CHARS, MAX_SHARDS } from "../limits.ts";
import { controlFor, gateCall, shardOf } from "../tenant-gate/client.ts";
import { GATE_PROTOCOL, relayIdShard } from "../tenant-gate/protocol.ts";
import { parseJsonBody, readBodyCapped } from "./body.ts";
import { deniedError, type IngestResult, ingest, type Rendered, rateLimitHeaders } from "./pipeline.ts";

const JSON_TYPE = /^application\/(?:[\w.+-]+\+)?json\s*(?:;.*)?$/i;

/** EventBridge's output shape; queued entries carry RelayEventId instead of EventId. */
export function renderJson(r: IngestResult): Rendered {
  const body = {
    FailedEntryCount: r.failed,
    ...(r.queued > 0 ? { QueuedEntryCount: r.queued } : {}),
    Entries: r.entries.map((o) =>
      o.kind === "delivered"
        ? { EventId: o.eventId }
        : o.kind === "queued"
          ? { RelayEventId: o.relayEventId }
          : { ErrorCode: o.code, ErrorMessage: o.message },
    ),
  };
  return { status: r.queued > 0 ? 202 : 200, body: JSON.stringify(body), contentType: "application/json" };
}

/** `Idempotency-Key` (draft-ietf-httpapi-idempotency-key-header): a string, quoted or bare. */
export function readIdempotencyKey(raw: string | undefined): string | null {
  if (raw === undefined) return null;
  let v = raw.trim();
  if (v.length >= 2 && v.startsWith('"') && v.endsWith('"')) v = v.slice(1, -1);
  if (v.length === 0 || v.length > MAX_IDEMPOTENCY_KEY_CHARS || !/^[\x21-\x7e]+$/.test(v)) {
    throw errors.invalidIdempotencyKey(MAX_IDEMPOTENCY_KEY_CHARS);
  }
  return v;
}

export async function sha256Hex(bytes: Uint8Array): Promise<string> {
  return toHex(new Uint8Array(await crypto.subtle.digest("SHA-256", bytes)));
}

export const jsonApi = new Hono<RelayEnv>();

jsonApi.use("/v1/*", async function jsonErrors(c, next) {
  c.set("errorFormat", "problem");
  await next();
});

jsonApi.post(
  "/v1/events",
  async function requireJson(c, next) {
    const type = c.req.header("content-type");
    if (!type || !JSON_TYPE.test(type)) throw errors.unsupportedMediaType("application/json");
    await next();
  },
  apiKeyAuth(),
  async function postEvents(c) {
    const cfg = relayConfig(c.env);
    const idempotencyKey = readIdempotencyKey(c.req.header("idempotency-key"));
    const bytes = await readBodyCapped(c.req.raw, cfg.maxBodyBytes, { drainRefused: cfg.drainRefusedBodies });
    const body = parseJsonBody(bytes);
    return ingest({
      env: c.env,
      ctx: c.executionCtx,
      caller: c.var.caller,
      body,
      idempotency: idempotencyKey ? { key: idempotencyKey, bodyHash: await sha256Hex(bytes) } : null,
      requestId: c.var.requestId,
      render: renderJson,
    });
  },
);

jsonApi.get("/v1/events/:relayEventId", apiKeyAuth(), async function getEvent(c) {
  const id = c.req.param("relayEventId");
  const notFound = errors.notFound("This tenant has no event with that RelayEventId (or its status has expired).");
  // The id names the shard that holds the event (protocol.ts; a relay-<uuid> from before shards is shard 0's).
  const shard = relayIdShard(id);
  const { tenant, principal } = c.var.caller;
  if (shard === null || shard >= MAX_SHARDS) throw notFound;
  const out = await gateCall(
    () =>
      shardOf(c.env, tenant, shard).eventStatus({
        v: GATE_PROTOCOL,
        tenantId: tenant.id,
        principal,
        revision: tenant.revision,
        status: tenant.status,
        relayEventId: id,
      }),
    { retry: true },
  );
  if (out.kind === "denied") throw deniedError(c.var.caller, out.reason);
  if (out.kind === "missing") throw notFound;
  const e = out.event;
  const body =
    e.state === "held"
      ? {
          relayEventId: id,
          state: e.state,
          source: e.source,
          reason: e.reason,
          acceptedAt: new Date(e.acceptedAt).toISOString(),
          holdUntil: new Date(e.holdUntil).toISOString(),
        }
      : e.state === "queued"
        ? {
            relayEventId: id,
            state: e.state,
            attempts: e.attempts,
            lastErrorCode: e.lastErrorCode,
            acceptedAt: new Date(e.acceptedAt).toISOString(),
            nextAttemptAt: new Date(e.nextAttemptAt).toISOString(),
          }
        : e.state === "delivered"
          ? {
              relayEventId: id,
              state: e.state,
              eventId: e.eventId,
              attempts: e.attempts,
              deliveredAt: new Date(e.at).toISOString(),
            }
          : {
              relayEventId: id,
              state: e.state,
              errorCode: e.errorCode,
              errorMessage: e.errorMessage,
              attempts: e.attempts,
              failedAt: new Date(e.at).toISOString(),
              deadLettered: e.deadLettered,
            };
  return c.json(body, 200, { "cache-control": "no-store" });
});

jsonApi.get("/v1/status", apiKeyAuth(), async function getStatus(c) {
  const { tenant, principal } = c.var.caller;
  // Every shard's counters, summed by the tenant's control object (a read, not the hot path).
  const out = await gateCall(
    () =>
      controlFor(c.env, tenant.id, tenant.region).status({
        v: GATE_PROTOCOL,
        tenantId: tenant.id,
        principal,
        revision: tenant.revision,
        status: tenant.status,
      }),
    { retry: true },
  );
  if (out.kind === "denied") throw deniedError(c.var.caller, out.reason);
  const s = out.status;
  return c.json(
    {
      tenantId: tenant.id,
      accepted: s.accepted,
      delivered: s.delivered,
      failed: s.failed,
      queued: s.queued,
      queuedBytes: s.queuedBytes,
      oldestQueuedAgeMs: s.oldestQueuedAgeMs,
      deadLetters: s.deadLetters,
      duplicatesPossible: s.duplicatesPossible,
      lastUpstreamError: s.lastUpstreamError
        ? { ...s.lastUpstreamError, at: new Date(s.lastUpstreamError.at).toISOString() }
        : null,
      rate: { perSecond: tenant.limits.ratePerSecond, burst: tenant.limits.burst },
      ...(s.sources ? { sources: s.sources } : {}),
    },
    200,
    { "cache-control": "no-store", ...rateLimitHeaders(s.rate) },
  );
});
