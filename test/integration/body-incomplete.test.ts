/**
 * A body that ends before it is complete: the client closed its half of the connection before
 * Content-Length was reached, or the chunked framing broke. The runtime's body stream then errors
 * ("Network connection lost"); the relay answers its documented 400 `body_incomplete`
 * (SerializationException on the AWS front door), never its own 500, and accepts nothing.
 * Built here as a Request whose body ReadableStream errors midway, on both front doors, with and
 * without a Content-Length, and at the unit level against readBodyCapped.
 */
import { createExecutionContext, waitOnExecutionContext } from "cloudflare:test";
import { env, exports } from "cloudflare:workers";
import { PutPartnerEventsCommand } from "@aws-sdk/client-eventbridge";
import { afterEach, describe, expect, it, vi } from "vitest";
import { app } from "../../src/app.ts";
import { RelayError } from "../../src/errors.ts";
import { readBodyCapped } from "../../src/ingest/body.ts";
import { relayClient } from "../helpers/aws-sdk.ts";
import { expectProblem, RELAY } from "../helpers/http.ts";
import { captureLogs } from "../helpers/leaks.ts";
import { addSigV4Key, entry, seedTenant } from "../helpers/tenants.ts";
import { installFakeUpstream } from "../helpers/upstream.ts";

afterEach(() => vi.restoreAllMocks());

/**
 * The first `prefix` bytes, then the stream errors as a dropped connection does ("error"), or
 * simply ends as a client's half-close does ("close").
 */
function breakingStream(
  prefix: Uint8Array,
  end: "error" | "close" = "error",
  error = new Error("Network connection lost"),
): ReadableStream<Uint8Array> {
  let sent = false;
  return new ReadableStream<Uint8Array>(
    {
      pull(c) {
        if (!sent) {
          sent = true;
          c.enqueue(prefix);
          return;
        }
        if (end === "close") c.close();
        else c.error(error);
      },
    },
    { highWaterMark: 0 },
  );
}

const enc = (s: string) => new TextEncoder().encode(s);

async function refusal(p: Promise<unknown>): Promise<RelayError> {
  try {
    await p;
  } catch (e) {
    expect(e).toBeInstanceOf(RelayError);
    return e as RelayError;
  }
  throw new Error("expected a RelayError");
}

describe("readBodyCapped", () => {
  it.each([
    ["no Content-Length (chunked)", {}],
    ["a Content-Length the body never reaches", { "content-length": "4096" }],
  ])(
    "a stream that errors midway, %s: 400 body_incomplete with the runtime's reason in the log only",
    async (_, headers) => {
      const req = new Request("http://relay.test/v1/events", {
        method: "POST",
        headers,
        body: breakingStream(enc('{"Entries":[')),
      });
      const err = await refusal(readBodyCapped(req, 1_000_000));
      expect(err).toMatchObject({ status: 400, code: "body_incomplete" });
      expect(err.aws).toEqual({ type: "SerializationException", status: 400 });
      expect(err.logReason).toMatch(/Network connection lost/);
      expect(err.detail).not.toMatch(/Network connection lost/);
    },
  );

  it("an over-cap body is still 413 payload_too_large, even if the stream would error later", async () => {
    const req = new Request("http://relay.test/v1/events", {
      method: "POST",
      body: breakingStream(new Uint8Array(2048).fill(0x20)),
    });
    expect(await refusal(readBodyCapped(req, 1024))).toMatchObject({ status: 413, code: "payload_too_large" });
  });
});

describe("POST /v1/events", () => {
  // Through exports.default.fetch the runtime pipes the body: a Content-Length shows the early end,
  // but a chunked source's error reads as a clean end there. app.request hands the Request to the
  // app as is, so its stream errors exactly as a broken chunked body does on a real socket.
  it.each([
    ["chunked, the stream erroring (app.request)", {}, "app"],
    ["with a Content-Length the body never reaches (the Worker's fetch)", { "content-length": "4096" }, "worker"],
  ])("a body that ends early, %s: 400 body_incomplete, nothing sent upstream", async (_, headers, via) => {
    const logs = captureLogs();
    const t = await seedTenant();
    const fake = installFakeUpstream({ credentials: [t.aws] });
    const prefix = enc(`{"Entries":[${JSON.stringify(entry(t))},`);
    const init: RequestInit = {
      method: "POST",
      headers: { authorization: `Bearer ${t.apiKey}`, "content-type": "application/json", ...headers },
      // Piped by the runtime, the early end is a half-close (an erroring source would only be
      // reported as an uncaught error on the sending side).
      body: breakingStream(prefix, via === "app" ? "error" : "close"),
    };
    let res: Response;
    if (via === "app") {
      const ctx = createExecutionContext();
      res = await app.request(new Request(`${RELAY}/v1/events`, init), undefined, env, ctx);
      await waitOnExecutionContext(ctx);
    } else {
      res = await exports.default.fetch(`${RELAY}/v1/events`, init);
    }
    const p = await expectProblem(res, 400, "body_incomplete");
    expect(p.detail).toMatch(/Nothing was accepted/);
    expect(fake.calls).toHaveLength(0);
    expect(logs.some((l) => l.includes('"unhandled_error"'))).toBe(false);
    expect(logs.find((l) => l.includes('"body_incomplete"'))).toBeDefined();
  });
});

describe("POST / (AWS front door)", () => {
  it("a signed request whose body stream errors midway: SerializationException, nothing sent upstream", async () => {
    const t = await seedTenant();
    const pair = await addSigV4Key(t);
    const fake = installFakeUpstream({ credentials: [t.aws] });
    const client = relayClient(pair, {
      // The SDK signed the whole body and sent its Content-Length; only a part arrives.
      tamper: async (r) =>
        new Request(r.url, {
          method: r.method,
          headers: r.headers,
          body: breakingStream(new Uint8Array(await r.arrayBuffer()).slice(0, 10), "close"),
        }),
    });
    const err = (await client
      .send(new PutPartnerEventsCommand({ Entries: [entry(t)] }))
      .then(() => null)
      .catch((e: unknown) => e)) as { name: string; message: string; $metadata: { httpStatusCode: number } } | null;
    expect(err?.name).toBe("SerializationException");
    expect(err?.$metadata.httpStatusCode).toBe(400);
    expect(err?.message).toMatch(/ended before it was complete/);
    expect(fake.calls).toHaveLength(0);
  });
});
