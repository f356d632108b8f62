/**
 * Role tenants (issue 14): the relay assumes the partner's role with STS and signs PutPartnerEvents
 * with the temporary key, secret and session token. Against the emulator, which verifies the
 * relay's AssumeRole signature (service sts) and every PutPartnerEvents signature with the AWS
 * SDK's signer, checks the external id against the role, and refuses issued credentials without
 * their token or once expired. Every test also checks that neither the relay's secret nor an
 * issued secret, session token or signature reached a response or a log line.
 */
import { createExecutionContext, runDurableObjectAlarm, waitOnExecutionContext } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { PutPartnerEventsCommand } from "@aws-sdk/client-eventbridge";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import type { FakeEventBridge } from "../../emulator/eventbridge.ts";
import type { FakeRole } from "../../emulator/sts.ts";
import { app } from "../../src/app.ts";
import { clearCredentialCaches } from "../../src/credentials/resolve.ts";
import type { RoleCredentials } from "../../src/tenants/record.ts";
import { clearTenantCaches } from "../../src/tenants/store.ts";
import { relayClient } from "../helpers/aws-sdk.ts";
import { adminStatus, drain, gateStub } from "../helpers/drain.ts";
import { expectProblem, type PutAnswer, postEvents, readAnswer } from "../helpers/http.ts";
import { captureLogs, expectNoLeaks } from "../helpers/leaks.ts";
import { installRecordingUpstream, type RecordingUpstream } from "../helpers/recording-upstream.ts";
import { addSigV4Key, entry, type SeededTenant, seedTenant, updateTenant } from "../helpers/tenants.ts";

const RELAY_KEY_ID = env.RELAY_AWS_ACCESS_KEY_ID;
const RELAY_SECRET = env.RELAY_AWS_SECRET_ACCESS_KEY;
const EXTERNAL_ID = "ext-5f0c1e8a9b2d4c7e";
const realNow = Date.now;

let logs: string[] = [];
let bodies: string[] = [];
let upstream: RecordingUpstream | null = null;

beforeEach(() => {
  logs = captureLogs();
  bodies = [];
  upstream = null;
  clearCredentialCaches();
});

afterEach(() => {
  const fake = upstream?.fake;
  const issued = fake?.sts.issued.flatMap((c) => [c.secretAccessKey, c.sessionToken]) ?? [];
  expectNoLeaks([...logs, ...bodies], [RELAY_SECRET, ...issued, ...(upstream?.signatures ?? [])]);
  vi.restoreAllMocks();
});

function roleArnFor(t: SeededTenant): string {
  return `arn:aws:iam::210987654321:role/relay-${t.record.id}`.slice(0, 80);
}

/** A tenant on a role, and the emulator knowing that role (trusting the relay's identity). */
async function setup(
  opts: { record?: Partial<RoleCredentials>; role?: Partial<FakeRole>; seed?: Parameters<typeof seedTenant>[0] } = {},
) {
  const t = await seedTenant(opts.seed);
  const roleArn = roleArnFor(t);
  const credentials: RoleCredentials = {
    kind: "role",
    roleArn,
    externalId: EXTERNAL_ID,
    durationSeconds: null,
    ...opts.record,
  };
  await updateTenant(t, { credentials });
  upstream = installRecordingUpstream({
    // The relay's identity is the only long-term key the emulator knows: the tenant has none.
    credentials: [{ accessKeyId: RELAY_KEY_ID, secretAccessKey: RELAY_SECRET }],
    sts: { roles: [{ roleArn, externalId: EXTERNAL_ID, trustedAccessKeyId: RELAY_KEY_ID, ...opts.role }] },
    now: () => realNow.call(Date),
  });
  return { t, fake: upstream.fake, roleArn };
}

