/**
 * Partner event sources end to end in workerd, against the emulator (which models PENDING /
 * ACTIVE / DELETED and drops what a source that is not ACTIVE receives): the partner creates a
 * source through the relay, events are held and never sent while it is PENDING, the customer's
 * own calls (signed with the customer's key, straight to the emulator) move it, the relay reads
 * the state and delivers what it held, in order, once. Deleted and expired sources, hold limits,
 * the poll's budget and backoff under throttling, unmanaged sources and tenant isolation.
 */
import { runDurableObjectAlarm, runInDurableObject } from "cloudflare:test";
import { exports } from "cloudflare:workers";
import { PutPartnerEventsCommand } from "@aws-sdk/client-eventbridge";
import { describe, expect, it } from "vitest";
import type { FakeCredential, FakeEventBridge } from "../../emulator/eventbridge.ts";
import type { SourceView } from "../../src/sources/manager.ts";
import {
  CONTROL_PLANE_BURST,
  CONTROL_PLANE_RATE_PER_SECOND,
  POLL_ACTIVE_INTERVAL_MS,
  POLL_ERROR_BASE_MS,
} from "../../src/sources/policy.ts";
import { awsCall } from "../helpers/aws-call.ts";
import { relayClient } from "../helpers/aws-sdk.ts";
import { admin, drain, gateStub } from "../helpers/drain.ts";
import { expectProblem } from "../helpers/http.ts";
import { addSigV4Key, type SeededTenant, seedTenant, updateTenant } from "../helpers/tenants.ts";
import { installFakeUpstream } from "../helpers/upstream.ts";

const CUSTOMER: FakeCredential = {
  accessKeyId: "AKIDCUSTOMER00000001",
  secretAccessKey: "customer-secret-for-tests-0001",
  account: "222222222222",
};

type Answer = { EventId?: string | null; RelayEventId?: string; ErrorCode?: string; ErrorMessage?: string };
type Batch = { FailedEntryCount: number; QueuedEntryCount?: number; Entries: Answer[] };

const RELAY = "http://relay.test";

function sourceName(t: SeededTenant, name = "orders"): string {
  return `aws.partner/example.com/${t.record.id}/${name}`;
}

function relay(t: SeededTenant, path: string, init: RequestInit = {}): Promise<Response> {
  return exports.default.fetch(`${RELAY}${path}`, {
    ...init,
    headers: { authorization: `Bearer ${t.apiKey}`, "content-type": "application/json", ...(init.headers ?? {}) },
  });
}

function post(t: SeededTenant, source: string, ids: string[]): Promise<Response> {
  return relay(t, "/v1/events", {
    method: "POST",
    body: JSON.stringify({
      Entries: ids.map((id) => ({ Source: source, DetailType: "Order", Detail: JSON.stringify({ id }) })),
    }),
  });
}

async function createSource(t: SeededTenant, name: string, account = CUSTOMER.account!): Promise<Response> {
  return relay(t, "/v1/sources", { method: "POST", body: JSON.stringify({ Name: name, Account: account }) });
}

async function getSource(t: SeededTenant, name: string): Promise<SourceView> {
  const res = await relay(t, `/v1/sources/${encodeURIComponent(name)}`);
  expect(res.status).toBe(200);
  return (await res.json()) as SourceView;
}

async function refresh(t: SeededTenant, name?: string): Promise<Response> {
  return admin(`/admin/v1/tenants/${t.record.id}/sources/refresh`, {
    method: "POST",
    body: JSON.stringify(name ? { Name: name } : {}),
  });
}

function delivered(fake: FakeEventBridge): string[] {
  return fake.events.map((e) => (JSON.parse(e.entry.Detail!) as { id: string }).id);
}

/** Makes one source due for a read now, as its schedule would, and runs the alarm (which reads the table). */
async function pollNow(t: SeededTenant, name: string, set = "next_check_at = 0"): Promise<void> {
  const stub = gateStub(t.record.id);
  await runInDurableObject(stub, (_i, state) => {
    state.storage.sql.exec(`UPDATE sources SET ${set} WHERE name = ?`, name);
  });
  await runDurableObjectAlarm(stub);
}

