/**
 * Partner event sources on a tenant with more than one shard (docs/sources.md "Shards"): shard 0
 * manages the sources (the source calls, the polling) and publishes every change of a managed
 * source's state through the control object to every shard, before the source call answers;
 * each shard gives the verdicts from its copy and carries each change out on the entries it
 * holds and queues itself. Requests go through the Worker; the upstream is the emulator, which
 * drops what a source that is not ACTIVE receives (as AWS).
 */

import { runDurableObjectAlarm, runInDurableObject } from "cloudflare:test";
import { exports } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import type { FakeCredential, FakeEventBridge } from "../../emulator/eventbridge.ts";
import type { SourceView } from "../../src/sources/manager.ts";
import { pickShard } from "../../src/tenant-gate/client.ts";
import { GATE_PROTOCOL, relayIdShard } from "../../src/tenant-gate/protocol.ts";
import { invalidateTenant } from "../../src/tenants/store.ts";
import { awsCall } from "../helpers/aws-call.ts";
import { admin, controlStub, drain, gateStub } from "../helpers/drain.ts";
import { type SeededTenant, seedTenant, updateTenant } from "../helpers/tenants.ts";
import { installFakeUpstream } from "../helpers/upstream.ts";

const CUSTOMER: FakeCredential = {
  accessKeyId: "AKIDCUSTOMER00000002",
  secretAccessKey: "customer-secret-for-tests-0002",
  account: "222222222222",
};

type Answer = { EventId?: string | null; RelayEventId?: string; ErrorCode?: string; ErrorMessage?: string };
type Batch = { FailedEntryCount: number; QueuedEntryCount?: number; Entries: Answer[] };

function sourceName(t: SeededTenant, name = "orders"): string {
  return `aws.partner/example.com/${t.record.id}/${name}`;
}

function relay(t: SeededTenant, path: string, init: RequestInit = {}): Promise<Response> {
  return exports.default.fetch(`http://relay.test${path}`, {
    ...init,
    headers: { authorization: `Bearer ${t.apiKey}`, "content-type": "application/json", ...(init.headers ?? {}) },
  });
}

function createSource(t: SeededTenant, name: string): Promise<Response> {
  return relay(t, "/v1/sources", { method: "POST", body: JSON.stringify({ Name: name, Account: CUSTOMER.account }) });
}

function putShards(t: SeededTenant, shards: number): Promise<Response> {
  return admin(`/admin/v1/tenants/${t.record.id}/shards`, { method: "PUT", body: JSON.stringify({ shards }) });
}

/** An Idempotency-Key the Worker routes to `shard` of `shards` (client.ts, pickShard). */
function keyFor(shards: number, shard: number, tag: string): string {
  for (let i = 0; ; i++) if (pickShard(shards, `${tag}-${i}`) === shard) return `${tag}-${i}`;
}

/** One entry for `source`, to the shard the key routes to. */
async function post(t: SeededTenant, source: string, id: string, key: string): Promise<Response> {
  return relay(t, "/v1/events", {
    method: "POST",
    headers: { "idempotency-key": key },
    body: JSON.stringify({ Entries: [{ Source: source, DetailType: "Order", Detail: JSON.stringify({ id }) }] }),
  });
}

/** Posts one entry to each of the tenant's shards; returns their answers by shard. */
async function postEveryShard(t: SeededTenant, source: string, shards: number, tag: string): Promise<Batch[]> {
  const out: Batch[] = [];
  for (let s = 0; s < shards; s++) {
    const res = await post(t, source, `${tag}-${s}`, keyFor(shards, s, tag));
    expect(res.status).toBeLessThan(300);
    out.push((await res.json()) as Batch);
  }
  return out;
}

function refresh(t: SeededTenant, name: string): Promise<Response> {
  return admin(`/admin/v1/tenants/${t.record.id}/sources/refresh`, {
    method: "POST",
    body: JSON.stringify({ Name: name }),
  });
}

