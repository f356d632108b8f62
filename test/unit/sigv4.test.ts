/**
 * Inbound SigV4 (src/auth/sigv4.ts) against real signers, inside workerd:
 * - the JS SDK v3 itself (a real EventBridgeClient whose request handler captures the request),
 * - @smithy/signature-v4 driven by hand (the SDK's signer; also the botocore header set),
 * - aws4fetch with `allHeaders: true` (botocore's signed header set).
 * Nothing in the module is mocked; time is passed in, never read, so nothing here is timed.
 */

import { Sha256 } from "@aws-crypto/sha256-js";
import { EventBridgeClient, PutPartnerEventsCommand } from "@aws-sdk/client-eventbridge";
import { HttpRequest, HttpResponse } from "@smithy/protocol-http";
import { SignatureV4 } from "@smithy/signature-v4";
import { AwsClient } from "aws4fetch";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { toHex } from "../../src/auth/api-key.ts";
import {
  generateSigV4KeyPair,
  hasPresignedQuery,
  type ParsedSigV4,
  parseSigV4,
  SIGV4_ACCESS_KEY_PATTERN,
  SIGV4_SECRET_PATTERN,
  SIGV4_SIGNING_KEY_CACHE_MAX_ENTRIES,
  SigV4Errors,
  verifySigV4,
} from "../../src/auth/sigv4.ts";
import { errorResponse, RelayError } from "../../src/errors.ts";
import { SIGV4_MAX_SKEW_MS } from "../../src/limits.ts";

const KEY = { accessKeyId: "RLYABCDEFGHIJKLMNOPQ", secretAccessKey: "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY" };
const OTHER_SECRET = "je7MtGbClwBF/2Zp9Utk/h3yCo8nvbEXAMPLEKEY";
const ENDPOINT = "http://127.0.0.1:8787";
const TARGET = "AWSEvents.PutPartnerEvents";
const JSON_11 = "application/x-amz-json-1.1";
const BODY = JSON.stringify({
  Entries: [
    { Time: 1704164645, Source: "aws.partner/example.com/t42/orders", DetailType: "Order Created", Detail: '{"id":1}' },
  ],
});
const BOTOCORE_SIGNED = ["content-type", "host", "x-amz-date", "x-amz-target"];
const SDK_SIGNED = [
  "amz-sdk-invocation-id",
  "amz-sdk-request",
  "content-length",
  "content-type",
  "host",
  "x-amz-content-sha256",
  "x-amz-date",
  "x-amz-target",
  "x-amz-user-agent",
];
const SIGNATURE_MISMATCH =
  "The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method. Consult the service documentation for details.";

/** A request as the front door hands it over. */
interface Wire {
  method: string;
  url: string;
  headers: Headers;
  body: Uint8Array;
}

const enc = (s: string) => new TextEncoder().encode(s);

function amzDateMs(amzDate: string): number {
  const m = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/.exec(amzDate)!;
  return Date.UTC(+m[1]!, +m[2]! - 1, +m[3]!, +m[4]!, +m[5]!, +m[6]!);
}

function toWire(req: HttpRequest): Wire {
  const qs = new URLSearchParams();
  for (const [k, v] of Object.entries(req.query ?? {})) {
    for (const one of Array.isArray(v) ? v : [v]) if (one != null) qs.append(k, one);
  }
  // Encode the way SDKs put the query on the wire: %20, not "+".
  const query = qs.toString().replace(/\+/g, "%20");
  const port = req.port ? `:${req.port}` : "";
  const body =
    req.body == null ? new Uint8Array() : typeof req.body === "string" ? enc(req.body) : (req.body as Uint8Array);
  return {
    method: req.method,
    url: `${req.protocol}//${req.hostname}${port}${req.path}${query ? "?" + query : ""}`,
    headers: new Headers(req.headers),
    body,
  };
}

/** Parses then verifies, `now` defaulting to the request's own X-Amz-Date. */
async function check(
  w: Wire,
  opts: { secret?: string; now?: number; bodySha256Hex?: string } = {},
): Promise<ParsedSigV4> {
  const parsed = parseSigV4(w.headers, w.url);
  await verifySigV4({
    method: w.method,
    url: w.url,
    headers: w.headers,
    body: w.body,
    parsed,
    secretAccessKey: opts.secret ?? KEY.secretAccessKey,
    now: opts.now ?? amzDateMs(parsed.amzDate),
    ...(opts.bodySha256Hex !== undefined ? { bodySha256Hex: opts.bodySha256Hex } : {}),
  });
  return parsed;
}