function setup(opts: Parameters<typeof seedTenant>[0] = {}) {
  return seedTenant(opts).then((t) => {
    const fake = installFakeUpstream({ credentials: [t.aws, CUSTOMER] });
    // As AWS: a source nobody created is not delivered.
    fake.sources.unknownSources = "drop";
    return { t, fake };
  });
}

describe("a managed source's lifecycle", () => {
  it("create → PENDING: held, nothing sent → customer creates the bus → read → held delivered in order, once", async () => {
    const { t, fake } = await setup();
    const name = sourceName(t);
    const created = await createSource(t, name);
    expect(created.status).toBe(201);
    const view = (await created.json()) as SourceView;
    expect(view).toMatchObject({ name, account: CUSTOMER.account, managed: true, state: "PENDING" });
    expect(view.expirationTime).not.toBeNull();

    const res = await post(t, name, ["a-0", "a-1", "a-2"]);
    expect(res.status).toBe(202);
    const body = (await res.json()) as Batch;
    expect(body).toMatchObject({ FailedEntryCount: 0, QueuedEntryCount: 3 });
    expect(fake.calls).toHaveLength(0);
    expect(fake.sources.dropped).toHaveLength(0);
    const ev = await relay(t, `/v1/events/${body.Entries[0]!.RelayEventId}`);
    expect(await ev.json()).toMatchObject({ state: "held", source: name, reason: expect.stringMatching(/PENDING/) });
    const status = (await (await relay(t, "/v1/status")).json()) as {
      sources: { heldEntries: number; pending: number };
    };
    expect(status.sources).toMatchObject({ heldEntries: 3, pending: 1 });

    await awsCall(fake, CUSTOMER, "CreateEventBus", { Name: name, EventSourceName: name });
    const refreshed = await refresh(t, name);
    expect(refreshed.status).toBe(200);
    expect(((await refreshed.json()) as { sources: SourceView[] }).sources[0]).toMatchObject({ state: "ACTIVE" });
    await drain(t.record.id);
    expect(delivered(fake)).toEqual(["a-0", "a-1", "a-2"]);
    expect(fake.sources.dropped).toHaveLength(0);
    const after = await relay(t, `/v1/events/${body.Entries[2]!.RelayEventId}`);
    expect(await after.json()).toMatchObject({ state: "delivered" });

    // Sent directly now that it is ACTIVE.
    const direct = (await (await post(t, name, ["a-3"])).json()) as Batch;
    expect(direct.Entries[0]!.EventId).toBeTruthy();
    expect(delivered(fake)).toEqual(["a-0", "a-1", "a-2", "a-3"]);
  });

  it("ACTIVE → the customer deletes the bus → noticed within the documented interval → new entries held", async () => {
    const { t, fake } = await setup();
    const name = sourceName(t);
    await createSource(t, name);
    await awsCall(fake, CUSTOMER, "CreateEventBus", { Name: name, EventSourceName: name });
    await refresh(t, name);
    const active = await getSource(t, name);
    expect(active.state).toBe("ACTIVE");
    // The next read of an ACTIVE source is scheduled within the documented interval.
    expect(Date.parse(active.nextCheckAt!) - Date.parse(active.checkedAt!)).toBeLessThanOrEqual(
      POLL_ACTIVE_INTERVAL_MS,
    );

    await awsCall(fake, CUSTOMER, "DeleteEventBus", { Name: name });
    await pollNow(t, name);
    expect((await getSource(t, name)).state).toBe("PENDING");
    const res = await post(t, name, ["b-0"]);
    expect(res.status).toBe(202);
    expect(fake.events).toHaveLength(0);
    expect(fake.sources.dropped).toHaveLength(0);

    await awsCall(fake, CUSTOMER, "ActivateEventSource", { Name: name });
    await pollNow(t, name);
    await drain(t.record.id);
    expect(delivered(fake)).toEqual(["b-0"]);
  });

  it("DELETED: held entries are dead-lettered with the reason, new ones refused per entry, nothing sent", async () => {
    const { t, fake } = await setup();
    const name = sourceName(t);
    await createSource(t, name);
    const held = (await (await post(t, name, ["c-0"])).json()) as Batch;
    const del = await relay(t, `/v1/sources/${encodeURIComponent(name)}`, { method: "DELETE" });
    expect(del.status).toBe(200);
    expect(await del.json()).toMatchObject({ state: "DELETED" });
    expect(fake.sources.list()[0]!.accounts[0]!.state).toBe("DELETED");

    const res = await post(t, name, ["c-1"]);
    expect(res.status).toBe(200);
    expect((await res.json()) as Batch).toMatchObject({
      FailedEntryCount: 1,
      Entries: [{ ErrorCode: "EventSourceDeleted", ErrorMessage: expect.stringMatching(/DELETED/) }],
    });
    expect(fake.calls).toHaveLength(0);
    const dead = (await (await admin(`/admin/v1/tenants/${t.record.id}/dead-letters`)).json()) as {
      items: { relayEventId: string; errorCode: string }[];
    };
    expect(dead.items).toEqual([
      expect.objectContaining({ relayEventId: held.Entries[0]!.RelayEventId, errorCode: "EventSourceDeleted" }),
    ]);
  });

  it("expiry: a PENDING source past its ExpirationTime dead-letters what it held; a hold past the maximum too; both replayable", async () => {
    const { t, fake } = await setup();
    const name = sourceName(t, "a");
    const other = sourceName(t, "b");
    await createSource(t, name);
    await createSource(t, other);
    const a = (await (await post(t, name, ["d-0", "d-1"])).json()) as Batch;
    const b = (await (await post(t, other, ["e-0"])).json()) as Batch;

    // AWS deletes a PENDING source at its ExpirationTime: the relay does not wait for a read.
    await pollNow(t, name, `expiration_time = ${Date.now() - 1}, next_check_at = ${Date.now() + 3_600_000}`);
    expect((await getSource(t, name)).state).toBe("DELETED");
    // The relay's own maximum hold.
    const stub = gateStub(t.record.id);
    await runInDurableObject(stub, (_i, state) => {
      state.storage.sql.exec("UPDATE held SET hold_until = 1 WHERE source = ?", other);
    });
    await runDurableObjectAlarm(stub);

    const dead = (await (await admin(`/admin/v1/tenants/${t.record.id}/dead-letters`)).json()) as {
      items: { relayEventId: string; errorCode: string; errorMessage: string }[];
    };
    expect(dead.items.map((d) => [d.relayEventId, d.errorCode])).toEqual([
      [a.Entries[0]!.RelayEventId, "EventSourceDeleted"],
      [a.Entries[1]!.RelayEventId, "EventSourceDeleted"],
      [b.Entries[0]!.RelayEventId, "EventSourceHoldExpired"],
    ]);
    expect(dead.items[0]!.errorMessage).toMatch(/ExpirationTime/);
    const ev = (await (await relay(t, `/v1/events/${b.Entries[0]!.RelayEventId}`)).json()) as { state: string };
    expect(ev).toMatchObject({ state: "failed", deadLettered: true });
    expect(fake.calls).toHaveLength(0);

    // Replayed while its source is still PENDING, an entry goes back to the hold, not upstream.
    const replay = await admin(`/admin/v1/tenants/${t.record.id}/dead-letters/replay`, {
      method: "POST",
      body: JSON.stringify({ relayEventIds: [b.Entries[0]!.RelayEventId] }),
    });
    expect(await replay.json()).toMatchObject({ replayed: 1 });
    expect(await (await relay(t, `/v1/events/${b.Entries[0]!.RelayEventId}`)).json()).toMatchObject({ state: "held" });
    await awsCall(fake, CUSTOMER, "CreateEventBus", { Name: other, EventSourceName: other });
    await refresh(t, other);
    await drain(t.record.id);
    expect(delivered(fake)).toEqual(["e-0"]);
  });

  it("bounds what is held by the tenant's buffer: beyond it an entry fails with EventSourceHoldFull", async () => {
    const { t, fake } = await setup({ maxQueuedEntries: 2 });
    const name = sourceName(t);
    await createSource(t, name);
    const res = await post(t, name, ["f-0", "f-1", "f-2"]);
    expect(res.status).toBe(202);
    const body = (await res.json()) as Batch;
    expect(body.QueuedEntryCount).toBe(2);
    expect(body.Entries[2]).toMatchObject({ ErrorCode: "EventSourceHoldFull" });
    expect(fake.calls).toHaveLength(0);
  });

  it("an existing source is adopted, not an error", async () => {
    const { t, fake } = await setup();
    const name = sourceName(t);
    await awsCall(fake, t.aws, "CreatePartnerEventSource", { Name: name, Account: CUSTOMER.account });
    await awsCall(fake, CUSTOMER, "CreateEventBus", { Name: name, EventSourceName: name });
    const res = await createSource(t, name);
    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject({ state: "ACTIVE", managed: true });
    const again = await createSource(t, name);
    expect(again.status).toBe(200);
    await expectProblem(await createSource(t, name, "333333333333"), 409, "source_exists");
  });
});

