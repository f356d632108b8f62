/**
 * The per-tenant gate end to end: rate limiting, the durable buffer and its drain, idempotency,
 * event status and the strongly consistent access authority. Requests go through the Worker
 * (exports.default.fetch); the upstream is the fake EventBridge, verifying every signature.
 */
import { evictDurableObject, runDurableObjectAlarm, runInDurableObject } from "cloudflare:test";
import { env, exports } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import type { FakeEventBridge } from "../../emulator/eventbridge.ts";
import type { StaticCredentials } from "../../src/tenants/record.ts";
import { clearTenantCaches } from "../../src/tenants/store.ts";
import { admin, adminStatus, drain, gateStub } from "../helpers/drain.ts";
import { entry, type SeededTenant, seedTenant, updateTenant } from "../helpers/tenants.ts";
import { installFakeUpstream } from "../helpers/upstream.ts";

type Answer = { EventId?: string | null; RelayEventId?: string; ErrorCode?: string; ErrorMessage?: string };
type Batch = { FailedEntryCount: number; QueuedEntryCount?: number; Entries: Answer[] };

function post(t: SeededTenant, entries: unknown[], headers: Record<string, string> = {}): Promise<Response> {
  return exports.default.fetch("http://relay.test/v1/events", {
    method: "POST",
    headers: { authorization: `Bearer ${t.apiKey}`, "content-type": "application/json", ...headers },
    body: JSON.stringify({ Entries: entries }),
  });
}

/** Entries whose Detail carries a unique id, so every event can be traced upstream. */
function tagged(t: SeededTenant, prefix: string, n: number) {
  return Array.from({ length: n }, (_, i) => entry(t, { id: `${prefix}-${i}` }));
}

function upstreamIds(fake: FakeEventBridge): string[] {
  return fake.events.map((e) => (JSON.parse(e.entry.Detail!) as { id: string }).id);
}

describe("burst above the tenant's rate", () => {
  it("queues (202) until the buffer is full, answers 429 only then, and delivers every accepted event once in packed batches", async () => {
    // A low rate, and requests until the first 429: the buffer fills however slowly a loaded
    // machine sends (the real alarm drains meanwhile).
    const t = await seedTenant({ rate: 5, burst: 2, maxQueuedEntries: 300 });
    const fake = installFakeUpstream({ credentials: [t.aws] });
    const accepted: string[] = [];
    const statuses: number[] = [];
    let queuedBefore429: number | null = null;
    for (let k = 0; k < 200 && !statuses.includes(429); k++) {
      const entries = tagged(t, `r${k}`, 10);
      const res = await post(t, entries);
      statuses.push(res.status);
      if (res.status === 429) {
        queuedBefore429 ??= (await adminStatus(t.record.id)).queued;
        const problem = (await res.json()) as { code: string };
        expect(problem.code).toBe("buffer_full");
        expect(Number(res.headers.get("retry-after"))).toBeGreaterThanOrEqual(1);
        expect(res.headers.get("ratelimit")).toMatch(/^"eventbridge";r=0;t=\d+$/);
        expect(res.headers.get("ratelimit-policy")).toMatch(/^"eventbridge";q=2;w=\d+$/);
        continue;
      }
      const body = (await res.json()) as Batch;
      expect(body.FailedEntryCount).toBe(0);
      expect(res.status).toBe(body.QueuedEntryCount ? 202 : 200);
      body.Entries.forEach((a, i) => {
        expect(a.EventId ?? a.RelayEventId).toBeTruthy();
        accepted.push(`r${k}-${i}`);
      });
    }
    // The burst: the first requests go straight through, then the buffer absorbs, then 429.
    expect(statuses[0]).toBe(200);
    // How many go straight through depends on how fast this machine sends (the bucket refills
    // meanwhile); that the buffer absorbed the rest is what queuedBefore429 below shows.
    expect(statuses.filter((s) => s === 202).length).toBeGreaterThan(0);
    expect(statuses.filter((s) => s === 429).length).toBeGreaterThan(0);
    // 429 only once another 10 entries would not fit in the 300-entry buffer.
    expect(queuedBefore429).toBeGreaterThan(290);
    const firstRefused = statuses.indexOf(429);
    expect(statuses.slice(firstRefused).every((s) => s === 429)).toBe(true);

    await drain(t.record.id);
    const ids = upstreamIds(fake);
    expect(new Set(ids).size).toBe(ids.length); // exactly once
    expect(ids.sort()).toEqual(accepted.sort());

    // Drained batches are packed: 20 entries per call while the backlog allows.
    const drained = fake.calls.filter((c) => c.outcome === "accepted").slice(statuses.indexOf(202));
    const full = drained.slice(0, -1);
    expect(full.length).toBeGreaterThan(10);
    expect(full.every((c) => c.entryCount === 20)).toBe(true);

    // The drain keeps to the rate: n calls after the bucket's burst take at least (n - burst) / rate.
    const span = drained[drained.length - 1]!.at - drained[0]!.at;
    expect(span).toBeGreaterThanOrEqual(((drained.length - 1 - 2) / 5) * 1000);

    const s = await adminStatus(t.record.id);
    expect(s).toMatchObject({ queued: 0, failed: 0 });
    expect(s.accepted).toBe(accepted.length);
    expect(s.delivered).toBe(accepted.length);
  });
});

