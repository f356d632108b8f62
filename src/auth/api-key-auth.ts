/**
 * apiKeyAuth: authenticates `POST /v1/events` and friends by API key.
 *
 * `Authorization: Bearer <key>` (RFC 6750) or `X-Api-Key: <key>`. Told apart as RFC 6750 does:
 * no credentials → 401; an Authorization header that isn't `Bearer <token>` → 400; a token that
 * isn't a well-formed relay key (format + checksum, no KV read) → 401; unknown, revoked, expired
 * → 401; disabled tenant → 403. Revocation and disabling are re-checked by the tenant's Durable
 * Object on every request (this middleware only sees KV, which lags by up to ~60 s).
 *
 * @example app.post("/v1/events", apiKeyAuth(), handler)
 */
import type { MiddlewareHandler } from "hono";
import type { RelayEnv } from "../context.ts";
import { errors } from "../errors.ts";
import { log } from "../log.ts";
import type { TenantRecord } from "../tenants/record.ts";
import { getTenant, lookupApiKey, TenantRecordError } from "../tenants/store.ts";
import { hashApiKey, isWellFormedApiKey, timingSafeEqual } from "./api-key.ts";

export interface ApiKeyAuthOptions {
  /** The realm in WWW-Authenticate. Default "eventbridge-relay". */
  realm?: string;
}

const BEARER = /^Bearer +([A-Za-z0-9._~+/-]+=*) *$/i;

export function apiKeyAuth(options: ApiKeyAuthOptions = {}): MiddlewareHandler<RelayEnv> {
  const challenge = `Bearer realm="${options.realm ?? "eventbridge-relay"}"`;
  return async function apiKeyAuthMiddleware(c, next) {
    const authorization = c.req.header("authorization");
    const xApiKey = c.req.header("x-api-key");
    let key: string;
    if (authorization !== undefined) {
      const m = BEARER.exec(authorization);
      if (!m) {
        throw errors.invalidAuthorizationHeader(challenge);
      }
      key = m[1]!;
    } else if (xApiKey !== undefined && xApiKey.trim() !== "") {
      key = xApiKey.trim();
    } else {
      throw errors.missingApiKey(challenge);
    }
    if (!isWellFormedApiKey(key)) throw errors.malformedApiKey(challenge);

    const hash = await hashApiKey(key);
    const index = await lookupApiKey(c.env.TENANTS, hash);
    if (!index) throw errors.invalidApiKey(challenge);
    let tenant: TenantRecord | null;
    try {
      tenant = await getTenant(c.env.TENANTS, index.tenantId);
      // A key minted after this isolate cached the record: read the record again, once.
      if (tenant && !tenant.apiKeys.some((k) => k.id === index.keyId)) {
        tenant = await getTenant(c.env.TENANTS, index.tenantId, { fresh: true });
      }
    } catch (e) {
      if (e instanceof TenantRecordError) {
        log.error("tenant_record_unreadable", { tenantId: index.tenantId, reason: e.message });
        throw errors.tenantMisconfigured(e.message);
      }
      throw e;
    }
    // The record must still list this key with this hash: revocation removes it there first.
    const entry = tenant?.apiKeys.find((k) => k.id === index.keyId);
    if (!tenant || !entry || !timingSafeEqual(entry.hash, hash)) throw errors.invalidApiKey(challenge);
    if (entry.expiresAt && Date.parse(entry.expiresAt) <= Date.now()) throw errors.invalidApiKey(challenge);
    if (tenant.status === "disabled") throw errors.tenantDisabled();
    c.set("caller", { tenant, principal: { kind: "api-key", id: entry.id } });
    await next();
  };
}