describe("entries already queued when the source stops being ACTIVE", () => {
  it("go back to the hold (nothing sent into the PENDING source), and drain once it is ACTIVE again", async () => {
    const { t, fake } = await setup();
    const name = sourceName(t);
    await createSource(t, name);
    await awsCall(fake, CUSTOMER, "CreateEventBus", { Name: name, EventSourceName: name });
    await refresh(t, name);
    // EventBridge throttles: the entries wait in the send queue.
    fake.inject({ type: "throttle" });
    const body = (await (await post(t, name, ["q-0", "q-1"])).json()) as Batch;
    expect(body.QueuedEntryCount).toBe(2);
    await awsCall(fake, CUSTOMER, "DeleteEventBus", { Name: name });
    await pollNow(t, name);
    for (const e of body.Entries) {
      expect(await (await relay(t, `/v1/events/${e.RelayEventId}`)).json()).toMatchObject({ state: "held" });
    }
    await drain(t.record.id);
    expect(fake.events).toHaveLength(0);
    expect(fake.sources.dropped).toHaveLength(0);
    await awsCall(fake, CUSTOMER, "ActivateEventSource", { Name: name });
    await pollNow(t, name);
    await drain(t.record.id);
    expect(delivered(fake)).toEqual(["q-0", "q-1"]);
  });

  it("one queued request with entries for two sources: only the stopped source's entries leave its row", async () => {
    const { t, fake } = await setup();
    const a = sourceName(t, "a");
    const b = sourceName(t, "b");
    for (const name of [a, b]) {
      await createSource(t, name);
      await awsCall(fake, CUSTOMER, "CreateEventBus", { Name: name, EventSourceName: name });
      await refresh(t, name);
    }
    fake.inject({ type: "throttle" });
    const res = await relay(t, "/v1/events", {
      method: "POST",
      body: JSON.stringify({
        Entries: [
          { Source: a, DetailType: "Order", Detail: JSON.stringify({ id: "a-0" }) },
          { Source: b, DetailType: "Order", Detail: JSON.stringify({ id: "b-0" }) },
          { Source: a, DetailType: "Order", Detail: JSON.stringify({ id: "a-1" }) },
        ],
      }),
    });
    const body = (await res.json()) as Batch;
    expect(body.QueuedEntryCount).toBe(3);
    await awsCall(fake, CUSTOMER, "DeleteEventBus", { Name: a });
    await pollNow(t, a);
    const states = [];
    for (const e of body.Entries)
      states.push(((await (await relay(t, `/v1/events/${e.RelayEventId}`)).json()) as { state: string }).state);
    // b-0 stays in its row, sendable (the alarm that read a may have sent it already).
    expect([states[0], states[2]]).toEqual(["held", "held"]);
    expect(["queued", "delivered"]).toContain(states[1]);
    await drain(t.record.id);
    expect(delivered(fake)).toEqual(["b-0"]);
    await awsCall(fake, CUSTOMER, "ActivateEventSource", { Name: a });
    await pollNow(t, a);
    await drain(t.record.id);
    expect(delivered(fake)).toEqual(["b-0", "a-0", "a-1"]);
    for (const e of body.Entries) {
      expect(await (await relay(t, `/v1/events/${e.RelayEventId}`)).json()).toMatchObject({ state: "delivered" });
    }
  });
});

