/**
 * The request id (Hono's requestId middleware, src/app.ts): a fresh id on every answer, success
 * and error, under the front door's header (`X-Request-Id`; `x-amzn-RequestId` on the AWS front
 * door, where the SDKs read it as `$metadata.requestId`), the same id as problem+json's
 * `requestId` and the log lines. A caller's own X-Request-Id is never adopted: it could be
 * anything, a misplaced key included, and would be echoed and logged.
 */
import { createExecutionContext, waitOnExecutionContext } from "cloudflare:test";
import { env, exports } from "cloudflare:workers";
import { PutPartnerEventsCommand } from "@aws-sdk/client-eventbridge";
import { afterEach, describe, expect, it, vi } from "vitest";
import { app } from "../../src/app.ts";
import { generateApiKey } from "../../src/auth/api-key.ts";
import { relayClient } from "../helpers/aws-sdk.ts";
import { admin } from "../helpers/drain.ts";
import { expectProblem, postEvents, RELAY } from "../helpers/http.ts";
import { captureLogs } from "../helpers/leaks.ts";
import { addSigV4Key, entry, seedTenant } from "../helpers/tenants.ts";
import { installFakeUpstream } from "../helpers/upstream.ts";

afterEach(() => vi.restoreAllMocks());

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

describe("the JSON API and the admin API: X-Request-Id on every answer", () => {
  it("GET /healthz: a fresh id per request", async () => {
    const a = await exports.default.fetch(`${RELAY}/healthz`);
    const b = await exports.default.fetch(`${RELAY}/healthz`);
    expect(a.status).toBe(200);
    expect(a.headers.get("x-request-id")).toMatch(UUID);
    expect(b.headers.get("x-request-id")).toMatch(UUID);
    expect(a.headers.get("x-request-id")).not.toBe(b.headers.get("x-request-id"));
  });

  it("a delivered batch (200), a queued one (202) and GET /v1/status carry it", async () => {
    const t = await seedTenant();
    const fake = installFakeUpstream({ credentials: [t.aws] });
    const ok = await postEvents({ Entries: [entry(t)] }, { key: t.apiKey });
    expect(ok.status).toBe(200);
    expect(ok.headers.get("x-request-id")).toMatch(UUID);
    fake.inject({ type: "error", status: 500, code: "InternalException" }); // queued for the drain
    const queued = await postEvents({ Entries: [entry(t)] }, { key: t.apiKey });
    expect(queued.status).toBe(202);
    expect(queued.headers.get("x-request-id")).toMatch(UUID);
    const status = await exports.default.fetch(`${RELAY}/v1/status`, {
      headers: { authorization: `Bearer ${t.apiKey}` },
    });
    expect(status.status).toBe(200);
    expect(status.headers.get("x-request-id")).toMatch(UUID);
  });

  it("an error: the header is problem+json's requestId", async () => {
    const res = await postEvents({ Entries: [] }, { key: generateApiKey() });
    const p = await expectProblem(res, 401, "invalid_api_key");
    expect(p.requestId).toMatch(UUID);
    expect(res.headers.get("x-request-id")).toBe(p.requestId);
    const missing = await exports.default.fetch(`${RELAY}/nowhere`);
    const q = await expectProblem(missing, 404, "not_found");
    expect(missing.headers.get("x-request-id")).toBe(q.requestId);
  });

  it("the admin API's answers carry it too", async () => {
    const t = await seedTenant();
    const res = await admin(`/admin/v1/tenants/${t.record.id}/status`);
    expect(res.status).toBe(200);
    expect(res.headers.get("x-request-id")).toMatch(UUID);
  });

  it("a caller's X-Request-Id is not adopted (nor echoed), whatever it holds", async () => {
    const key = generateApiKey();
    for (const sent of [key, "my-correlation-id"]) {
      const res = await exports.default.fetch(`${RELAY}/healthz`, { headers: { "x-request-id": sent } });
      expect(res.headers.get("x-request-id")).toMatch(UUID);
      expect(res.headers.get("x-request-id")).not.toBe(sent);
    }
  });

  it("the log line of a refusal names the same id", async () => {
    const logs = captureLogs();
    // No KV binding: the key lookup throws, the relay answers 500 and logs the reason.
    const broken = { ...env, TENANTS: undefined } as unknown as Env;
    const ctx = createExecutionContext();
    const res = await app.request(
      "/v1/events",
      {
        method: "POST",
        headers: { authorization: `Bearer ${generateApiKey()}`, "content-type": "application/json" },
        body: "{}",
      },
      broken,
      ctx,
    );
    await waitOnExecutionContext(ctx);
    const p = await expectProblem(res, 500, "internal_error");
    const line = logs.find((l) => l.includes('"unhandled_error"'));
    expect(JSON.parse(line!).requestId).toBe(p.requestId);
    expect(res.headers.get("x-request-id")).toBe(p.requestId);
  });
});

describe("the AWS front door: x-amzn-RequestId on every answer", () => {
  it("a delivered batch: the SDK reads it as $metadata.requestId", async () => {
    const t = await seedTenant();
    const pair = await addSigV4Key(t);
    installFakeUpstream({ credentials: [t.aws] });
    const out = await relayClient(pair).send(new PutPartnerEventsCommand({ Entries: [entry(t)] }));
    expect(out.FailedEntryCount).toBe(0);
    expect(out.$metadata.requestId).toMatch(UUID);
  });

  it("an error: x-amzn-RequestId, not X-Request-Id", async () => {
    const res = await exports.default.fetch(`${RELAY}/`, {
      method: "POST",
      headers: { "content-type": "application/x-amz-json-1.1", "x-amz-target": "AWSEvents.PutPartnerEvents" },
      body: "{}",
    });
    expect(res.status).toBe(403);
    expect(res.headers.get("x-amzn-requestid")).toMatch(UUID);
    expect(res.headers.get("x-request-id")).toBeNull();
  });
});
