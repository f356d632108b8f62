/**
 * The emulator's partner event sources (emulator/sources.ts), through its real front door: the
 * partner's calls and the customer's, signed with aws4fetch as two accounts, move a source
 * through PENDING, ACTIVE and DELETED as AWS does, and PutPartnerEvents to a source that is not
 * ACTIVE answers EventIds while the events are dropped.
 */
import { AwsClient } from "aws4fetch";
import { describe, expect, it } from "vitest";
import { type FakeCredential, FakeEventBridge, type FakeEventBridgeOptions } from "../../emulator/eventbridge.ts";

const REGION = "eu-west-1";
const ENDPOINT = `https://events.${REGION}.amazonaws.com/`;
const PARTNER: FakeCredential = {
  accessKeyId: "AKIDPARTNER000000001",
  secretAccessKey: "partner-secret-for-tests-0001",
  account: "111111111111",
};
const CUSTOMER: FakeCredential = {
  accessKeyId: "AKIDCUSTOMER00000001",
  secretAccessKey: "customer-secret-for-tests-0001",
  account: "222222222222",
};
const OTHER_PARTNER: FakeCredential = {
  accessKeyId: "AKIDPARTNER000000002",
  secretAccessKey: "partner-secret-for-tests-0002",
  account: "333333333333",
};
const NAME = "aws.partner/example.com/customer-7/orders";

function setup(opts: FakeEventBridgeOptions = {}) {
  let now = Date.now();
  const fake = new FakeEventBridge({ credentials: [PARTNER, CUSTOMER, OTHER_PARTNER], now: () => now, ...opts });
  const call = async (cred: FakeCredential, op: string, body: unknown) => {
    const aws = new AwsClient({ ...cred, region: REGION, service: "events", retries: 0 });
    const req = await aws.sign(ENDPOINT, {
      method: "POST",
      headers: { "content-type": "application/x-amz-json-1.1", "x-amz-target": `AWSEvents.${op}` },
      body: JSON.stringify(body),
    });
    const res = await fake.fetch(req);
    return { status: res.status, json: (await res.json()) as Record<string, unknown> };
  };
  const put = (source: string, n = 1) =>
    call(PARTNER, "PutPartnerEvents", {
      Entries: Array.from({ length: n }, (_, i) => ({
        Source: source,
        DetailType: "t",
        Detail: JSON.stringify({ i }),
      })),
    });
  const state = async () => {
    const r = await call(PARTNER, "ListPartnerEventSourceAccounts", { EventSourceName: NAME });
    return (r.json["PartnerEventSourceAccounts"] as { State: string }[])[0]?.State;
  };
  return { fake, call, put, state, advance: (ms: number) => (now += ms) };
}

