import { exports } from "cloudflare:workers";
import { afterEach, describe, expect, it, vi } from "vitest";
import { entry, seedTenant } from "../helpers/tenants.ts";
import { installFakeUpstream } from "../helpers/upstream.ts";

afterEach(() => vi.restoreAllMocks());

function post(body: unknown, key: string, headers: Record<string, string> = {}) {
  return exports.default.fetch("http://relay.test/v1/events", {
    method: "POST",
    headers: { authorization: `Bearer ${key}`, "content-type": "application/json", ...headers },
    body: typeof body === "string" ? body : JSON.stringify(body),
  });
}

describe("POST /v1/events", () => {
  it("forwards a valid batch signed and shaped, and mirrors EventBridge's answer", async () => {
    const t = await seedTenant();
    const fake = installFakeUpstream({ credentials: [t.aws] });
    const res = await post(
      { Entries: [entry(t, { a: 1 }, { Time: "2024-01-02T03:04:05Z", Resources: ["arn:x"] }), entry(t, { b: 2 })] },
      t.apiKey,
    );
    const body = (await res.json()) as { FailedEntryCount: number; Entries: { EventId: string }[] };
    expect(res.status).toBe(200);
    expect(body.FailedEntryCount).toBe(0);
    expect(fake.events.map((e) => e.eventId)).toEqual(body.Entries.map((e) => e.EventId));
    expect(fake.events[0]!.entry).toEqual({
      Time: 1704164645,
      Source: `aws.partner/example.com/${t.record.id}/orders`,
      Resources: ["arn:x"],
      DetailType: "Order Created",
      Detail: '{"a":1}',
    });
    expect(fake.calls[0]!.accessKeyId).toBe(t.aws.accessKeyId);
    expect(fake.calls[0]!.region).toBe("us-east-1");
  });
});