describe("retryable failures on the direct path are queued, not thrown back", () => {
  it.each([
    ["whole-call throttling", { type: "throttle" } as const],
    ["a 500", { type: "error", status: 500, code: "InternalException" } as const],
    ["a 503", { type: "error", status: 503, code: "ServiceUnavailable" } as const],
    ["a lost response", { type: "lost" } as const],
  ])("%s → 202 with RelayEventIds, then delivered by the drain", async (_name, fault) => {
    const t = await seedTenant();
    const fake = installFakeUpstream({ credentials: [t.aws] });
    fake.inject(fault);
    const res = await post(t, tagged(t, "a", 3));
    expect(res.status).toBe(202);
    const body = (await res.json()) as Batch;
    expect(body.QueuedEntryCount).toBe(3);
    const ids = body.Entries.map((e) => e.RelayEventId!);
    expect(ids.every((id) => /^relay-[0-9a-f-]{36}$/.test(id))).toBe(true);
    await drain(t.record.id);
    for (const id of ids) {
      const st = await exports.default.fetch(`http://relay.test/v1/events/${id}`, {
        headers: { authorization: `Bearer ${t.apiKey}` },
      });
      expect(st.status).toBe(200);
      const ev = (await st.json()) as { state: string; eventId: string };
      expect(ev.state).toBe("delivered");
      expect(fake.events.map((e) => e.eventId)).toContain(ev.eventId);
    }
    const s = await adminStatus(t.record.id);
    // A lost response or a 5xx may follow acceptance upstream: the resend is a possible duplicate,
    // counted (the emulator's 5xx accepts nothing, so only the lost answer's resend duplicates).
    expect(s.duplicatesPossible).toBe(fault.type === "throttle" ? 0 : 3);
    expect(upstreamIds(fake).filter((id) => id.startsWith("a-")).length).toBe(fault.type === "lost" ? 6 : 3);
  });

  it("queues only the failed retryable entries; the rest keep EventBridge's answer", async () => {
    const t = await seedTenant();
    const fake = installFakeUpstream({ credentials: [t.aws] });
    fake.inject({ type: "entries", code: "ThrottlingException", indexes: [1] });
    const first = (await (await post(t, tagged(t, "b", 3))).json()) as Batch;
    expect(first.Entries[0]!.EventId).toBeTruthy();
    expect(first.Entries[1]!.RelayEventId).toBeTruthy();
    expect(first.Entries[2]!.EventId).toBeTruthy();
    await drain(t.record.id);
    // Only the one failed entry was resent.
    expect(fake.calls.map((c) => c.entryCount)).toEqual([3, 1]);
    expect(upstreamIds(fake).sort()).toEqual(["b-0", "b-1", "b-2"]);
  });

  it("with no room in the buffer, says so per entry and refuses nothing silently", async () => {
    const t = await seedTenant({ maxQueuedEntries: 0 });
    const fake = installFakeUpstream({ credentials: [t.aws] });
    fake.inject({ type: "entries", code: "InternalFailure", indexes: [1] });
    const res = await post(t, tagged(t, "c", 2));
    expect(res.status).toBe(200);
    const body = (await res.json()) as Batch;
    expect(body.FailedEntryCount).toBe(1);
    expect(body.Entries[1]).toMatchObject({ ErrorCode: "InternalFailure" });
    expect(body.Entries[1]!.ErrorMessage).toContain("buffer is full");
    fake.inject({ type: "throttle" });
    const whole = await post(t, tagged(t, "d", 2));
    expect(whole.status).toBe(429);
    expect((await whole.json()) as { code: string; upstreamCode: string }).toMatchObject({
      code: "upstream_throttled",
      upstreamCode: "ThrottlingException",
    });
    expect(whole.headers.get("retry-after")).toBe("1");
  });
});