describe("the admin API", () => {
  it("lists, shows and deletes a tenant's sources; unknown tenants and names are clear problems", async () => {
    const { t, fake } = await setup();
    const name = sourceName(t);
    const base = `/admin/v1/tenants/${t.record.id}/sources`;
    const created = await admin(base, {
      method: "POST",
      body: JSON.stringify({ Name: name, Account: CUSTOMER.account }),
    });
    expect(created.status).toBe(201);
    expect(await created.json()).toMatchObject({ created: true, source: { name, state: "PENDING" } });
    const list = (await (await admin(base)).json()) as { sources: SourceView[] };
    expect(list.sources.map((s) => s.name)).toEqual([name]);
    // The name with its slashes or percent-encoded.
    expect(await (await admin(`${base}/${name}`)).json()).toMatchObject({ name, account: CUSTOMER.account });
    expect(await (await admin(`${base}/${encodeURIComponent(name)}`)).json()).toMatchObject({ name });
    await expectProblem(await admin(`${base}/${encodeURIComponent(sourceName(t, "nope"))}`), 404, "source_not_found");
    await expectProblem(
      await admin(base, {
        method: "POST",
        body: JSON.stringify({ Name: "aws.partner/other.com/x/y", Account: CUSTOMER.account }),
      }),
      403,
      "source_not_owned",
    );
    await expectProblem(await admin("/admin/v1/tenants/no-such-tenant/sources"), 404, "tenant_not_found");
    const del = await admin(`${base}/${encodeURIComponent(name)}`, { method: "DELETE" });
    expect(await del.json()).toMatchObject({ state: "DELETED" });
    expect(fake.sources.list()[0]!.accounts[0]!.state).toBe("DELETED");
  });
});