async function refusal(p: Promise<unknown> | (() => unknown)): Promise<RelayError> {
  try {
    await (typeof p === "function" ? p() : p);
  } catch (e) {
    expect(e).toBeInstanceOf(RelayError);
    return e as RelayError;
  }
  throw new Error("expected a RelayError, but the request verified");
}

function expectShape(
  err: RelayError,
  want: { code: string; type: string; awsStatus?: number; status: number; detail?: string | RegExp },
): void {
  expect(err.code).toBe(want.code);
  expect(err.aws).toEqual({ type: want.type, status: want.awsStatus ?? 400 });
  expect(err.status).toBe(want.status);
  if (typeof want.detail === "string") expect(err.detail).toBe(want.detail);
  else if (want.detail) expect(err.detail).toMatch(want.detail);
}

// ---- Signers --------------------------------------------------------------------------------------

/** (1) The real JS SDK v3: an EventBridgeClient whose request handler captures what it would send. */
async function sdkRequest(
  opts: {
    region?: string;
    sessionToken?: string;
    entries?: { Source: string; DetailType: string; Detail: string }[];
  } = {},
): Promise<Wire> {
  let captured: HttpRequest | undefined;
  const client = new EventBridgeClient({
    region: opts.region ?? "eu-west-1",
    endpoint: ENDPOINT,
    credentials: { ...KEY, ...(opts.sessionToken ? { sessionToken: opts.sessionToken } : {}) },
    maxAttempts: 1,
    requestHandler: {
      async handle(req: HttpRequest) {
        captured = req;
        const body = enc('{"FailedEntryCount":0,"Entries":[{"EventId":"x"}]}');
        return { response: new HttpResponse({ statusCode: 200, headers: { "content-type": JSON_11 }, body }) };
      },
    },
  });
  const out = await client.send(
    new PutPartnerEventsCommand({
      Entries: opts.entries ?? [{ Source: "aws.partner/example.com/t/orders", DetailType: "x", Detail: "{}" }],
    }),
  );
  expect(out.FailedEntryCount).toBe(0);
  return toWire(captured!);
}

/** (2) aws4fetch with allHeaders: botocore's header set, no Host header on the Request. */
async function aws4fetchRequest(
  opts: { datetime?: string; url?: string; signQuery?: boolean; body?: string } = {},
): Promise<Wire> {
  const aws = new AwsClient({ ...KEY, service: "events", region: "us-east-1", retries: 0 });
  const req = await aws.sign(opts.url ?? `${ENDPOINT}/`, {
    method: "POST",
    headers: { "content-type": JSON_11, "x-amz-target": TARGET },
    body: opts.body ?? BODY,
    aws: {
      allHeaders: true,
      datetime: opts.datetime ?? "20240101T000000Z",
      ...(opts.signQuery ? { signQuery: true } : {}),
    },
  });
  return { method: req.method, url: req.url, headers: req.headers, body: new Uint8Array(await req.arrayBuffer()) };
}

/** (3) @smithy/signature-v4 by hand: any header set, date, region, service, path and query. */
async function smithyRequest(
  opts: {
    body?: Uint8Array | string;
    date?: Date;
    region?: string;
    service?: string;
    secret?: string;
    headers?: Record<string, string>;
    host?: string | null;
    path?: string;
    query?: Record<string, string | string[]>;
    applyChecksum?: boolean;
  } = {},
): Promise<Wire> {
  const host = opts.host === undefined ? "events.us-east-1.amazonaws.com" : opts.host;
  const [hostname, port] = (host ?? "events.us-east-1.amazonaws.com").split(":");
  const body = typeof opts.body === "string" ? enc(opts.body) : (opts.body ?? enc(BODY));
  const signer = new SignatureV4({
    credentials: { accessKeyId: KEY.accessKeyId, secretAccessKey: opts.secret ?? KEY.secretAccessKey },
    region: opts.region ?? "us-east-1",
    service: opts.service ?? "events",
    sha256: Sha256,
    applyChecksum: opts.applyChecksum ?? false,
  });
  const req = new HttpRequest({
    method: "POST",
    protocol: "https:",
    hostname: hostname!,
    ...(port ? { port: Number(port) } : {}),
    path: opts.path ?? "/",
    query: opts.query ?? {},
    headers: {
      "content-type": JSON_11,
      "x-amz-target": TARGET,
      ...(host !== null ? { host } : {}),
      ...opts.headers,
    },
    body,
  });
  const signed = (await signer.sign(req, {
    signingDate: opts.date ?? new Date("2024-01-01T00:00:00Z"),
  })) as HttpRequest;
  return toWire(signed);
}

