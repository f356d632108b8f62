/**
 * POST /v1/events through the Worker's fetch handler: every request-level rule (whole request
 * refused, nothing sent upstream) and every entry-level rule (that entry refused with
 * EventBridge's code, its valid siblings forwarded) at its boundary, plus scoping to the
 * tenant's own sources, content types and routing. Each test checks the HTTP answer and what
 * reached the fake EventBridge, which verifies SigV4 and computes sizes on its own.
 */
import { exports } from "cloudflare:workers";
import { afterEach, describe, expect, it, vi } from "vitest";
import { batchSize, type FakeEventBridge } from "../../emulator/eventbridge.ts";
import { expectProblem, type PutAnswer, postEvents, RELAY, readAnswer } from "../helpers/http.ts";
import { entry, type SeededTenant, seedTenant } from "../helpers/tenants.ts";
import { installFakeUpstream } from "../helpers/upstream.ts";

afterEach(() => vi.restoreAllMocks());

const utf8 = (s: string) => new TextEncoder().encode(s).byteLength;
const src = (t: SeededTenant, name = "orders") => `aws.partner/example.com/${t.record.id}/${name}`;

async function setup(opts: Parameters<typeof seedTenant>[0] = {}): Promise<{ t: SeededTenant; fake: FakeEventBridge }> {
  const t = await seedTenant(opts);
  vi.spyOn(console, "log").mockImplementation(() => {});
  return { t, fake: installFakeUpstream({ credentials: [t.aws] }) };
}

/** Per index: "ok" for an EventId, else the ErrorCode. */
function codes(a: PutAnswer): string[] {
  return a.Entries.map((e) => ("EventId" in e ? "ok" : "ErrorCode" in e ? e.ErrorCode : "queued"));
}

/** The forwarded entries got EventBridge's own ids, in order. */
function expectIdsFromUpstream(a: PutAnswer, fake: FakeEventBridge): void {
  const ids = a.Entries.flatMap((e) => ("EventId" in e ? [e.EventId] : []));
  expect(ids).toEqual(fake.events.map((e) => e.eventId));
}

/** A stream of `total` bytes (JSON text or filler) in `chunk`-sized pieces that counts what was pulled. */
function countingStream(
  bytes: Uint8Array | number,
  chunk = 65_536,
): { stream: ReadableStream<Uint8Array>; pulled: () => number } {
  const total = typeof bytes === "number" ? bytes : bytes.byteLength;
  let sent = 0;
  const stream = new ReadableStream<Uint8Array>(
    {
      pull(c) {
        if (sent >= total) return c.close();
        const n = Math.min(chunk, total - sent);
        c.enqueue(typeof bytes === "number" ? new Uint8Array(n).fill(0x20) : bytes.slice(sent, sent + n));
        sent += n;
      },
    },
    { highWaterMark: 0 },
  );
  return { stream, pulled: () => sent };
}

function postStream(
  stream: ReadableStream<Uint8Array>,
  key: string,
  headers: Record<string, string> = {},
): Promise<Response> {
  return exports.default.fetch(`${RELAY}/v1/events`, {
    method: "POST",
    headers: { authorization: `Bearer ${key}`, "content-type": "application/json", ...headers },
    body: stream,
  });
}