describe("the AWS front door", () => {
  it("holds entries for a PENDING source too (the EventId is the relay id)", async () => {
    const { t, fake } = await setup();
    const pair = await addSigV4Key(t);
    const name = sourceName(t);
    await createSource(t, name);
    const out = await relayClient(pair).send(
      new PutPartnerEventsCommand({ Entries: [{ Source: name, DetailType: "x", Detail: '{"id":"g-0"}' }] }),
    );
    expect(out.FailedEntryCount).toBe(0);
    expect(out.Entries![0]!.EventId).toMatch(/^relay-/);
    expect(fake.calls).toHaveLength(0);
    expect(await (await relay(t, `/v1/events/${out.Entries![0]!.EventId}`)).json()).toMatchObject({ state: "held" });
  });
});

describe("polling", () => {
  it("backs off under control-plane throttling and makes no call while paused", async () => {
    const { t, fake } = await setup();
    const name = sourceName(t);
    await createSource(t, name);
    fake.sources.inject({ type: "throttle", operation: "ListPartnerEventSourceAccounts" });
    await expectProblem(await refresh(t, name), 429, "control_plane_throttled");
    const view = await getSource(t, name);
    expect(view.lastError).toBe("ThrottlingException");
    expect(Date.parse(view.nextCheckAt!)).toBeGreaterThanOrEqual(Date.now() + POLL_ERROR_BASE_MS - 5_000);
    const calls = fake.sources.calls.length;
    // Paused: the next refresh does not reach EventBridge.
    await expectProblem(await refresh(t, name), 429, "control_plane_throttled");
    expect(fake.sources.calls.length).toBe(calls);
    // Still PENDING, still holding.
    expect((await post(t, name, ["h-0"])).status).toBe(202);
    expect(fake.calls).toHaveLength(0);
  });

  it("keeps within the tenant's control-plane budget (import of many sources)", async () => {
    const { t, fake } = await setup();
    const n = 15;
    for (let i = 0; i < n; i++) {
      await awsCall(fake, t.aws, "CreatePartnerEventSource", {
        Name: sourceName(t, `s${i}`),
        Account: CUSTOMER.account,
      });
    }
    const first = fake.sources.calls.length;
    const res = await admin(`/admin/v1/tenants/${t.record.id}/sources/import`, { method: "POST", body: "{}" });
    expect(res.status).toBe(200);
    const out = (await res.json()) as { imported: string[]; complete: boolean };
    expect(out).toMatchObject({ complete: true });
    expect(out.imported).toHaveLength(n);
    const calls = fake.sources.calls.slice(first);
    expect(calls).toHaveLength(n + 1);
    // A token bucket of BURST at RATE/s: the (BURST + k)-th call comes at least k/RATE s after the first.
    const k = calls.length - CONTROL_PLANE_BURST;
    expect(calls.at(-1)!.at - calls[0]!.at).toBeGreaterThanOrEqual((k / CONTROL_PLANE_RATE_PER_SECOND) * 1000 - 250);
    const list = (await (await relay(t, "/v1/sources")).json()) as { sources: SourceView[] };
    expect(list.sources.every((s) => s.state === "PENDING" && s.account === CUSTOMER.account)).toBe(true);
  });
});