/** The Authorization header rewritten (keeps everything else, so only the header is at fault). */
function withHeaders(w: Wire, set: Record<string, string | null>): Wire {
  const headers = new Headers(w.headers);
  for (const [k, v] of Object.entries(set)) {
    if (v === null) headers.delete(k);
    else headers.set(k, v);
  }
  return { ...w, headers };
}

// ---- Accepted clients ------------------------------------------------------------------------------

describe("real signers verify", () => {
  it("the JS SDK v3 EventBridgeClient (nine signed headers, host with port)", async () => {
    const w = await sdkRequest();
    const parsed = await check(w);
    expect(parsed.signedHeaders).toEqual(SDK_SIGNED);
    expect(parsed).toMatchObject({
      accessKeyId: KEY.accessKeyId,
      region: "eu-west-1",
      service: "events",
      securityToken: null,
    });
    expect(w.headers.get("host")).toBe("127.0.0.1:8787");
    expect(parsed.scopeDate).toBe(parsed.amzDate.slice(0, 8));
  });

  it("the JS SDK v3 with a client region unlike the tenant's (any well-formed region)", async () => {
    for (const region of ["us-gov-west-1", "cn-north-1", "ap-southeast-5", "local"]) {
      expect((await check(await sdkRequest({ region }))).region).toBe(region);
    }
  });

  it("the JS SDK v3 with a non-ASCII, multi-entry body", async () => {
    const entries = Array.from({ length: 20 }, (_, i) => ({
      Source: "aws.partner/example.com/t/orders",
      DetailType: `Bestellung ${i} — überprüft ✓`,
      Detail: JSON.stringify({ i, text: '日本語 \u0000 "quoted"' }),
    }));
    await check(await sdkRequest({ entries }));
  });

  it("aws4fetch with allHeaders (botocore's set; host from the URL, port kept)", async () => {
    const w = await aws4fetchRequest();
    expect(w.headers.get("host")).toBeNull();
    const parsed = await check(w);
    expect(parsed.signedHeaders).toEqual(BOTOCORE_SIGNED);
  });

  it("the botocore header set signed by SignatureV4 (no x-amz-content-sha256), unsigned headers ignored", async () => {
    const w = await smithyRequest();
    const parsed = await check(
      withHeaders(w, {
        "user-agent": "aws-cli/1.45.11",
        "accept-encoding": "identity",
        "content-length": String(w.body.length),
      }),
    );
    expect(parsed.signedHeaders).toEqual(BOTOCORE_SIGNED);
    expect(w.headers.get("x-amz-content-sha256")).toBeNull();
  });

  it("a host with a non-default port, from the Host header", async () => {
    const w = await smithyRequest({ host: "127.0.0.1:8787" });
    expect(w.url).toBe("https://127.0.0.1:8787/");
    await check(w);
    // The port is part of what was signed: the same request claiming another port does not verify.
    expectShape(await refusal(check(withHeaders(w, { host: "127.0.0.1" }))), {
      code: "signature_mismatch",
      type: "InvalidSignatureException",
      status: 401,
      detail: SIGNATURE_MISMATCH,
    });
  });

  it("Host comes from the URL when the header is absent, and a default port is not part of it", async () => {
    const w = await smithyRequest({ host: "events.eu-west-1.amazonaws.com" });
    await check({ ...withHeaders(w, { host: null }), url: "https://events.eu-west-1.amazonaws.com:443/" });
  });

  it("a non-root path and a query string are canonicalised like the SDK does it", async () => {
    const w = await smithyRequest({
      path: "/a%20b/c%2Fd/./e/../f/",
      query: { b: "2", a: "x y+z/é", c: ["2", "1"], empty: "" },
    });
    await check(w);
  });

  it("reuses a body hash the caller already computed, and trusts it", async () => {
    const w = await sdkRequest();
    const hash = toHex(new Uint8Array(await crypto.subtle.digest("SHA-256", w.body as Uint8Array<ArrayBuffer>)));
    await check(w, { bodySha256Hex: hash });
    await check(w, { bodySha256Hex: hash.toUpperCase() });
    // A wrong hash is used as given (no second hashing), so the request fails.
    expectShape(await refusal(check(w, { bodySha256Hex: "0".repeat(64) })), {
      code: "content_sha256_mismatch",
      type: "InvalidSignatureException",
      status: 401,
    });
    await expect(check(w, { bodySha256Hex: "xyz" })).rejects.toThrow(TypeError);
  });

  it("the Authorization parts in any order, with or without spaces after commas", async () => {
    const w = await aws4fetchRequest();
    const auth = w.headers.get("authorization")!;
    const m = /^AWS4-HMAC-SHA256 (Credential=[^,]+), (SignedHeaders=[^,]+), (Signature=[0-9a-f]{64})$/.exec(auth)!;
    const [, cred, sh, sig] = m as unknown as [string, string, string, string];
    for (const a of [
      `AWS4-HMAC-SHA256 ${sig}, ${cred}, ${sh}`,
      `AWS4-HMAC-SHA256 ${cred},${sh},${sig}`,
      `AWS4-HMAC-SHA256   ${sh} ,  ${sig},${cred}`,
      `AWS4-HMAC-SHA256 ${cred}, ${sh}, ${sig.replace(/[0-9a-f]{64}$/, (hex) => hex.toUpperCase())}`,
    ]) {
      await check(withHeaders(w, { authorization: a }));
    }
  });
});