describe("the drain", () => {
  it("survives a fault that outlasts the platform's alarm retries, then drains", async () => {
    const t = await seedTenant({ rate: 1000, burst: 1 });
    const fake = installFakeUpstream({ credentials: [t.aws] });
    fake.inject({ type: "throttle" });
    const res = await post(t, tagged(t, "e", 5));
    expect(res.status).toBe(202);
    // Ten failing drain attempts: more than the 6 retries a throwing alarm would get.
    for (let i = 0; i < 10; i++) fake.inject({ type: "error", status: 500, code: "InternalException" });
    const stub = gateStub(t.record.id);
    for (let runs = 0; fake.pendingFaults.length > 0 && runs < 500; runs++) {
      await runDurableObjectAlarm(stub);
      await new Promise((r) => setTimeout(r, 5));
    }
    expect(fake.pendingFaults).toHaveLength(0);
    // Ten failed attempts later nothing is lost, and what is left is still scheduled.
    const { queued } = await adminStatus(t.record.id);
    expect(queued + fake.events.length).toBe(5);
    if (queued > 0) expect(await runInDurableObject(stub, (_i, state) => state.storage.getAlarm())).not.toBeNull();
    await drain(t.record.id);
    expect(upstreamIds(fake).sort()).toEqual(["e-0", "e-1", "e-2", "e-3", "e-4"]);
  });

  it("keeps the buffer when the tenant's credentials cannot be opened, and drains once they are fixed", async () => {
    const t = await seedTenant({ rate: 1000, burst: 1 });
    const fake = installFakeUpstream({ credentials: [t.aws] });
    fake.inject({ type: "throttle" });
    expect((await post(t, tagged(t, "f", 2))).status).toBe(202);
    const good = t.record.credentials as StaticCredentials;
    // A ciphertext sealed for another tenant: it fails to open under this tenant's id.
    const other = await seedTenant();
    await updateTenant(t, {
      credentials: { ...good, secretAccessKey: (other.record.credentials as StaticCredentials).secretAccessKey },
    });
    clearTenantCaches();
    const stub = gateStub(t.record.id);
    expect(await runDurableObjectAlarm(stub)).toBe(true);
    const broken = await adminStatus(t.record.id);
    expect(broken.queued).toBe(2);
    expect(broken.lastUpstreamError?.code).toBe("TenantCredentialsUnusable");
    expect(JSON.stringify(broken)).not.toContain(t.aws.secretAccessKey);
    await updateTenant(t, { credentials: good });
    clearTenantCaches();
    await drain(t.record.id);
    expect(upstreamIds(fake).sort()).toEqual(["f-0", "f-1"]);
  });

  it("dead-letters permanent failures with the reason, and replays them on demand", async () => {
    const t = await seedTenant({ rate: 1000, burst: 1 });
    const fake = installFakeUpstream({ credentials: [t.aws] });
    fake.inject({ type: "throttle" });
    const body = (await (await post(t, tagged(t, "g", 2))).json()) as Batch;
    const [id0, id1] = body.Entries.map((e) => e.RelayEventId!);
    fake.inject({ type: "entries", code: "AccessDeniedException", message: "not allowed", indexes: [0] });
    await drain(t.record.id);
    const failed = (await (
      await exports.default.fetch(`http://relay.test/v1/events/${id0}`, {
        headers: { authorization: `Bearer ${t.apiKey}` },
      })
    ).json()) as Record<string, unknown>;
    expect(failed).toMatchObject({ state: "failed", errorCode: "AccessDeniedException", deadLettered: true });
    const list = (await (await admin(`/admin/v1/tenants/${t.record.id}/dead-letters`)).json()) as {
      items: { relayEventId: string; errorCode: string; entry: { Detail: string } }[];
    };
    expect(list.items).toHaveLength(1);
    expect(list.items[0]).toMatchObject({ relayEventId: id0, errorCode: "AccessDeniedException" });
    expect(JSON.parse(list.items[0]!.entry.Detail)).toEqual({ id: "g-0" });
    let s = await adminStatus(t.record.id);
    expect(s).toMatchObject({ accepted: 2, delivered: 1, failed: 1, queued: 0, deadLetters: 1 });

    const replay = (await (
      await admin(`/admin/v1/tenants/${t.record.id}/dead-letters/replay`, {
        method: "POST",
        body: JSON.stringify({ relayEventIds: [id0, "relay-00000000-0000-0000-0000-000000000000"] }),
      })
    ).json()) as { replayed: number; notFound: string[] };
    expect(replay).toEqual({ replayed: 1, notFound: ["relay-00000000-0000-0000-0000-000000000000"] });
    await drain(t.record.id);
    s = await adminStatus(t.record.id);
    expect(s).toMatchObject({ accepted: 2, delivered: 2, failed: 0, queued: 0, deadLetters: 0 });
    expect(upstreamIds(fake).filter((i) => i === "g-0")).toHaveLength(1);
    void id1;
  });

  it("gives up after the maximum attempts and says why", async () => {
    const t = await seedTenant({ rate: 1000, burst: 1 });
    const fake = installFakeUpstream({ credentials: [t.aws] });
    fake.inject({ type: "throttle" });
    const body = (await (await post(t, tagged(t, "h", 1))).json()) as Batch;
    for (let i = 0; i < 30; i++) fake.inject({ type: "error", status: 503, code: "ServiceUnavailable" });
    await drain(t.record.id);
    const ev = (await (
      await exports.default.fetch(`http://relay.test/v1/events/${body.Entries[0]!.RelayEventId}`, {
        headers: { authorization: `Bearer ${t.apiKey}` },
      })
    ).json()) as { state: string; errorMessage: string; attempts: number };
    expect(ev.state).toBe("failed");
    expect(ev.attempts).toBe(20);
    expect(ev.errorMessage).toMatch(/gave up after 20 attempts/);
  });

  it("resumes after an eviction mid-buffer without losing or duplicating", async () => {
    // A slow rate, so the second request finds no token and joins the buffer.
    const t = await seedTenant({ rate: 2, burst: 1 });
    const fake = installFakeUpstream({ credentials: [t.aws] });
    fake.inject({ type: "throttle" });
    expect((await post(t, tagged(t, "i", 20))).status).toBe(202);
    expect((await post(t, tagged(t, "j", 20))).status).toBe(202);
    await evictDurableObject(gateStub(t.record.id));
    // The drain's alarm may already have sent some; what it hasn't is still queued after eviction.
    const s = await adminStatus(t.record.id);
    expect(s.queued + fake.events.length).toBe(40);
    await drain(t.record.id);
    const ids = upstreamIds(fake);
    expect(ids).toHaveLength(40);
    expect(new Set(ids).size).toBe(40);
  });
});