describe("sources the relay does not manage", () => {
  it("verify (default): forwarded on first use, then held once its state is read PENDING", async () => {
    const { t, fake } = await setup();
    const name = sourceName(t);
    // Created outside the relay (the partner's own tooling).
    await awsCall(fake, t.aws, "CreatePartnerEventSource", { Name: name, Account: CUSTOMER.account });
    const first = (await (await post(t, name, ["i-0"])).json()) as Batch;
    expect(first.Entries[0]!.EventId).toBeTruthy();
    expect(fake.sources.dropped).toHaveLength(1); // the gap a first use leaves (docs/sources.md)
    await runDurableObjectAlarm(gateStub(t.record.id));
    expect(await getSource(t, name)).toMatchObject({ state: "PENDING", managed: false, account: CUSTOMER.account });
    expect((await post(t, name, ["i-1"])).status).toBe(202);
    expect(fake.sources.dropped).toHaveLength(1);
  });

  it("credentials that may not read the state (AccessDenied): forwarded as before, with a warning", async () => {
    const { t, fake } = await setup();
    fake.sources.unknownSources = "deliver";
    const name = sourceName(t);
    fake.sources.inject({
      type: "error",
      status: 400,
      code: "AccessDeniedException",
      message: "not authorized to perform: events:ListPartnerEventSourceAccounts",
      operation: "ListPartnerEventSourceAccounts",
    });
    expect((await post(t, name, ["j-0"])).status).toBe(200);
    await runDurableObjectAlarm(gateStub(t.record.id));
    const view = await getSource(t, name);
    expect(view.warning).toMatch(/AccessDenied/);
    expect((await post(t, name, ["j-1"])).status).toBe(200);
    expect(delivered(fake)).toEqual(["j-0", "j-1"]);
  });

  it("forward: never read", async () => {
    const { t, fake } = await setup();
    fake.sources.unknownSources = "deliver";
    await updateTenant(t, { unmanagedSources: "forward" });
    expect((await post(t, sourceName(t), ["k-0"])).status).toBe(200);
    await runDurableObjectAlarm(gateStub(t.record.id));
    expect(fake.sources.calls).toHaveLength(0);
    expect(((await (await relay(t, "/v1/sources")).json()) as { sources: unknown[] }).sources).toHaveLength(0);
  });
});

describe("tenant isolation", () => {
  it("a tenant cannot create, read or delete another tenant's sources", async () => {
    const { t: a } = await setup();
    const b = await seedTenant();
    const name = sourceName(a);
    expect((await createSource(a, name)).status).toBe(201);
    await expectProblem(await createSource(b, name), 403, "source_not_owned");
    await expectProblem(await relay(b, `/v1/sources/${encodeURIComponent(name)}`), 404, "source_not_found");
    await expectProblem(
      await relay(b, `/v1/sources/${encodeURIComponent(name)}`, { method: "DELETE" }),
      404,
      "source_not_found",
    );
    expect(((await (await relay(b, "/v1/sources")).json()) as { sources: unknown[] }).sources).toHaveLength(0);
    expect((await getSource(a, name)).state).toBe("PENDING");
    // Bad input is a clear problem.
    await expectProblem(
      await relay(a, "/v1/sources", { method: "POST", body: JSON.stringify({ Name: name, Account: "12" }) }),
      400,
      "invalid_request",
    );
  });
});