// ---- Refused: payload ------------------------------------------------------------------------------

describe("the payload", () => {
  it("a tampered body never verifies (botocore set: no content hash header)", async () => {
    const w = await smithyRequest();
    const body = w.body.slice();
    body[10] = body[10]! ^ 1;
    expectShape(await refusal(check({ ...w, body })), {
      code: "signature_mismatch",
      type: "InvalidSignatureException",
      status: 401,
      detail: SIGNATURE_MISMATCH,
    });
  });

  it("THE TRAP: a body swapped under the original x-amz-content-sha256 is refused", async () => {
    const w = await sdkRequest();
    const swapped = enc(new TextDecoder().decode(w.body).replace('"DetailType":"x"', '"DetailType":"y"'));
    expect(swapped.length).toBe(w.body.length); // content-length still matches: only the hash can tell
    expectShape(await refusal(check({ ...w, body: swapped })), {
      code: "content_sha256_mismatch",
      type: "InvalidSignatureException",
      status: 401,
      detail: "The provided x-amz-content-sha256 header does not match what was computed.",
    });
  });

  it("a swapped body with x-amz-content-sha256 recomputed to match still fails (the header is signed)", async () => {
    const w = await sdkRequest();
    const swapped = enc(new TextDecoder().decode(w.body).replace('"DetailType":"x"', '"DetailType":"y"'));
    const hash = toHex(new Uint8Array(await crypto.subtle.digest("SHA-256", swapped)));
    expectShape(await refusal(check({ ...withHeaders(w, { "x-amz-content-sha256": hash }), body: swapped })), {
      code: "signature_mismatch",
      type: "InvalidSignatureException",
      status: 401,
    });
  });

  it("UNSIGNED-PAYLOAD and STREAMING-* are refused, even when correctly signed", async () => {
    for (const value of [
      "UNSIGNED-PAYLOAD",
      "STREAMING-AWS4-HMAC-SHA256-PAYLOAD",
      "STREAMING-UNSIGNED-PAYLOAD-TRAILER",
    ]) {
      // SignatureV4 uses a preset x-amz-content-sha256 as the payload hash, as a client would.
      const w = await smithyRequest({ headers: { "x-amz-content-sha256": value } });
      expect(parseSigV4(w.headers).signedHeaders).toContain("x-amz-content-sha256");
      expectShape(await refusal(check(w)), {
        code: "unsigned_payload_not_supported",
        type: "InvalidSignatureException",
        status: 400,
        detail: new RegExp(`requires a signed payload.*not ${value}`),
      });
    }
  });
});

// ---- Refused: credentials --------------------------------------------------------------------------

