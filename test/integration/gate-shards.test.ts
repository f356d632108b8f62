/**
 * A tenant spread over several gate shards (docs/scaling.md): a burst far above the rate, the
 * access authority fanned out by the control object (revoke, disable, delete on every shard; a
 * shard failing midway), changing N with a backlog, and event lookup and dead-letter replay
 * across shards. Requests go through the Worker; the upstream is the emulator, checking signatures.
 */
import { evictDurableObject, runDurableObjectAlarm, runInDurableObject } from "cloudflare:test";
import { exports } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import type { FakeEventBridge } from "../../emulator/eventbridge.ts";
import { pickShard } from "../../src/tenant-gate/client.ts";
import { relayIdShard } from "../../src/tenant-gate/protocol.ts";
import { clearTenantCaches } from "../../src/tenants/store.ts";
import { admin, adminStatus, controlStub, drain, gateStub } from "../helpers/drain.ts";
import { entry, type SeededTenant, seedTenant, updateTenant } from "../helpers/tenants.ts";
import { installFakeUpstream } from "../helpers/upstream.ts";

type Answer = { EventId?: string | null; RelayEventId?: string; ErrorCode?: string };
type Batch = { FailedEntryCount: number; QueuedEntryCount?: number; Entries: Answer[] };

function post(t: SeededTenant, entries: unknown[], headers: Record<string, string> = {}): Promise<Response> {
  return exports.default.fetch("http://relay.test/v1/events", {
    method: "POST",
    headers: { authorization: `Bearer ${t.apiKey}`, "content-type": "application/json", ...headers },
    body: JSON.stringify({ Entries: entries }),
  });
}

/** An Idempotency-Key that routes to shard `shard` of `n` (the Worker hashes the key to pick one). */
function keyOn(n: number, shard: number, salt: string): string {
  for (let i = 0; ; i++) if (pickShard(n, `${salt}/${i}`) === shard) return `${salt}/${i}`;
}

/** One such key per shard. */
function keysPerShard(n: number, salt: string): string[] {
  return Array.from({ length: n }, (_, s) => keyOn(n, s, salt));
}

function tagged(t: SeededTenant, prefix: string, n: number) {
  return Array.from({ length: n }, (_, i) => entry(t, { id: `${prefix}-${i}` }));
}

function upstreamIds(fake: FakeEventBridge): string[] {
  return fake.events.map((e) => (JSON.parse(e.entry.Detail!) as { id: string }).id);
}

function putAccess(t: SeededTenant, body: Record<string, unknown>): Promise<Response> {
  return admin(`/admin/v1/tenants/${t.record.id}/access`, { method: "PUT", body: JSON.stringify(body) });
}

describe("a burst against a tenant with 4 shards", () => {
  it("answers only 200/202/429, delivers every accepted entry once in full batches, within the tenant's rate in total", async () => {
    const t = await seedTenant({ rate: 40, burst: 4, maxQueuedEntries: 800, shards: 4 });
    const fake = installFakeUpstream({ credentials: [t.aws] });
    const accepted: string[] = [];
    const statuses: number[] = [];
    const shardsSeen = new Set<number>();
    for (let k = 0; k < 120; k++) {
      const res = await post(t, tagged(t, `b${k}`, 10));
      statuses.push(res.status);
      expect([200, 202, 429]).toContain(res.status);
      if (res.status === 429) continue;
      const body = (await res.json()) as Batch;
      body.Entries.forEach((a, i) => {
        expect(a.EventId ?? a.RelayEventId).toBeTruthy();
        if (a.RelayEventId) shardsSeen.add(relayIdShard(a.RelayEventId)!);
        accepted.push(`b${k}-${i}`);
      });
    }
    expect(statuses.filter((s) => s === 202).length).toBeGreaterThan(40);
    expect(statuses).toContain(429); // 800 entries over 4 shards: 200 each, then full
    expect([...shardsSeen].sort()).toEqual([0, 1, 2, 3]); // the load spread over every shard

    const s = await adminStatus(t.record.id);
    expect(s.shards.map((x) => x.shard)).toEqual([0, 1, 2, 3]);
    expect(s.shards.every((x) => x.queued > 0)).toBe(true);

    const firstDrained = fake.calls.length;
    await drain(t.record.id);
    const ids = upstreamIds(fake);
    expect(new Set(ids).size).toBe(ids.length); // exactly once
    expect(ids.sort()).toEqual(accepted.sort());

    // Batches stay full: every shard packs 20 entries per call while its backlog allows (its last may be partial).
    const drained = fake.calls.slice(firstDrained).filter((c) => c.outcome === "accepted");
    const full = drained.filter((c) => c.entryCount === 20).length;
    expect(full).toBeGreaterThanOrEqual(drained.length - 4);

    // The sum of the shards' rates is the tenant's: n calls beyond the 4 shards' bursts (1 each)
    // take at least (n - 4) / 40 s, however the shards interleave.
    const span = drained[drained.length - 1]!.at - drained[0]!.at;
    expect(span).toBeGreaterThanOrEqual(((drained.length - 1 - 4) / 40) * 1000);

    const after = await adminStatus(t.record.id);
    expect(after).toMatchObject({ queued: 0, failed: 0 });
    expect(after.delivered).toBe(accepted.length);
  });
});

