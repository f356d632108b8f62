import { exports } from "cloudflare:workers";
import { PutPartnerEventsCommand, type PutPartnerEventsCommandOutput } from "@aws-sdk/client-eventbridge";
import { afterEach, describe, expect, it, vi } from "vitest";
import { relayClient } from "../helpers/aws-sdk.ts";
import { addSigV4Key, entry, seedTenant, updateTenant } from "../helpers/tenants.ts";
import { installFakeUpstream } from "../helpers/upstream.ts";

afterEach(() => vi.restoreAllMocks());

async function awsError(p: Promise<unknown>): Promise<{ name: string; message: string; status?: number }> {
  try {
    await p;
  } catch (e) {
    const err = e as { name: string; message: string; $metadata?: { httpStatusCode?: number } };
    return { name: err.name, message: err.message, status: err.$metadata?.httpStatusCode };
  }
  throw new Error("expected the call to fail");
}

describe("POST / (AWS JSON 1.1, SigV4) with the real JS SDK v3", () => {
  it("delivers through the relay and returns EventBridge's own ids", async () => {
    const t = await seedTenant();
    const pair = await addSigV4Key(t);
    const fake = installFakeUpstream({ credentials: [t.aws] });
    const out: PutPartnerEventsCommandOutput = await relayClient(pair).send(
      new PutPartnerEventsCommand({
        Entries: [{ ...entry(t, { a: 1 }), Time: new Date("2024-01-02T03:04:05Z") }, entry(t)],
      }),
    );
    expect(out.FailedEntryCount).toBe(0);
    expect(out.Entries!.map((e) => e.EventId)).toEqual(fake.events.map((e) => e.eventId));
    expect(fake.events[0]!.entry.Time).toBe(1704164645);
    // The relay re-signed with the tenant's AWS credentials, not the partner's relay pair.
    expect(fake.calls[0]!.accessKeyId).toBe(t.aws.accessKeyId);
    expect(out.$metadata.requestId).toMatch(/^[0-9a-f-]{36}$/);
  });

  it("answers per-entry errors in EventBridge's shape (foreign Source, malformed Detail)", async () => {
    const t = await seedTenant();
    const pair = await addSigV4Key(t);
    const fake = installFakeUpstream({ credentials: [t.aws] });
    const out = await relayClient(pair).send(
      new PutPartnerEventsCommand({
        Entries: [entry(t), { ...entry(t), Source: "aws.partner/other.com/x/orders" }, { ...entry(t), Detail: "[1]" }],
      }),
    );
    expect(out.FailedEntryCount).toBe(2);
    expect(out.Entries![1]).toMatchObject({ ErrorCode: "NotAuthorizedForSourceException" });
    expect(out.Entries![2]).toMatchObject({ ErrorCode: "MalformedDetail" });
    expect(fake.events).toHaveLength(1);
  });

  it("represents queued entries with a relay- EventId when EventBridge throttles", async () => {
    const t = await seedTenant();
    const pair = await addSigV4Key(t);
    const fake = installFakeUpstream({ credentials: [t.aws] });
    fake.inject({ type: "throttle" });
    const out = await relayClient(pair).send(new PutPartnerEventsCommand({ Entries: [entry(t)] }));
    expect(out.FailedEntryCount).toBe(0);
    expect(out.Entries![0]!.EventId).toMatch(/^relay-[0-9a-f-]{36}$/);
  });

  it("refuses a wrong secret with InvalidSignatureException and sends nothing", async () => {
    const t = await seedTenant();
    const pair = await addSigV4Key(t);
    const fake = installFakeUpstream({ credentials: [t.aws] });
    const err = await awsError(
      relayClient({
        ...pair,
        secretAccessKey: pair.secretAccessKey.replace(/.$/, (c) => (c === "A" ? "B" : "A")),
      }).send(new PutPartnerEventsCommand({ Entries: [entry(t)] })),
    );
    expect(err.name).toBe("InvalidSignatureException");
    expect(err.status).toBe(400);
    expect(err.message).toContain("signature we calculated does not match");
    expect(err.message).not.toContain(pair.secretAccessKey);
    expect(fake.calls).toHaveLength(0);
  });

  it("refuses a tampered body (the signature covers the body)", async () => {
    const t = await seedTenant();
    const pair = await addSigV4Key(t);
    const fake = installFakeUpstream({ credentials: [t.aws] });
    // Same length, one value changed: exactly what a man in the middle could do.
    const tamper = async (r: Request) => new Request(r, { body: (await r.text()).replace('\\"n\\":1', '\\"n\\":9') });
    const err = await awsError(
      relayClient(pair, { tamper }).send(new PutPartnerEventsCommand({ Entries: [entry(t)] })),
    );
    expect(err.name).toBe("InvalidSignatureException");
    expect(fake.calls).toHaveLength(0);
  });

  it("refuses an unknown access key and a revoked one", async () => {
    const t = await seedTenant();
    const pair = await addSigV4Key(t);
    installFakeUpstream({ credentials: [t.aws] });
    const unknown = await awsError(
      relayClient({ accessKeyId: "RLYAAAAAAAAAAAAAAAAA", secretAccessKey: pair.secretAccessKey }).send(
        new PutPartnerEventsCommand({ Entries: [entry(t)] }),
      ),
    );
    expect(unknown.name).toBe("UnrecognizedClientException");
    // Revocation through the admin API: the tenant's Durable Object is the authority.
    const res = await exports.default.fetch(`http://relay.test/admin/v1/tenants/${t.record.id}/access`, {
      method: "PUT",
      headers: { authorization: "Bearer test-admin-token-0123456789abcdef", "content-type": "application/json" },
      body: JSON.stringify({
        revision: t.record.revision + 1,
        status: "active",
        revokeAccessKeyIds: [pair.accessKeyId],
      }),
    });
    expect(res.status).toBe(200);
    const revoked = await awsError(relayClient(pair).send(new PutPartnerEventsCommand({ Entries: [entry(t)] })));
    expect(revoked.name).toBe("UnrecognizedClientException");
  });

  it("refuses a disabled tenant with AccessDeniedException", async () => {
    const t = await seedTenant({ status: "disabled" });
    const pair = await addSigV4Key(t);
    installFakeUpstream({ credentials: [t.aws] });
    const err = await awsError(relayClient(pair).send(new PutPartnerEventsCommand({ Entries: [entry(t)] })));
    expect(err.name).toBe("AccessDeniedException");
  });

  it("refuses an oversized batch with ValidationException", async () => {
    const t = await seedTenant();
    const pair = await addSigV4Key(t);
    const fake = installFakeUpstream({ credentials: [t.aws] });
    const big = "x".repeat(140_000);
    const err = await awsError(
      relayClient(pair).send(new PutPartnerEventsCommand({ Entries: [entry(t, { big }), entry(t, { big })] })),
    );
    expect(err.name).toBe("ValidationException");
    expect(fake.calls).toHaveLength(0);
  });

  it("answers 21 entries with ValidationException", async () => {
    const t = await seedTenant();
    const pair = await addSigV4Key(t);
    installFakeUpstream({ credentials: [t.aws] });
    const err = await awsError(
      relayClient(pair).send(new PutPartnerEventsCommand({ Entries: Array.from({ length: 21 }, () => entry(t)) })),
    );
    expect(err.name).toBe("ValidationException");
    expect(err.message).toContain("at most 20");
  });
});

