/**
 * API-key authentication of POST /v1/events through the Worker's fetch handler: each way a
 * credential can be missing or wrong gets its documented status and code (RFC 6750: 401 vs 400,
 * WWW-Authenticate), a disabled tenant gets 403, and one tenant's key never acts for another's
 * sources. Nothing a refused request carries reaches the fake EventBridge, and no key ever
 * appears in a response or a log line.
 */
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import type { FakeEventBridge } from "../../emulator/eventbridge.ts";
import { generateApiKey } from "../../src/auth/api-key.ts";
import { expectProblem, postEvents, readAnswer } from "../helpers/http.ts";
import { captureLogs, expectNoLeaks } from "../helpers/leaks.ts";
import { entry, type SeededTenant, seedTenant, updateTenant } from "../helpers/tenants.ts";
import { installFakeUpstream } from "../helpers/upstream.ts";

const CHALLENGE = 'Bearer realm="eventbridge-relay"';

let logs: string[] = [];
let bodies: string[] = [];
let secrets: string[] = [];

beforeEach(() => {
  logs = captureLogs();
  bodies = [];
  secrets = [];
});

afterEach(() => {
  expectNoLeaks([...logs, ...bodies], secrets);
  vi.restoreAllMocks();
});

async function tenant(opts: Parameters<typeof seedTenant>[0] = {}): Promise<SeededTenant> {
  const t = await seedTenant(opts);
  secrets.push(t.apiKey, t.aws.secretAccessKey);
  return t;
}

/** Posts one valid entry for `t` with exactly these headers (plus JSON content type). */
async function post(t: SeededTenant, headers: Record<string, string>): Promise<Response> {
  const res = await postEvents({ Entries: [entry(t)] }, { headers });
  bodies.push(await res.clone().text());
  return res;
}

/** Flips the last checksum character: the key keeps its format but fails its CRC. */
function badChecksum(key: string): string {
  const last = key.at(-1)!;
  return key.slice(0, -1) + (last === "a" ? "b" : "a");
}

describe("credentials", () => {
  let t: SeededTenant;
  let fake: FakeEventBridge;
  beforeEach(async () => {
    t = await tenant();
    fake = installFakeUpstream({ credentials: [t.aws] });
  });

  it("no credentials: 401 missing_api_key with a Bearer challenge", async () => {
    const res = await post(t, {});
    await expectProblem(res, 401, "missing_api_key");
    expect(res.headers.get("www-authenticate")).toBe(CHALLENGE);
    expect(fake.calls).toHaveLength(0);
  });

  it("an empty X-Api-Key counts as none: 401 missing_api_key", async () => {
    await expectProblem(await post(t, { "x-api-key": "  " }), 401, "missing_api_key");
  });

  it.each([
    ["Basic credentials", "Basic x"],
    ["Basic with the key", `Basic ${btoa(`user:${"k".repeat(8)}`)}`],
    ["Bearer with no token", "Bearer "],
    ["a bare token", "ebr_0123456789"],
    ["two tokens", "Bearer a b"],
  ])(
    "an Authorization header that is not `Bearer <token>` (%s): 400 invalid_authorization_header",
    async (_, value) => {
      const res = await post(t, { authorization: value });
      await expectProblem(res, 400, "invalid_authorization_header");
      expect(res.headers.get("www-authenticate")).toBe(`${CHALLENGE}, error="invalid_request"`);
      expect(fake.calls).toHaveLength(0);
    },
  );

  it.each([
    ["not a relay key", () => "not-a-relay-key"],
    ["the wrong prefix", (k: string) => `ebx_${k.slice(4)}`],
    ["truncated", (k: string) => k.slice(0, -1)],
    ["one character too many", (k: string) => `${k}a`],
    ["a bad checksum", badChecksum],
    ["a changed body character", (k: string) => `${k.slice(0, 10)}${k[10] === "Z" ? "Y" : "Z"}${k.slice(11)}`],
  ])("a key with %s: 401 malformed_api_key", async (_, mangle) => {
    const key = mangle(t.apiKey);
    expect(key).not.toBe(t.apiKey);
    secrets.push(key);
    const res = await post(t, { authorization: `Bearer ${key}` });
    await expectProblem(res, 401, "malformed_api_key");
    expect(res.headers.get("www-authenticate")).toBe(`${CHALLENGE}, error="invalid_token"`);
    expect(fake.calls).toHaveLength(0);
  });

  it("a well-formed key nobody holds: 401 invalid_api_key", async () => {
    const key = generateApiKey();
    secrets.push(key);
    const res = await post(t, { authorization: `Bearer ${key}` });
    await expectProblem(res, 401, "invalid_api_key");
    expect(res.headers.get("www-authenticate")).toBe(`${CHALLENGE}, error="invalid_token"`);
    expect(fake.calls).toHaveLength(0);
  });

  it("the tenant's key as Bearer (any case of the scheme) or as X-Api-Key is accepted", async () => {
    const forms: Record<string, string>[] = [
      { authorization: `Bearer ${t.apiKey}` },
      { authorization: `bearer ${t.apiKey}` },
      { "x-api-key": t.apiKey },
    ];
    for (const headers of forms) {
      const res = await post(t, headers);
      expect(res.status).toBe(200);
      expect((await readAnswer(res)).FailedEntryCount).toBe(0);
    }
    expect(fake.events).toHaveLength(3);
    expect(fake.calls.every((c) => c.accessKeyId === t.aws.accessKeyId)).toBe(true);
  });

  it("Authorization wins over X-Api-Key: a bad Authorization is not rescued by a good X-Api-Key", async () => {
    await expectProblem(
      await post(t, { authorization: "Basic x", "x-api-key": t.apiKey }),
      400,
      "invalid_authorization_header",
    );
    expect(fake.calls).toHaveLength(0);
  });
});