describe("the access authority, fanned out to every shard", () => {
  it("refuses a revoked key, a disabled tenant and a deleted one on the next request on every shard", async () => {
    const t = await seedTenant({ shards: 4 });
    installFakeUpstream({ credentials: [t.aws] });
    const keys = keysPerShard(4, "acc");
    for (const k of keysPerShard(4, "acc-ok"))
      expect((await post(t, [entry(t)], { "idempotency-key": k })).status).toBe(200);

    // Disable: every shard refuses (403), whatever shard the request lands on.
    expect((await putAccess(t, { revision: 5, status: "disabled" })).status).toBe(200);
    for (const k of keys) expect((await post(t, [entry(t)], { "idempotency-key": k })).status).toBe(403);
    expect((await putAccess(t, { revision: 6, status: "active" })).status).toBe(200);
    for (const k of keysPerShard(4, "acc-on"))
      expect((await post(t, [entry(t)], { "idempotency-key": k })).status).toBe(200);

    // Revoke: the key is refused (401) on every shard while KV still lists it.
    expect((await putAccess(t, { revision: 7, status: "active", revokeApiKeyIds: [t.keyId] })).status).toBe(200);
    for (const k of keysPerShard(4, "acc-rv"))
      expect((await post(t, [entry(t)], { "idempotency-key": k })).status).toBe(401);
    // And without a key (random shard), and on the partner's reads.
    for (let i = 0; i < 8; i++) expect((await post(t, [entry(t)])).status).toBe(401);
    const st = await exports.default.fetch("http://relay.test/v1/status", {
      headers: { authorization: `Bearer ${t.apiKey}` },
    });
    expect(st.status).toBe(401);
  });

  it("delete: every shard purged, a tombstone (disabled, keys revoked) left on each", async () => {
    const t = await seedTenant({ shards: 3, rate: 1, burst: 3 });
    installFakeUpstream({ credentials: [t.aws] });
    for (let s = 0; s < 3; s++) {
      // The first request per shard takes its one token; the second is queued there.
      for (const r of [0, 1]) await post(t, tagged(t, `${s}-${r}`, 2), { "idempotency-key": keyOn(3, s, `del-${r}`) });
    }
    expect((await adminStatus(t.record.id)).queued).toBeGreaterThan(0);
    // The CLI's order (docs/admin.md): access first, then (KV) the purge, then access again.
    expect((await putAccess(t, { revision: 9, status: "disabled", revokeApiKeyIds: [t.keyId] })).status).toBe(200);
    const refused = await admin(`/admin/v1/tenants/${t.record.id}`, { method: "DELETE" });
    expect(refused.status).toBe(409); // events queued on some shard
    const purged = await admin(`/admin/v1/tenants/${t.record.id}?force=true`, { method: "DELETE" });
    expect(purged.status).toBe(200);
    const s = await adminStatus(t.record.id);
    expect(s.queued).toBe(0);
    for (const k of keysPerShard(3, "del-x"))
      expect((await post(t, [entry(t)], { "idempotency-key": k })).status).toBe(401);
  });

  it("a shard failing midway: the command reports 503, the others already refuse, the alarm or a re-run finishes it", async () => {
    const t = await seedTenant({ shards: 4 });
    installFakeUpstream({ credentials: [t.aws] });
    const keys = keysPerShard(4, "crash");
    for (const k of keys) expect((await post(t, [entry(t)], { "idempotency-key": k })).status).toBe(200);
    // Shard 2 cannot take the change (its revoked table is gone: the write fails, nothing changes there).
    await runInDurableObject(gateStub(t.record.id, 2), (_o, state: DurableObjectState) => {
      state.storage.sql.exec("ALTER TABLE revoked RENAME TO revoked_broken");
    });
    const res = await putAccess(t, { revision: 3, status: "active", revokeApiKeyIds: [t.keyId] });
    expect(res.status).toBe(503);
    const problem = (await res.json()) as { code: string; pendingShards: number[] };
    expect(problem).toMatchObject({ code: "fan_out_incomplete", pendingShards: [2] });
    // The shards that acked refuse at once.
    for (const s of [0, 1, 3])
      expect((await post(t, [entry(t)], { "idempotency-key": keyOn(4, s, "crash-a") })).status).toBe(401);

    // Repaired: the control object's alarm delivers what its outbox still holds.
    await runInDurableObject(gateStub(t.record.id, 2), (_o, state: DurableObjectState) => {
      state.storage.sql.exec("ALTER TABLE revoked_broken RENAME TO revoked");
    });
    for (let i = 0; i < 50; i++) {
      await runDurableObjectAlarm(controlStub(t.record.id));
      const pending = await runInDurableObject(
        controlStub(t.record.id),
        (_o, state: DurableObjectState) =>
          state.storage.sql.exec<{ n: number }>("SELECT COUNT(*) AS n FROM outbox").one().n,
      );
      if (pending === 0) break;
      await new Promise((r) => setTimeout(r, 100)); // the outbox row's retry comes due (1 s backoff)
    }
    expect((await post(t, [entry(t)], { "idempotency-key": keyOn(4, 2, "crash-b") })).status).toBe(401);
    // Re-running the command is harmless and reports success.
    expect((await putAccess(t, { revision: 3, status: "active", revokeApiKeyIds: [t.keyId] })).status).toBe(200);
  });

  it("a re-run alone finishes the job after a failed fan-out", async () => {
    const t = await seedTenant({ shards: 2 });
    installFakeUpstream({ credentials: [t.aws] });
    const keys = keysPerShard(2, "rerun");
    await runInDurableObject(gateStub(t.record.id, 1), (_o, state: DurableObjectState) => {
      state.storage.sql.exec("ALTER TABLE revoked RENAME TO revoked_broken");
    });
    expect((await putAccess(t, { revision: 3, status: "active", revokeApiKeyIds: [t.keyId] })).status).toBe(503);
    await runInDurableObject(gateStub(t.record.id, 1), (_o, state: DurableObjectState) => {
      state.storage.sql.exec("ALTER TABLE revoked_broken RENAME TO revoked");
    });
    expect((await putAccess(t, { revision: 3, status: "active", revokeApiKeyIds: [t.keyId] })).status).toBe(200);
    for (const k of keys) expect((await post(t, [entry(t)], { "idempotency-key": k })).status).toBe(401);
  });
});

