/**
 * The fake EventBridge, inside workerd: requests signed by two independent signers (aws4fetch, the
 * relay's signer, and the AWS SDK v3 client) are accepted; every way a request can be wrong on
 * the wire or in its signature gets the `__type` AWS would answer; faults behave as documented.
 */
import {
  EventBridgeClient,
  PutPartnerEventsCommand,
  type PutPartnerEventsRequestEntry,
} from "@aws-sdk/client-eventbridge";
import { type HttpRequest, HttpResponse } from "@smithy/protocol-http";
import { AwsClient } from "aws4fetch";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  batchSize,
  type CallRecord,
  type FakeCredential,
  FakeEventBridge,
  type FakeEventBridgeOptions,
  LostResponseError,
  type ReceivedEvent,
  type WireEntry,
} from "../../emulator/eventbridge.ts";

const CRED: FakeCredential = {
  accessKeyId: "AKIDFAKETEST00000001",
  secretAccessKey: "fake-secret-for-tests-only-0001",
};
const TEMP_CRED: FakeCredential = {
  accessKeyId: "ASIAFAKETEST00000002",
  secretAccessKey: "fake-secret-for-tests-only-0002",
  sessionToken: "fake-session-token-0002",
};
const REGION = "eu-west-1";
const ENDPOINT = `https://events.${REGION}.amazonaws.com/`;
/** The fake's clock and the signers' X-Amz-Date: signatures are deterministic. */
const NOW = Date.UTC(2026, 0, 2, 3, 4, 5);
const AMZ_DATE = "20260102T030405Z";
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const SOURCE = "aws.partner/example.com/t42/orders";

function newFake(opts: FakeEventBridgeOptions = {}): FakeEventBridge {
  return new FakeEventBridge({ credentials: [CRED, TEMP_CRED], now: () => NOW, ...opts });
}

function entry(i = 0, extra: Partial<WireEntry> = {}): WireEntry {
  return {
    Time: 1_767_323_045,
    Source: SOURCE,
    DetailType: "Order Created",
    Detail: JSON.stringify({ id: i }),
    ...extra,
  };
}

interface SignOptions {
  cred?: FakeCredential;
  region?: string;
  service?: string;
  /** null leaves X-Amz-Target out. */
  target?: string | null;
  datetime?: string;
  headers?: Record<string, string>;
  allHeaders?: boolean;
}

/** Signs like the relay does: aws4fetch, service and region explicit, no retries. */
async function sign(body: string | object, o: SignOptions = {}): Promise<Request> {
  const cred = o.cred ?? CRED;
  const client = new AwsClient({
    accessKeyId: cred.accessKeyId,
    secretAccessKey: cred.secretAccessKey,
    ...(cred.sessionToken ? { sessionToken: cred.sessionToken } : {}),
    service: o.service ?? "events",
    region: o.region ?? REGION,
    retries: 0,
  });
  const headers: Record<string, string> = { "content-type": "application/x-amz-json-1.1", ...o.headers };
  if (o.target !== null) headers["x-amz-target"] = o.target ?? "AWSEvents.PutPartnerEvents";
  return client.sign(ENDPOINT, {
    method: "POST",
    headers,
    body: typeof body === "string" ? body : JSON.stringify(body),
    aws: { datetime: o.datetime ?? AMZ_DATE, ...(o.allHeaders ? { allHeaders: true } : {}) },
  });
}

async function put(fake: FakeEventBridge, entries: WireEntry[], o: SignOptions = {}): Promise<Response> {
  return fake.fetch(await sign({ Entries: entries }, o));
}

interface PutResult {
  FailedEntryCount: number;
  Entries: { EventId?: string; ErrorCode?: string; ErrorMessage?: string }[];
}

/** Asserts an AWS JSON 1.1 error and returns its message. */
async function expectAwsError(res: Response, status: number, type: string): Promise<string> {
  const body = (await res.json()) as { __type: string; message: string };
  expect({ status: res.status, type: body.__type }).toEqual({ status, type });
  expect(res.headers.get("content-type")).toBe("application/x-amz-json-1.1");
  expect(res.headers.get("x-amzn-requestid")).toMatch(UUID);
  expect(typeof body.message).toBe("string");
  return body.message;
}

function lastCall(fake: FakeEventBridge): CallRecord {
  const call = fake.calls.at(-1);
  if (!call) throw new Error("no call recorded");
  return call;
}

/** A copy of `req` with a different body and the same (now stale) signature. */
function withBody(req: Request, body: string): Request {
  return new Request(req.url, { method: req.method, headers: req.headers, body });
}

function withHeader(req: Request, name: string, value: string | null, body: string): Request {
  const headers = new Headers(req.headers);
  if (value === null) headers.delete(name);
  else headers.set(name, value);
  return new Request(req.url, { method: req.method, headers, body });
}

