/**
 * What the relay writes to Analytics Engine: one data point per ingest request (either front door,
 * answered or refused) and one per drain call, in the documented columns (docs/metrics.md).
 */

import { PutPartnerEventsCommand } from "@aws-sdk/client-eventbridge";
import { describe, expect, it } from "vitest";
import { setLogLevel } from "../../src/log.ts";
import { relayClient } from "../helpers/aws-sdk.ts";
import { drain } from "../helpers/drain.ts";
import { postEvents } from "../helpers/http.ts";
import { captureLogs } from "../helpers/leaks.ts";
import { recordMetrics } from "../helpers/metrics.ts";
import { addSigV4Key, entry, seedTenant } from "../helpers/tenants.ts";
import { installFakeUpstream } from "../helpers/upstream.ts";

const ingestOf = (tenant: string, points: ReturnType<typeof recordMetrics>) =>
  points.filter((p) => p.index === tenant && p.blobs.kind === "ingest");
const drainOf = (tenant: string, points: ReturnType<typeof recordMetrics>) =>
  points.filter((p) => p.index === tenant && p.blobs.kind === "drain");

describe("metrics: ingest data points", () => {
  it("a batch with a bad entry: one point, tenant as index, delivered and failed counted", async () => {
    const t = await seedTenant();
    installFakeUpstream({ credentials: [t.aws] });
    const points = recordMetrics();
    const good = entry(t, { a: 1 });
    const res = await postEvents({ Entries: [good, { ...good, DetailType: "" }] }, { key: t.apiKey });
    expect(res.status).toBe(200);
    const [p, ...more] = ingestOf(t.record.id, points);
    expect(more).toEqual([]);
    expect(p!.blobs).toEqual({ kind: "ingest", door: "json", status: "200", outcome: "partial", code: "" });
    const bytes = good.Source.length + good.DetailType.length + good.Detail.length;
    expect(p!.doubles).toMatchObject({ entries: 2, delivered: 1, queued: 0, failed: 1, bytes, throttled: 0 });
    expect(p!.doubles.latency_ms).toBeGreaterThanOrEqual(0);
  });

  it("a refused request: its status and code, nothing counted as accepted", async () => {
    const t = await seedTenant();
    installFakeUpstream({ credentials: [t.aws] });
    const points = recordMetrics();
    const res = await postEvents({ Entries: [] }, { key: t.apiKey });
    expect(res.status).toBe(400);
    expect(ingestOf(t.record.id, points).map((p) => [p.blobs, p.doubles.delivered, p.doubles.queued])).toEqual([
      [{ kind: "ingest", door: "json", status: "400", outcome: "refused", code: "invalid_request" }, 0, 0],
    ]);
  });

  it("EventBridge throttles: the entries are queued (202), the point says queued and throttled", async () => {
    const t = await seedTenant();
    const fake = installFakeUpstream({ credentials: [t.aws] });
    const points = recordMetrics();
    fake.inject({ type: "throttle" });
    const res = await postEvents({ Entries: [entry(t), entry(t)] }, { key: t.apiKey });
    expect(res.status).toBe(202);
    expect(ingestOf(t.record.id, points).map((p) => [p.blobs.outcome, p.doubles.queued, p.doubles.throttled])).toEqual([
      ["queued", 2, 1],
    ]);
  });

  it("the AWS front door writes door aws with the status it answered", async () => {
    const t = await seedTenant();
    installFakeUpstream({ credentials: [t.aws] });
    const pair = await addSigV4Key(t);
    const points = recordMetrics();
    await relayClient(pair).send(new PutPartnerEventsCommand({ Entries: [entry(t)] }));
    expect(ingestOf(t.record.id, points).map((p) => [p.blobs.door, p.blobs.status, p.doubles.delivered])).toEqual([
      ["aws", "200", 1],
    ]);
  });
});

describe("metrics: drain data points", () => {
  it("one point per drain call: throttled then delivered, with EventBridge's code", async () => {
    const t = await seedTenant({ rate: 1000, burst: 1000 });
    const fake = installFakeUpstream({ credentials: [t.aws] });
    const points = recordMetrics();
    fake.inject({ type: "error", status: 500, code: "InternalException" });
    expect((await postEvents({ Entries: [entry(t), entry(t)] }, { key: t.apiKey })).status).toBe(202);
    fake.inject({ type: "throttle" });
    await drain(t.record.id);
    const calls = drainOf(t.record.id, points);
    expect(calls.map((p) => [p.blobs.outcome, p.blobs.code, p.doubles.entries, p.doubles.throttled])).toEqual([
      ["retry", "ThrottlingException", 2, 1],
      ["delivered", "", 2, 0],
    ]);
    expect(calls[1]!.blobs).toMatchObject({ door: "drain", status: "200" });
    expect(calls[1]!.doubles).toMatchObject({ delivered: 2, queued: 0, failed: 0 });
    expect(calls[0]!.doubles).toMatchObject({ delivered: 0, queued: 2, failed: 0 });
    expect(calls[1]!.doubles.bytes).toBeGreaterThan(0);
  });
});

describe("metrics: locally visible", () => {
  it("at LOG_LEVEL=info each data point is also a log line, with the columns named", async () => {
    const t = await seedTenant();
    installFakeUpstream({ credentials: [t.aws] });
    recordMetrics();
    const lines = captureLogs();
    setLogLevel("info");
    try {
      await postEvents({ Entries: [entry(t)] }, { key: t.apiKey });
    } finally {
      setLogLevel("warn");
    }
    const metric = lines.map((l) => JSON.parse(l) as Record<string, unknown>).find((l) => l.msg === "metric");
    expect(metric).toMatchObject({
      index: t.record.id,
      kind: "ingest",
      door: "json",
      outcome: "delivered",
      entries: 1,
    });
  });
});
