/**
 * Broken body framing through the local relay's port (issue 11): a body that ends before its
 * Content-Length (client half-close), broken chunk framing, a chunked body cut off. Behind that
 * port miniflare's entry Worker answers these `500 text/plain` with its stack trace; the local
 * front (scripts/lib/local-front.ts) must answer the relay's documented 400 `body_incomplete`
 * instead, in the door's format, every time. Raw sockets, because no HTTP client sends these.
 */
import { AwsClient } from "aws4fetch";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type Answer, sendRaw } from "../../scripts/fuzz/http.ts";
import { Runtime } from "../../scripts/soak/runtime.ts";

const enc = new TextEncoder();
const STACK = /\bat .*\(|entry\.worker|Error: /;

function cat(...parts: (string | Uint8Array)[]): Uint8Array {
  const bytes = parts.map((p) => (typeof p === "string" ? enc.encode(p) : p));
  const out = new Uint8Array(bytes.reduce((n, p) => n + p.length, 0));
  let o = 0;
  for (const p of bytes) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

function expectProblem(a: Answer): void {
  expect(a.error).toBeUndefined();
  expect(a.status).toBe(400);
  expect(a.headers["content-type"]).toBe("application/problem+json");
  expect(a.body).not.toMatch(STACK);
  const p = JSON.parse(a.body) as Record<string, unknown>;
  expect(p).toMatchObject({
    type: "urn:eventbridge-relay:problem:body_incomplete",
    title: "Bad Request",
    status: 400,
    code: "body_incomplete",
  });
  expect(p.requestId).toBe(a.headers["x-request-id"]);
}

function expectAws(a: Answer): void {
  expect(a.error).toBeUndefined();
  expect(a.status).toBe(400);
  expect(a.headers["content-type"]).toBe("application/x-amz-json-1.1");
  expect(a.headers["x-amzn-errortype"]).toBe("SerializationException");
  expect(a.headers["x-amzn-requestid"]).toMatch(/^[\w-]+$/);
  expect(a.body).not.toMatch(STACK);
  const j = JSON.parse(a.body) as Record<string, unknown>;
  expect(j.__type).toBe("SerializationException");
  expect(typeof j.message).toBe("string");
}

describe("broken body framing through the local relay's port: the relay's 400, never a 500", () => {
  const rt = new Runtime({ tenants: 1, prefix: "fronttest", ratePerSecond: 100, burst: 100, seed: 2 });
  let port = 0;
  let apiKey = "";
  beforeAll(async () => {
    await rt.start();
    port = rt.relay.port;
    apiKey = rt.tenants[0]!.apiKey.key;
  }, 180_000);
  afterAll(() => rt.stop());

  const body = enc.encode(JSON.stringify({ Entries: [{ Source: "x", DetailType: "t", Detail: "{}" }] }));
  const jsonHead = (extra: string) =>
    `POST /v1/events HTTP/1.1\r\nHost: relay.local\r\nAuthorization: Bearer ${apiKey}\r\nContent-Type: application/json\r\n${extra}\r\n`;

  it("JSON API: a body that ends before its Content-Length (half-close)", async () => {
    for (let i = 0; i < 5; i++) {
      expectProblem(await sendRaw(port, cat(jsonHead(`Content-Length: ${body.length + 100}\r\n`), body), true));
    }
  });

  it("JSON API: broken chunk framing, with and without a half-close", async () => {
    const raw = cat(jsonHead("Transfer-Encoding: chunked\r\n"), "zz\r\n", body, "\r\n0\r\n\r\n");
    expectProblem(await sendRaw(port, raw, true));
    expectProblem(await sendRaw(port, raw, false));
  });

  it("JSON API: a chunked body cut off (half-close)", async () => {
    const raw = cat(jsonHead("Transfer-Encoding: chunked\r\n"), `${(body.length * 2).toString(16)}\r\n`, body);
    expectProblem(await sendRaw(port, raw, true));
  });

  it("AWS door: a signed body cut off before its Content-Length, and broken chunk framing", async () => {
    const t = rt.tenants[0]!;
    const signer = new AwsClient({
      accessKeyId: t.sigv4.accessKeyId,
      secretAccessKey: t.sigv4.secretAccessKey,
      service: "events",
      region: "us-east-1",
    });
    const text = new TextDecoder().decode(body);
    const signed = await signer.sign(`http://127.0.0.1:${port}/`, {
      method: "POST",
      headers: { "content-type": "application/x-amz-json-1.1", "x-amz-target": "AWSEvents.PutPartnerEvents" },
      body: text,
    });
    const lines: string[] = [];
    signed.headers.forEach((v, k) => {
      if (k !== "content-length") lines.push(`${k}: ${v}`);
    });
    const head = (extra: string) =>
      `POST / HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\n${lines.join("\r\n")}\r\n${extra}\r\n`;
    expectAws(await sendRaw(port, cat(head(`Content-Length: ${body.length + 100}\r\n`), body), true));
    expectAws(await sendRaw(port, cat(head("Transfer-Encoding: chunked\r\n"), "zz\r\n", body, "\r\n0\r\n\r\n"), false));
  });

  it("a well-framed request still reaches the relay (its own answers pass through)", async () => {
    const ok = await sendRaw(port, enc.encode("GET /healthz HTTP/1.1\r\nHost: relay.local\r\n\r\n"), true);
    expect(ok.status).toBe(200);
    const raw = cat(jsonHead(`Content-Length: ${body.length}\r\n`), body);
    const a = await sendRaw(port, raw, true);
    // Valid framing: the Worker answers (its Source is not the tenant's: a per-entry failure or 4xx).
    expect(a.status).toBeLessThan(500);
    expect(a.headers["x-request-id"]).toMatch(/^[\w-]+$/);
  });
});