describe("accepted requests", () => {
  it("gives aws4fetch-signed entries EventIds and records events and the call", async () => {
    const fake = newFake();
    const entries = [entry(1), entry(2, { Resources: ["arn:aws:s3:::b"], TraceHeader: "Root=1-abc" })];
    const res = await put(fake, entries);
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toBe("application/x-amz-json-1.1");
    const requestId = res.headers.get("x-amzn-requestid");
    expect(requestId).toMatch(UUID);
    const body = (await res.json()) as PutResult;
    expect(body.FailedEntryCount).toBe(0);
    expect(body.Entries).toHaveLength(2);
    for (const e of body.Entries) expect(e.EventId).toMatch(UUID);

    expect(fake.events.map((e) => e.eventId)).toEqual(body.Entries.map((e) => e.EventId));
    expect(fake.events.map((e) => e.entry)).toEqual(entries);
    expect(fake.events[0]).toMatchObject({ region: REGION, accessKeyId: CRED.accessKeyId, requestId, receivedAt: NOW });
    expect(fake.calls).toEqual([
      {
        requestId,
        at: NOW,
        region: REGION,
        accessKeyId: CRED.accessKeyId,
        signedHeaders: ["host", "x-amz-date", "x-amz-target"],
        entryCount: 2,
        outcome: "accepted",
        status: 200,
        failedEntryCount: 0,
      },
    ]);
  });

  it("accepts botocore's header set (content-type signed too) and fractional Time", async () => {
    const fake = newFake();
    const res = await put(fake, [entry(1, { Time: 1_767_323_045.25 })], { allHeaders: true });
    expect(res.status).toBe(200);
    expect(lastCall(fake).signedHeaders).toEqual(["content-type", "host", "x-amz-date", "x-amz-target"]);
  });

  it("accepts entries without Time, and X-Amz-Date up to maxSkewMs away", async () => {
    const fake = newFake();
    const early = new Date(NOW - 5 * 60_000).toISOString().replace(/[:-]|\.\d{3}/g, "");
    const late = new Date(NOW + 5 * 60_000).toISOString().replace(/[:-]|\.\d{3}/g, "");
    expect((await put(fake, [entry(1, { Time: undefined })], { datetime: early })).status).toBe(200);
    expect((await put(fake, [entry(2)], { datetime: late })).status).toBe(200);
    expect(fake.events).toHaveLength(2);
  });

  it("accepts temporary credentials with their session token signed", async () => {
    const fake = newFake();
    const req = await sign({ Entries: [entry()] }, { cred: TEMP_CRED });
    const res = await fake.fetch(req);
    expect(res.status).toBe(200);
    expect(lastCall(fake).signedHeaders).toContain("x-amz-security-token");
    expect(fake.events[0]?.accessKeyId).toBe(TEMP_CRED.accessKeyId);
  });

  it("skips authentication entirely when verifySignatures is false", async () => {
    const fake = newFake({ verifySignatures: false, credentials: [] });
    const res = await fake.fetch(
      new Request(ENDPOINT, {
        method: "POST",
        headers: { "content-type": "application/x-amz-json-1.1", "x-amz-target": "AWSEvents.PutPartnerEvents" },
        body: JSON.stringify({ Entries: [entry()] }),
      }),
    );
    expect(res.status).toBe(200);
    expect(fake.events).toHaveLength(1);
  });

  it("property: any batch aws4fetch signs is accepted, and any one-character change to its body is not", async () => {
    const fake = newFake();
    const arbEntry = fc.record(
      {
        Time: fc.integer({ min: 0, max: 4_000_000_000 }),
        Source: fc.constantFrom(SOURCE, "aws.partner/a.b/c_d/e-f.g"),
        DetailType: fc.string({ minLength: 1, maxLength: 128 }),
        Detail: fc.dictionary(fc.string(), fc.oneof(fc.string(), fc.integer())).map((d) => JSON.stringify(d)),
        Resources: fc.array(fc.string({ minLength: 1, maxLength: 50 }), { maxLength: 3 }),
      },
      { requiredKeys: ["Source", "DetailType", "Detail"] },
    );
    await fc.assert(
      fc.asyncProperty(fc.array(arbEntry, { minLength: 1, maxLength: 20 }), fc.nat(), async (entries, at) => {
        const text = JSON.stringify({ Entries: entries });
        const req = await sign(text);
        const tampered = req.clone();
        const res = await fake.fetch(req);
        expect(res.status).toBe(200);
        const body = (await res.json()) as PutResult;
        expect(body.FailedEntryCount).toBe(0);
        expect(body.Entries).toHaveLength(entries.length);

        const i = at % text.length;
        const swapped = text.slice(0, i) + (text[i] === "x" ? "y" : "x") + text.slice(i + 1);
        const bad = await fake.fetch(withBody(tampered, swapped));
        expect(bad.status).toBe(400);
        expect(((await bad.json()) as { __type: string }).__type).toBe("InvalidSignatureException");
      }),
      { numRuns: 40, seed: 42 },
    );
  });
});