/** Makes the source due for a read now on shard 0 and runs its alarm (which reads the table). */
async function pollNow(t: SeededTenant, name: string): Promise<void> {
  const stub = gateStub(t.record.id, 0);
  await runInDurableObject(stub, (_i, state) => {
    state.storage.sql.exec("UPDATE sources SET next_check_at = 0 WHERE name = ?", name);
  });
  await runDurableObjectAlarm(stub);
}

function delivered(fake: FakeEventBridge): string[] {
  return fake.events.map((e) => (JSON.parse(e.entry.Detail!) as { id: string }).id).sort();
}

async function setup(shards: number) {
  const t = await seedTenant({ shards });
  const fake = installFakeUpstream({ credentials: [t.aws, CUSTOMER] });
  fake.sources.unknownSources = "drop"; // as AWS: a source nobody created delivers nothing
  return { t, fake };
}

describe("managed sources on a tenant with 3 shards", () => {
  it("PENDING: every shard holds its entries, nothing sent; ACTIVE: every shard releases them, each delivered once", async () => {
    const { t, fake } = await setup(3);
    const name = sourceName(t);
    const created = await createSource(t, name);
    expect(created.status).toBe(201);
    expect(await created.json()).toMatchObject({ state: "PENDING", managed: true });

    const held = await postEveryShard(t, name, 3, "a");
    for (const [s, b] of held.entries()) {
      expect(b).toMatchObject({ FailedEntryCount: 0, QueuedEntryCount: 1 });
      const id = b.Entries[0]!.RelayEventId!;
      expect(relayIdShard(id)).toBe(s); // held by the shard that took it
      expect(await (await relay(t, `/v1/events/${id}`)).json()).toMatchObject({ state: "held", source: name });
    }
    expect(fake.events).toHaveLength(0);
    expect(fake.sources.dropped).toHaveLength(0);
    // The source's view counts what every shard holds (partner and admin API).
    const view = (await (await relay(t, `/v1/sources/${encodeURIComponent(name)}`)).json()) as SourceView;
    expect(view.held.entries).toBe(3);
    const listed = (await (await admin(`/admin/v1/tenants/${t.record.id}/sources`)).json()) as {
      sources: SourceView[];
    };
    expect(listed.sources[0]!.held.entries).toBe(3);

    await awsCall(fake, CUSTOMER, "CreateEventBus", { Name: name, EventSourceName: name });
    expect((await refresh(t, name)).status).toBe(200); // shard 0 reads ACTIVE and tells every shard
    await drain(t.record.id);
    expect(delivered(fake)).toEqual(["a-0", "a-1", "a-2"]);
    expect(fake.sources.dropped).toHaveLength(0);
    for (const b of held)
      expect(await (await relay(t, `/v1/events/${b.Entries[0]!.RelayEventId}`)).json()).toMatchObject({
        state: "delivered",
      });

    // Sent directly on every shard now.
    const direct = await postEveryShard(t, name, 3, "b");
    for (const b of direct) expect(b.Entries[0]!.EventId).toBeTruthy();
    expect(delivered(fake)).toEqual(["a-0", "a-1", "a-2", "b-0", "b-1", "b-2"]);
  });

  it("ACTIVE → the customer deletes the bus → shard 0's poll reads PENDING → every shard holds again; re-activated → delivered", async () => {
    const { t, fake } = await setup(3);
    const name = sourceName(t);
    await createSource(t, name);
    await awsCall(fake, CUSTOMER, "CreateEventBus", { Name: name, EventSourceName: name });
    await refresh(t, name);
    await awsCall(fake, CUSTOMER, "DeleteEventBus", { Name: name });
    await pollNow(t, name);

    const held = await postEveryShard(t, name, 3, "c");
    for (const b of held) expect(b).toMatchObject({ QueuedEntryCount: 1 });
    expect(fake.events).toHaveLength(0);
    expect(fake.sources.dropped).toHaveLength(0);

    await awsCall(fake, CUSTOMER, "ActivateEventSource", { Name: name });
    await pollNow(t, name);
    await drain(t.record.id);
    expect(delivered(fake)).toEqual(["c-0", "c-1", "c-2"]);
    expect(fake.sources.dropped).toHaveLength(0);
  });

  it("deleted through the relay: every shard dead-letters what it held (EventSourceDeleted) and refuses new entries", async () => {
    const { t, fake } = await setup(3);
    const name = sourceName(t);
    await createSource(t, name);
    const held = await postEveryShard(t, name, 3, "d");
    const del = await relay(t, `/v1/sources/${encodeURIComponent(name)}`, { method: "DELETE" });
    expect(del.status).toBe(200);
    expect(await del.json()).toMatchObject({ state: "DELETED" });

    const dead = (await (await admin(`/admin/v1/tenants/${t.record.id}/dead-letters`)).json()) as {
      items: { relayEventId: string; errorCode: string }[];
    };
    expect(dead.items.map((d) => [d.relayEventId, d.errorCode]).sort()).toEqual(
      held.map((b) => [b.Entries[0]!.RelayEventId, "EventSourceDeleted"]).sort(),
    );
    const refused = await postEveryShard(t, name, 3, "e");
    for (const b of refused)
      expect(b).toMatchObject({ FailedEntryCount: 1, Entries: [{ ErrorCode: "EventSourceDeleted" }] });
    expect(fake.events).toHaveLength(0);
    expect(fake.sources.dropped).toHaveLength(0);
  });

  it("a tenant grown from 1 to 3 shards with a PENDING source: the new shards hold from their first request", async () => {
    const { t, fake } = await setup(1);
    const name = sourceName(t);
    expect((await createSource(t, name)).status).toBe(201);
    expect((await putShards(t, 3)).status).toBe(200);
    t.record = await updateTenant(t, { limits: { ...t.record.limits, shards: 3 } });
    invalidateTenant(t.record.id); // this isolate reads the new record now, not in 30 s

    const held = await postEveryShard(t, name, 3, "f");
    for (const [s, b] of held.entries()) {
      expect(b).toMatchObject({ QueuedEntryCount: 1 });
      expect(relayIdShard(b.Entries[0]!.RelayEventId!)).toBe(s);
    }
    expect(fake.events).toHaveLength(0);
    expect(fake.sources.dropped).toHaveLength(0);

    await awsCall(fake, CUSTOMER, "CreateEventBus", { Name: name, EventSourceName: name });
    await refresh(t, name);
    await drain(t.record.id);
    expect(delivered(fake)).toEqual(["f-0", "f-1", "f-2"]);
  });

  it("a change shard 0 committed but could not publish (a crash in between) goes out from its next alarm", async () => {
    const { t, fake } = await setup(3);
    const name = sourceName(t);
    await createSource(t, name);
    const held = [1, 2].map(async (s) => (await (await post(t, name, `g-${s}`, keyFor(3, s, "g"))).json()) as Batch);
    const answers = await Promise.all(held);
    await awsCall(fake, CUSTOMER, "CreateEventBus", { Name: name, EventSourceName: name });
    // Shard 0 read ACTIVE and committed it, then died before telling the control object: the
    // record and a new version are in its storage, the control object has the old state.
    await runInDurableObject(gateStub(t.record.id, 0), (_i, state) => {
      state.storage.sql.exec("UPDATE sources SET state = 'ACTIVE', next_check_at = NULL WHERE name = ?", name);
      state.storage.sql.exec(
        "INSERT INTO meta (k, v) VALUES ('sources_version', ?) ON CONFLICT (k) DO UPDATE SET v = excluded.v",
        String(Date.now() + 1_000),
      );
    });
    // Shards 1 and 2 still hold: their copy says PENDING.
    for (const b of answers) {
      const id = b.Entries[0]!.RelayEventId!;
      expect(await (await relay(t, `/v1/events/${id}`)).json()).toMatchObject({ state: "held" });
    }
    await runDurableObjectAlarm(gateStub(t.record.id, 0)); // publishes what it had not
    await drain(t.record.id);
    expect(delivered(fake)).toEqual(["g-1", "g-2"]);
    expect(fake.sources.dropped).toHaveLength(0);
  });

  it("the control object keeps the newest sources state: an older one arriving late changes nothing on any shard", async () => {
    const { t, fake } = await setup(3);
    const name = sourceName(t);
    await createSource(t, name);
    await awsCall(fake, CUSTOMER, "CreateEventBus", { Name: name, EventSourceName: name });
    await refresh(t, name); // ACTIVE everywhere
    const stale = {
      version: 1, // older than any shard 0 issues (epoch-ms based)
      sources: [
        {
          name,
          account: CUSTOMER.account,
          state: "PENDING",
          unverifiable: null,
          arn: null,
          creationTime: null,
          expirationTime: null,
          lastError: null,
        },
      ],
    };
    const control = controlStub(t.record.id) as unknown as {
      setState(i: unknown): Promise<{ kind: string }>;
    };
    const out = await control.setState({
      v: GATE_PROTOCOL,
      tenantId: t.record.id,
      kind: "sources",
      body: stale,
      version: 1,
    });
    expect(out.kind).toBe("ok");
    const stored = await runInDurableObject(controlStub(t.record.id), (_i, state) =>
      state.storage.sql.exec<{ body: string }>("SELECT body FROM states WHERE kind = 'sources'").one(),
    );
    expect(JSON.parse(stored.body)).toMatchObject({ sources: [{ name, state: "ACTIVE" }] });
    expect(JSON.parse(stored.body).version).toBeGreaterThan(1);
    const direct = await postEveryShard(t, name, 3, "h");
    for (const b of direct) expect(b.Entries[0]!.EventId).toBeTruthy();
    expect(delivered(fake)).toEqual(["h-0", "h-1", "h-2"]);
  });
});