describe("changing the number of shards", () => {
  it("4 → 2 with a backlog: old shards drain what they hold and count as senders until empty; nothing is stranded", async () => {
    const t = await seedTenant({ shards: 4, rate: 4, burst: 4 });
    const fake = installFakeUpstream({ credentials: [t.aws] });
    const accepted: string[] = [];
    for (let s = 0; s < 4; s++) {
      const k = `s${s}`;
      for (let r = 0; r < 3; r++) {
        const res = await post(t, tagged(t, `${k}-${r}`, 5), { "idempotency-key": keyOn(4, s, `resize-${r}`) });
        expect([200, 202]).toContain(res.status);
        ((await res.json()) as Batch).Entries.forEach((_a, i) => accepted.push(`${k}-${r}-${i}`));
      }
      expect((await adminStatus(t.record.id)).shards[s]!.queued).toBeGreaterThan(0);
    }
    // The CLI's order: the directory first (seeds new shards, keeps senders), then the record.
    const resized = await admin(`/admin/v1/tenants/${t.record.id}/shards`, {
      method: "PUT",
      body: JSON.stringify({ shards: 2 }),
    });
    expect(resized.status).toBe(200);
    expect(await resized.json()).toEqual({ shards: 2, senders: 4, known: 4 });
    await updateTenant(t, { limits: { ...t.record.limits, shards: 2 } });
    clearTenantCaches(); // as once the new record reached this isolate (KV ~60 s + cache 30 s)
    for (let r = 0; r < 4; r++) {
      const res = await post(t, tagged(t, `after-${r}`, 5));
      expect([200, 202]).toContain(res.status);
      const body = (await res.json()) as Batch;
      body.Entries.forEach((a, i) => {
        if (a.RelayEventId) expect(relayIdShard(a.RelayEventId)).toBeLessThan(2); // only routed shards take new work
        accepted.push(`after-${r}-${i}`);
      });
    }
    const s = await adminStatus(t.record.id);
    expect(s.shards.map((x) => x.routed)).toEqual([true, true, false, false]);
    expect(s.shards[2]!.queued + s.shards[3]!.queued).toBeGreaterThan(0);

    await drain(t.record.id);
    const ids = upstreamIds(fake);
    expect(new Set(ids).size).toBe(ids.length);
    expect(ids.sort()).toEqual(accepted.sort());

    // Once the retired shards are empty, and past the grace for Workers still routing by the old
    // record (backdated here), the control object's alarm stops counting them as senders.
    await runInDurableObject(controlStub(t.record.id), (_o, state: DurableObjectState) => {
      state.storage.sql.exec("UPDATE shards SET retired_at = retired_at - 600000");
    });
    await runDurableObjectAlarm(controlStub(t.record.id));
    const again = await admin(`/admin/v1/tenants/${t.record.id}/shards`, {
      method: "PUT",
      body: JSON.stringify({ shards: 2 }),
    });
    expect(await again.json()).toEqual({ shards: 2, senders: 2, known: 4 });
  });

  it("1 → 3: new shards are seeded with the access state before any request reaches them", async () => {
    const t = await seedTenant({ shards: 1 });
    installFakeUpstream({ credentials: [t.aws] });
    // A revocation from before the control object existed lives in shard 0 only ...
    await runInDurableObject(gateStub(t.record.id, 0), async (o: unknown) => {
      await (o as { setAccess(i: unknown): Promise<unknown> }).setAccess({
        v: 1,
        tenantId: t.record.id,
        revision: 2,
        status: "active",
        revokeApiKeyIds: [t.keyId],
        revokeAccessKeyIds: [],
      });
    });
    // ... and reaches the new shards when the tenant grows.
    const res = await admin(`/admin/v1/tenants/${t.record.id}/shards`, {
      method: "PUT",
      body: JSON.stringify({ shards: 3 }),
    });
    expect(res.status).toBe(200);
    await updateTenant(t, { limits: { ...t.record.limits, shards: 3 } });
    for (const k of keysPerShard(3, "grow"))
      expect((await post(t, [entry(t)], { "idempotency-key": k })).status).toBe(401);
  });
});

