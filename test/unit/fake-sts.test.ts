/**
 * The emulator's STS (emulator/sts.ts) on its own, called directly: routing by the Query API's
 * shape, the caller's signature for service sts, roles and external ids, STS's XML, issued
 * credentials that PutPartnerEvents then takes only with their token and until they expire.
 */
import { AwsClient } from "aws4fetch";
import { describe, expect, it } from "vitest";
import { FakeEventBridge } from "../../emulator/eventbridge.ts";

const RELAY = { accessKeyId: "AKIARELAYFAKESTS0000", secretAccessKey: "relay-fake-sts-secret-0123456789" };
const ROLE = "arn:aws:iam::210987654321:role/relay";
const URL_ = "http://fake-eventbridge.test";

function setup(now = Date.now) {
  return new FakeEventBridge({
    credentials: [RELAY],
    sts: { roles: [{ roleArn: ROLE, externalId: "ext-1", trustedAccessKeyId: RELAY.accessKeyId }] },
    now,
  });
}

async function assume(
  fake: FakeEventBridge,
  params: Record<string, string>,
  key: { accessKeyId: string; secretAccessKey: string } = RELAY,
  service = "sts",
): Promise<{ status: number; text: string }> {
  const signed = await new AwsClient({ ...key, retries: 0 }).sign(`${URL_}/`, {
    method: "POST",
    headers: { "content-type": "application/x-www-form-urlencoded; charset=utf-8" },
    body: new URLSearchParams({ Action: "AssumeRole", Version: "2011-06-15", ...params }).toString(),
    aws: { service, region: "us-east-1" },
  });
  const res = await fake.fetch(signed);
  return { status: res.status, text: await res.text() };
}

const tag = (xml: string, t: string) => new RegExp(`<${t}>([^<]*)</${t}>`).exec(xml)?.[1];

async function put(
  fake: FakeEventBridge,
  creds: { accessKeyId: string; secretAccessKey: string; sessionToken?: string },
) {
  const signed = await new AwsClient({ ...creds, retries: 0 }).sign(`${URL_}/`, {
    method: "POST",
    headers: { "content-type": "application/x-amz-json-1.1", "x-amz-target": "AWSEvents.PutPartnerEvents" },
    body: JSON.stringify({ Entries: [{ Source: "aws.partner/example.com/a/b", DetailType: "t", Detail: "{}" }] }),
    aws: { service: "events", region: "us-east-1" },
  });
  const res = await fake.fetch(signed);
  return { status: res.status, body: (await res.json()) as { __type?: string; FailedEntryCount?: number } };
}

