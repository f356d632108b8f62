/**
 * The gate's RPC stays compatible across a deploy by additive changes only (protocol.ts,
 * docs/architecture.md). These call the object through the Worker's own client (gateFor) with
 * the inputs an older or a newer caller sends, and check what the object did with them.
 */
import { env, exports } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { validateBatch } from "../../src/entries/schema.ts";
import { buffering } from "../../src/ingest/pipeline.ts";
import { DEFAULT_MAX_BATCH_BYTES } from "../../src/limits.ts";
import { gateFor } from "../../src/tenant-gate/client.ts";
import { type AdmitInput, type EnqueueInput, GATE_PROTOCOL } from "../../src/tenant-gate/protocol.ts";
import { adminStatus, drain } from "../helpers/drain.ts";
import { entry, type SeededTenant, seedTenant } from "../helpers/tenants.ts";
import { installFakeUpstream } from "../helpers/upstream.ts";

/** Entries as the Worker validates them: the wire form and AWS's size, traceable by id. */
function wireEntries(t: SeededTenant, prefix: string, n: number) {
  const { slots } = validateBatch(
    { Entries: Array.from({ length: n }, (_, i) => entry(t, { id: `${prefix}-${i}` })) },
    DEFAULT_MAX_BATCH_BYTES,
  );
  return slots.map((s) => {
    if (!s.ok) throw new Error(s.message);
    return { entry: s.entry, bytes: s.bytes };
  });
}

function admitInput(t: SeededTenant): AdmitInput {
  return {
    v: GATE_PROTOCOL,
    tenantId: t.record.id,
    principal: { kind: "api-key", id: t.keyId },
    revision: t.record.revision,
    status: t.record.status,
    limits: t.record.limits,
    entries: 1,
    bytes: 100,
    idempotency: null,
  };
}

async function eventState(t: SeededTenant, relayEventId: string) {
  const res = await exports.default.fetch(`http://relay.test/v1/events/${relayEventId}`, {
    headers: { authorization: `Bearer ${t.apiKey}` },
  });
  expect(res.status).toBe(200);
  return (await res.json()) as { state: string; attempts: number; lastErrorCode?: string | null };
}

describe("a new object and a caller that predates a field", () => {
  it("enqueue without the retry metadata (attempts, lastCode, lastMessage, outcomeUnknown): fresh entries, delivered once", async () => {
    const t = await seedTenant();
    const fake = installFakeUpstream({ credentials: [t.aws] });
    // Only the fields every caller has always sent: each entry is just its wire form and size.
    const input: EnqueueInput = {
      v: GATE_PROTOCOL,
      tenantId: t.record.id,
      limits: t.record.limits,
      entries: wireEntries(t, "old", 3),
    };
    expect(input.entries.every((e) => Object.keys(e).sort().join() === "bytes,entry")).toBe(true);

    const out = await gateFor(env, t.record.id).enqueue(input);
    expect(out.kind).toBe("queued");
    if (out.kind !== "queued") return;
    expect(out.relayEventIds).toHaveLength(3);
    // The defaults: no attempt made yet, no last error.
    for (const id of out.relayEventIds) {
      expect(await eventState(t, id)).toMatchObject({ state: "queued", attempts: 0, lastErrorCode: null });
    }

    await drain(t.record.id);
    expect(fake.events.map((e) => (JSON.parse(e.entry.Detail!) as { id: string }).id).sort()).toEqual([
      "old-0",
      "old-1",
      "old-2",
    ]);
    for (const id of out.relayEventIds) {
      expect(await eventState(t, id)).toMatchObject({ state: "delivered", attempts: 1 });
    }
    // outcomeUnknown's default (false): nothing counted as a possible duplicate.
    expect(await adminStatus(t.record.id)).toMatchObject({
      accepted: 3,
      delivered: 3,
      queued: 0,
      duplicatesPossible: 0,
      lastUpstreamError: null,
    });
  });
});

