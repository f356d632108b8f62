/**
 * How EventBridge's answers become the partner's answer, with faults injected into the fake
 * EventBridge: per-entry failures passed through index-aligned, retryable failures and whole-call
 * throttling / 5xx / lost responses / timeouts absorbed by the tenant's buffer (202 + RelayEventId),
 * credential and request rejections mapped to problem+json with EventBridge's code, `__type`
 * normalised. Every test also checks that no API key, AWS secret, signature or stack trace
 * reached a response or a log line.
 */

import { createExecutionContext, waitOnExecutionContext } from "cloudflare:test";
import { env, exports } from "cloudflare:workers";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import type { FakeEventBridge, Fault } from "../../emulator/eventbridge.ts";
import { app } from "../../src/app.ts";
import { adminStatus, drain } from "../helpers/drain.ts";
import { expectProblem, type PutAnswer, postEvents, RELAY, readAnswer } from "../helpers/http.ts";
import { captureLogs, expectNoLeaks } from "../helpers/leaks.ts";
import { installRecordingUpstream, type RecordingUpstream } from "../helpers/recording-upstream.ts";
import { entry, type SeededTenant, seedTenant } from "../helpers/tenants.ts";

let logs: string[] = [];
let bodies: string[] = [];
let secrets: string[] = [];
let upstream: RecordingUpstream | null = null;

beforeEach(() => {
  logs = captureLogs();
  bodies = [];
  secrets = [];
  upstream = null;
});

afterEach(() => {
  expectNoLeaks([...logs, ...bodies], [...secrets, ...(upstream?.signatures ?? [])]);
  vi.restoreAllMocks();
});

async function setup(
  opts: Parameters<typeof seedTenant>[0] = {},
  fakeCredentials?: { accessKeyId: string; secretAccessKey: string }[],
) {
  const t = await seedTenant(opts);
  secrets.push(t.apiKey, t.aws.secretAccessKey);
  upstream = installRecordingUpstream({ credentials: fakeCredentials ?? [t.aws] });
  return { t, fake: upstream.fake };
}

async function post(t: SeededTenant, entries: unknown[]): Promise<Response> {
  const res = await postEvents({ Entries: entries }, { key: t.apiKey });
  bodies.push(await res.clone().text());
  return res;
}

/** Entries whose Detail carries a tag, so each one can be traced upstream. */
const tagged = (t: SeededTenant, ...tags: string[]) => tags.map((tag) => entry(t, { tag }));
const tagsUpstream = (fake: FakeEventBridge) =>
  fake.events.map((e) => (JSON.parse(e.entry.Detail!) as { tag: string }).tag);
const kinds = (a: PutAnswer) =>
  a.Entries.map((e) => ("EventId" in e ? "ok" : "RelayEventId" in e ? "queued" : e.ErrorCode));

async function eventStatus(t: SeededTenant, relayEventId: string): Promise<{ state: string; eventId?: string }> {
  const res = await exports.default.fetch(`${RELAY}/v1/events/${relayEventId}`, {
    headers: { authorization: `Bearer ${t.apiKey}` },
  });
  const text = await res.text();
  bodies.push(text);
  expect(res.status).toBe(200);
  return JSON.parse(text) as { state: string; eventId?: string };
}

