/**
 * The ledger: thousands of events over several tenants, through random upstream faults (5xx,
 * throttling, per-entry failures, responses lost after EventBridge accepted, sends that throw) and
 * Durable Object evictions. Nothing the relay acknowledged may go missing; duplicates only where
 * a send's outcome was unknown, and counted.
 */
import { evictDurableObject } from "cloudflare:test";
import { exports } from "cloudflare:workers";
import { describe, expect, it, vi } from "vitest";
import { FakeEventBridge, mulberry32 } from "../../emulator/eventbridge.ts";
import { adminStatus, drain, gateStub } from "../helpers/drain.ts";
import { entry, seedTenant, UPSTREAM } from "../helpers/tenants.ts";

// Run with one shard per tenant, and with tenants spread over several shards (docs/scaling.md).
describe.each([1, 3])("tenants with %i shard(s)", (shards) => {
  it("accepted = delivered + failed-and-reported + still queued; 0 missing; duplicates only where counted", async () => {
    const random = mulberry32(20261126 + shards); // seeded: a failing run can be replayed
    const tenants = await Promise.all([0, 1, 2].map(() => seedTenant({ rate: 300, burst: 3 * shards, shards })));
    const fake = new FakeEventBridge({ credentials: tenants.map((t) => t.aws), seed: 7 });
    fake.setFaultRates({ throttle: 0.06, error5xx: 0.06, entryFailure: 0.08, lost: 0.05 });
    let thrown = 0;
    vi.spyOn(globalThis, "fetch").mockImplementation(async (input: RequestInfo | URL, init?: RequestInit) => {
      const request = new Request(input, init);
      if (new URL(request.url).origin !== UPSTREAM) throw new Error(`unexpected outbound request to ${request.url}`);
      // Now and then the send itself throws before anything reaches EventBridge.
      if (random() < 0.02) {
        thrown++;
        throw new TypeError("injected: connection reset");
      }
      return fake.fetch(request);
    });

    type Fate = "delivered" | "queued" | "failed" | "refused";
    const fates = new Map<string, { fate: Fate; relayEventId?: string; tenant: number }>();
    const REQUESTS_PER_TENANT = 50;
    for (let r = 0; r < REQUESTS_PER_TENANT; r++) {
      for (let ti = 0; ti < tenants.length; ti++) {
        const t = tenants[ti]!;
        const ids = Array.from({ length: 20 }, (_, i) => `${t.record.id}/${r}/${i}`);
        const res = await exports.default.fetch("http://relay.test/v1/events", {
          method: "POST",
          headers: { authorization: `Bearer ${t.apiKey}`, "content-type": "application/json" },
          body: JSON.stringify({ Entries: ids.map((id) => entry(t, { id })) }),
        });
        if (res.status === 429 || res.status >= 500) {
          ids.forEach((id) => fates.set(id, { fate: "refused", tenant: ti }));
          continue;
        }
        expect([200, 202]).toContain(res.status);
        const body = (await res.json()) as {
          Entries: { EventId?: string; RelayEventId?: string; ErrorCode?: string }[];
        };
        body.Entries.forEach((a, i) => {
          const fate: Fate = a.RelayEventId ? "queued" : a.ErrorCode ? "failed" : "delivered";
          fates.set(ids[i]!, { fate, tenant: ti, ...(a.RelayEventId ? { relayEventId: a.RelayEventId } : {}) });
        });
        if (random() < 0.08)
          await evictDurableObject(gateStub(t.record.id, Math.floor(random() * shards))).catch(() => {});
      }
    }

    for (const t of tenants) await drain(t.record.id, 20_000);

    const seen = new Map<string, number>();
    for (const e of fake.events) {
      const id = (JSON.parse(e.entry.Detail!) as { id: string }).id;
      seen.set(id, (seen.get(id) ?? 0) + 1);
    }
    const acknowledged = [...fates].filter(([, f]) => f.fate === "delivered" || f.fate === "queued");
    expect(acknowledged.length).toBeGreaterThan(2000);
    // 0 missing: every acknowledged event reached EventBridge.
    const missing = acknowledged.filter(([id]) => !seen.has(id)).map(([id]) => id);
    expect(missing).toEqual([]);
    // Nothing refused or failed-and-reported went out (the fake's per-entry faults are retryable,
    // and the relay queues those, so "failed" only arises from a full buffer).
    for (const [id, f] of fates) if (f.fate === "refused" || f.fate === "failed") expect(seen.has(id)).toBe(false);

    let duplicatesPossible = 0;
    for (let ti = 0; ti < tenants.length; ti++) {
      const t = tenants[ti]!;
      let s = await adminStatus(t.record.id);
      // Direct-path counters are reported after the response (waitUntil): let them land.
      for (let i = 0; i < 100 && s.accepted !== count(ti, ["delivered", "queued"]); i++) {
        await new Promise((r) => setTimeout(r, 10));
        s = await adminStatus(t.record.id);
      }
      expect(s.queued).toBe(0);
      expect(s.accepted).toBe(count(ti, ["delivered", "queued"]));
      expect(s.accepted).toBe(s.delivered + s.failed + s.queued);
      expect(s.failed).toBe(0);
      duplicatesPossible += s.duplicatesPossible;
    }
    const duplicates = [...seen.values()].reduce((n, c) => n + c - 1, 0);
    expect(duplicates).toBeLessThanOrEqual(duplicatesPossible);
    // The faults really happened.
    expect(fake.calls.filter((c) => c.outcome === "fault").length).toBeGreaterThan(10);
    expect(thrown).toBeGreaterThan(0);

    // A sample of queued events report their final state to their own tenant.
    const queued = [...fates.values()].filter((f) => f.relayEventId).slice(0, 20);
    for (const f of queued) {
      const res = await exports.default.fetch(`http://relay.test/v1/events/${f.relayEventId}`, {
        headers: { authorization: `Bearer ${tenants[f.tenant]!.apiKey}` },
      });
      expect(((await res.json()) as { state: string }).state).toBe("delivered");
    }

    function count(ti: number, kinds: Fate[]): number {
      return [...fates.values()].filter((f) => f.tenant === ti && kinds.includes(f.fate)).length;
    }
  }, 120_000);
});