describe("unmanaged sources on a tenant with 3 shards", () => {
  it("each shard verifies on first use: entries are forwarded on every shard", async () => {
    const t = await seedTenant({ shards: 3 });
    const fake = installFakeUpstream({ credentials: [t.aws, CUSTOMER] });
    const source = sourceName(t, "unmanaged");
    for (let i = 0; i < 6; i++) {
      const res = await relay(t, "/v1/events", {
        method: "POST",
        headers: { "idempotency-key": `key-${i}` },
        body: JSON.stringify({ Entries: [{ Source: source, DetailType: "Order", Detail: JSON.stringify({ i }) }] }),
      });
      expect(res.status).toBe(200);
    }
    expect(fake.events).toHaveLength(6);
  });

  it("a PENDING unmanaged source: each shard reads it, then holds its own entries under ids that name it", async () => {
    const t = await seedTenant({ shards: 3 });
    const fake = installFakeUpstream({ credentials: [t.aws, CUSTOMER] });
    fake.sources.unknownSources = "drop";
    const source = sourceName(t, "pending");
    // Created outside the relay (the partner's own tooling): PENDING until the customer acts.
    await awsCall(fake, t.aws as FakeCredential, "CreatePartnerEventSource", {
      Name: source,
      Account: CUSTOMER.account,
    });
    const send = (key: string) =>
      relay(t, "/v1/events", {
        method: "POST",
        headers: { "idempotency-key": key },
        body: JSON.stringify({ Entries: [{ Source: source, DetailType: "Order", Detail: "{}" }] }),
      });
    for (let i = 0; i < 12; i++) expect((await send(`first-${i}`)).status).toBe(200); // first use: forwarded
    for (const shard of [0, 1, 2]) await runDurableObjectAlarm(gateStub(t.record.id, shard)); // each reads PENDING
    const heldOn = new Set<number>();
    for (let i = 0; i < 12; i++) {
      const res = await send(`then-${i}`);
      expect(res.status).toBe(202);
      const id = ((await res.json()) as { Entries: { RelayEventId: string }[] }).Entries[0]!.RelayEventId;
      heldOn.add(relayIdShard(id)!);
      expect(await (await relay(t, `/v1/events/${id}`)).json()).toMatchObject({ state: "held" });
    }
    expect(heldOn.size).toBeGreaterThan(1); // held on more than shard 0, each answering for its own
  });
});