describe("the emulator's STS", () => {
  it("issues expiring credentials for a trusted caller with the right external id, in AWS's XML", async () => {
    const fake = setup();
    const r = await assume(fake, {
      RoleArn: ROLE,
      RoleSessionName: "relay-a",
      ExternalId: "ext-1",
      DurationSeconds: "900",
    });
    expect(r.status).toBe(200);
    expect(r.text).toMatch(/^<AssumeRoleResponse xmlns="https:\/\/sts.amazonaws.com\/doc\/2011-06-15\/">/);
    expect(tag(r.text, "AccessKeyId")).toMatch(/^ASIA[A-Z2-7]{16}$/);
    expect(tag(r.text, "Arn")).toBe("arn:aws:sts::210987654321:assumed-role/relay/relay-a");
    const exp = Date.parse(tag(r.text, "Expiration")!);
    expect(exp - Date.now()).toBeGreaterThan(890_000);
    expect(exp - Date.now()).toBeLessThanOrEqual(900_000);
    expect(fake.sts.calls[0]).toMatchObject({ callerAccessKeyId: RELAY.accessKeyId, status: 200, externalId: "ext-1" });
  });

  it.each([
    ["a wrong external id", { ExternalId: "ext-2" }],
    ["no external id", {}],
    ["an unknown role", { RoleArn: "arn:aws:iam::210987654321:role/other", ExternalId: "ext-1" }],
  ])("%s: 403 AccessDenied (AWS says no more)", async (_what, extra) => {
    const fake = setup();
    const r = await assume(fake, { RoleArn: ROLE, RoleSessionName: "relay-a", ...extra });
    expect(r.status).toBe(403);
    expect(tag(r.text, "Code")).toBe("AccessDenied");
    expect(r.text).toMatch(/^<ErrorResponse xmlns=/);
    expect(fake.sts.issued).toHaveLength(0);
  });

  it("checks the caller's signature for service sts (XML errors as STS names them)", async () => {
    const fake = setup();
    const params = { RoleArn: ROLE, RoleSessionName: "relay-a", ExternalId: "ext-1" };
    const wrong = await assume(fake, params, { ...RELAY, secretAccessKey: "not-the-secret-0123456789" });
    expect([wrong.status, tag(wrong.text, "Code")]).toEqual([403, "SignatureDoesNotMatch"]);
    const unknown = await assume(fake, params, { accessKeyId: "AKIAUNKNOWN000000000", secretAccessKey: "x" });
    expect([unknown.status, tag(unknown.text, "Code")]).toEqual([403, "InvalidClientTokenId"]);
    const scoped = await assume(fake, params, RELAY, "events");
    expect(tag(scoped.text, "Code")).toBe("SignatureDoesNotMatch");
    expect(fake.sts.issued).toHaveLength(0);
  });

  it("validates parameters as STS does (ValidationError), and refuses more than the role's maximum", async () => {
    const fake = setup();
    const bad = await assume(fake, { RoleArn: ROLE, RoleSessionName: "x", ExternalId: "ext-1", DurationSeconds: "60" });
    expect([bad.status, tag(bad.text, "Code")]).toEqual([400, "ValidationError"]);
    expect(tag(bad.text, "Message")).toMatch(/2 validation errors/);
    const long = await assume(fake, {
      RoleArn: ROLE,
      RoleSessionName: "relay-a",
      ExternalId: "ext-1",
      DurationSeconds: "7200",
    });
    expect(tag(long.text, "Message")).toMatch(/MaxSessionDuration/);
  });

  it("PutPartnerEvents with issued credentials: only with their session token, and only until they expire", async () => {
    let now = Date.now();
    const fake = setup(() => now);
    // A role whose sessions last 1 s (the emulator's issueSeconds), so expiry is within the signature's skew.
    const SHORT = "arn:aws:iam::210987654321:role/short";
    fake.sts.addRole({ roleArn: SHORT, externalId: null, trustedAccessKeyId: RELAY.accessKeyId, issueSeconds: 1 });
    const r = await assume(fake, { RoleArn: SHORT, RoleSessionName: "relay-a" });
    const creds = {
      accessKeyId: tag(r.text, "AccessKeyId")!,
      secretAccessKey: tag(r.text, "SecretAccessKey")!,
      sessionToken: tag(r.text, "SessionToken")!,
    };
    expect((await put(fake, creds)).body.FailedEntryCount).toBe(0);
    const { sessionToken: _, ...noToken } = creds;
    expect((await put(fake, noToken)).body.__type).toBe("UnrecognizedClientException");
    expect((await put(fake, { ...creds, sessionToken: `${creds.sessionToken}x` })).body.__type).toBe(
      "UnrecognizedClientException",
    );
    // At its expiry by the emulator's clock (the signature's own date stays within the skew).
    now = fake.sts.issued[0]!.expiresAt;
    const expired = await put(fake, creds);
    expect([expired.status, expired.body.__type]).toEqual([400, "ExpiredTokenException"]);
  });

  it("faults: throttle, error, malformed; other requests still go to EventBridge", async () => {
    const fake = setup();
    fake.sts.inject(
      { type: "throttle" },
      { type: "error", status: 403, code: "RegionDisabledException" },
      { type: "malformed" },
    );
    const p = { RoleArn: ROLE, RoleSessionName: "relay-a", ExternalId: "ext-1" };
    expect(tag((await assume(fake, p)).text, "Code")).toBe("Throttling");
    expect(tag((await assume(fake, p)).text, "Code")).toBe("RegionDisabledException");
    const m = await assume(fake, p);
    expect(m.status).toBe(200);
    expect(m.text).not.toMatch(/<\/AssumeRoleResponse>/);
    expect(fake.calls).toHaveLength(0);
  });
});
