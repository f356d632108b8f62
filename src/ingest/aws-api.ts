/**
 * The AWS front door: `POST /` speaking AWS JSON 1.1 with `X-Amz-Target:
 * AWSEvents.PutPartnerEvents`, authenticated by Signature V4 with a relay-issued key pair. The
 * unmodified AWS CLI and SDKs point `--endpoint-url` here. Behind authentication it is the same
 * path as `POST /v1/events`; only the answer's form differs: always HTTP 200 with EventBridge's
 * shape (a queued entry's EventId is its relay id, `relay-<uuid>`), errors as `{"__type", "message"}`.
 */
import { Hono } from "hono";
import { echo, fingerprint } from "../auth/echo.ts";
import { parseSigV4, SigV4Errors, verifySigV4 } from "../auth/sigv4.ts";
import { relayConfig } from "../config.ts";
import type { RelayEnv } from "../context.ts";
import { errors } from "../errors.ts";
import { log } from "../log.ts";
import type { TenantRecord } from "../tenants/record.ts";
import { getTenant, lookupSigV4, sigv4SecretFor, TenantRecordError } from "../tenants/store.ts";
import { parseJsonBody, readBodyCapped } from "./body.ts";
import { sha256Hex } from "./json-api.ts";
import { type IngestResult, ingest, type Rendered } from "./pipeline.ts";

export const PUT_PARTNER_EVENTS_TARGET = "AWSEvents.PutPartnerEvents";
const AWS_JSON = "application/x-amz-json-1.1";

/** EventBridge's output shape exactly; queued entries are represented by their relay id. */
export function renderAws(r: IngestResult): Rendered {
  const body = {
    FailedEntryCount: r.failed,
    Entries: r.entries.map((o) =>
      o.kind === "delivered"
        ? { EventId: o.eventId }
        : o.kind === "queued"
          ? { EventId: o.relayEventId }
          : { ErrorCode: o.code, ErrorMessage: o.message },
    ),
  };
  return { status: 200, body: JSON.stringify(body), contentType: AWS_JSON };
}

export const awsApi = new Hono<RelayEnv>();

awsApi.post("/", async function putPartnerEvents(c) {
  c.set("errorFormat", "aws");
  const env = c.env;
  const cfg = relayConfig(env);
  const req = c.req.raw;
  const parsed = parseSigV4(req.headers, req.url);

  const index = await lookupSigV4(env.TENANTS, parsed.accessKeyId);
  if (!index) throw SigV4Errors.unknownAccessKey(parsed.accessKeyId, await fingerprint(parsed.accessKeyId));
  let tenant: TenantRecord | null;
  let secret: string | null;
  try {
    tenant = await getTenant(env.TENANTS, index.tenantId);
    // A pair minted after this isolate cached the record: read the record again, once.
    if (tenant && !tenant.sigv4Keys.some((k) => k.accessKeyId === parsed.accessKeyId)) {
      tenant = await getTenant(env.TENANTS, index.tenantId, { fresh: true });
    }
    secret = tenant ? await sigv4SecretFor(tenant, parsed.accessKeyId, env.SEALING_KEY) : null;
  } catch (e) {
    if (e instanceof TenantRecordError) {
      log.error("tenant_record_unreadable", { tenantId: index.tenantId, reason: e.message });
      throw errors.tenantMisconfigured(e.message);
    }
    throw e;
  }
  if (!tenant || secret === null) throw SigV4Errors.unknownAccessKey(parsed.accessKeyId);

  const bytes = await readBodyCapped(req, cfg.maxBodyBytes, { drainRefused: cfg.drainRefusedBodies });
  const bodySha256Hex = await sha256Hex(bytes);
  await verifySigV4({
    method: req.method,
    url: req.url,
    headers: req.headers,
    body: bytes,
    parsed,
    secretAccessKey: secret,
    now: Date.now(),
    bodySha256Hex,
  });

  const target = c.req.header("x-amz-target");
  if (target !== PUT_PARTNER_EVENTS_TARGET) {
    throw errors.unknownOperation(
      PUT_PARTNER_EVENTS_TARGET,
      target ? echo(target, 100, /^[A-Za-z0-9_#:-]{1,64}\.[A-Za-z0-9]{1,64}$/) : null,
    );
  }
  const type = c.req.header("content-type") ?? "";
  if (!type.toLowerCase().startsWith(AWS_JSON) && !/^application\/json\b/i.test(type)) {
    throw errors.unsupportedMediaType(AWS_JSON);
  }
  if (tenant.status === "disabled") throw errors.tenantDisabled();
  return ingest({
    env,
    ctx: c.executionCtx,
    caller: { tenant, principal: { kind: "sigv4", id: parsed.accessKeyId } },
    body: parseJsonBody(bytes),
    idempotency: null,
    requestId: c.var.requestId,
    render: renderAws,
  });
});