/** POST /v1/events; with `overrides`, through app.request with those Worker vars changed. */
async function post(t: SeededTenant, entries: unknown[], overrides: Partial<Env> = {}): Promise<Response> {
  let res: Response;
  if (Object.keys(overrides).length === 0) {
    res = await postEvents({ Entries: entries }, { key: t.apiKey });
  } else {
    const ctx = createExecutionContext();
    res = await app.request(
      "/v1/events",
      {
        method: "POST",
        headers: { "content-type": "application/json", authorization: `Bearer ${t.apiKey}` },
        body: JSON.stringify({ Entries: entries }),
      },
      { ...env, ...overrides },
      ctx,
    );
    await waitOnExecutionContext(ctx);
  }
  bodies.push(await res.clone().text());
  return res;
}

const tagged = (t: SeededTenant, ...tags: string[]) => tags.map((tag) => entry(t, { tag }));
const tagsUpstream = (fake: FakeEventBridge) =>
  fake.events.map((e) => (JSON.parse(e.entry.Detail!) as { tag: string }).tag);
const kinds = (a: PutAnswer) =>
  a.Entries.map((e) => ("EventId" in e ? "ok" : "RelayEventId" in e ? "queued" : e.ErrorCode));

/** The PutPartnerEvents calls the emulator accepted (not STS calls, which it records apart). */
const accepted = (fake: FakeEventBridge) => fake.calls.filter((c) => c.outcome === "accepted");

describe("a role tenant's requests", () => {
  it("the first assumes the role (relay identity, external id, session name) and signs with the session token", async () => {
    const { t, fake, roleArn } = await setup();
    const res = await post(t, tagged(t, "a", "b"));
    expect(res.status).toBe(200);
    expect(kinds(await readAnswer(res))).toEqual(["ok", "ok"]);

    expect(fake.sts.calls).toHaveLength(1);
    expect(fake.sts.calls[0]).toMatchObject({
      callerAccessKeyId: RELAY_KEY_ID,
      roleArn,
      externalId: EXTERNAL_ID,
      sessionName: `relay-${t.record.id}`,
      durationSeconds: 3600,
      status: 200,
    });
    const issued = fake.sts.issued[0]!;
    expect(issued.accessKeyId).toMatch(/^ASIA/);
    const [call] = accepted(fake);
    expect(call!.accessKeyId).toBe(issued.accessKeyId);
    expect(call!.signedHeaders).toContain("x-amz-security-token");
    expect(tagsUpstream(fake)).toEqual(["a", "b"]);
  });

  it("later requests reuse the credentials: one AssumeRole for many calls, concurrent ones included", async () => {
    const { t, fake } = await setup();
    const first = await Promise.all([1, 2, 3, 4].map((n) => post(t, tagged(t, `c${n}`))));
    for (const r of first) expect(r.status).toBe(200);
    for (const n of [5, 6, 7]) expect((await post(t, tagged(t, `s${n}`))).status).toBe(200);
    expect(fake.sts.calls).toHaveLength(1);
    expect(new Set(accepted(fake).map((c) => c.accessKeyId))).toEqual(new Set([fake.sts.issued[0]!.accessKeyId]));
    expect(fake.events).toHaveLength(7);
  });

  it("the role's durationSeconds is what STS is asked for", async () => {
    const { t, fake } = await setup({ record: { durationSeconds: 900 } });
    expect((await post(t, tagged(t, "d"))).status).toBe(200);
    expect(fake.sts.calls[0]!.durationSeconds).toBe(900);
  });

  it("credentials are refreshed 5 minutes before they expire, and the new ones are used", async () => {
    const { t, fake } = await setup();
    expect((await post(t, tagged(t, "before"))).status).toBe(200);
    const exp = fake.sts.issued[0]!.expiresAt;
    // 4 minutes before expiry by the relay's clock: inside the 5-minute refresh window.
    vi.spyOn(Date, "now").mockImplementation(() => exp - 4 * 60_000);
    expect((await post(t, tagged(t, "after"))).status).toBe(200);
    expect(fake.sts.calls).toHaveLength(2);
    const [a, b] = accepted(fake);
    expect(a!.accessKeyId).toBe(fake.sts.issued[0]!.accessKeyId);
    expect(b!.accessKeyId).toBe(fake.sts.issued[1]!.accessKeyId);
    // And still reused after the refresh.
    expect((await post(t, tagged(t, "again"))).status).toBe(200);
    expect(fake.sts.calls).toHaveLength(2);
  });

  it("short sessions are refreshed at half their life", async () => {
    // The emulator issues 2-minute credentials (real STS: 15 minutes at least).
    const { t, fake } = await setup({ role: { issueSeconds: 120 } });
    expect((await post(t, tagged(t, "x"))).status).toBe(200);
    const exp = fake.sts.issued[0]!.expiresAt;
    vi.spyOn(Date, "now").mockImplementation(() => exp - 70_000); // 50 s used of 120: before half-life
    expect((await post(t, tagged(t, "y"))).status).toBe(200);
    expect(fake.sts.calls).toHaveLength(1);
    vi.spyOn(Date, "now").mockImplementation(() => exp - 55_000); // past half-life
    expect((await post(t, tagged(t, "z"))).status).toBe(200);
    expect(fake.sts.calls).toHaveLength(2);
  });

  it("a refresh that fails while the current credentials are still good keeps using them", async () => {
    const { t, fake } = await setup();
    expect((await post(t, tagged(t, "1"))).status).toBe(200);
    const exp = fake.sts.issued[0]!.expiresAt;
    vi.spyOn(Date, "now").mockImplementation(() => exp - 4 * 60_000);
    fake.sts.inject({ type: "error", status: 500, code: "InternalFailure" });
    expect((await post(t, tagged(t, "2"))).status).toBe(200);
    expect(fake.sts.calls).toHaveLength(2);
    expect(accepted(fake).map((c) => c.accessKeyId)).toEqual([
      fake.sts.issued[0]!.accessKeyId,
      fake.sts.issued[0]!.accessKeyId,
    ]);
  });
});