describe("reads across shards", () => {
  it("GET /v1/events/{id}, dead-letter pages and replay find entries on every shard", async () => {
    const t = await seedTenant({ shards: 3, rate: 1, burst: 3 });
    const fake = installFakeUpstream({ credentials: [t.aws] });
    const relayIds: string[] = [];
    for (let s = 0; s < 3; s++) {
      const k = `s${s}`;
      // The first request per shard takes its one token; the second is queued there.
      await post(t, [entry(t, { id: `${k}-direct` })], { "idempotency-key": keyOn(3, s, "dl-d") });
      const res = await post(t, tagged(t, k, 2), { "idempotency-key": keyOn(3, s, "dl-q") });
      expect(res.status).toBe(202);
      relayIds.push(...((await res.json()) as Batch).Entries.map((e) => e.RelayEventId!));
    }
    expect(new Set(relayIds.map((id) => relayIdShard(id)))).toEqual(new Set([0, 1, 2]));
    // Every drained entry fails permanently: 6 dead letters, 2 per shard.
    for (let i = 0; i < 20; i++)
      fake.inject({ type: "entries", code: "AccessDeniedException", message: "no", indexes: "all" });
    await drain(t.record.id);
    for (const id of relayIds) {
      const st = await exports.default.fetch(`http://relay.test/v1/events/${id}`, {
        headers: { authorization: `Bearer ${t.apiKey}` },
      });
      expect(st.status).toBe(200);
      expect(await st.json()).toMatchObject({
        state: "failed",
        deadLettered: true,
        errorCode: "AccessDeniedException",
      });
    }
    // Pages of 4 walk every shard.
    const listed: string[] = [];
    let after: string | null = null;
    for (let page = 0; page < 5; page++) {
      const q: string = after ? `?limit=4&after=${after}` : "?limit=4";
      const res = await admin(`/admin/v1/tenants/${t.record.id}/dead-letters${q}`);
      expect(res.status).toBe(200);
      const body = (await res.json()) as { items: { relayEventId: string }[]; next: string | null };
      listed.push(...body.items.map((i) => i.relayEventId));
      after = body.next;
      if (after === null) break;
    }
    expect(listed.sort()).toEqual([...relayIds].sort());
    // Replay by id on their own shards, then all.
    const one = await admin(`/admin/v1/tenants/${t.record.id}/dead-letters/replay`, {
      method: "POST",
      body: JSON.stringify({ relayEventIds: [relayIds[0], relayIds[5]] }),
    });
    expect(await one.json()).toEqual({ replayed: 2, notFound: [] });
    const rest = await admin(`/admin/v1/tenants/${t.record.id}/dead-letters/replay`, {
      method: "POST",
      body: JSON.stringify({ all: true }),
    });
    expect(await rest.json()).toEqual({ replayed: 4, notFound: [] });
    fake.reset();
    await drain(t.record.id);
    for (const id of relayIds) {
      const st = await exports.default.fetch(`http://relay.test/v1/events/${id}`, {
        headers: { authorization: `Bearer ${t.apiKey}` },
      });
      expect(await st.json()).toMatchObject({ state: "delivered" });
    }
    const s = await adminStatus(t.record.id);
    expect(s).toMatchObject({ queued: 0, deadLetters: 0 });
  });
});

