/**
 * Partner event sources for a role tenant (issues 13 and 14): the control-plane calls the relay
 * makes for the partner (CreatePartnerEventSource, ListPartnerEventSourceAccounts on the poll)
 * are signed with the session STS gave for the partner's role, as PutPartnerEvents is. The
 * emulator checks each signature with the AWS SDK's signer, refuses issued keys without their
 * session token, and records which key signed each control-plane call and for which account
 * (the role's). A role STS will not give a session for is a clear control_plane_denied naming
 * STS, with no control-plane call made. No secret, token or signature reaches a log or an answer.
 */
import { runDurableObjectAlarm, runInDurableObject } from "cloudflare:test";
import { env, exports } from "cloudflare:workers";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import type { FakeCredential, FakeEventBridge } from "../../emulator/eventbridge.ts";
import { clearCredentialCaches } from "../../src/credentials/resolve.ts";
import type { SourceView } from "../../src/sources/view.ts";
import type { RoleCredentials } from "../../src/tenants/record.ts";
import { awsCall } from "../helpers/aws-call.ts";
import { drain, gateStub } from "../helpers/drain.ts";
import { expectProblem } from "../helpers/http.ts";
import { captureLogs, expectNoLeaks } from "../helpers/leaks.ts";
import { installRecordingUpstream, type RecordingUpstream } from "../helpers/recording-upstream.ts";
import { type SeededTenant, seedTenant, updateTenant } from "../helpers/tenants.ts";

const RELAY_KEY_ID = env.RELAY_AWS_ACCESS_KEY_ID;
const RELAY_SECRET = env.RELAY_AWS_SECRET_ACCESS_KEY;
const EXTERNAL_ID = "ext-2c9d7e1f0a3b4c5d";
const ROLE_ACCOUNT = "210987654321";
const CUSTOMER: FakeCredential = {
  accessKeyId: "AKIDCUSTOMER00000009",
  secretAccessKey: "customer-secret-for-tests-0009",
  account: "222222222222",
};
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

/** A role tenant (no keys of its own) and the emulator knowing its role, trusting the relay's identity. */
async function setup(opts: { externalIdInRole?: string } = {}) {
  const t = await seedTenant();
  const roleArn = `arn:aws:iam::${ROLE_ACCOUNT}:role/relay-${t.record.id}`.slice(0, 80);
  const credentials: RoleCredentials = { kind: "role", roleArn, externalId: EXTERNAL_ID, durationSeconds: null };
  await updateTenant(t, { credentials });
  upstream = installRecordingUpstream({
    credentials: [{ accessKeyId: RELAY_KEY_ID, secretAccessKey: RELAY_SECRET }, CUSTOMER],
    sts: {
      roles: [{ roleArn, externalId: opts.externalIdInRole ?? EXTERNAL_ID, trustedAccessKeyId: RELAY_KEY_ID }],
    },
    now: () => realNow.call(Date),
  });
  upstream.fake.sources.unknownSources = "drop";
  return { t, fake: upstream.fake };
}

async function relay(t: SeededTenant, path: string, init: RequestInit = {}): Promise<Response> {
  const res = await exports.default.fetch(`http://relay.test${path}`, {
    ...init,
    headers: { authorization: `Bearer ${t.apiKey}`, "content-type": "application/json" },
  });
  bodies.push(await res.clone().text());
  return res;
}

const sessionKeyIds = (fake: FakeEventBridge) => fake.sts.issued.map((c) => c.accessKeyId);

describe("a role tenant's partner event sources", () => {
  it("create and the poll are signed with the assumed session (the role's account); held events then delivered with it", async () => {
    const { t, fake } = await setup();
    const name = `aws.partner/example.com/${t.record.id}/orders`;

    const created = await relay(t, "/v1/sources", {
      method: "POST",
      body: JSON.stringify({ Name: name, Account: CUSTOMER.account }),
    });
    expect(created.status, await created.clone().text()).toBe(201);
    expect((await created.json()) as SourceView).toMatchObject({ name, state: "PENDING", managed: true });

    // One AssumeRole by the relay's identity with the tenant's external id; the create signed with its session.
    expect(fake.sts.calls).toHaveLength(1);
    expect(fake.sts.calls[0]).toMatchObject({ callerAccessKeyId: RELAY_KEY_ID, externalId: EXTERNAL_ID, status: 200 });
    const session = sessionKeyIds(fake);
    expect(session).toHaveLength(1);
    expect(session[0]).toMatch(/^ASIA/);
    const create = fake.sources.calls.find((c) => c.operation === "CreatePartnerEventSource");
    expect(create).toMatchObject({ accessKeyId: session[0], account: ROLE_ACCOUNT, status: 200 });

    // Held while PENDING; nothing sent.
    const res = await relay(t, "/v1/events", {
      method: "POST",
      body: JSON.stringify({ Entries: [{ Source: name, DetailType: "Order", Detail: '{"id":"r-0"}' }] }),
    });
    expect(res.status).toBe(202);
    expect(fake.calls).toHaveLength(0);

    // The customer creates the bus; the alarm's poll reads the state with the session and releases the hold.
    await awsCall(fake, CUSTOMER, "CreateEventBus", { Name: name, EventSourceName: name });
    const stub = gateStub(t.record.id);
    await runInDurableObject(stub, (_i, state) => {
      state.storage.sql.exec("UPDATE sources SET next_check_at = 0 WHERE name = ?", name);
    });
    await runDurableObjectAlarm(stub);
    const reads = fake.sources.calls.filter((c) => c.operation === "ListPartnerEventSourceAccounts");
    expect(reads.length).toBeGreaterThan(0);
    for (const r of reads) {
      expect(r).toMatchObject({ account: ROLE_ACCOUNT, status: 200 });
      expect(sessionKeyIds(fake)).toContain(r.accessKeyId);
    }
    // No control-plane call was ever signed with the relay's own identity.
    expect(fake.sources.calls.filter((c) => c.accessKeyId === RELAY_KEY_ID)).toEqual([]);

    await drain(t.record.id);
    expect(fake.events.map((e) => JSON.parse(e.entry.Detail!) as { id: string }).map((d) => d.id)).toEqual(["r-0"]);
    expect(fake.calls.filter((c) => c.outcome === "accepted").every((c) => c.accessKeyId.startsWith("ASIA"))).toBe(
      true,
    );
    expect(fake.sources.dropped).toHaveLength(0);
  });

  it("STS refusing the role (wrong external id): control_plane_denied naming STS, no control-plane call", async () => {
    const { t, fake } = await setup({ externalIdInRole: "ext-someone-else-0000" });
    const name = `aws.partner/example.com/${t.record.id}/orders`;
    const res = await relay(t, "/v1/sources", {
      method: "POST",
      body: JSON.stringify({ Name: name, Account: CUSTOMER.account }),
    });
    const problem = await expectProblem(res, 502, "control_plane_denied");
    expect(problem.detail).toMatch(/STS/);
    expect(problem.detail).toMatch(/AccessDenied/);
    expect(fake.sts.calls.length).toBeGreaterThan(0);
    expect(fake.sources.calls).toEqual([]);
  });
});