describe("per-entry failures from EventBridge", () => {
  it.each([
    "AccessDeniedException",
    "InvalidAccountIdException",
    "NotAuthorizedForDetailTypeException",
    "RedactionFailure",
    "MalformedDetail",
  ])(
    "permanent %s: passed through at the partner's index, beside the relay's own refusals; siblings delivered",
    async (code) => {
      const { t, fake } = await setup();
      // Request index 1 is refused by the relay, so upstream index 1 is request index 2.
      fake.inject({ type: "entries", code, message: `upstream says ${code}`, indexes: [1] });
      const res = await post(t, [
        entry(t, { tag: "a" }),
        entry(t, { tag: "x" }, { DetailType: "" }),
        entry(t, { tag: "b" }),
        entry(t, { tag: "c" }),
      ]);
      expect(res.status).toBe(200);
      const a = await readAnswer(res);
      expect(kinds(a)).toEqual(["ok", "InvalidArgument", code, "ok"]);
      expect(a.Entries[2]).toEqual({ ErrorCode: code, ErrorMessage: `upstream says ${code}` });
      expect(a.FailedEntryCount).toBe(2);
      expect(a).not.toHaveProperty("QueuedEntryCount");
      expect(fake.calls.map((c) => c.entryCount)).toEqual([3]);
      expect(tagsUpstream(fake)).toEqual(["a", "c"]);
      expect([a.Entries[0], a.Entries[3]]).toEqual(fake.events.map((e) => ({ EventId: e.eventId })));
      expect((await adminStatus(t.record.id)).queued).toBe(0);
    },
  );

  it.each(["InternalFailure", "ThrottlingException"])(
    "retryable %s: that entry is queued (202, RelayEventId), the rest keep EventBridge's answer, and the drain delivers it",
    async (code) => {
      const { t, fake } = await setup();
      fake.inject({ type: "entries", code, indexes: [0] });
      const res = await post(t, [entry(t, { tag: "x" }, { Detail: "[]" }), ...tagged(t, "a", "b")]);
      expect(res.status).toBe(202);
      const a = await readAnswer(res);
      expect(kinds(a)).toEqual(["MalformedDetail", "queued", "ok"]);
      expect(a.FailedEntryCount).toBe(1);
      expect(a.QueuedEntryCount).toBe(1);
      expect(a.Entries[2]).toEqual({ EventId: fake.events[0]!.eventId });
      expect(tagsUpstream(fake)).toEqual(["b"]);

      const relayId = (a.Entries[1] as { RelayEventId: string }).RelayEventId;
      expect(relayId).toMatch(/^relay-[0-9a-f-]{36}$/);
      await drain(t.record.id);
      expect(tagsUpstream(fake)).toEqual(["b", "a"]);
      expect(fake.events[1]!.entry).toEqual(entry(t, { tag: "a" }));
      expect(await eventStatus(t, relayId)).toMatchObject({ state: "delivered", eventId: fake.events[1]!.eventId });
    },
  );
});

describe("whole-call failures the buffer absorbs: 202, every valid entry queued, relay refusals still index-aligned", () => {
  it.each<[string, Fault, number]>([
    ["throttling (HTTP 400 ThrottlingException)", { type: "throttle" }, 0],
    ["500 InternalException", { type: "error", status: 500, code: "InternalException" }, 0],
    ["503 ServiceUnavailable", { type: "error", status: 503, code: "ServiceUnavailable" }, 0],
    ["a lost response (events accepted, answer dropped)", { type: "lost" }, 2],
  ])("%s", async (_, fault, reachedBeforeDrain) => {
    const { t, fake } = await setup();
    fake.inject(fault);
    const res = await post(t, [entry(t, { tag: "a" }), entry("someone-else"), entry(t, { tag: "b" })]);
    expect(res.status).toBe(202);
    const a = await readAnswer(res);
    expect(kinds(a)).toEqual(["queued", "NotAuthorizedForSourceException", "queued"]);
    expect(a.QueuedEntryCount).toBe(2);
    expect(a.FailedEntryCount).toBe(1);
    expect(fake.calls).toHaveLength(1);
    expect(fake.calls[0]!.fault).toBe(fault.type);
    expect(fake.events).toHaveLength(reachedBeforeDrain);

    await drain(t.record.id);
    // Everything queued arrives; after a lost response, the resend may duplicate (AWS has no idempotency token).
    expect(tagsUpstream(fake).sort()).toEqual(reachedBeforeDrain ? ["a", "a", "b", "b"] : ["a", "b"]);
    for (const e of a.Entries)
      if ("RelayEventId" in e) expect((await eventStatus(t, e.RelayEventId)).state).toBe("delivered");
  });

  it("a namespaced, suffixed throttling `__type` (ns#ThrottlingException:detail) is recognised and recorded normalised", async () => {
    const { t, fake } = await setup();
    fake.inject({
      type: "error",
      status: 400,
      code: "com.amazonaws.events#ThrottlingException:Rate exceeded for account",
    });
    const res = await post(t, tagged(t, "a"));
    expect(res.status).toBe(202);
    expect(fake.calls[0]!.errorType).toBe("com.amazonaws.events#ThrottlingException:Rate exceeded for account");
    expect((await adminStatus(t.record.id)).lastUpstreamError?.code).toBe("ThrottlingException");
    await drain(t.record.id);
    expect(tagsUpstream(fake)).toEqual(["a"]);
  });
});