describe("POST / without the SDK", () => {
  it("answers an unsigned request with MissingAuthenticationTokenException (403)", async () => {
    const res = await exports.default.fetch("http://relay.test/", {
      method: "POST",
      headers: { "content-type": "application/x-amz-json-1.1", "x-amz-target": "AWSEvents.PutPartnerEvents" },
      body: "{}",
    });
    expect(res.status).toBe(403);
    expect(await res.json()).toEqual({
      __type: "MissingAuthenticationTokenException",
      message: "Missing Authentication Token",
    });
    expect(res.headers.get("x-amzn-requestid")).toBeTruthy();
  });

  it("answers another operation with UnknownOperationException", async () => {
    const t = await seedTenant();
    const pair = await addSigV4Key(t);
    installFakeUpstream({ credentials: [t.aws] });
    const client = relayClient(pair, {
      tamper: (r) => r,
    });
    // Sign a PutEvents call with the same client: the relay only serves PutPartnerEvents.
    const { PutEventsCommand } = await import("@aws-sdk/client-eventbridge");
    const err = await awsError(
      client.send(new PutEventsCommand({ Entries: [{ Source: "x", DetailType: "y", Detail: "{}" }] })),
    );
    expect(err.name).toBe("UnknownOperationException");
  });

  it("updates to the tenant's sources apply to SigV4 callers too", async () => {
    const t = await seedTenant();
    const pair = await addSigV4Key(t);
    const fake = installFakeUpstream({ credentials: [t.aws] });
    await updateTenant(t, { sources: [`aws.partner/example.com/${t.record.id}/orders`] });
    const { clearTenantCaches } = await import("../../src/tenants/store.ts");
    clearTenantCaches();
    const out = await relayClient(pair).send(
      new PutPartnerEventsCommand({
        Entries: [entry(t), { ...entry(t), Source: `aws.partner/example.com/${t.record.id}/refunds` }],
      }),
    );
    expect(out.Entries![1]).toMatchObject({ ErrorCode: "NotAuthorizedForSourceException" });
    expect(fake.events).toHaveLength(1);
  });
});