describe("authentication", () => {
  it("missing Authorization → 403 MissingAuthenticationTokenException", async () => {
    const fake = newFake();
    const req = await sign({ Entries: [entry()] });
    const res = await fake.fetch(withHeader(req, "authorization", null, JSON.stringify({ Entries: [entry()] })));
    await expectAwsError(res, 403, "MissingAuthenticationTokenException");
    expect(lastCall(fake)).toMatchObject({ outcome: "rejected", status: 403 });
  });

  it("malformed Authorization → IncompleteSignatureException", async () => {
    const fake = newFake();
    const body = JSON.stringify({ Entries: [entry()] });
    const req = await sign(body);
    const auth = req.headers.get("authorization")!;
    for (const bad of [
      "Bearer abc",
      "AWS4-HMAC-SHA256 Credential=AKID/20260102/eu-west-1/events/aws4_request",
      auth.replace("/aws4_request", "/aws5_request"),
      auth.replace("SignedHeaders=host;x-amz-date;x-amz-target", "SignedHeaders=x-amz-date;host;x-amz-target"),
      auth.replace(/Signature=[0-9a-f]+/, "Signature=xyz"),
    ]) {
      await expectAwsError(
        await fake.fetch(withHeader(req, "authorization", bad, body)),
        400,
        "IncompleteSignatureException",
      );
    }
  });

  it("unknown access key id → UnrecognizedClientException", async () => {
    const fake = newFake();
    const res = await put(fake, [entry()], { cred: { accessKeyId: "AKIDUNKNOWN000000000", secretAccessKey: "x" } });
    await expectAwsError(res, 400, "UnrecognizedClientException");
    expect(lastCall(fake)).toMatchObject({ accessKeyId: "AKIDUNKNOWN000000000", outcome: "rejected" });
    expect(fake.events).toHaveLength(0);
  });

  it("wrong secret → InvalidSignatureException", async () => {
    const fake = newFake();
    const res = await put(fake, [entry()], { cred: { ...CRED, secretAccessKey: "not-the-secret" } });
    const message = await expectAwsError(res, 400, "InvalidSignatureException");
    expect(message).toMatch(/signature we calculated does not match/);
  });

  it("tampered body → InvalidSignatureException, nothing recorded as an event", async () => {
    const fake = newFake();
    const req = await sign({ Entries: [entry(1)] });
    const res = await fake.fetch(withBody(req, JSON.stringify({ Entries: [entry(2)] })));
    await expectAwsError(res, 400, "InvalidSignatureException");
    expect(fake.events).toHaveLength(0);
  });

  it("a signed header changed after signing → InvalidSignatureException", async () => {
    const fake = newFake();
    const body = JSON.stringify({ Entries: [entry()] });
    const req = await sign(body, { allHeaders: true });
    const res = await fake.fetch(withHeader(req, "content-type", "application/x-amz-json-1.1; charset=utf-8", body));
    await expectAwsError(res, 400, "InvalidSignatureException");
  });

  it("stale or future X-Amz-Date → InvalidSignatureException (Signature expired / not yet current)", async () => {
    const fake = newFake();
    const stale = new Date(NOW - 5 * 60_000 - 1_000).toISOString().replace(/[:-]|\.\d{3}/g, "");
    const future = new Date(NOW + 5 * 60_000 + 1_000).toISOString().replace(/[:-]|\.\d{3}/g, "");
    expect(
      await expectAwsError(await put(fake, [entry()], { datetime: stale }), 400, "InvalidSignatureException"),
    ).toMatch(
      /^Signature expired: 20260102T025904Z is now earlier than 20260102T025905Z \(20260102T030405Z - 5 min\.\)$/,
    );
    expect(
      await expectAwsError(await put(fake, [entry()], { datetime: future }), 400, "InvalidSignatureException"),
    ).toMatch(/^Signature not yet current:/);
  });

  it("a credential-scope date other than X-Amz-Date's → InvalidSignatureException", async () => {
    const fake = newFake();
    const body = JSON.stringify({ Entries: [entry()] });
    const req = await sign(body);
    const auth = req.headers.get("authorization")!.replace("/20260102/", "/20260101/");
    const message = await expectAwsError(
      await fake.fetch(withHeader(req, "authorization", auth, body)),
      400,
      "InvalidSignatureException",
    );
    expect(message).toMatch(/Date in Credential scope/);
  });

  it("wrong service in the scope → InvalidSignatureException", async () => {
    const fake = newFake();
    const message = await expectAwsError(
      await put(fake, [entry()], { service: "execute-api" }),
      400,
      "InvalidSignatureException",
    );
    expect(message).toMatch(/scoped to correct service: 'events'/);
  });

  it("a region other than the required one → InvalidSignatureException", async () => {
    const fake = newFake({ region: "us-east-1" });
    await expectAwsError(await put(fake, [entry()]), 400, "InvalidSignatureException");
    expect(lastCall(fake).region).toBe(REGION);
    expect((await put(fake, [entry()], { region: "us-east-1" })).status).toBe(200);
  });

  it("host and x-amz-date must be signed → IncompleteSignatureException", async () => {
    const fake = newFake();
    const body = JSON.stringify({ Entries: [entry()] });
    const req = await sign(body);
    const auth = req.headers
      .get("authorization")!
      .replace("SignedHeaders=host;x-amz-date;", "SignedHeaders=x-amz-date;");
    const message = await expectAwsError(
      await fake.fetch(withHeader(req, "authorization", auth, body)),
      400,
      "IncompleteSignatureException",
    );
    expect(message).toMatch(/'host'/);
  });

  it("missing X-Amz-Date header → IncompleteSignatureException", async () => {
    const fake = newFake();
    const body = JSON.stringify({ Entries: [entry()] });
    const req = await sign(body);
    await expectAwsError(
      await fake.fetch(withHeader(req, "x-amz-date", null, body)),
      400,
      "IncompleteSignatureException",
    );
  });

  it("temporary credentials: missing, mismatched or unsigned session token are refused", async () => {
    const fake = newFake();
    const body = JSON.stringify({ Entries: [entry()] });
    // Signed with the right key pair but without the token.
    const missing = await sign(body, {
      cred: { accessKeyId: TEMP_CRED.accessKeyId, secretAccessKey: TEMP_CRED.secretAccessKey },
    });
    await expectAwsError(await fake.fetch(missing), 400, "UnrecognizedClientException");
    // Signed with another token.
    const mismatched = await sign(body, { cred: { ...TEMP_CRED, sessionToken: "fake-session-token-9999" } });
    await expectAwsError(await fake.fetch(mismatched), 400, "UnrecognizedClientException");
    // The right token, added after signing (so not among SignedHeaders).
    const unsigned = withHeader(missing, "x-amz-security-token", TEMP_CRED.sessionToken!, body);
    await expectAwsError(await fake.fetch(unsigned), 400, "IncompleteSignatureException");
    // A token on a long-term key.
    const extra = await sign(body, { cred: { ...CRED, sessionToken: "fake-session-token-0002" } });
    await expectAwsError(await fake.fetch(extra), 400, "UnrecognizedClientException");
    expect(fake.events).toHaveLength(0);
  });

  it("x-amz-content-sha256 must be the body's hash: UNSIGNED-PAYLOAD and a swapped body are refused", async () => {
    const fake = newFake();
    const body = JSON.stringify({ Entries: [entry(1)] });
    const unsignedPayload = await sign(body, { headers: { "x-amz-content-sha256": "UNSIGNED-PAYLOAD" } });
    expect(await expectAwsError(await fake.fetch(unsignedPayload), 400, "InvalidSignatureException")).toMatch(
      /UNSIGNED-PAYLOAD/,
    );

    const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", new TextEncoder().encode(body)));
    const hex = Array.from(digest, (b) => b.toString(16).padStart(2, "0")).join("");
    const hashed = await sign(body, { headers: { "x-amz-content-sha256": hex } });
    const swapped = withBody(hashed.clone(), JSON.stringify({ Entries: [entry(2)] }));
    expect(await expectAwsError(await fake.fetch(swapped), 400, "InvalidSignatureException")).toMatch(
      /does not match the SHA-256/,
    );
    expect((await fake.fetch(hashed)).status).toBe(200);
    expect(fake.events).toHaveLength(1);
  });

  it("a missing X-Amz-Target → UnknownOperationException, as is another operation", async () => {
    const fake = newFake();
    await expectAwsError(await put(fake, [entry()], { target: null }), 400, "UnknownOperationException");
    await expectAwsError(
      await put(fake, [entry()], { target: "AWSEvents.PutEvents" }),
      400,
      "UnknownOperationException",
    );
    expect(fake.events).toHaveLength(0);
  });

  it("other methods and paths are refused", async () => {
    const fake = newFake();
    await expectAwsError(await fake.fetch(new Request(ENDPOINT)), 405, "UnknownOperationException");
    await expectAwsError(
      await fake.fetch(new Request(`${ENDPOINT}other`, { method: "POST" })),
      404,
      "UnknownOperationException",
    );
  });

  it("credentials added later are honoured", async () => {
    const fake = newFake({ credentials: [] });
    await expectAwsError(await put(fake, [entry()]), 400, "UnrecognizedClientException");
    fake.addCredential(CRED);
    expect((await put(fake, [entry()])).status).toBe(200);
  });
});

