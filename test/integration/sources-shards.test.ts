/**
 * Partner event sources on a tenant with more than one shard (docs/sources.md): managed sources
 * live on shard 0 until their states are fanned out to every shard, so a tenant may not have
 * both. Creating or importing sources on a tenant with more shards, and more shards for a tenant
 * with managed sources, are 409 sources_need_one_shard; the unmanaged policy works per shard.
 * Requests go through the Worker; the upstream is the emulator.
 */

import { runDurableObjectAlarm } from "cloudflare:test";
import { exports } from "cloudflare:workers";
import { AwsClient } from "aws4fetch";
import { describe, expect, it } from "vitest";
import type { FakeCredential } from "../../emulator/eventbridge.ts";
import { relayIdShard } from "../../src/tenant-gate/protocol.ts";
import { admin, gateStub } from "../helpers/drain.ts";
import { expectProblem } from "../helpers/http.ts";
import { type SeededTenant, seedTenant, UPSTREAM } from "../helpers/tenants.ts";
import { installFakeUpstream } from "../helpers/upstream.ts";

const CUSTOMER: FakeCredential = {
  accessKeyId: "AKIDCUSTOMER00000002",
  secretAccessKey: "customer-secret-for-tests-0002",
  account: "222222222222",
};

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

describe("managed sources need a one-shard tenant", () => {
  it("source create (partner and admin API) and import on a tenant with 3 shards: 409 sources_need_one_shard, nothing created", async () => {
    const t = await seedTenant({ shards: 3 });
    const fake = installFakeUpstream({ credentials: [t.aws, CUSTOMER] });
    const name = sourceName(t);
    const p = await expectProblem(await createSource(t, name), 409, "sources_need_one_shard");
    expect(p.detail).toContain("3 shards");
    await expectProblem(
      await admin(`/admin/v1/tenants/${t.record.id}/sources`, {
        method: "POST",
        body: JSON.stringify({ Name: name, Account: CUSTOMER.account }),
      }),
      409,
      "sources_need_one_shard",
    );
    await expectProblem(
      await admin(`/admin/v1/tenants/${t.record.id}/sources/import`, { method: "POST", body: "{}" }),
      409,
      "sources_need_one_shard",
    );
    expect(fake.sources.list()).toHaveLength(0);
    const list = await relay(t, "/v1/sources");
    expect(await list.json()).toMatchObject({ sources: [] });
  });

  it("the shard's own directory refuses too: 3 shards set on the control object before the record says so", async () => {
    const t = await seedTenant();
    const fake = installFakeUpstream({ credentials: [t.aws, CUSTOMER] });
    expect((await putShards(t, 3)).status).toBe(200); // no managed sources: allowed
    await expectProblem(await createSource(t, sourceName(t)), 409, "sources_need_one_shard");
    expect(fake.sources.list()).toHaveLength(0);
    expect((await putShards(t, 1)).status).toBe(200);
    expect((await createSource(t, sourceName(t))).status).toBe(201);
  });

  it("PUT /admin/v1/tenants/:id/shards above 1 for a tenant with a managed source: 409, the shards unchanged", async () => {
    const t = await seedTenant();
    installFakeUpstream({ credentials: [t.aws, CUSTOMER] });
    const name = sourceName(t);
    expect((await createSource(t, name)).status).toBe(201);
    const p = await expectProblem(await putShards(t, 2), 409, "sources_need_one_shard");
    expect(p.detail).toContain(name);
    const status = await admin(`/admin/v1/tenants/${t.record.id}/status`);
    const body = (await status.json()) as { shards: { shard: number }[] };
    expect(body.shards.map((s) => s.shard)).toEqual([0]);
    expect((await putShards(t, 1)).status).toBe(200); // one shard stays allowed
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
    const aws = new AwsClient({ ...t.aws, region: "us-east-1", service: "events", retries: 0 });
    const made = await fake.fetch(
      await aws.sign(`${UPSTREAM}/`, {
        method: "POST",
        headers: { "content-type": "application/x-amz-json-1.1", "x-amz-target": "AWSEvents.CreatePartnerEventSource" },
        body: JSON.stringify({ Name: source, Account: CUSTOMER.account }),
      }),
    );
    expect(made.status).toBe(200);
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