describe("STS failures", () => {
  it("a wrong external id: 502 upstream_auth_failed naming STS's AccessDenied; nothing accepted, nothing sent", async () => {
    const { t, fake } = await setup({ record: { externalId: "not-the-one" } });
    const res = await post(t, tagged(t, "x"));
    const p = await expectProblem(res, 502, "upstream_auth_failed");
    expect(p.upstreamCode).toBe("AccessDenied");
    expect(p.upstreamService).toBe("sts");
    expect(p.detail).toMatch(/STS/);
    expect(fake.events).toHaveLength(0);
    expect(fake.calls).toHaveLength(0);
    expect((await adminStatus(t.record.id)).queued).toBe(0);
    // The failure is remembered briefly: a second request does not ask STS again.
    await expectProblem(await post(t, tagged(t, "y")), 502, "upstream_auth_failed");
    expect(fake.sts.calls).toHaveLength(1);
    expect(logs.some((l) => l.includes('"assume_role_failed"') && l.includes("AccessDenied"))).toBe(true);
  });

  it("RegionDisabledException: upstream_auth_failed naming it", async () => {
    const { t, fake } = await setup();
    fake.sts.inject({
      type: "error",
      status: 403,
      code: "RegionDisabledException",
      message: "STS is not activated in this region for account:210987654321.",
    });
    const p = await expectProblem(await post(t, tagged(t, "x")), 502, "upstream_auth_failed");
    expect(p.upstreamCode).toBe("RegionDisabledException");
  });

  it("throttled: the entries are queued (202), then the drain assumes the role and delivers them", async () => {
    const { t, fake } = await setup();
    fake.sts.inject({ type: "throttle" });
    const res = await post(t, tagged(t, "a", "b"));
    expect(res.status).toBe(202);
    expect(kinds(await readAnswer(res))).toEqual(["queued", "queued"]);
    expect((await adminStatus(t.record.id)).lastUpstreamError?.code).toBe("Throttling");
    clearCredentialCaches(); // the gate's own isolate: no failure remembered there
    await drain(t.record.id);
    expect(tagsUpstream(fake)).toEqual(["a", "b"]);
    expect(accepted(fake)[0]!.signedHeaders).toContain("x-amz-security-token");
  });

  it("no answer within the timeout: queued (202) and delivered by the drain", async () => {
    const { t, fake } = await setup();
    fake.sts.inject({ type: "delay", ms: 5_000 });
    const res = await post(t, tagged(t, "slow"), { UPSTREAM_TIMEOUT_MS: "100" });
    expect(res.status).toBe(202);
    const a = await readAnswer(res);
    expect(kinds(a)).toEqual(["queued"]);
    expect((await adminStatus(t.record.id)).lastUpstreamError?.code).toBe("RequestTimeout");
    clearCredentialCaches();
    await drain(t.record.id);
    expect(tagsUpstream(fake)).toEqual(["slow"]);
  });

  it("malformed XML: queued (202) as InvalidResponse, delivered by the drain", async () => {
    const { t, fake } = await setup();
    fake.sts.inject({ type: "malformed" });
    const res = await post(t, tagged(t, "m"));
    expect(res.status).toBe(202);
    expect((await adminStatus(t.record.id)).lastUpstreamError?.code).toBe("InvalidResponse");
    clearCredentialCaches();
    await drain(t.record.id);
    expect(tagsUpstream(fake)).toEqual(["m"]);
  });

  it("STS 5xx with a full buffer: 502 upstream_unavailable naming STS, nothing accepted", async () => {
    const { t, fake } = await setup({ seed: { maxQueuedEntries: 0 } });
    fake.sts.inject({ type: "error", status: 503, code: "ServiceUnavailable", message: "Service unavailable" });
    const p = await expectProblem(await post(t, tagged(t, "x")), 502, "upstream_unavailable");
    expect(p.upstreamCode).toBe("ServiceUnavailable");
    expect(p.upstreamService).toBe("sts");
    expect(p.detail).toMatch(/STS/);
    expect(fake.events).toHaveLength(0);
  });

  it("the relay's identity not set (placeholder `none`): 503 tenant_misconfigured, STS never called", async () => {
    const { t, fake } = await setup();
    const res = await post(t, tagged(t, "x"), { RELAY_AWS_ACCESS_KEY_ID: "none", RELAY_AWS_SECRET_ACCESS_KEY: "none" });
    await expectProblem(res, 503, "tenant_misconfigured");
    expect(fake.sts.calls).toHaveLength(0);
    expect(logs.some((l) => l.includes("RELAY_AWS_ACCESS_KEY_ID"))).toBe(true);
  });

  it("an untrusted relay identity: the emulator refuses its signature (InvalidClientTokenId), upstream_auth_failed", async () => {
    const { t } = await setup();
    const res = await post(t, tagged(t, "x"), {
      RELAY_AWS_ACCESS_KEY_ID: "AKIAUNKNOWNRELAY0000",
      RELAY_AWS_SECRET_ACCESS_KEY: "some-other-secret-0123456789",
    });
    const p = await expectProblem(res, 502, "upstream_auth_failed");
    expect(p.upstreamCode).toBe("InvalidClientTokenId");
  });
});