describe("key lifecycle and tenant status", () => {
  it("an expired key: 401 invalid_api_key; a key expiring later works", async () => {
    const expired = await tenant({ keyExpiresAt: new Date(Date.now() - 1000).toISOString() });
    const later = await tenant({ keyExpiresAt: new Date(Date.now() + 3600_000).toISOString() });
    const fake = installFakeUpstream({ credentials: [expired.aws, later.aws] });
    await expectProblem(await post(expired, { authorization: `Bearer ${expired.apiKey}` }), 401, "invalid_api_key");
    expect((await post(later, { authorization: `Bearer ${later.apiKey}` })).status).toBe(200);
    expect(fake.calls.map((c) => c.accessKeyId)).toEqual([later.aws.accessKeyId]);
  });

  it("a key its tenant's record no longer lists (revoked): 401 invalid_api_key", async () => {
    const t = await tenant();
    const fake = installFakeUpstream({ credentials: [t.aws] });
    await updateTenant(t, { apiKeys: [] });
    await expectProblem(await post(t, { authorization: `Bearer ${t.apiKey}` }), 401, "invalid_api_key");
    expect(fake.calls).toHaveLength(0);
  });

  it("a disabled tenant: 403 tenant_disabled, nothing sent", async () => {
    const t = await tenant({ status: "disabled" });
    const fake = installFakeUpstream({ credentials: [t.aws] });
    const res = await post(t, { authorization: `Bearer ${t.apiKey}` });
    await expectProblem(res, 403, "tenant_disabled");
    expect(res.headers.get("www-authenticate")).toBeNull();
    expect(fake.calls).toHaveLength(0);
  });
});

describe("tenant isolation", () => {
  it("tenant A's key never acts for tenant B's sources, and only A's credentials sign", async () => {
    const a = await tenant();
    const b = await tenant();
    const fake = installFakeUpstream({ credentials: [a.aws, b.aws] });
    const res = await postEvents(
      { Entries: [entry(b, { for: "b" }), entry(a, { for: "a" }), entry(b, { for: "b2" })] },
      { key: a.apiKey },
    );
    bodies.push(await res.clone().text());
    const answer = await readAnswer(res);
    expect(answer.Entries.map((e) => ("ErrorCode" in e ? e.ErrorCode : "ok"))).toEqual([
      "NotAuthorizedForSourceException",
      "ok",
      "NotAuthorizedForSourceException",
    ]);
    expect(answer.FailedEntryCount).toBe(2);
    expect(fake.events.map((e) => e.entry.Source)).toEqual([entry(a).Source]);
    expect(fake.calls.map((c) => c.accessKeyId)).toEqual([a.aws.accessKeyId]);

    // And B's key, the other way round.
    const back = await readAnswer(await postEvents({ Entries: [entry(a)] }, { key: b.apiKey }));
    expect(back.Entries).toEqual([
      { ErrorCode: "NotAuthorizedForSourceException", ErrorMessage: expect.stringContaining(entry(a).Source) },
    ]);
    expect(fake.calls).toHaveLength(1);
  });

  it("each tenant's events are signed with its own credentials and sent to its own region", async () => {
    const a = await tenant({ region: "eu-west-1" });
    const b = await tenant({ region: "ap-southeast-2" });
    const fake = installFakeUpstream({ credentials: [a.aws, b.aws] });
    expect((await postEvents({ Entries: [entry(a)] }, { key: a.apiKey })).status).toBe(200);
    expect((await postEvents({ Entries: [entry(b)] }, { key: b.apiKey })).status).toBe(200);
    expect(fake.calls.map((c) => [c.accessKeyId, c.region])).toEqual([
      [a.aws.accessKeyId, "eu-west-1"],
      [b.aws.accessKeyId, "ap-southeast-2"],
    ]);
  });
});