describe("whole-call failures passed back as problem+json", () => {
  it("credentials EventBridge refuses (a secret it doesn't know → InvalidSignatureException): 502 upstream_auth_failed, nothing queued", async () => {
    const accessKeyId = "AKIARELAYWRONGSECRT1";
    const relaySecret = "relay-side-secret-that-aws-does-not-know-0001";
    const { t, fake } = await setup({ aws: { accessKeyId, secretAccessKey: relaySecret } }, [
      { accessKeyId, secretAccessKey: "the-secret-aws-actually-holds-00000001" },
    ]);
    secrets.push(relaySecret);
    const p = await expectProblem(await post(t, tagged(t, "a", "b")), 502, "upstream_auth_failed");
    expect(p).toMatchObject({ upstreamCode: "InvalidSignatureException", upstreamRequestId: fake.calls[0]!.requestId });
    expect(fake.calls.map((c) => [c.outcome, c.errorType])).toEqual([["rejected", "InvalidSignatureException"]]);
    expect(fake.events).toHaveLength(0);
    expect((await adminStatus(t.record.id)).queued).toBe(0);
  });

  it("an access key EventBridge doesn't know (UnrecognizedClientException): 502 upstream_auth_failed", async () => {
    const { t, fake } = await setup({}, []);
    const p = await expectProblem(await post(t, tagged(t, "a")), 502, "upstream_auth_failed");
    expect(p.upstreamCode).toBe("UnrecognizedClientException");
    expect(fake.events).toHaveLength(0);
  });

  it.each<[string, string, string, number, string]>([
    ["ExpiredTokenException", "upstream_auth_failed", "ExpiredTokenException", 400, "ExpiredTokenException"],
    ["whole-call AccessDeniedException", "upstream_auth_failed", "AccessDeniedException", 400, "AccessDeniedException"],
    [
      "a namespaced credential code",
      "upstream_auth_failed",
      "com.amazon.coral.service#UnrecognizedClientException:",
      400,
      "UnrecognizedClientException",
    ],
    ["ValidationException", "upstream_rejected", "ValidationException", 400, "ValidationException"],
    [
      "a namespaced, suffixed ValidationException",
      "upstream_rejected",
      "com.amazonaws.events#ValidationException:Detail too long",
      400,
      "ValidationException",
    ],
    [
      "OperationDisabledException",
      "upstream_rejected",
      "OperationDisabledException",
      400,
      "OperationDisabledException",
    ],
  ])("%s: 502 %s with the normalised upstreamCode, nothing queued", async (_, problem, code, status, upstreamCode) => {
    const { t, fake } = await setup();
    fake.inject({ type: "error", status, code, message: "injected" });
    const p = await expectProblem(await post(t, tagged(t, "a")), 502, problem);
    expect(p.upstreamCode).toBe(upstreamCode);
    expect(p.upstreamRequestId).toBe(fake.calls[0]!.requestId);
    expect((await adminStatus(t.record.id)).queued).toBe(0);
  });
});

describe("when the buffer has no room (maxQueuedEntries 0)", () => {
  it("whole-call throttling: 429 upstream_throttled with Retry-After", async () => {
    const { t, fake } = await setup({ maxQueuedEntries: 0 });
    fake.inject({ type: "throttle" });
    const res = await post(t, tagged(t, "a"));
    const p = await expectProblem(res, 429, "upstream_throttled");
    expect(p.upstreamCode).toBe("ThrottlingException");
    expect(Number(res.headers.get("retry-after"))).toBeGreaterThanOrEqual(1);
  });

  it.each<[string, Fault, string]>([
    ["a 500", { type: "error", status: 500, code: "InternalException" }, "InternalException"],
    ["a 503", { type: "error", status: 503, code: "ServiceUnavailable" }, "ServiceUnavailable"],
    ["a lost response", { type: "lost" }, "NetworkError"],
  ])("%s: 502 upstream_unavailable", async (_, fault, upstreamCode) => {
    const { t, fake } = await setup({ maxQueuedEntries: 0 });
    fake.inject(fault);
    const p = await expectProblem(await post(t, tagged(t, "a")), 502, "upstream_unavailable");
    expect(p.upstreamCode).toBe(upstreamCode);
  });

  it("a per-entry retryable failure: that entry fails with EventBridge's code and says the buffer is full", async () => {
    const { t, fake } = await setup({ maxQueuedEntries: 0 });
    fake.inject({ type: "entries", code: "ThrottlingException", indexes: [1] });
    const res = await post(t, tagged(t, "a", "b"));
    expect(res.status).toBe(200);
    const a = await readAnswer(res);
    expect(kinds(a)).toEqual(["ok", "ThrottlingException"]);
    expect(a.FailedEntryCount).toBe(1);
    expect(a.Entries[1]).toMatchObject({ ErrorMessage: expect.stringContaining("buffer is full") });
    expect(tagsUpstream(fake)).toEqual(["a"]);
  });
});