describe("Idempotency-Key", () => {
  it("replays the first response for a retried POST and sends nothing twice", async () => {
    const t = await seedTenant();
    const fake = installFakeUpstream({ credentials: [t.aws] });
    const entries = tagged(t, "k", 2);
    const a = await post(t, entries, { "idempotency-key": "order-42" });
    const b = await post(t, entries, { "idempotency-key": '"order-42"' });
    expect(a.status).toBe(200);
    expect(b.status).toBe(200);
    expect(b.headers.get("idempotent-replayed")).toBe("true");
    expect(await b.text()).toBe(await a.text());
    expect(fake.events).toHaveLength(2);
  });

  it("refuses the same key with a different body (422)", async () => {
    const t = await seedTenant();
    installFakeUpstream({ credentials: [t.aws] });
    await post(t, tagged(t, "l", 1), { "idempotency-key": "k1" });
    const res = await post(t, tagged(t, "m", 1), { "idempotency-key": "k1" });
    expect(res.status).toBe(422);
    expect(((await res.json()) as { code: string }).code).toBe("idempotency_key_reused");
  });

  it("creates one set of events for concurrent duplicates", async () => {
    const t = await seedTenant();
    const fake = installFakeUpstream({ credentials: [t.aws] });
    fake.inject({ type: "delay", ms: 50 });
    const entries = tagged(t, "n", 3);
    const results = await Promise.all(Array.from({ length: 5 }, () => post(t, entries, { "idempotency-key": "dup" })));
    const statuses = results.map((r) => r.status).sort();
    expect(statuses.filter((s) => s === 200).length).toBeGreaterThanOrEqual(1);
    expect(statuses.every((s) => s === 200 || s === 409)).toBe(true);
    const conflict = results.find((r) => r.status === 409);
    if (conflict) expect(conflict.headers.get("retry-after")).toBeTruthy();
    expect(fake.events).toHaveLength(3);
  });

  it("is scoped to the tenant, and replays a 202 with the same relay ids", async () => {
    const a = await seedTenant();
    const b = await seedTenant();
    const fake = installFakeUpstream({ credentials: [a.aws, b.aws] });
    fake.inject({ type: "throttle" });
    const first = await post(a, tagged(a, "o", 1), { "idempotency-key": "shared" });
    expect(first.status).toBe(202);
    const again = await post(a, tagged(a, "o", 1), { "idempotency-key": "shared" });
    expect(again.status).toBe(202);
    expect(await again.text()).toBe(await first.text());
    const other = await post(b, tagged(b, "o", 1), { "idempotency-key": "shared" });
    expect(other.status).toBe(200);
  });

  it("refuses a malformed key", async () => {
    const t = await seedTenant();
    installFakeUpstream({ credentials: [t.aws] });
    const res = await post(t, tagged(t, "p", 1), { "idempotency-key": "has space" });
    expect(res.status).toBe(400);
    expect(((await res.json()) as { code: string }).code).toBe("invalid_idempotency_key");
  });
});