describe("the buffer's migration to one row per request", () => {
  it("moves rows of the old per-entry table over: still queued under their relay-<uuid> ids, then delivered", async () => {
    const t = await seedTenant();
    const fake = installFakeUpstream({ credentials: [t.aws] });
    expect((await post(t, [entry(t)])).status).toBe(200); // the object exists, at the current schema
    const oldId = `relay-${crypto.randomUUID()}`;
    const stored = JSON.stringify(entry(t, { id: "old-0" }));
    // Put the object back to schema 1 with one entry in the old `queue` table, as old code left it.
    await runInDurableObject(gateStub(t.record.id), (_o, state: DurableObjectState) => {
      const sql = state.storage.sql;
      sql.exec("DROP TABLE batches");
      sql.exec(`CREATE TABLE queue (seq INTEGER PRIMARY KEY AUTOINCREMENT, relay_id TEXT NOT NULL UNIQUE, entry TEXT NOT NULL,
        bytes INTEGER NOT NULL, accepted_at INTEGER NOT NULL, queued_at INTEGER NOT NULL, attempts INTEGER NOT NULL DEFAULT 0,
        next_at INTEGER NOT NULL, lease_until INTEGER NOT NULL DEFAULT 0, in_flight INTEGER NOT NULL DEFAULT 0,
        outcome_unknown INTEGER NOT NULL DEFAULT 0, last_code TEXT, last_message TEXT)`);
      const now = Date.now();
      sql.exec(
        "INSERT INTO queue (relay_id, entry, bytes, accepted_at, queued_at, attempts, next_at, last_code) VALUES (?, ?, 100, ?, ?, 2, ?, 'ThrottlingException')",
        oldId,
        stored,
        now,
        now,
        now,
      );
      sql.exec("UPDATE meta SET v = '1' WHERE k = 'schema_version'");
    });
    await evictDurableObject(gateStub(t.record.id)); // the next call starts it afresh: migrate 1 → 2
    const before = await exports.default.fetch(`http://relay.test/v1/events/${oldId}`, {
      headers: { authorization: `Bearer ${t.apiKey}` },
    });
    expect(await before.json()).toMatchObject({ state: "queued", attempts: 2, lastErrorCode: "ThrottlingException" });
    await drain(t.record.id);
    expect(upstreamIds(fake)).toContain("old-0");
    const after = await exports.default.fetch(`http://relay.test/v1/events/${oldId}`, {
      headers: { authorization: `Bearer ${t.apiKey}` },
    });
    expect(await after.json()).toMatchObject({ state: "delivered", attempts: 3 });
  });

  it("a database the sources work left at schema 2 (sources tables, the old queue) ends up with both at 3", async () => {
    const t = await seedTenant();
    const fake = installFakeUpstream({ credentials: [t.aws] });
    expect((await post(t, [entry(t)])).status).toBe(200);
    const oldId = `relay-${crypto.randomUUID()}`;
    const stored = JSON.stringify(entry(t, { id: "old-2" }));
    await runInDurableObject(gateStub(t.record.id), (_o, state: DurableObjectState) => {
      const sql = state.storage.sql;
      sql.exec("DROP TABLE batches");
      sql.exec(`CREATE TABLE queue (seq INTEGER PRIMARY KEY AUTOINCREMENT, relay_id TEXT NOT NULL UNIQUE, entry TEXT NOT NULL,
        bytes INTEGER NOT NULL, accepted_at INTEGER NOT NULL, queued_at INTEGER NOT NULL, attempts INTEGER NOT NULL DEFAULT 0,
        next_at INTEGER NOT NULL, lease_until INTEGER NOT NULL DEFAULT 0, in_flight INTEGER NOT NULL DEFAULT 0,
        outcome_unknown INTEGER NOT NULL DEFAULT 0, last_code TEXT, last_message TEXT)`);
      const now = Date.now();
      sql.exec(
        "INSERT INTO queue (relay_id, entry, bytes, accepted_at, queued_at, attempts, next_at) VALUES (?, ?, 100, ?, ?, 1, ?)",
        oldId,
        stored,
        now,
        now,
        now,
      );
      sql.exec("UPDATE meta SET v = '2' WHERE k = 'schema_version'");
    });
    await evictDurableObject(gateStub(t.record.id)); // migrate 2 → 3 only
    const before = await exports.default.fetch(`http://relay.test/v1/events/${oldId}`, {
      headers: { authorization: `Bearer ${t.apiKey}` },
    });
    expect(await before.json()).toMatchObject({ state: "queued", attempts: 1 });
    await runInDurableObject(gateStub(t.record.id), (_o, state: DurableObjectState) => {
      const tables = state.storage.sql
        .exec<{ name: string }>("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")
        .toArray()
        .map((r) => r.name);
      expect(tables).toEqual(expect.arrayContaining(["batches", "held", "sources"]));
      expect(tables).not.toContain("queue");
    });
    await drain(t.record.id);
    expect(upstreamIds(fake)).toContain("old-2");
  });
});