describe("credentials", () => {
  it("a wrong secret fails, and no error carries the secret, the expected signature or the string to sign", async () => {
    const w = await smithyRequest({ secret: OTHER_SECRET });
    const err = await refusal(check(w));
    expectShape(err, {
      code: "signature_mismatch",
      type: "InvalidSignatureException",
      status: 401,
      detail: SIGNATURE_MISMATCH,
    });
    // What the verifier computed = the same request signed with the verifier's secret.
    const expected = parseSigV4((await smithyRequest()).headers).signature;
    const everything = JSON.stringify({ ...err, message: err.message, stack: err.stack });
    for (const secret of [expected, KEY.secretAccessKey, OTHER_SECRET, "AWS4-HMAC-SHA256\n"]) {
      expect(everything).not.toContain(secret);
    }
    expect(err.logReason).toContain(KEY.accessKeyId);
    const r = errorResponse(err, "aws");
    expect(r.status).toBe(400);
    expect(await r.json()).toEqual({ __type: "InvalidSignatureException", message: SIGNATURE_MISMATCH });
  });

  it("the signing-key cache is keyed by the secret: a cached key never verifies another secret", async () => {
    const w = await smithyRequest();
    await check(w);
    await check(w); // from the cache
    expect((await refusal(check(w, { secret: OTHER_SECRET }))).code).toBe("signature_mismatch");
    await check(w);
  });

  it("stays correct past the cache's bound", async () => {
    const pairs = Array.from(
      { length: SIGV4_SIGNING_KEY_CACHE_MAX_ENTRIES + 5 },
      () => generateSigV4KeyPair().secretAccessKey,
    );
    const w = await smithyRequest();
    for (const s of pairs) expect((await refusal(check(w, { secret: s }))).code).toBe("signature_mismatch");
    await check(w);
  });

  it("temporary credentials (x-amz-security-token) are refused as UnrecognizedClientException", async () => {
    const w = await sdkRequest({ sessionToken: "FwoGZXIvYXdzEXAMPLETOKEN" });
    const parsed = parseSigV4(w.headers);
    expect(parsed.securityToken).toBe("FwoGZXIvYXdzEXAMPLETOKEN");
    expect(parsed.signedHeaders).toContain("x-amz-security-token");
    const err = await refusal(check(w));
    expectShape(err, {
      code: "temporary_credentials_not_supported",
      type: "UnrecognizedClientException",
      status: 401,
      detail: /long-term key pairs.*AWS_SESSION_TOKEN.*aws_session_token/,
    });
    expect(err.detail).not.toContain("FwoGZXIvYXdzEXAMPLETOKEN");
  });

  it("SigV4Errors.unknownAccessKey: AWS's words, plus a hint for non-relay ids", () => {
    const relay = SigV4Errors.unknownAccessKey(KEY.accessKeyId);
    expect(relay.aws).toEqual({ type: "UnrecognizedClientException", status: 400 });
    expect(relay.detail).toMatch(/^The security token included in the request is invalid\. The relay does not know/);
    expect(SigV4Errors.unknownAccessKey("AKIAIOSFODNN7EXAMPLE").detail).toMatch(/not a relay-issued access key id/);
  });
});

// ---- Refused: time and scope -----------------------------------------------------------------------

describe("the clock", () => {
  const T = "20240101T000000Z";
  const t = Date.UTC(2024, 0, 1);

  it("accepts X-Amz-Date up to 5 minutes old, refuses a second more with AWS's wording", async () => {
    const w = await aws4fetchRequest({ datetime: T });
    await check(w, { now: t + SIGV4_MAX_SKEW_MS });
    await check(w, { now: t + SIGV4_MAX_SKEW_MS + 999 }); // X-Amz-Date has whole seconds
    const err = await refusal(check(w, { now: t + SIGV4_MAX_SKEW_MS + 1000 }));
    expectShape(err, {
      code: "signature_expired",
      type: "InvalidSignatureException",
      status: 401,
      detail: "Signature expired: 20240101T000000Z is now earlier than 20240101T000001Z (20240101T000501Z - 5 min.)",
    });
    expect(err.headers.date).toBe(new Date(t + SIGV4_MAX_SKEW_MS + 1000).toUTCString());
    expect((await refusal(check(w, { now: t + 601_000 }))).detail).toBe(
      "Signature expired: 20240101T000000Z is now earlier than 20240101T000501Z (20240101T001001Z - 5 min.)",
    );
  });

  it("accepts X-Amz-Date up to 5 minutes ahead, refuses a second more", async () => {
    const w = await aws4fetchRequest({ datetime: T });
    await check(w, { now: t - SIGV4_MAX_SKEW_MS });
    expectShape(await refusal(check(w, { now: t - SIGV4_MAX_SKEW_MS - 1 })), {
      code: "signature_not_yet_current",
      type: "InvalidSignatureException",
      status: 401,
      detail:
        "Signature not yet current: 20240101T000000Z is still later than 20231231T235959Z (20231231T235459Z + 5 min.)",
    });
  });

  it("the credential scope date must be X-Amz-Date's date", async () => {
    const w = await smithyRequest({ date: new Date("2024-01-01T23:59:59Z") });
    const err = await refusal(() => parseSigV4(withHeaders(w, { "x-amz-date": "20240102T000001Z" }).headers));
    expectShape(err, {
      code: "invalid_credential_scope",
      type: "InvalidSignatureException",
      status: 401,
      detail:
        "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP: '20240101' != '20240102', from '20240102T000001Z'.",
    });
  });

  it("a changed X-Amz-Date on the same day fails the signature (the header is signed)", async () => {
    const w = withHeaders(await aws4fetchRequest({ datetime: T }), { "x-amz-date": "20240101T000001Z" });
    expect((await refusal(check(w))).code).toBe("signature_mismatch");
  });
});