describe("event status and counters", () => {
  it("shows a tenant its own events only", async () => {
    const a = await seedTenant();
    const b = await seedTenant();
    const fake = installFakeUpstream({ credentials: [a.aws, b.aws] });
    fake.inject({ type: "throttle" });
    const id = ((await (await post(a, tagged(a, "q", 1))).json()) as Batch).Entries[0]!.RelayEventId!;
    const mine = await exports.default.fetch(`http://relay.test/v1/events/${id}`, {
      headers: { authorization: `Bearer ${a.apiKey}` },
    });
    expect(mine.status).toBe(200);
    expect(((await mine.json()) as { state: string }).state).toBe("queued");
    const theirs = await exports.default.fetch(`http://relay.test/v1/events/${id}`, {
      headers: { authorization: `Bearer ${b.apiKey}` },
    });
    expect(theirs.status).toBe(404);
    const garbage = await exports.default.fetch(`http://relay.test/v1/events/not-an-id`, {
      headers: { authorization: `Bearer ${a.apiKey}` },
    });
    expect(garbage.status).toBe(404);
  });

  it("reports the tenant's counters at /v1/status", async () => {
    const t = await seedTenant();
    const fake = installFakeUpstream({ credentials: [t.aws] });
    await post(t, tagged(t, "r", 2));
    fake.inject({ type: "throttle" });
    await post(t, tagged(t, "s", 3));
    // The direct path's counts are reported after the response (coalesced per isolate), and the
    // drain may deliver the queued three meanwhile: poll until all five are accounted for.
    let s: Record<string, number | unknown> = {};
    for (let i = 0; i < 100; i++) {
      s = (await (
        await exports.default.fetch("http://relay.test/v1/status", { headers: { authorization: `Bearer ${t.apiKey}` } })
      ).json()) as Record<string, unknown>;
      if (s.accepted === 5) break;
      await new Promise((r) => setTimeout(r, 10));
    }
    expect(s).toMatchObject({ tenantId: t.record.id, accepted: 5, failed: 0 });
    expect((s.delivered as number) + (s.queued as number)).toBe(5);
    expect(s.delivered).toBeGreaterThanOrEqual(2);
    if ((s.queued as number) > 0) expect(s.oldestQueuedAgeMs).toEqual(expect.any(Number));
    expect((s.lastUpstreamError as { code: string }).code).toBe("ThrottlingException");
  });
});