describe("wire checks", () => {
  it("Time as a string is a SerializationException", async () => {
    const fake = newFake();
    const res = await fake.fetch(await sign({ Entries: [{ ...entry(), Time: "2026-01-02T03:04:05Z" }] }));
    expect(await expectAwsError(res, 400, "SerializationException")).toMatch(
      /Entries\[0\]: Time must be a JSON number/,
    );
  });

  it("unknown members, nulls, wrong types and junk bodies are SerializationExceptions naming the problem", async () => {
    const fake = newFake();
    const cases: [object, RegExp][] = [
      [{ Entries: [{ ...entry(), EventBusName: "default" }] }, /unknown member 'EventBusName'/],
      [{ Entries: [entry(), { ...entry(), tenantId: "t1" }] }, /Entries\[1\]: unknown member 'tenantId'/],
      [{ Entries: [entry()], Extra: 1 }, /Unknown member 'Extra'/],
      [{ Entries: [{ ...entry(), Time: null }] }, /Time is null/],
      [{ Entries: [{ ...entry(), Detail: { id: 1 } }] }, /Detail must be a JSON string/],
      [{ Entries: [{ ...entry(), Resources: "arn:x" }] }, /Resources must be a JSON array of strings/],
      [{ Entries: "x" }, /Entries must be a JSON array/],
      [{ Entries: ["x"] }, /an entry must be a JSON object/],
      [[entry()], /must be a JSON object/],
    ];
    for (const [body, message] of cases) {
      expect(await expectAwsError(await fake.fetch(await sign(body)), 400, "SerializationException")).toMatch(message);
    }
    expect(await expectAwsError(await fake.fetch(await sign("{not json")), 400, "SerializationException")).toMatch(
      /not valid JSON/,
    );
    expect(fake.events).toHaveLength(0);
    expect(fake.calls.every((c) => c.outcome === "rejected")).toBe(true);
  });

  it("a Content-Type other than application/x-amz-json-1.1 is refused", async () => {
    const fake = newFake();
    const res = await fake.fetch(
      await sign({ Entries: [entry()] }, { headers: { "content-type": "application/json" } }),
    );
    await expectAwsError(res, 400, "SerializationException");
  });

  it("0 or 21 entries, or no Entries, is a ValidationException; 20 is fine", async () => {
    const fake = newFake();
    await expectAwsError(await put(fake, []), 400, "ValidationException");
    await expectAwsError(
      await put(
        fake,
        Array.from({ length: 21 }, (_, i) => entry(i)),
      ),
      400,
      "ValidationException",
    );
    await expectAwsError(await fake.fetch(await sign({})), 400, "ValidationException");
    const res = await put(
      fake,
      Array.from({ length: 20 }, (_, i) => entry(i)),
    );
    expect(res.status).toBe(200);
    expect(lastCall(fake).entryCount).toBe(20);
  });

  describe("the size formula", () => {
    /** One entry of exactly `target` bytes by AWS's formula, with multi-byte UTF-8 in every counted field. */
    function entryOfSize(target: number): WireEntry {
      const base: WireEntry = {
        Time: 1_767_323_045, // 14 bytes
        Source: "aws.partner/example.com/t42/orders", // 34 bytes
        DetailType: "Bestellung erstellt ✓", // ✓ is 3 bytes
        Resources: ["arn:aws:s3:::bücket", "arn:aws:s3:::𝄞"], // ü 2 bytes, 𝄞 4 bytes
        TraceHeader: "Root=1-ünt-counted", // TraceHeader does not count
        Detail: '{"p":""}',
      };
      const room = target - batchSize([base]);
      // Fill with "€" (3 bytes) and top up with "é" (2) / "a" (1) to land exactly on target.
      const euros = Math.floor(room / 3);
      const rest = room - euros * 3;
      const pad = "€".repeat(euros) + (rest === 2 ? "é" : rest === 1 ? "a" : "");
      return { ...base, Detail: JSON.stringify({ p: pad }) };
    }

    it("counts Time as 14 bytes and UTF-8 bytes of Source, DetailType, Detail and each Resource", () => {
      expect(
        batchSize([
          { Time: 1, Source: "é", DetailType: "✓", Detail: "𝄞", Resources: ["a", "ü"], TraceHeader: "x".repeat(99) },
        ]),
      ).toBe(14 + 2 + 3 + 4 + 1 + 2);
      expect(batchSize([entryOfSize(262_144)])).toBe(262_144);
      expect(batchSize([entryOfSize(262_145)])).toBe(262_145);
    });

    it("accepts 262144 bytes and refuses 262145 with a ValidationException", async () => {
      const fake = newFake();
      const ok = await put(fake, [entryOfSize(262_144)]);
      expect(ok.status).toBe(200);
      expect(((await ok.json()) as PutResult).FailedEntryCount).toBe(0);
      const over = await put(fake, [entryOfSize(262_145)]);
      expect(await expectAwsError(over, 400, "ValidationException")).toMatch(/262145 > 262144/);
      expect(fake.events).toHaveLength(1);
    });

    it("sums over entries, and honours maxBatchBytes", async () => {
      const fake = newFake({ maxBatchBytes: 1_000 });
      const half = entryOfSize(500);
      expect((await put(fake, [half, half])).status).toBe(200);
      await expectAwsError(await put(fake, [half, entryOfSize(501)]), 400, "ValidationException");
    });
  });

  it("per-entry failures are index-aligned; the valid entries still go through", async () => {
    const fake = newFake();
    const entries: WireEntry[] = [
      entry(0),
      { DetailType: "x", Detail: "{}" }, // no Source
      entry(2, { Source: "aws.partner/example.com" }), // pattern needs two segments after aws.partner
      entry(3, { Detail: "[1,2]" }), // not an object
      entry(4, { Detail: "{not json" }),
      entry(5, { DetailType: "d".repeat(129) }),
      entry(6, { DetailType: "d".repeat(128) }),
      entry(7, { Source: `aws.partner/example.com/${"s".repeat(240)}` }), // > 256 chars
      entry(8, { Source: "aws.partner/example.com/t42/orders?" }),
      { Source: SOURCE },
    ];
    const res = await put(fake, entries);
    expect(res.status).toBe(200);
    const body = (await res.json()) as PutResult;
    expect(body.Entries.map((e) => e.ErrorCode ?? "ok")).toEqual([
      "ok",
      "InvalidArgument",
      "InvalidArgument",
      "MalformedDetail",
      "MalformedDetail",
      "InvalidArgument",
      "ok",
      "InvalidArgument",
      "InvalidArgument",
      "InvalidArgument",
    ]);
    expect(body.FailedEntryCount).toBe(8);
    expect(body.Entries[9]?.ErrorMessage).toMatch(/DetailType,Detail/);
    expect(fake.events.map((e) => e.eventId)).toEqual([body.Entries[0]?.EventId, body.Entries[6]?.EventId]);
    expect(fake.events.map((e) => e.entry.Detail)).toEqual(['{"id":0}', '{"id":6}']);
    expect(lastCall(fake)).toMatchObject({ outcome: "accepted", failedEntryCount: 8, entryCount: 10 });
  });
});