describe("the credential scope", () => {
  it("service must be events", async () => {
    const w = await smithyRequest({ service: "execute-api" });
    expectShape(await refusal(() => parseSigV4(w.headers)), {
      code: "invalid_credential_scope",
      type: "InvalidSignatureException",
      status: 401,
      detail: "Credential should be scoped to correct service: 'events'. ",
    });
  });

  it("terminator must be aws4_request; region must be well formed", async () => {
    const w = await smithyRequest();
    const auth = w.headers.get("authorization")!;
    const term = await refusal(() =>
      parseSigV4(withHeaders(w, { authorization: auth.replace("aws4_request", "aws5_request") }).headers),
    );
    expect(term.detail).toBe(
      "Credential should be scoped with a valid terminator: 'aws4_request', not 'aws5_request'. ",
    );
    expect(term.aws.type).toBe("InvalidSignatureException");
    for (const region of ["us_east_1", "-us-east-1", "us-east-1-", "a".repeat(64)]) {
      const bad = withHeaders(w, { authorization: auth.replace("/us-east-1/", `/${region}/`) });
      expect((await refusal(() => parseSigV4(bad.headers))).detail).toBe(
        "Credential should be scoped to a valid region. ",
      );
    }
  });
});

// ---- Refused: the Authorization header and the signed headers -----------------------------------