describe("upstream timeout (UPSTREAM_TIMEOUT_MS, overridden through app.request: the test Worker's own value is 10 s)", () => {
  async function postWithTimeout(t: SeededTenant, entries: unknown[], timeoutMs: string): Promise<Response> {
    const ctx = createExecutionContext();
    const res = await app.request(
      "/v1/events",
      {
        method: "POST",
        headers: { authorization: `Bearer ${t.apiKey}`, "content-type": "application/json" },
        body: JSON.stringify({ Entries: entries }),
      },
      { ...env, UPSTREAM_TIMEOUT_MS: timeoutMs },
      ctx,
    );
    await waitOnExecutionContext(ctx);
    bodies.push(await res.clone().text());
    return res;
  }

  it("an answer slower than the timeout: the entries are queued (202); the slow call may still land upstream", async () => {
    const { t, fake } = await setup();
    fake.inject({ type: "delay", ms: 500 });
    const slowCall = upstream!.waitForCall((c) => c.fault === "delay");
    const res = await postWithTimeout(t, tagged(t, "a", "b"), "100");
    expect(res.status).toBe(202);
    const a = await readAnswer(res);
    expect(kinds(a)).toEqual(["queued", "queued"]);
    expect(a.QueuedEntryCount).toBe(2);
    // The abandoned call still reaches EventBridge: the entries went out intact (hence "maybe a duplicate").
    await slowCall;
    expect(
      fake.events
        .filter((e) => e.requestId === fake.calls.find((c) => c.fault === "delay")!.requestId)
        .map((e) => e.entry),
    ).toEqual(tagged(t, "a", "b"));
    await drain(t.record.id);
    for (const e of a.Entries)
      expect((await eventStatus(t, (e as { RelayEventId: string }).RelayEventId)).state).toBe("delivered");
  });

  it("with no room in the buffer: 504 upstream_timeout", async () => {
    const { t, fake } = await setup({ maxQueuedEntries: 0 });
    fake.inject({ type: "delay", ms: 500 });
    const slowCall = upstream!.waitForCall((c) => c.fault === "delay");
    const res = await postWithTimeout(t, tagged(t, "a"), "100");
    const p = await expectProblem(res, 504, "upstream_timeout");
    expect(p.upstreamCode).toBe("RequestTimeout");
    expect(p.detail).toMatch(/may have reached EventBridge/);
    await slowCall;
  });
});

describe("secrets stay secret", () => {
  it("no response or log line carries the API key, the AWS secret, a signature or a stack trace, across success and every failure", async () => {
    const { t, fake } = await setup();
    const faults: Fault[] = [
      { type: "throttle" },
      { type: "error", status: 500, code: "InternalException" },
      { type: "error", status: 400, code: "ValidationException", message: "bad" },
      { type: "lost" },
      { type: "entries", code: "AccessDeniedException" },
    ];
    await post(t, tagged(t, "ok"));
    for (const f of faults) {
      fake.inject(f);
      await post(t, tagged(t, f.type));
    }
    await drain(t.record.id);
    // Every call upstream (direct, from the drain, or the source's state read: docs/sources.md)
    // was signed, and every signature is watched for.
    expect(upstream!.signatures).toHaveLength(fake.calls.length + fake.sources.calls.length);
    expect(fake.calls.length).toBeGreaterThanOrEqual(3);
    expect(logs.length).toBeGreaterThan(0);
    // The afterEach check runs over every body and log line of this test; say so explicitly here too.
    expectNoLeaks([...logs, ...bodies], [t.apiKey, t.aws.secretAccessKey, ...upstream!.signatures]);
  });
});