describe("faults", () => {
  it("throttle: 400 ThrottlingException 'Rate exceeded', nothing recorded as an event", async () => {
    const fake = newFake();
    fake.inject({ type: "throttle" });
    const res = await put(fake, [entry()]);
    expect(await expectAwsError(res, 400, "ThrottlingException")).toBe("Rate exceeded");
    expect(fake.events).toHaveLength(0);
    expect(lastCall(fake)).toMatchObject({
      outcome: "fault",
      fault: "throttle",
      status: 400,
      errorType: "ThrottlingException",
    });
    expect((await put(fake, [entry()])).status).toBe(200);
  });

  it("error: the given status and __type, prefixed codes kept verbatim", async () => {
    const fake = newFake();
    fake.inject(
      { type: "error", status: 500, code: "com.amazonaws.events#InternalException", message: "boom" },
      { type: "error", status: 503, code: "ServiceUnavailable" },
    );
    expect(await expectAwsError(await put(fake, [entry()]), 500, "com.amazonaws.events#InternalException")).toBe(
      "boom",
    );
    await expectAwsError(await put(fake, [entry()]), 503, "ServiceUnavailable");
    expect(fake.events).toHaveLength(0);
    expect(fake.calls.map((c) => c.outcome)).toEqual(["fault", "fault"]);
  });

  it("entries: the chosen indexes fail with the code, the others succeed, index-aligned", async () => {
    const fake = newFake();
    fake.inject(
      { type: "entries", code: "InternalFailure", indexes: [1, 3, 99] },
      { type: "entries", code: "ThrottlingException" },
    );
    const first = (await (await put(fake, [entry(0), entry(1), entry(2), entry(3)])).json()) as PutResult;
    expect(first.FailedEntryCount).toBe(2);
    expect(first.Entries.map((e) => e.ErrorCode ?? "ok")).toEqual(["ok", "InternalFailure", "ok", "InternalFailure"]);
    expect(fake.events.map((e) => e.entry.Detail)).toEqual(['{"id":0}', '{"id":2}']);

    const all = (await (await put(fake, [entry(4), entry(5)])).json()) as PutResult;
    expect(all.FailedEntryCount).toBe(2);
    expect(all.Entries.every((e) => e.ErrorCode === "ThrottlingException" && e.ErrorMessage)).toBe(true);
    expect(fake.events).toHaveLength(2);
    expect(lastCall(fake)).toMatchObject({ outcome: "fault", fault: "entries", status: 200, failedEntryCount: 2 });
  });

  it("entries: an invalid entry keeps its own error code", async () => {
    const fake = newFake();
    fake.inject({ type: "entries", code: "InternalFailure" });
    const body = (await (await put(fake, [entry(0, { Detail: "[]" }), entry(1)])).json()) as PutResult;
    expect(body.Entries.map((e) => e.ErrorCode)).toEqual(["MalformedDetail", "InternalFailure"]);
  });

  it("delay: answers normally afterwards", async () => {
    const fake = newFake();
    fake.inject({ type: "delay", ms: 5 });
    const res = await put(fake, [entry()]);
    expect(res.status).toBe(200);
    expect(lastCall(fake)).toMatchObject({ outcome: "accepted", fault: "delay" });
    expect(fake.events).toHaveLength(1);
  });

  it("lost: the events are recorded, then the caller sees TypeError('Network connection lost')", async () => {
    const fake = newFake();
    fake.inject({ type: "lost" });
    const req = await sign({ Entries: [entry(0), entry(1, { Source: "bad" })] });
    const err = await fake.fetch(req).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(TypeError);
    expect(err).toBeInstanceOf(LostResponseError);
    expect((err as Error).message).toBe("Network connection lost");
    expect(fake.events).toHaveLength(1);
    expect(lastCall(fake)).toMatchObject({ outcome: "fault", fault: "lost", status: 0, failedEntryCount: 1 });
  });

  it("faults are FIFO and never consumed (or masked) by a call that fails authentication or wire checks", async () => {
    const fake = newFake();
    fake.inject({ type: "throttle" }, { type: "error", status: 500, code: "InternalException" });
    await expectAwsError(
      await put(fake, [entry()], { cred: { ...CRED, secretAccessKey: "wrong" } }),
      400,
      "InvalidSignatureException",
    );
    await expectAwsError(await put(fake, [entry({} as never, { Time: "x" as never })]), 400, "SerializationException");
    expect(fake.pendingFaults).toHaveLength(2);
    await expectAwsError(await put(fake, [entry()]), 400, "ThrottlingException");
    await expectAwsError(await put(fake, [entry()]), 500, "InternalException");
    expect((await put(fake, [entry()])).status).toBe(200);
  });

  it("inject validates faults", () => {
    const fake = newFake();
    expect(() => fake.inject({ type: "delay", ms: -1 })).toThrow();
    expect(() => fake.inject({ type: "nope" } as never)).toThrow();
  });

  describe("random fault rates", () => {
    async function run(seed: number, calls: number): Promise<string[]> {
      const fake = newFake({ seed });
      fake.setFaultRates({ throttle: 0.2, error5xx: 0.2, entryFailure: 0.2, lost: 0.1 });
      const seen: string[] = [];
      for (let i = 0; i < calls; i++) {
        try {
          const res = await put(fake, [entry(0), entry(1), entry(2)]);
          const body = (await res.json()) as PutResult | { __type: string };
          seen.push(
            "__type" in body
              ? `${res.status} ${body.__type}`
              : `200 ${body.Entries.map((e) => e.ErrorCode ?? "ok").join(",")}`,
          );
        } catch (e) {
          seen.push(`lost ${(e as Error).message}`);
        }
      }
      return seen;
    }

    it("are reproducible with a seed and produce every kind of fault", async () => {
      const a = await run(7, 60);
      expect(await run(7, 60)).toEqual(a);
      expect(await run(8, 60)).not.toEqual(a);
      expect(a.some((s) => s === "400 ThrottlingException")).toBe(true);
      expect(a.some((s) => /^50[03] /.test(s))).toBe(true);
      expect(a.some((s) => /^200 .*(InternalFailure|ThrottlingException)/.test(s))).toBe(true);
      expect(a.some((s) => s === "lost Network connection lost")).toBe(true);
      expect(a.some((s) => s === "200 ok,ok,ok")).toBe(true);
    });

    it("rate 1 always faults; null switches them off; the sum may not exceed 1", async () => {
      const fake = newFake();
      fake.setFaultRates({ throttle: 1 });
      for (let i = 0; i < 5; i++) await expectAwsError(await put(fake, [entry()]), 400, "ThrottlingException");
      fake.setFaultRates(null);
      expect((await put(fake, [entry()])).status).toBe(200);
      expect(() => fake.setFaultRates({ throttle: 0.6, lost: 0.5 })).toThrow();
    });
  });
});