describe("partner event sources in the emulator", () => {
  it("create → PENDING (events dropped with EventIds) → bus → ACTIVE (delivered) → bus deleted → PENDING", async () => {
    const { fake, call, put, state } = setup();
    const created = await call(PARTNER, "CreatePartnerEventSource", { Name: NAME, Account: CUSTOMER.account });
    expect(created).toEqual({
      status: 200,
      json: { EventSourceArn: `arn:aws:events:${REGION}::event-source/${NAME}` },
    });
    expect(await state()).toBe("PENDING");
    const listed = await call(PARTNER, "ListPartnerEventSourceAccounts", { EventSourceName: NAME });
    const acct = (listed.json["PartnerEventSourceAccounts"] as Record<string, unknown>[])[0]!;
    expect(acct["Account"]).toBe(CUSTOMER.account);
    expect(typeof acct["CreationTime"]).toBe("number");
    expect(acct["ExpirationTime"] as number).toBeGreaterThan(acct["CreationTime"] as number);

    const dropped = await put(NAME, 2);
    expect(dropped.status).toBe(200);
    expect(dropped.json["FailedEntryCount"]).toBe(0);
    expect((dropped.json["Entries"] as { EventId?: string }[]).every((e) => typeof e.EventId === "string")).toBe(true);
    expect(fake.events).toHaveLength(0);
    expect(fake.sources.dropped).toHaveLength(2);
    expect(fake.sources.dropped[0]!.reason).toMatch(/PENDING/);

    const bus = await call(CUSTOMER, "CreateEventBus", { Name: NAME, EventSourceName: NAME });
    expect(bus).toEqual({
      status: 200,
      json: { EventBusArn: `arn:aws:events:${REGION}:${CUSTOMER.account}:event-bus/${NAME}` },
    });
    expect(await state()).toBe("ACTIVE");
    await put(NAME, 1);
    expect(fake.events).toHaveLength(1);

    expect((await call(CUSTOMER, "DeleteEventBus", { Name: NAME })).status).toBe(200);
    expect(await state()).toBe("PENDING");
    await put(NAME, 1);
    expect(fake.events).toHaveLength(1);
    expect(fake.sources.dropped).toHaveLength(3);
    // Control-plane calls are kept apart from PutPartnerEvents' calls.
    expect(fake.calls.every((c) => c.entryCount > 0)).toBe(true);
    expect(fake.sources.calls.map((c) => c.operation)).toContain("CreateEventBus");
  });

  it("activate and deactivate; partner delete → DELETED; expiry → DELETED; re-create after delete", async () => {
    const { call, state, advance } = setup({ sourceExpiryMs: 60_000 });
    await call(PARTNER, "CreatePartnerEventSource", { Name: NAME, Account: CUSTOMER.account });
    expect((await call(CUSTOMER, "ActivateEventSource", { Name: NAME })).status).toBe(200);
    expect(await state()).toBe("ACTIVE");
    await call(CUSTOMER, "DeactivateEventSource", { Name: NAME });
    expect(await state()).toBe("PENDING");
    advance(61_000);
    expect(await state()).toBe("DELETED");
    expect((await call(CUSTOMER, "ActivateEventSource", { Name: NAME })).json["__type"]).toBe(
      "ResourceNotFoundException",
    );
    // A deleted source can be created again: PENDING with a fresh expiry.
    expect((await call(PARTNER, "CreatePartnerEventSource", { Name: NAME, Account: CUSTOMER.account })).status).toBe(
      200,
    );
    expect(await state()).toBe("PENDING");
    expect((await call(PARTNER, "DeletePartnerEventSource", { Name: NAME, Account: CUSTOMER.account })).json).toEqual(
      {},
    );
    expect(await state()).toBe("DELETED");
  });

  it("answers AWS's shapes and errors", async () => {
    const { fake, call } = setup();
    await call(PARTNER, "CreatePartnerEventSource", { Name: NAME, Account: CUSTOMER.account });
    const again = await call(PARTNER, "CreatePartnerEventSource", { Name: NAME, Account: CUSTOMER.account });
    expect(again.json["__type"]).toBe("ResourceAlreadyExistsException");
    expect(
      (await call(PARTNER, "CreatePartnerEventSource", { Name: "aws.partner/x", Account: "1" })).json,
    ).toMatchObject({
      __type: "ValidationException",
    });
    expect((await call(PARTNER, "CreatePartnerEventSource", { Name: NAME })).json["__type"]).toBe(
      "ValidationException",
    );
    expect((await call(PARTNER, "DescribePartnerEventSource", { Name: NAME })).json).toEqual({
      Arn: `arn:aws:events:${REGION}::event-source/${NAME}`,
      Name: NAME,
    });
    // Mode deliver (the default) reads a never-created source as ACTIVE; mode drop is AWS.
    const legacy = await call(PARTNER, "ListPartnerEventSourceAccounts", { EventSourceName: `${NAME}-x` });
    expect(legacy.json["PartnerEventSourceAccounts"]).toEqual([
      expect.objectContaining({ Account: PARTNER.account, State: "ACTIVE" }),
    ]);
    fake.sources.unknownSources = "drop";
    const missing = await call(PARTNER, "ListPartnerEventSourceAccounts", { EventSourceName: `${NAME}-x` });
    expect(missing).toMatchObject({ status: 400, json: { __type: "ResourceNotFoundException" } });
    expect((await call(PARTNER, "ListPartnerEventSources", {})).json["__type"]).toBe("ValidationException");
    // Another partner sees none of it.
    expect((await call(OTHER_PARTNER, "DescribePartnerEventSource", { Name: NAME })).json["__type"]).toBe(
      "ResourceNotFoundException",
    );
    expect((await call(OTHER_PARTNER, "ListPartnerEventSources", { NamePrefix: "aws.partner/" })).json).toEqual({
      PartnerEventSources: [],
    });
    // Bus name must match the source; a customer of another account cannot see it.
    expect((await call(CUSTOMER, "CreateEventBus", { Name: "other", EventSourceName: NAME })).json["__type"]).toBe(
      "ValidationException",
    );
    expect((await call(OTHER_PARTNER, "CreateEventBus", { Name: NAME, EventSourceName: NAME })).json["__type"]).toBe(
      "ResourceNotFoundException",
    );
  });

  it("pages ListPartnerEventSources by NamePrefix with Limit and NextToken", async () => {
    const { call } = setup();
    for (let i = 0; i < 5; i++) {
      await call(PARTNER, "CreatePartnerEventSource", {
        Name: `aws.partner/example.com/c${i}/x`,
        Account: CUSTOMER.account,
      });
    }
    const names: string[] = [];
    let token: string | undefined;
    do {
      const r = await call(PARTNER, "ListPartnerEventSources", {
        NamePrefix: "aws.partner/example.com/",
        Limit: 2,
        ...(token ? { NextToken: token } : {}),
      });
      names.push(...(r.json["PartnerEventSources"] as { Name: string }[]).map((s) => s.Name));
      token = r.json["NextToken"] as string | undefined;
    } while (token);
    expect(names).toEqual([0, 1, 2, 3, 4].map((i) => `aws.partner/example.com/c${i}/x`));
    expect((await call(PARTNER, "ListPartnerEventSources", { NamePrefix: "a", NextToken: "bad" })).json["__type"]).toBe(
      "ValidationException",
    );
  });

  it("control-plane faults: throttle (optionally for one operation), then normal", async () => {
    const { fake, call } = setup();
    fake.sources.inject(
      { type: "throttle", operation: "ListPartnerEventSourceAccounts" },
      { type: "error", status: 500, code: "InternalException" },
    );
    const first = await call(PARTNER, "CreatePartnerEventSource", { Name: NAME, Account: CUSTOMER.account });
    expect(first).toMatchObject({ status: 500, json: { __type: "InternalException" } });
    expect((await call(PARTNER, "CreatePartnerEventSource", { Name: NAME, Account: CUSTOMER.account })).status).toBe(
      200,
    );
    const throttled = await call(PARTNER, "ListPartnerEventSourceAccounts", { EventSourceName: NAME });
    expect(throttled).toEqual({ status: 400, json: { __type: "ThrottlingException", message: "Rate exceeded" } });
    expect((await call(PARTNER, "ListPartnerEventSourceAccounts", { EventSourceName: NAME })).status).toBe(200);
  });

  it("unknown sources: delivered by default, dropped in mode drop; control routes and page", async () => {
    const { fake, put } = setup();
    await put("aws.partner/example.com/never/created");
    expect(fake.events).toHaveLength(1);
    const mode = await fake.fetch(
      new Request("http://x/_fake/sources/mode", { method: "PUT", body: JSON.stringify({ unknownSources: "drop" }) }),
    );
    expect(mode.status).toBe(204);
    await put("aws.partner/example.com/never/created");
    expect(fake.events).toHaveLength(1);
    const dropped = (await (await fake.fetch(new Request("http://x/_fake/dropped"))).json()) as { total: number };
    expect(dropped.total).toBe(1);
    const page = await (await fake.fetch(new Request("http://x/_fake"))).text();
    expect(page).toContain("Dropped events");
    expect(page).toContain("does not exist");
    const bad = await fake.fetch(
      new Request("http://x/_fake/sources/faults", { method: "POST", body: JSON.stringify({ type: "lost" }) }),
    );
    expect(bad.status).toBe(400);
    fake.reset();
    expect(fake.sources.dropped).toHaveLength(0);
  });
});
