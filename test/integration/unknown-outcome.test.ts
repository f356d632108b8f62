/**
 * A direct send whose outcome is unknown (EventBridge's answer lost after it accepted, a 5xx that
 * may follow acceptance, a timeout) and no room in the buffer: the partner's 502 / 504 says the
 * entries may have reached EventBridge (never "Nothing was accepted"), and GET /v1/status counts
 * them in duplicatesPossible, since the partner's resend may deliver them twice. A refusal whose
 * outcome is known (throttling, a 4xx) still says nothing was accepted and counts nothing.
 * Through app.request with an execution context, so the counter's report (waitUntil) has run.
 */
import { createExecutionContext, waitOnExecutionContext } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { PutPartnerEventsCommand } from "@aws-sdk/client-eventbridge";
import { afterEach, describe, expect, it, vi } from "vitest";
import type { Fault } from "../../emulator/eventbridge.ts";
import { app } from "../../src/app.ts";
import { relayClient } from "../helpers/aws-sdk.ts";
import { adminStatus, drain } from "../helpers/drain.ts";
import { expectProblem } from "../helpers/http.ts";
import { captureLogs, expectNoLeaks } from "../helpers/leaks.ts";
import { installRecordingUpstream } from "../helpers/recording-upstream.ts";
import { addSigV4Key, entry, type SeededTenant, seedTenant } from "../helpers/tenants.ts";

afterEach(() => vi.restoreAllMocks());

async function post(t: SeededTenant, n: number, vars: Partial<Env> = {}): Promise<Response> {
  const ctx = createExecutionContext();
  const res = await app.request(
    "/v1/events",
    {
      method: "POST",
      headers: { authorization: `Bearer ${t.apiKey}`, "content-type": "application/json" },
      body: JSON.stringify({ Entries: Array.from({ length: n }, (_, i) => entry(t, { i })) }),
    },
    { ...env, ...vars },
    ctx,
  );
  await waitOnExecutionContext(ctx);
  return res;
}

describe("no room to queue, outcome unknown: 502/504 tell the truth and the entries are counted", () => {
  it.each<[string, Fault, number]>([
    ["a lost answer (EventBridge accepted, the connection was cut)", { type: "lost" }, 3],
    ["a 500 InternalException", { type: "error", status: 500, code: "InternalException" }, 0],
    ["a 503 ServiceUnavailable", { type: "error", status: 503, code: "ServiceUnavailable" }, 0],
  ])(
    "%s: 502 upstream_unavailable, 'may have reached EventBridge', duplicatesPossible += 3",
    async (_, fault, held) => {
      const logs = captureLogs();
      const t = await seedTenant({ maxQueuedEntries: 0 });
      const up = installRecordingUpstream({ credentials: [t.aws] });
      up.fake.inject(fault);
      const res = await post(t, 3);
      const p = await expectProblem(res, 502, "upstream_unavailable");
      expect(p.detail).toMatch(/may have reached EventBridge/);
      expect(p.detail).not.toMatch(/Nothing was accepted/);
      // What EventBridge holds: the lost answer's entries are really there.
      expect(up.fake.events).toHaveLength(held);
      const s = await adminStatus(t.record.id);
      expect(s.duplicatesPossible).toBe(3);
      expect(s.accepted).toBe(0);
      expect(s.queued).toBe(0);
      expectNoLeaks([...logs, p.raw], [t.apiKey, t.aws.secretAccessKey, ...up.signatures]);
    },
  );

  it("a timeout: 504 upstream_timeout, 'may have reached EventBridge', counted", async () => {
    const t = await seedTenant({ maxQueuedEntries: 0 });
    const up = installRecordingUpstream({ credentials: [t.aws] });
    up.fake.inject({ type: "delay", ms: 500 });
    const slow = up.waitForCall((c) => c.fault === "delay");
    const p = await expectProblem(await post(t, 2, { UPSTREAM_TIMEOUT_MS: "100" }), 504, "upstream_timeout");
    expect(p.detail).toMatch(/may have reached EventBridge/);
    expect((await adminStatus(t.record.id)).duplicatesPossible).toBe(2);
    await slow;
  });

  it("the AWS front door says the same in its own shape (EventBridge's 5xx type)", async () => {
    const t = await seedTenant({ maxQueuedEntries: 0 });
    const pair = await addSigV4Key(t);
    const up = installRecordingUpstream({ credentials: [t.aws] });
    up.fake.inject({ type: "error", status: 500, code: "InternalException" });
    const err = (await relayClient(pair)
      .send(new PutPartnerEventsCommand({ Entries: [entry(t)] }))
      .then(() => null)
      .catch((e: unknown) => e)) as { name: string; message: string; $metadata: { httpStatusCode: number } } | null;
    expect(err?.name).toBe("InternalException");
    expect(err?.$metadata.httpStatusCode).toBe(500);
    expect(err?.message).toMatch(/may have reached EventBridge/);
  });
});

describe("known outcomes are unchanged", () => {
  it("whole-call throttling with no room: 429 upstream_throttled, nothing accepted, nothing counted", async () => {
    const t = await seedTenant({ maxQueuedEntries: 0 });
    const up = installRecordingUpstream({ credentials: [t.aws] });
    up.fake.inject({ type: "throttle" });
    const p = await expectProblem(await post(t, 2), 429, "upstream_throttled");
    expect(p.detail).toMatch(/Nothing was accepted/);
    expect((await adminStatus(t.record.id)).duplicatesPossible).toBe(0);
  });

  it("a 400 ValidationException: 502 upstream_rejected, nothing counted", async () => {
    const t = await seedTenant({ maxQueuedEntries: 0 });
    const up = installRecordingUpstream({ credentials: [t.aws] });
    up.fake.inject({ type: "error", status: 400, code: "ValidationException" });
    await expectProblem(await post(t, 2), 502, "upstream_rejected");
    expect((await adminStatus(t.record.id)).duplicatesPossible).toBe(0);
  });
});

describe("with room to queue, a 5xx is an unknown outcome too", () => {
  it("a 500: queued (202), delivered by the drain, and the resend counted as a possible duplicate", async () => {
    const t = await seedTenant();
    const up = installRecordingUpstream({ credentials: [t.aws] });
    up.fake.inject({ type: "error", status: 500, code: "InternalException" });
    const res = await post(t, 3);
    expect(res.status).toBe(202);
    await drain(t.record.id);
    const s = await adminStatus(t.record.id);
    expect(s.delivered).toBe(3);
    expect(s.duplicatesPossible).toBe(3);
    expect(up.fake.events).toHaveLength(3);
  });
});