describe("request shape: refused whole, nothing sent upstream", () => {
  it("forwards 20 entries and refuses 21 and 0 with 400 invalid_request", async () => {
    const { t, fake } = await setup();
    const twenty = Array.from({ length: 20 }, (_, i) => entry(t, { i }));
    const ok = await postEvents({ Entries: twenty }, { key: t.apiKey });
    expect(ok.status).toBe(200);
    const a = await readAnswer(ok);
    expect(a.FailedEntryCount).toBe(0);
    expect(fake.events.map((e) => e.entry.Detail)).toEqual(twenty.map((e) => e.Detail));
    expectIdsFromUpstream(a, fake);

    const p21 = await expectProblem(
      await postEvents({ Entries: [...twenty, entry(t)] }, { key: t.apiKey }),
      400,
      "invalid_request",
    );
    expect(p21.detail).toMatch(/at most 20/);
    const p0 = await expectProblem(await postEvents({ Entries: [] }, { key: t.apiKey }), 400, "invalid_request");
    expect(p0.detail).toMatch(/at least 1/);
    expect(fake.calls).toHaveLength(1);
  });

  it.each([
    ["Entries missing", {}, /Entries is required/],
    ["Entries not a list", { Entries: { a: 1 } }, /Entries must be a list/],
    ["Entries null", { Entries: null }, /Entries must be a list/],
    ["the body a list", "[]", /must be a JSON object/],
    ["the body a number", "42", /must be a JSON object/],
    ["the body null", "null", /must be a JSON object/],
    ["an unknown top-level field", "UNKNOWN", /unknown field\(s\) "EventBusName"/],
    ["an entry that is not an object", "NOT_OBJECT", /Entries\[1\]: an entry must be a JSON object/],
  ])("refuses %s with 400 invalid_request", async (_, body, detail) => {
    const { t, fake } = await setup();
    const payload =
      body === "UNKNOWN"
        ? { Entries: [entry(t)], EventBusName: "default" }
        : body === "NOT_OBJECT"
          ? { Entries: [entry(t), "x"] }
          : body;
    const p = await expectProblem(await postEvents(payload, { key: t.apiKey }), 400, "invalid_request");
    expect(p.detail).toMatch(detail);
    expect(fake.calls).toHaveLength(0);
  });

  it.each([
    ["invalid JSON", '{"Entries": [', "invalid_json"],
    ["an empty body", "", "invalid_json"],
    ["trailing garbage", '{"Entries": []} x', "invalid_json"],
  ])("refuses %s with 400 %s", async (_, body, code) => {
    const { t, fake } = await setup();
    await expectProblem(await postEvents(body, { key: t.apiKey }), 400, code);
    expect(fake.calls).toHaveLength(0);
  });

  it("refuses a body that is not valid UTF-8 with 400 invalid_json", async () => {
    const { t, fake } = await setup();
    const json = new TextEncoder().encode(JSON.stringify({ Entries: [entry(t, { s: "XX" })] }));
    const at = json.indexOf(0x58); // "X"
    json[at] = 0xc3; // a lead byte...
    json[at + 1] = 0x28; // ...followed by a non-continuation byte
    await expectProblem(await postEvents(json, { key: t.apiKey }), 400, "invalid_json");
    const lone = new TextEncoder().encode(JSON.stringify({ Entries: [entry(t, { s: "X" })] }));
    lone[lone.indexOf(0x58)] = 0xff;
    await expectProblem(await postEvents(lone, { key: t.apiKey }), 400, "invalid_json");
    expect(fake.calls).toHaveLength(0);
  });
});