describe("the Authorization header", () => {
  it("absent or empty: MissingAuthenticationTokenException (AWS's answer to --no-sign-request)", async () => {
    const w = await aws4fetchRequest();
    for (const auth of [null, "", "   "]) {
      const err = await refusal(() => parseSigV4(withHeaders(w, { authorization: auth }).headers));
      expectShape(err, {
        code: "missing_signature",
        type: "MissingAuthenticationTokenException",
        awsStatus: 403,
        status: 401,
        detail: "Missing Authentication Token",
      });
      expect(err.headers["www-authenticate"]).toBe("AWS4-HMAC-SHA256");
    }
  });

  it("presigned query authentication is refused as such", async () => {
    const w = await aws4fetchRequest({ signQuery: true });
    expect(hasPresignedQuery(w.url)).toBe(true);
    const want = {
      code: "presigned_not_supported",
      type: "IncompleteSignatureException",
      status: 400,
      detail: /Authorization header only; query-string \(presigned URL\)/,
    };
    expectShape(await refusal(() => parseSigV4(w.headers, w.url)), want);
    // Without the URL, parse sees no Authorization; verify still refuses the query form.
    expect((await refusal(() => parseSigV4(w.headers))).code).toBe("missing_signature");
    const good = await aws4fetchRequest();
    const parsed = parseSigV4(good.headers);
    expectShape(
      await refusal(
        verifySigV4({ ...good, url: w.url, parsed, secretAccessKey: KEY.secretAccessKey, now: Date.UTC(2024, 0, 1) }),
      ),
      want,
    );
  });

  it("malformed variants: IncompleteSignatureException with a precise message", async () => {
    const w = await aws4fetchRequest();
    const cred = `Credential=${KEY.accessKeyId}/20240101/us-east-1/events/aws4_request`;
    const sh = "SignedHeaders=content-type;host;x-amz-date;x-amz-target";
    const sig = `Signature=${"a".repeat(64)}`;
    const cases: [string, string | RegExp][] = [
      ["Bearer ebr_0123456789", "Authorization header must use AWS4-HMAC-SHA256 (Signature Version 4); got 'Bearer'."],
      [`AWS ${KEY.accessKeyId}:c2lnbmF0dXJl`, /got 'AWS'\.$/],
      [`AWS4-ECDSA-P256-SHA256 ${cred}, ${sh}, ${sig}`, /got 'AWS4-ECDSA-P256-SHA256'/],
      [
        "AWS4-HMAC-SHA256",
        "Authorization header requires 'Credential' parameter. Authorization header requires 'SignedHeaders' parameter. Authorization header requires 'Signature' parameter.",
      ],
      [`AWS4-HMAC-SHA256 ${cred}, ${sh}`, "Authorization header requires 'Signature' parameter."],
      [`AWS4-HMAC-SHA256 ${cred}, ${sh}, Signature=`, "Authorization header requires 'Signature' parameter."],
      [`AWS4-HMAC-SHA256 ${cred}, ${sh}, ${sig}, Foo=bar`, /unknown or malformed parameter 'Foo'/],
      [
        `AWS4-HMAC-SHA256 ${cred}, ${cred}, ${sh}, ${sig}`,
        "Authorization header has the 'Credential' parameter more than once.",
      ],
      [
        `AWS4-HMAC-SHA256 ${cred} ${sh} ${sig}`,
        "Authorization header parameters must be separated by commas: Credential=..., SignedHeaders=..., Signature=....",
      ],
      [
        `AWS4-HMAC-SHA256 Credential=${KEY.accessKeyId}/20240101/us-east-1/events, ${sh}, ${sig}`,
        `Credential must have exactly 5 slash-delimited elements, e.g. keyid/date/region/service/term, got '${KEY.accessKeyId}/20240101/us-east-1/events'`,
      ],
      [
        `AWS4-HMAC-SHA256 Credential=/20240101/us-east-1/events/aws4_request, ${sh}, ${sig}`,
        /exactly 5 slash-delimited/,
      ],
      [
        `AWS4-HMAC-SHA256 ${cred}, ${sh}, Signature=${"a".repeat(63)}`,
        "Signature must be 64 hexadecimal characters (the hex HMAC-SHA256).",
      ],
      [`AWS4-HMAC-SHA256 ${cred}, ${sh}, Signature=${"g".repeat(64)}`, /64 hexadecimal/],
      [`AWS4-HMAC-SHA256 ${cred}, SignedHeaders=host;content-type;x-amz-date, ${sig}`, /must be sorted/],
      [`AWS4-HMAC-SHA256 ${cred}, SignedHeaders=content-type;host;host;x-amz-date, ${sig}`, /must not repeat/],
      [
        `AWS4-HMAC-SHA256 ${cred}, SignedHeaders=Content-Type;Host;X-Amz-Date, ${sig}`,
        /lower-case header names.*'Content-Type'/,
      ],
      [`AWS4-HMAC-SHA256 ${cred}, SignedHeaders=host;;x-amz-date, ${sig}`, /lower-case header names/],
      [
        `AWS4-HMAC-SHA256 ${cred}, SignedHeaders=content-type;x-amz-date;x-amz-target, ${sig}`,
        "'Host' or ':authority' must be a 'SignedHeader' in the AWS Authorization.",
      ],
      [
        `AWS4-HMAC-SHA256 ${cred}, SignedHeaders=content-type;host;x-amz-target, ${sig}`,
        "'X-Amz-Date' must be a 'SignedHeader' in the AWS Authorization.",
      ],
    ];
    for (const [authorization, detail] of cases) {
      const err = await refusal(() => parseSigV4(withHeaders(w, { authorization }).headers));
      expectShape(err, { code: "malformed_signature", type: "IncompleteSignatureException", status: 400, detail });
    }
  });

  it("X-Amz-Date absent or not yyyymmddThhmmssZ", async () => {
    const w = await aws4fetchRequest();
    const cases: [string | null, string | RegExp][] = [
      [
        null,
        "Authorization header requires existence of an 'X-Amz-Date' header (the relay does not accept 'Date' in its place).",
      ],
      [
        "2024-01-01T00:00:00Z",
        "Date must be in ISO-8601 'basic format'. Got '2024-01-01T00:00:00Z'. See http://en.wikipedia.org/wiki/ISO_8601",
      ],
      ["20240101T000000", /Got '20240101T000000'/],
      ["20240231T000000Z", /Got '20240231T000000Z'/],
      ["20240101T246000Z", /Got '20240101T246000Z'/],
    ];
    for (const [date, detail] of cases) {
      const err = await refusal(() =>
        parseSigV4(withHeaders(w, { "x-amz-date": date, date: "Mon, 01 Jan 2024 00:00:00 GMT" }).headers),
      );
      expectShape(err, { code: "malformed_signature", type: "IncompleteSignatureException", status: 400, detail });
    }
  });

  it("host not signed (a signer that saw no Host header) is refused", async () => {
    const w = await smithyRequest({ host: null });
    expect((await refusal(check(w))).detail).toBe(
      "'Host' or ':authority' must be a 'SignedHeader' in the AWS Authorization.",
    );
  });

  it("a signed header missing from the request is refused by name", async () => {
    const w = withHeaders(await sdkRequest(), { "amz-sdk-invocation-id": null });
    expectShape(await refusal(check(w)), {
      code: "malformed_signature",
      type: "IncompleteSignatureException",
      status: 400,
      detail:
        "The request has no 'amz-sdk-invocation-id' header, but SignedHeaders lists it: every signed header must be sent.",
    });
  });

  it("a changed value of any signed header fails; of an unsigned one does not", async () => {
    const w = await sdkRequest();
    for (const name of SDK_SIGNED.filter((h) => h !== "x-amz-date" && h !== "x-amz-content-sha256")) {
      const err = await refusal(check(withHeaders(w, { [name]: w.headers.get(name) + "0" })));
      expect(err.code, name).toBe("signature_mismatch");
    }
    await check(withHeaders(w, { "user-agent": "changed", "x-forwarded-for": "203.0.113.9" }));
    // Whitespace a proxy may add: trimmed and collapsed per SigV4.
    const spaced = w.headers.get("amz-sdk-request")!.replace("; ", ";  \t  ");
    expect(spaced).toMatch(/^attempt=1; {2}\t {2}max=\d$/);
    await check(withHeaders(w, { "amz-sdk-request": spaced }));
  });
});