describe("the AWS front door (a partner's SDK, relay-issued SigV4 pair)", () => {
  it("delivers through the role; a refused AssumeRole is InternalFailure (500) to the SDK", async () => {
    const { t, fake } = await setup();
    const pair = await addSigV4Key(t);
    const client = relayClient(pair);
    const out = await client.send(
      new PutPartnerEventsCommand({ Entries: [{ ...entry(t, { tag: "sdk" }), Time: new Date(1_704_164_645_000) }] }),
    );
    expect(out.FailedEntryCount).toBe(0);
    expect(tagsUpstream(fake)).toEqual(["sdk"]);
    expect(accepted(fake)[0]!.signedHeaders).toContain("x-amz-security-token");

    clearCredentialCaches();
    fake.sts.inject({ type: "error", status: 403, code: "AccessDenied", message: "not authorized" });
    const err = await client
      .send(new PutPartnerEventsCommand({ Entries: [entry(t, { tag: "no" })] }))
      .catch((e: unknown) => e);
    expect(err).toMatchObject({ name: "InternalFailure", $metadata: { httpStatusCode: 500 } });
    expect((err as Error).message).toMatch(/STS/);
    bodies.push((err as Error).message);
    expect(tagsUpstream(fake)).toEqual(["sdk"]);
  });
});