describe("total size by AWS's formula (default cap 262,144 bytes)", () => {
  /** Two entries totalling exactly `total` bytes: multi-byte UTF-8 everywhere, a Time, a Resource, a Detail object. */
  function batchOf(t: SeededTenant, total: number) {
    const detailObj = { k: "€ünï" };
    const small = { Source: src(t, "small"), DetailType: "Smäll", Detail: detailObj };
    const big = {
      Time: "2024-01-02T03:04:05.5+00:00",
      Source: src(t),
      Resources: ["arn:aws:s3:::bücket/😀"],
      DetailType: "Créé ✓",
      Detail: "",
    };
    const fixed =
      14 +
      utf8(big.Source) +
      utf8(big.Resources[0]!) +
      utf8(big.DetailType) +
      utf8('{"p":""}') +
      utf8(small.Source) +
      utf8(small.DetailType) +
      utf8(JSON.stringify(detailObj));
    const pad = total - fixed;
    const emoji = Math.floor((pad - 6) / 4);
    const rest = pad - 4 * emoji;
    big.Detail = `{"p":"${"😀".repeat(emoji)}€${"é".repeat(Math.floor((rest - 3) / 2))}${(rest - 3) % 2 ? "a" : ""}"}`;
    const wire = [
      {
        Time: 1704164645,
        Source: big.Source,
        Resources: big.Resources,
        DetailType: big.DetailType,
        Detail: big.Detail,
      },
      { Source: small.Source, DetailType: small.DetailType, Detail: JSON.stringify(detailObj) },
    ];
    expect(batchSize(wire)).toBe(total);
    return { body: { Entries: [big, small] }, wire };
  }

  it("forwards a batch of exactly 262,144 bytes, which the fake (own formula, same cap) accepts", async () => {
    const { t, fake } = await setup();
    const { body, wire } = batchOf(t, 262_144);
    const res = await postEvents(body, { key: t.apiKey });
    expect(res.status).toBe(200);
    expect((await readAnswer(res)).FailedEntryCount).toBe(0);
    expect(fake.calls.map((c) => c.outcome)).toEqual(["accepted"]);
    expect(fake.events.map((e) => e.entry)).toEqual(wire);
  });

  // botocore (AWS CLI v1, boto3) and Python's json escape every non-ASCII character as \uXXXX:
  // "é" counts 2 bytes by AWS's formula but takes 6 on the wire. The raw cap must allow it.
  it("forwards a 262,144-byte batch sent with every non-ASCII character \\u-escaped, as botocore and Python's json send it", async () => {
    const { t, fake } = await setup();
    const fixed = utf8(src(t)) + utf8("T") + utf8('{"p":""}');
    const pad = 262_144 - fixed;
    const detail = `{"p":"${"é".repeat(Math.floor(pad / 2))}${pad % 2 ? "a" : ""}"}`;
    const wire = { Source: src(t), DetailType: "T", Detail: detail };
    expect(batchSize([wire])).toBe(262_144);
    const escaped = JSON.stringify({ Entries: [wire] }).replace(
      /[\u0080-\uffff]/g,
      (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`,
    );
    expect(utf8(escaped)).toBeGreaterThan(700_000);
    const res = await postEvents(escaped, { key: t.apiKey });
    expect(res.status).toBe(200);
    expect(fake.events.map((e) => e.entry)).toEqual([wire]);
  });

  it("refuses 262,145 bytes whole with 413 batch_too_large, naming size and limit", async () => {
    const { t, fake } = await setup();
    const p = await expectProblem(
      await postEvents(batchOf(t, 262_145).body, { key: t.apiKey }),
      413,
      "batch_too_large",
    );
    expect(p).toMatchObject({ size: 262_145, limit: 262_144 });
    expect(fake.calls).toHaveLength(0);
  });
});

describe("raw body cap (6 x 262,144 + 64 KiB = 1,638,400 bytes), counted as the bytes arrive", () => {
  const CAP = 1_638_400;
  function paddedBody(t: SeededTenant, bytes: number): Uint8Array {
    const json = JSON.stringify({ Entries: [entry(t, { pad: true })] });
    return new TextEncoder().encode(json + " ".repeat(bytes - utf8(json)));
  }

  it("accepts a body of exactly the cap streamed in chunks with no Content-Length", async () => {
    const { t, fake } = await setup();
    const { stream } = countingStream(paddedBody(t, CAP));
    const res = await postStream(stream, t.apiKey);
    expect(res.status).toBe(200);
    expect(fake.events).toHaveLength(1);
  });

  it("refuses one byte over the cap, streamed with no Content-Length, with 413 payload_too_large", async () => {
    const { t, fake } = await setup();
    const { stream } = countingStream(paddedBody(t, CAP + 1));
    const p = await expectProblem(await postStream(stream, t.apiKey), 413, "payload_too_large");
    expect(p.detail).toContain(String(CAP));
    expect(fake.calls).toHaveLength(0);
  });

  it("counts the bytes itself when Content-Length lies low", async () => {
    const { t, fake } = await setup();
    const { stream } = countingStream(paddedBody(t, CAP + 100_000));
    await expectProblem(await postStream(stream, t.apiKey, { "content-length": "100" }), 413, "payload_too_large");
    expect(fake.calls).toHaveLength(0);
  });

  it("refuses a declared Content-Length over the cap before reading the body", async () => {
    const { t, fake } = await setup();
    const { stream, pulled } = countingStream(64 * 1024 * 1024);
    await expectProblem(
      await postStream(stream, t.apiKey, { "content-length": String(64 * 1024 * 1024) }),
      413,
      "payload_too_large",
    );
    expect(pulled()).toBeLessThan(CAP);
    expect(fake.calls).toHaveLength(0);
  });

  it("stops reading an endless body with no Content-Length soon after the cap", async () => {
    const { t, fake } = await setup();
    const { stream, pulled } = countingStream(64 * 1024 * 1024);
    await expectProblem(await postStream(stream, t.apiKey), 413, "payload_too_large");
    // The cap plus what the runtime's pipe holds in flight: nowhere near the 64 MiB offered.
    expect(pulled()).toBeGreaterThan(CAP);
    expect(pulled()).toBeLessThan(2 * CAP);
    expect(fake.calls).toHaveLength(0);
  });
});

describe("entry rules: the entry fails on its own, its valid siblings are forwarded", () => {
  it("DetailType: 128 characters forwarded, 129 refused with InvalidArgument", async () => {
    const { t, fake } = await setup();
    const e128 = entry(t, { n: 128 }, { DetailType: "ü".repeat(128) });
    const res = await postEvents(
      { Entries: [e128, entry(t, { n: 129 }, { DetailType: "d".repeat(129) })] },
      { key: t.apiKey },
    );
    const a = await readAnswer(res);
    expect(res.status).toBe(200);
    expect(codes(a)).toEqual(["ok", "InvalidArgument"]);
    expect(a.FailedEntryCount).toBe(1);
    expect(a.Entries[1]).toMatchObject({ ErrorMessage: expect.stringMatching(/^Entries\[1\]\.DetailType: .*128/) });
    expect(fake.events.map((e) => e.entry.DetailType)).toEqual(["ü".repeat(128)]);
    expectIdsFromUpstream(a, fake);
  });

  it("Source: valid forms forwarded; too few segments, bad characters, 257 characters and unanchored refused", async () => {
    const { t, fake } = await setup({ sources: ["aws.partner/example.com/*", "aws.partner/a.b/*"] });
    const s256 = `aws.partner/example.com/${"s".repeat(256 - "aws.partner/example.com/".length)}`;
    const sources = [
      "aws.partner/example.com/orders", // ok
      "aws.partner/example.com", // too few segments
      "aws.partner/example.com/ord ers", // space
      "aws.partner/exämple.com/orders", // non-ASCII
      s256, // ok: 256
      `${s256}s`, // 257
      "xaws.partner/example.com/orders", // not anchored
      "aws.partner/example.com/orders\n", // not anchored at the end
      "aws.partner/a.b/c_d/E-9/f.g", // ok
    ];
    const res = await postEvents(
      { Entries: sources.map((s, i) => ({ Source: s, DetailType: "T", Detail: `{"i":${i}}` })) },
      { key: t.apiKey },
    );
    const a = await readAnswer(res);
    expect(codes(a)).toEqual([
      "ok",
      "InvalidArgument",
      "InvalidArgument",
      "InvalidArgument",
      "ok",
      "InvalidArgument",
      "InvalidArgument",
      "InvalidArgument",
      "ok",
    ]);
    expect(a.FailedEntryCount).toBe(6);
    expect(fake.events.map((e) => e.entry.Source)).toEqual([sources[0], s256, sources[8]]);
    expectIdsFromUpstream(a, fake);
  });

  it("Detail: a JSON string is kept as sent, an object is serialised, the rest are MalformedDetail or (missing) InvalidArgument", async () => {
    const { t, fake } = await setup();
    const s = src(t);
    const asString = '{ "b": 2, "a": "é" }';
    const asObject = { nested: { x: [1, null, "😀"] } };
    const details: unknown[] = [asString, asObject, "{oops", "[1,2]", [1, 2], 42, null, "42", "", undefined];
    const entries = details.map((d) =>
      d === undefined ? { Source: s, DetailType: "T" } : { Source: s, DetailType: "T", Detail: d },
    );
    const a = await readAnswer(await postEvents({ Entries: entries }, { key: t.apiKey }));
    expect(codes(a)).toEqual([
      "ok",
      "ok",
      "MalformedDetail",
      "MalformedDetail",
      "MalformedDetail",
      "MalformedDetail",
      "MalformedDetail",
      "MalformedDetail",
      "MalformedDetail",
      "InvalidArgument",
    ]);
    expect(a.FailedEntryCount).toBe(8);
    expect(fake.events.map((e) => e.entry.Detail)).toEqual([asString, JSON.stringify(asObject)]);
  });

  it("Resources: 2048 characters forwarded; 2049, a string and a non-string member refused with InvalidArgument", async () => {
    const { t, fake } = await setup();
    const ok = ["a".repeat(2048), "arn:aws:s3:::b"];
    const a = await readAnswer(
      await postEvents(
        {
          Entries: [
            entry(t, { i: 0 }, { Resources: ok }),
            entry(t, { i: 1 }, { Resources: ["a".repeat(2049)] }),
            entry(t, { i: 2 }, { Resources: "arn:x" }),
            entry(t, { i: 3 }, { Resources: ["arn:x", 7] }),
            entry(t, { i: 4 }, { Resources: [] }),
          ],
        },
        { key: t.apiKey },
      ),
    );
    expect(codes(a)).toEqual(["ok", "InvalidArgument", "InvalidArgument", "InvalidArgument", "ok"]);
    expect(fake.events.map((e) => e.entry.Resources)).toEqual([ok, []]);
  });

  it("an unknown entry field is InvalidArgument", async () => {
    const { t, fake } = await setup();
    const a = await readAnswer(
      await postEvents({ Entries: [entry(t, {}, { EventBusName: "default" }), entry(t)] }, { key: t.apiKey }),
    );
    expect(codes(a)).toEqual(["InvalidArgument", "ok"]);
    expect(a.Entries[0]).toMatchObject({ ErrorMessage: expect.stringContaining('"EventBusName"') });
    expect(fake.events).toHaveLength(1);
    expect(Object.keys(fake.events[0]!.entry)).toEqual(["Source", "DetailType", "Detail"]);
  });

  it("Time: ISO-8601 (Z, offset, fractions, date only) and epoch seconds (number, numeric string) travel as whole epoch seconds", async () => {
    const { t, fake } = await setup();
    const T = Date.UTC(2024, 0, 2, 3, 4, 5) / 1000;
    const good: [unknown, number][] = [
      ["2024-01-02T03:04:05Z", T],
      ["2024-01-02T04:04:05+01:00", T],
      ["2024-01-01T22:04:05-05:00", T],
      ["2024-01-02T03:04:05.987654Z", T],
      ["2024-01-02", Date.UTC(2024, 0, 2) / 1000],
      [T, T],
      [T + 0.9, T],
      [String(T), T],
      [`${T}.5`, T],
    ];
    const bad: unknown[] = ["yesterday", "2024-02-30", "01/02/2024", -1, "-5", true];
    const entries = [
      ...good.map(([time], i) => entry(t, { good: i }, { Time: time })),
      ...bad.map((time, i) => entry(t, { bad: i }, { Time: time })),
    ];
    const a = await readAnswer(await postEvents({ Entries: entries }, { key: t.apiKey }));
    expect(codes(a)).toEqual([...good.map(() => "ok"), ...bad.map(() => "InvalidArgument")]);
    expect(fake.events.map((e) => e.entry.Time)).toEqual(good.map(([, secs]) => secs));
    expect(fake.events.every((e) => Number.isInteger(e.entry.Time))).toBe(true);
  });

  it("an entry without Time is forwarded without one", async () => {
    const { t, fake } = await setup();
    await postEvents({ Entries: [entry(t)] }, { key: t.apiKey });
    expect(fake.events[0]!.entry).not.toHaveProperty("Time");
  });

  it("mixed valid and invalid entries: only the valid ones go upstream, the answer is index-aligned with the right FailedEntryCount", async () => {
    const { t, fake } = await setup();
    const { DetailType: _, ...noType } = entry(t, { i: 1 });
    const entries = [
      entry(t, { i: 0 }),
      noType,
      entry(t, { i: 2 }, { Detail: "{bad" }),
      entry(t, { i: 3 }, { Source: "aws.partner/other.com/someone/else" }),
      entry(t, { i: 4 }, { Time: 1700000000 }),
      entry(t, { i: 5 }, { Source: "not-a-source" }),
      entry(t, { i: 6 }),
    ];
    const res = await postEvents({ Entries: entries }, { key: t.apiKey });
    expect(res.status).toBe(200);
    const a = await readAnswer(res);
    expect(codes(a)).toEqual([
      "ok",
      "InvalidArgument",
      "MalformedDetail",
      "NotAuthorizedForSourceException",
      "ok",
      "InvalidArgument",
      "ok",
    ]);
    expect(a.FailedEntryCount).toBe(4);
    expect(a).not.toHaveProperty("QueuedEntryCount");
    expect(fake.calls).toHaveLength(1);
    expect(fake.calls[0]!.entryCount).toBe(3);
    expect(fake.events.map((e) => e.entry)).toEqual([
      { Source: src(t), DetailType: "Order Created", Detail: '{"i":0}' },
      { Time: 1700000000, Source: src(t), DetailType: "Order Created", Detail: '{"i":4}' },
      { Source: src(t), DetailType: "Order Created", Detail: '{"i":6}' },
    ]);
    expectIdsFromUpstream(a, fake);
    for (const e of a.Entries) if ("ErrorCode" in e) expect(e.ErrorMessage).not.toBe("");
  });

  it("a batch with no valid entry answers 200 with every failure and calls nothing upstream", async () => {
    const { t, fake } = await setup();
    const a = await readAnswer(
      await postEvents(
        { Entries: [entry(t, {}, { Detail: "[]" }), entry(t, {}, { DetailType: "" })] },
        { key: t.apiKey },
      ),
    );
    expect(a).toEqual({
      FailedEntryCount: 2,
      Entries: [
        { ErrorCode: "MalformedDetail", ErrorMessage: expect.stringMatching(/^Entries\[0\]\.Detail/) },
        { ErrorCode: "InvalidArgument", ErrorMessage: expect.stringMatching(/^Entries\[1\]\.DetailType/) },
      ],
    });
    expect(fake.calls).toHaveLength(0);
  });
});

describe("scoping to the tenant's own partner event sources", () => {
  it("exact names match exactly and prefixes match by prefix; anything else is NotAuthorizedForSourceException and never sent", async () => {
    const { t, fake } = await setup({
      sources: ["aws.partner/example.com/exact/one", "aws.partner/example.com/pre/*"],
    });
    const sources = [
      "aws.partner/example.com/exact/one", // exact: ok
      "aws.partner/example.com/exact/one2", // an exact rule is not a prefix
      "aws.partner/example.com/exact/one/sub", // nor a parent
      "aws.partner/example.com/exact", // nor a child
      "aws.partner/example.com/pre/a", // prefix: ok
      "aws.partner/example.com/pre/a/b/c", // prefix: ok
      "aws.partner/example.com/pre", // the prefix ends with a slash
      "aws.partner/example.com/prefix/a", // not under pre/
      "aws.partner/EXAMPLE.com/pre/a", // case matters
      "aws.partner/other.com/pre/a",
    ];
    const res = await postEvents(
      { Entries: sources.map((s) => ({ Source: s, DetailType: "T", Detail: "{}" })) },
      { key: t.apiKey },
    );
    const a = await readAnswer(res);
    const N = "NotAuthorizedForSourceException";
    expect(codes(a)).toEqual(["ok", N, N, N, "ok", "ok", N, N, N, N]);
    expect(a.FailedEntryCount).toBe(7);
    for (const [i, e] of a.Entries.entries()) {
      if ("ErrorCode" in e) expect(e.ErrorMessage).toContain(sources[i]!);
    }
    expect(fake.events.map((e) => e.entry.Source)).toEqual([sources[0], sources[4], sources[5]]);
  });

  it("a batch only for foreign sources calls nothing upstream", async () => {
    const { t, fake } = await setup();
    const a = await readAnswer(
      await postEvents({ Entries: [entry("someone-else"), entry("another")] }, { key: t.apiKey }),
    );
    expect(codes(a)).toEqual(["NotAuthorizedForSourceException", "NotAuthorizedForSourceException"]);
    expect(fake.calls).toHaveLength(0);
  });
});

describe("content type and routing", () => {
  it.each([
    ["missing", undefined],
    ["text/plain", "text/plain"],
    ["form data", "application/x-www-form-urlencoded"],
    ["AWS JSON 1.1 (the AWS front door's, not this one's)", "application/x-amz-json-1.1"],
  ])("refuses a %s content type with 415 and Accept-Post", async (_, type) => {
    const { t, fake } = await setup();
    const headers: Record<string, string> = { authorization: `Bearer ${t.apiKey}` };
    if (type) headers["content-type"] = type;
    const res = await exports.default.fetch(`${RELAY}/v1/events`, {
      method: "POST",
      headers,
      body: new Blob([JSON.stringify({ Entries: [entry(t)] })]).stream(),
    });
    await expectProblem(res, 415, "unsupported_media_type");
    expect(res.headers.get("accept-post")).toBe("application/json");
    expect(fake.calls).toHaveLength(0);
  });

  it.each(["application/json; charset=utf-8", "Application/JSON", "application/json;charset=UTF-8"])(
    "accepts %s",
    async (type) => {
      const { t, fake } = await setup();
      const res = await postEvents({ Entries: [entry(t)] }, { key: t.apiKey, headers: { "content-type": type } });
      expect(res.status).toBe(200);
      expect(fake.events).toHaveLength(1);
    },
  );

  it("answers 404 not_found for an unknown path", async () => {
    for (const path of ["/v1/event", "/v2/events", "/v1/events/x/y", "/v1"]) {
      for (const method of ["GET", "POST"]) {
        await expectProblem(await exports.default.fetch(`${RELAY}${path}`, { method }), 404, "not_found");
      }
    }
  });

  it("answers 405 with Allow: POST for other methods on /v1/events", async () => {
    for (const method of ["GET", "PUT", "DELETE", "PATCH"]) {
      const res = await exports.default.fetch(`${RELAY}/v1/events`, { method });
      await expectProblem(res, 405, "method_not_allowed");
      expect(res.headers.get("allow")).toBe("POST");
    }
  });

  it("answers GET /healthz with 200 and no authentication", async () => {
    const res = await exports.default.fetch(`${RELAY}/healthz`);
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ ok: true });
    expect(res.headers.get("cache-control")).toBe("no-store");
  });
});