describe("an object and a caller newer than it", () => {
  it("ignores input fields it does not know, at the top level and inside nested objects", async () => {
    const t = await seedTenant();
    installFakeUpstream({ credentials: [t.aws] });
    const input = {
      ...admitInput(t),
      shard: 3, // e.g. a field a later version adds
      limits: { ...t.record.limits, shards: 4 },
    };
    const out = await gateFor(env, t.record.id).admit(input as AdmitInput);
    expect(out).toMatchObject({ kind: "direct", revision: t.record.revision });
  });

  it("never refuses a call for its `v`: another value, or none, is served", async () => {
    const t = await seedTenant();
    installFakeUpstream({ credentials: [t.aws] });
    const gate = gateFor(env, t.record.id);
    const { v: _v, ...withoutV } = admitInput(t);
    expect(await gate.admit({ ...withoutV, v: 2 } as unknown as AdmitInput)).toMatchObject({ kind: "direct" });
    expect(await gate.admit(withoutV as AdmitInput)).toMatchObject({ kind: "direct" });
    const s = await gate.status({ ...withoutV, v: 99, principal: null } as unknown as Parameters<
      typeof gate.status
    >[0]);
    expect(s.kind).toBe("ok");
  });
});

describe("entries sent along with the admission (a shard that is buffering)", () => {
  const withQueue = (t: SeededTenant, prefix: string, n: number): AdmitInput => {
    const entries = wireEntries(t, prefix, n);
    return {
      ...admitInput(t),
      entries: n,
      bytes: entries.reduce((b, e) => b + e.bytes, 0),
      sources: [{ source: entries[0]!.entry.Source, entries: n, bytes: 0 }],
      queue: entries.map((e) => ({ ...e, attempts: 0, lastCode: null, lastMessage: null, outcomeUnknown: false })),
    };
  };

  it("over the rate: committed in the admit call itself (answer `queued` with their relay ids), delivered once", async () => {
    const t = await seedTenant({ rate: 1, burst: 1 });
    const fake = installFakeUpstream({ credentials: [t.aws] });
    const gate = gateFor(env, t.record.id);
    // Within the rate the entries are ignored: the Worker sends them itself.
    expect(await gate.admit(withQueue(t, "first", 2))).toMatchObject({ kind: "direct" });
    expect((await adminStatus(t.record.id)).queued).toBe(0);
    const out = await gate.admit(withQueue(t, "q", 3));
    expect(out.kind).toBe("queued");
    if (out.kind !== "queued") return;
    expect(out.relayEventIds).toHaveLength(3);
    for (const id of out.relayEventIds) expect(await eventState(t, id)).toMatchObject({ state: "queued" });
    expect(await adminStatus(t.record.id)).toMatchObject({ queued: 3, accepted: 3 });
    await drain(t.record.id);
    expect(fake.events.map((e) => (JSON.parse(e.entry.Detail!) as { id: string }).id).sort()).toEqual([
      "q-0",
      "q-1",
      "q-2",
    ]);
  });

  it("a buffer without room: `full`, nothing committed", async () => {
    const t = await seedTenant({ rate: 1, burst: 1, maxQueuedEntries: 2 });
    installFakeUpstream({ credentials: [t.aws] });
    const gate = gateFor(env, t.record.id);
    await gate.admit(withQueue(t, "first", 1)); // takes the one token
    expect(await gate.admit(withQueue(t, "big", 3))).toMatchObject({ kind: "full" });
    expect((await adminStatus(t.record.id)).queued).toBe(0);
  });

  it("through the Worker: a burst on one shard, every entry delivered once and none lost", async () => {
    const t = await seedTenant({ rate: 2, burst: 2 });
    const fake = installFakeUpstream({ credentials: [t.aws] });
    const ids: string[] = [];
    const queuedIds: string[] = [];
    for (let r = 0; r < 8; r++) {
      const body = { Entries: [0, 1].map((k) => entry(t, { id: `w-${r}-${k}` })) };
      ids.push(`w-${r}-0`, `w-${r}-1`);
      const res = await exports.default.fetch("http://relay.test/v1/events", {
        method: "POST",
        headers: { authorization: `Bearer ${t.apiKey}`, "content-type": "application/json" },
        body: JSON.stringify(body),
      });
      expect([200, 202]).toContain(res.status);
      const b = (await res.json()) as { Entries: { RelayEventId?: string }[] };
      for (const e of b.Entries) if (e.RelayEventId) queuedIds.push(e.RelayEventId);
    }
    expect(queuedIds.length).toBeGreaterThan(2);
    // This isolate saw the shard queue: its next requests' entries go along with their admission.
    expect(buffering.expects({ id: t.record.id, region: t.record.region, shard: 0 })).toBe(true);
    expect(new Set(queuedIds).size).toBe(queuedIds.length);
    await drain(t.record.id);
    expect(fake.events.map((e) => (JSON.parse(e.entry.Detail!) as { id: string }).id).sort()).toEqual(ids.sort());
    for (const id of queuedIds) expect(await eventState(t, id)).toMatchObject({ state: "delivered" });
  });
});