describe("EventBridge refusing a session", () => {
  it("ExpiredTokenException: the session is dropped, the entries queued (202) and sent with a fresh session", async () => {
    const { t, fake } = await setup();
    expect((await post(t, tagged(t, "1"))).status).toBe(200);
    // The emulator now holds the issued credentials expired (a clock ahead of the relay's).
    const first = fake.sts.issued[0]!;
    fake.addCredential({ ...first, expiresAt: realNow.call(Date) - 1 });
    const res = await post(t, tagged(t, "2"));
    expect(res.status).toBe(202);
    expect((await adminStatus(t.record.id)).lastUpstreamError?.code).toBe("ExpiredTokenException");
    await drain(t.record.id);
    expect((await post(t, tagged(t, "3"))).status).toBe(200);
    expect(fake.sts.calls).toHaveLength(2);
    expect(accepted(fake).at(-1)!.accessKeyId).toBe(fake.sts.issued[1]!.accessKeyId);
    expect(tagsUpstream(fake)).toEqual(["1", "2", "3"]);
  });

  it("static keys refused with ExpiredTokenException still answer upstream_auth_failed (nothing to refresh)", async () => {
    const t = await seedTenant({
      aws: {
        accessKeyId: "AKIASTATICTOKEN00001",
        secretAccessKey: "static-secret-0123456789",
        sessionToken: "static-session-token-0123456789",
      },
    });
    upstream = installRecordingUpstream({
      credentials: [
        {
          accessKeyId: "AKIASTATICTOKEN00001",
          secretAccessKey: "static-secret-0123456789",
          sessionToken: "static-session-token-0123456789",
        },
      ],
    });
    upstream.fake.inject({
      type: "error",
      status: 400,
      code: "ExpiredTokenException",
      message: "The security token included in the request is expired",
    });
    const p = await expectProblem(await post(t, tagged(t, "s")), 502, "upstream_auth_failed");
    expect(p.upstreamCode).toBe("ExpiredTokenException");
  });
});

describe("the drain", () => {
  it("signs with role credentials it assumes itself", async () => {
    const { t, fake } = await setup();
    fake.inject({ type: "throttle" }); // EventBridge throttles the direct send: the entries are queued
    expect((await post(t, tagged(t, "q1", "q2"))).status).toBe(202);
    clearCredentialCaches(); // as in the gate's own isolate
    await drain(t.record.id);
    expect(tagsUpstream(fake)).toEqual(["q1", "q2"]);
    expect(fake.sts.calls).toHaveLength(2);
    const last = accepted(fake).at(-1)!;
    expect(last.accessKeyId).toBe(fake.sts.issued[1]!.accessKeyId);
    expect(last.signedHeaders).toContain("x-amz-security-token");
  });

  it("a wrong external id: accepted entries wait (no attempt spent), then go through once it is fixed", async () => {
    const { t, fake } = await setup({ record: { externalId: "wrong-external-id" } });
    fake.sts.inject({ type: "throttle" });
    expect((await post(t, tagged(t, "w1", "w2"))).status).toBe(202);
    clearCredentialCaches();
    expect(await runDurableObjectAlarm(gateStub(t.record.id))).toBe(true);
    let status = await adminStatus(t.record.id);
    expect(status.queued).toBe(2);
    expect(status.lastUpstreamError?.code).toBe("AccessDenied");
    expect(status.deadLetters).toBe(0);
    expect(fake.events).toHaveLength(0);
    // The operator fixes the record; the next run assumes the role and delivers.
    await updateTenant(t, { credentials: { ...(t.record.credentials as RoleCredentials), externalId: EXTERNAL_ID } });
    clearTenantCaches();
    await drain(t.record.id);
    status = await adminStatus(t.record.id);
    expect(status).toMatchObject({ queued: 0, delivered: 2, deadLetters: 0 });
    expect(tagsUpstream(fake)).toEqual(["w1", "w2"]);
  });
});