describe("access authority (strongly consistent, ahead of KV)", () => {
  it("refuses a revoked key on the very next request while KV still lists it", async () => {
    const t = await seedTenant();
    installFakeUpstream({ credentials: [t.aws] });
    expect((await post(t, tagged(t, "t", 1))).status).toBe(200);
    const res = await admin(`/admin/v1/tenants/${t.record.id}/access`, {
      method: "PUT",
      body: JSON.stringify({ revision: t.record.revision + 1, status: "active", revokeApiKeyIds: [t.keyId] }),
    });
    expect(res.status).toBe(200);
    const refused = await post(t, tagged(t, "u", 1));
    expect(refused.status).toBe(401);
    expect(((await refused.json()) as { code: string }).code).toBe("invalid_api_key");
    // Reads are refused too.
    expect(
      (await exports.default.fetch("http://relay.test/v1/status", { headers: { authorization: `Bearer ${t.apiKey}` } }))
        .status,
    ).toBe(401);
  });

  it("disables and re-enables by revision; a stale revision changes nothing", async () => {
    const t = await seedTenant();
    installFakeUpstream({ credentials: [t.aws] });
    const access = (revision: number, status: string) =>
      admin(`/admin/v1/tenants/${t.record.id}/access`, { method: "PUT", body: JSON.stringify({ revision, status }) });
    expect((await access(5, "disabled")).status).toBe(200);
    expect((await post(t, tagged(t, "v", 1))).status).toBe(403);
    expect((await access(4, "active")).status).toBe(200); // older than what the gate holds
    expect((await post(t, tagged(t, "w", 1))).status).toBe(403);
    expect((await access(6, "active")).status).toBe(200);
    expect((await post(t, tagged(t, "x", 1))).status).toBe(200);
  });

  it("refuses the admin API without the admin token", async () => {
    const res = await exports.default.fetch("http://relay.test/admin/v1/tenants/x/status", {
      headers: { authorization: "Bearer wrong" },
    });
    expect(res.status).toBe(401);
    expect((await exports.default.fetch("http://relay.test/admin/v1/tenants/x/status")).status).toBe(401);
  });

  it("purges a tenant's gate only when nothing is queued, unless forced", async () => {
    const t = await seedTenant({ rate: 1000, burst: 1 });
    const fake = installFakeUpstream({ credentials: [t.aws] });
    fake.inject({ type: "throttle" });
    await post(t, tagged(t, "y", 1));
    const refused = await admin(`/admin/v1/tenants/${t.record.id}`, { method: "DELETE" });
    expect(refused.status).toBe(409);
    const forced = await admin(`/admin/v1/tenants/${t.record.id}?force=true`, { method: "DELETE" });
    expect(forced.status).toBe(200);
    expect((await adminStatus(t.record.id)).queued).toBe(0);
    void env;
  });
});

describe("purge keeps the access state", () => {
  it("a deleted tenant's revoked key and disabled status survive the purge", async () => {
    const t = await seedTenant();
    installFakeUpstream({ credentials: [t.aws] });
    const access = await admin(`/admin/v1/tenants/${t.record.id}/access`, {
      method: "PUT",
      body: JSON.stringify({ revision: t.record.revision + 1, status: "disabled", revokeApiKeyIds: [t.keyId] }),
    });
    expect(access.status).toBe(200);
    expect((await admin(`/admin/v1/tenants/${t.record.id}?force=true`, { method: "DELETE" })).status).toBe(200);
    // KV still holds the old record and key (as a cache elsewhere would): still refused.
    expect((await post(t, tagged(t, "z", 1))).status).toBe(401);
    const s = (await (await admin(`/admin/v1/tenants/${t.record.id}/status`)).json()) as {
      status: string;
      revision: number;
    };
    expect(s).toMatchObject({ status: "disabled", revision: t.record.revision + 1 });
  });
});