describe("control routes", () => {
  const base = "http://fake.test";

  it("inject faults, list events since an index, list calls, reset", async () => {
    const fake = newFake();
    const ctl = (path: string, init?: RequestInit) => fake.fetch(new Request(`${base}${path}`, init));

    const inj = await ctl("/_fake/faults", {
      method: "POST",
      body: JSON.stringify([{ type: "throttle" }, { type: "entries", code: "InternalFailure", indexes: [0] }]),
    });
    expect(inj.status).toBe(204);
    expect((await ctl("/_fake/faults", { method: "POST", body: JSON.stringify({ type: "delay" }) })).status).toBe(400);
    await expectAwsError(await put(fake, [entry(0)]), 400, "ThrottlingException");
    await put(fake, [entry(1), entry(2)]);
    await put(fake, [entry(3)]);

    const all = (await (await ctl("/_fake/events")).json()) as { events: ReceivedEvent[]; total: number };
    expect(all.total).toBe(2);
    expect(all.events.map((e) => e.entry.Detail)).toEqual(['{"id":2}', '{"id":3}']);
    const since = (await (await ctl("/_fake/events?since=1")).json()) as { events: ReceivedEvent[]; total: number };
    expect(since).toEqual({ events: [all.events[1]], total: 2 });
    expect((await ctl("/_fake/events?since=-1")).status).toBe(400);

    const calls = (await (await ctl("/_fake/calls")).json()) as { calls: CallRecord[] };
    expect(calls.calls.map((c) => c.fault ?? c.outcome)).toEqual(["throttle", "entries", "accepted"]);

    expect((await ctl("/_fake/reset", { method: "POST" })).status).toBe(204);
    expect(fake.events).toHaveLength(0);
    expect(fake.calls).toHaveLength(0);
  });

  it("fault rates over HTTP, DELETE clears queue and rates", async () => {
    const fake = newFake();
    const ctl = (path: string, init?: RequestInit) => fake.fetch(new Request(`${base}${path}`, init));
    expect((await ctl("/_fake/fault-rates", { method: "PUT", body: JSON.stringify({ throttle: 1 }) })).status).toBe(
      204,
    );
    expect((await ctl("/_fake/fault-rates", { method: "PUT", body: JSON.stringify({ throttle: 2 }) })).status).toBe(
      400,
    );
    await expectAwsError(await put(fake, [entry()]), 400, "ThrottlingException");
    fake.inject({ type: "lost" });
    expect((await ctl("/_fake/faults", { method: "DELETE" })).status).toBe(204);
    expect(fake.pendingFaults).toHaveLength(0);
    expect((await put(fake, [entry()])).status).toBe(200);
    expect((await ctl("/_fake/fault-rates", { method: "PUT", body: "null" })).status).toBe(204);
  });

  it("adds credentials", async () => {
    const fake = newFake({ credentials: [] });
    const res = await fake.fetch(
      new Request(`${base}/_fake/credentials`, { method: "POST", body: JSON.stringify(CRED) }),
    );
    expect(res.status).toBe(204);
    expect((await put(fake, [entry()])).status).toBe(200);
    expect((await fake.fetch(new Request(`${base}/_fake/credentials`, { method: "POST", body: "{}" }))).status).toBe(
      400,
    );
  });

  it("serves an HTML page with everything escaped", async () => {
    const fake = newFake();
    await put(fake, [
      entry(0, {
        DetailType: `<script>alert("x")</script>`,
        Detail: JSON.stringify({ html: "<img src=x onerror=alert(1)>" }),
      }),
    ]);
    const res = await fake.fetch(new Request(`${base}/_fake/`));
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toMatch(/^text\/html/);
    const html = await res.text();
    expect(html).toContain('http-equiv="refresh"');
    expect(html).toContain(fake.events[0]!.eventId);
    expect(html).not.toContain("<script>");
    expect(html).not.toContain("<img");
    expect(html).toContain("&#60;script&#62;alert(&#34;x&#34;)&#60;/script&#62;");
  });

  it("unknown control routes are 404", async () => {
    const fake = newFake();
    expect((await fake.fetch(new Request(`${base}/_fake/nope`))).status).toBe(404);
  });
});