// ---- Key pairs -------------------------------------------------------------------------------------

describe("generateSigV4KeyPair", () => {
  it("looks like an AWS pair, recognisably the relay's, and signs and verifies", async () => {
    const ids = new Set<string>();
    for (let i = 0; i < 200; i++) {
      const { accessKeyId, secretAccessKey } = generateSigV4KeyPair();
      expect(accessKeyId).toMatch(SIGV4_ACCESS_KEY_PATTERN);
      expect(accessKeyId).toHaveLength(20);
      expect(secretAccessKey).toMatch(SIGV4_SECRET_PATTERN);
      expect(secretAccessKey).toHaveLength(40);
      ids.add(accessKeyId);
    }
    expect(ids.size).toBe(200);
    expect(SIGV4_ACCESS_KEY_PATTERN.test("AKIAIOSFODNN7EXAMPLE")).toBe(false);

    const pair = generateSigV4KeyPair();
    const w = await smithyRequest({ secret: pair.secretAccessKey });
    const parsed = parseSigV4(w.headers);
    await verifySigV4({ ...w, parsed, secretAccessKey: pair.secretAccessKey, now: Date.UTC(2024, 0, 1) });
  });
});

// ---- Property ---------------------------------------------------------------------------------------

describe("property", () => {
  const region = fc
    .tuple(
      fc.constantFrom("us", "eu", "ap", "sa", "ca", "me", "af", "il", "mx", "cn"),
      fc.constantFrom("east", "west", "central", "south", "north", "southeast", "gov-west"),
      fc.integer({ min: 1, max: 9 }),
    )
    .map(([a, b, n]) => `${a}-${b}-${n}`);
  const date = fc
    .integer({ min: Date.UTC(2015, 0, 1), max: Date.UTC(2099, 11, 31) })
    .map((ms) => Math.floor(ms / 1000) * 1000);

  it("random bodies, regions and dates signed by SignatureV4 always verify; any one-byte change never does", async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.uint8Array({ minLength: 1, maxLength: 2048 }),
        region,
        date,
        fc.nat(),
        fc.integer({ min: 1, max: 255 }),
        fc.boolean(),
        async (body, reg, ms, at, flip, sdkStyle) => {
          const w = await smithyRequest({ body, region: reg, date: new Date(ms), applyChecksum: sdkStyle });
          const parsed = await check(w, { now: ms });
          expect(parsed.region).toBe(reg);
          const tampered = body.slice();
          tampered[at % body.length] = tampered[at % body.length]! ^ flip;
          const err = await refusal(check({ ...w, body: tampered }, { now: ms }));
          expect(err.code).toBe(sdkStyle ? "content_sha256_mismatch" : "signature_mismatch");
        },
      ),
      { numRuns: 200 },
    );
  });
});
