/**
 * Credential material a caller puts in the wrong place is never echoed in an answer nor written
 * to a log: an API key or a SigV4 secret sent as the whole Authorization value, a swapped key
 * pair (the secret, "/" and all, in Credential=), a secret or an API key as the access key id,
 * in SignedHeaders, X-Amz-Date, the scope's terminator, X-Amz-Target. The log gets a fingerprint
 * (sha256 prefix and length) instead. AWS's wording, and the echo of values of the right shape,
 * stay as they were.
 */
import { exports } from "cloudflare:workers";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { generateApiKey } from "../../src/auth/api-key.ts";
import { echo, fingerprint, looksLikeCredential } from "../../src/auth/echo.ts";
import { generateSigV4KeyPair } from "../../src/auth/sigv4.ts";
import { RELAY } from "../helpers/http.ts";
import { captureLogs } from "../helpers/leaks.ts";

let logs: string[] = [];
beforeEach(() => {
  logs = captureLogs();
});
afterEach(() => vi.restoreAllMocks());

const API_KEY = generateApiKey();
const PAIR = generateSigV4KeyPair();
/** A relay-format secret with exactly two "/" in it (a third of them have some). */
const PLAIN = PAIR.secretAccessKey.replace(/\//g, "A");
const SLASHED = `${PLAIN.slice(0, 13)}/${PLAIN.slice(14, 27)}/${PLAIN.slice(28)}`;
/** AWS's documented example secret: few digits, two "/". */
const AWS_EXAMPLE_SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";

/** Every piece of `s` long enough to identify it: the whole, and each "/"-separated part of 6+. */
function pieces(s: string): string[] {
  return [s, ...s.split("/").filter((p) => p.length >= 6)];
}
const SECRETS = [API_KEY, PAIR.secretAccessKey, SLASHED, AWS_EXAMPLE_SECRET].flatMap(pieces);

function amzDate(ms = Date.now()): string {
  return new Date(ms).toISOString().replace(/[-:]|\.\d{3}/g, "");
}

/** POST / with the given Authorization (and X-Amz-Date, unless overridden). */
async function post(authorization: string, headers: Record<string, string> = {}) {
  const res = await exports.default.fetch(`${RELAY}/`, {
    method: "POST",
    headers: {
      "content-type": "application/x-amz-json-1.1",
      "x-amz-target": "AWSEvents.PutPartnerEvents",
      "x-amz-date": amzDate(),
      authorization,
      ...headers,
    },
    body: "{}",
  });
  const text = await res.text();
  return { status: res.status, text, body: JSON.parse(text) as { __type: string; message: string } };
}

const sig = "0".repeat(64);
const scope = (id: string, terminator = "aws4_request") =>
  `${id}/${amzDate().slice(0, 8)}/us-east-1/events/${terminator}`;
const v4 = (credential: string, signedHeaders = "host;x-amz-date") =>
  `AWS4-HMAC-SHA256 Credential=${credential}, SignedHeaders=${signedHeaders}, Signature=${sig}`;

function expectNothingEchoedOrLogged(texts: string[]) {
  for (const t of [...texts, ...logs]) {
    for (const s of SECRETS) expect(t.includes(s), `"${s.slice(0, 6)}..." in: ${t.slice(0, 300)}`).toBe(false);
  }
}

describe("misplaced credentials on the AWS front door", () => {
  it.each([
    ["an API key", API_KEY],
    ["a SigV4 secret", PAIR.secretAccessKey],
    ["a SigV4 secret with '/'", SLASHED],
    ["AWS's example secret", AWS_EXAMPLE_SECRET],
  ])("%s as the whole Authorization value: IncompleteSignatureException, not echoed", async (_, value) => {
    const r = await post(value);
    expect(r.status).toBe(400);
    expect(r.body.__type).toBe("IncompleteSignatureException");
    expect(r.body.message).toMatch(
      /^Authorization header must use AWS4-HMAC-SHA256 \(Signature Version 4\); got '\[\d+ characters, not echoed\]'\.$/,
    );
    expectNothingEchoedOrLogged([r.text]);
  });

  it.each([
    ["the secret in Credential= (with '/')", SLASHED],
    ["AWS's example secret in Credential=", AWS_EXAMPLE_SECRET],
    ["an API key and a date", `${API_KEY}/20261203`],
  ])("a swapped key pair, %s: not 5 elements, not echoed", async (_, credential) => {
    const r = await post(v4(credential));
    expect(r.body.__type).toBe("IncompleteSignatureException");
    expect(r.body.message).toMatch(
      /^Credential must have exactly 5 slash-delimited elements, e\.g\. keyid\/date\/region\/service\/term, got '\[\d+ characters, not echoed\]'$/,
    );
    expectNothingEchoedOrLogged([r.text]);
  });

  it.each([
    ["a SigV4 secret (no '/')", PLAIN],
    ["an API key", API_KEY],
  ])(
    "%s as the access key id: UnrecognizedClientException; the log has a fingerprint, not the value",
    async (_, id) => {
      const r = await post(v4(scope(id)));
      expect(r.status).toBe(400);
      expect(r.body.__type).toBe("UnrecognizedClientException");
      expect(r.body.message).toMatch(/^The security token included in the request is invalid\./);
      const line = logs.find((l) => l.includes('"unknown_access_key"'));
      expect(line).toBeDefined();
      expect(line).toContain(await fingerprint(id));
      expect(line).not.toContain(id);
      expectNothingEchoedOrLogged([r.text]);
    },
  );

  it.each([
    ["in SignedHeaders", () => v4(scope("RLYAAAAAAAAAAAAAAAAA"), AWS_EXAMPLE_SECRET), {}],
    ["as a parameter name", () => `AWS4-HMAC-SHA256 ${API_KEY}`, {}],
    ["as the scope's terminator", () => v4(scope("RLYAAAAAAAAAAAAAAAAA", PLAIN)), {}],
    ["as X-Amz-Date", () => v4(scope("RLYAAAAAAAAAAAAAAAAA")), { "x-amz-date": AWS_EXAMPLE_SECRET }],
    ["as X-Amz-Target", () => v4(scope("RLYAAAAAAAAAAAAAAAAA")), { "x-amz-target": API_KEY }],
  ])("a secret or key %s: not echoed", async (_, auth, headers) => {
    const r = await post(auth(), headers);
    expect(r.status).toBeGreaterThanOrEqual(400);
    expect(r.body.__type).toMatch(/Exception$/);
    expectNothingEchoedOrLogged([r.text]);
  });

  it("a terminator secret without '/' is also kept out (the scope check echoes the value it refuses)", async () => {
    const t = PLAIN;
    const r = await post(v4(scope("RLYAAAAAAAAAAAAAAAAA", t)));
    expect(r.text).not.toContain(t);
  });
});

describe("values of the right shape are still echoed, in AWS's words", () => {
  it("a wrong scheme", async () => {
    const r = await post("Basic dXNlcjpwYXNz");
    expect(r.body.message).toBe("Authorization header must use AWS4-HMAC-SHA256 (Signature Version 4); got 'Basic'.");
  });

  it("a 4-element credential of an access key id, date, region and service", async () => {
    const credential = `AKIAIOSFODNN7EXAMPLE/${amzDate().slice(0, 8)}/us-east-1/events`;
    const r = await post(v4(credential));
    expect(r.body.message).toBe(
      `Credential must have exactly 5 slash-delimited elements, e.g. keyid/date/region/service/term, got '${credential}'`,
    );
  });

  it("an AWS access key id (not the relay format) is fingerprinted in the log; only RLY ids are named", async () => {
    await post(v4(scope("AKIAIOSFODNN7EXAMPLE")));
    expect(logs.find((l) => l.includes('"unknown_access_key"'))).toContain("sha256:");
  });
});

describe("src/auth/echo.ts", () => {
  it("looksLikeCredential: keys, secrets, session tokens, signatures; not AWS's identifiers", () => {
    // Fixed samples: the guess is a backstop (about 0.4% of random 40-character secrets pass it);
    // the echo sites in src/auth/sigv4.ts refuse by shape and length first.
    for (const s of [
      API_KEY,
      "lA/GnrW4QTPKdvSGzd/QbUQTzLMKKWfKG08axvIX",
      "f7GUehzASNFZx9iagKL7RhPQO3tIOxCrUPkHEPLe",
      AWS_EXAMPLE_SECRET,
      sig,
      "FwoGZXIvYXdzEJr//////////wEaDJ1pXpqhQ1jB8kcRZyKGAQ",
    ]) {
      expect(looksLikeCredential(s), s).toBe(true);
    }
    for (const s of [
      "AKIAIOSFODNN7EXAMPLE",
      "RLYAAAAAAAAAAAAAAAAA",
      "20261203T070000Z",
      "us-east-1",
      "aws4_request",
      "X-Amz-Content-Sha256",
      "AWS4-HMAC-SHA256",
      "AWSEvents.PutPartnerEvents",
      "Basic",
      "Thu, 03 Dec 2026 07:00:00 GMT",
    ]) {
      expect(looksLikeCredential(s), s).toBe(false);
    }
  });

  it("echo: bounded printable ASCII, or a placeholder with the length", () => {
    expect(echo("Basic", 32)).toBe("Basic");
    expect(echo("a\nb", 32)).toBe("a?b");
    expect(echo("x".repeat(40), 32)).toBe(`${"x".repeat(32)}...`);
    expect(echo(API_KEY, 32)).toBe(`[${API_KEY.length} characters, not echoed]`);
    expect(echo("with space", 32, /^\S+$/)).toBe("[10 characters, not echoed]");
  });

  it("fingerprint: the sha256 prefix and length, never the value", async () => {
    const f = await fingerprint(API_KEY);
    expect(f).toMatch(/^sha256:[0-9a-f]{8}, 50 characters$/);
    expect(f).not.toContain(API_KEY.slice(4, 12));
  });
});