describe("a second signer: @aws-sdk/client-eventbridge", () => {
  /** A real SDK client whose transport is fake.fetch. */
  function sdkClient(fake: FakeEventBridge, cred: FakeCredential): EventBridgeClient {
    return new EventBridgeClient({
      region: REGION,
      endpoint: `https://events.${REGION}.amazonaws.com`,
      credentials: { ...cred }, // the SDK annotates the object it is given
      maxAttempts: 1,
      requestHandler: {
        async handle(req: HttpRequest) {
          const query = new URLSearchParams();
          for (const [k, v] of Object.entries(req.query ?? {})) {
            for (const one of Array.isArray(v) ? v : [v]) if (one !== null) query.append(k, one);
          }
          const qs = query.size ? `?${query}` : "";
          const url = `${req.protocol}//${req.hostname}${req.port ? `:${req.port}` : ""}${req.path}${qs}`;
          const res = await fake.fetch(
            new Request(url, { method: req.method, headers: req.headers, body: req.body as BodyInit }),
          );
          const headers: Record<string, string> = {};
          res.headers.forEach((value, name) => {
            headers[name] = value;
          });
          return {
            response: new HttpResponse({
              statusCode: res.status,
              headers,
              body: new Uint8Array(await res.arrayBuffer()),
            }),
          };
        },
      },
    });
  }

  const sdkEntries: PutPartnerEventsRequestEntry[] = [
    {
      Time: new Date(Date.UTC(2026, 0, 2, 3, 4, 5, 500)),
      Source: SOURCE,
      DetailType: "Order Created",
      Detail: '{"id":1}',
      Resources: ["arn:aws:s3:::b"],
    },
    { Source: SOURCE, DetailType: "Order Created", Detail: '{"id":2}' },
  ];

  it("accepts the SDK's requests (nine signed headers incl. x-amz-content-sha256) and gives EventIds", async () => {
    // The SDK signs with the real clock.
    const fake = new FakeEventBridge({ credentials: [CRED] });
    const out = await sdkClient(fake, CRED).send(new PutPartnerEventsCommand({ Entries: sdkEntries }));
    expect(out.FailedEntryCount).toBe(0);
    expect(out.Entries?.map((e) => e.EventId)).toEqual(fake.events.map((e) => e.eventId));
    expect(fake.events[0]?.entry.Time).toBe(1_767_323_045.5);
    const call = lastCall(fake);
    expect(call.signedHeaders).toEqual(
      expect.arrayContaining(["content-type", "host", "x-amz-content-sha256", "x-amz-date", "x-amz-target"]),
    );
    expect(call.outcome).toBe("accepted");
  });

  it("accepts the SDK with temporary credentials", async () => {
    const fake = new FakeEventBridge({ credentials: [TEMP_CRED] });
    const out = await sdkClient(fake, TEMP_CRED).send(new PutPartnerEventsCommand({ Entries: sdkEntries }));
    expect(out.FailedEntryCount).toBe(0);
    expect(lastCall(fake).signedHeaders).toContain("x-amz-security-token");
  });

  it("the SDK sees our errors as the typed AWS exceptions, and per-entry failures index-aligned", async () => {
    const fake = new FakeEventBridge({ credentials: [CRED] });
    const wrong = sdkClient(fake, { ...CRED, secretAccessKey: "wrong" });
    await expect(wrong.send(new PutPartnerEventsCommand({ Entries: sdkEntries }))).rejects.toMatchObject({
      name: "InvalidSignatureException",
      $metadata: { httpStatusCode: 400 },
    });
    const client = sdkClient(fake, CRED);
    fake.inject(
      { type: "throttle" },
      { type: "error", status: 500, code: "com.amazonaws.events#InternalException" },
      { type: "entries", code: "InternalFailure", indexes: [1] },
    );
    await expect(client.send(new PutPartnerEventsCommand({ Entries: sdkEntries }))).rejects.toMatchObject({
      name: "ThrottlingException",
    });
    await expect(client.send(new PutPartnerEventsCommand({ Entries: sdkEntries }))).rejects.toMatchObject({
      name: "InternalException",
      $metadata: { httpStatusCode: 500 },
    });
    const out = await client.send(new PutPartnerEventsCommand({ Entries: sdkEntries }));
    expect(out.FailedEntryCount).toBe(1);
    expect(out.Entries?.[0]?.EventId).toMatch(UUID);
    expect(out.Entries?.[1]).toMatchObject({ ErrorCode: "InternalFailure" });
  });
});
