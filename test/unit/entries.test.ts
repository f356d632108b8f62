/**
 * Entry validation and AWS's size formula as pure functions (src/entries), each rule at its
 * boundary, plus the MAX_BATCH_BYTES Worker variable through `app.request` with an env override.
 * Expected values are computed here independently (TextEncoder, Date.UTC), never by the code
 * under test.
 */

import { createExecutionContext, waitOnExecutionContext } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { afterEach, describe, expect, it, vi } from "vitest";
import { app } from "../../src/app.ts";
import { type Slot, validateBatch, validateEntry } from "../../src/entries/schema.ts";
import { entrySize, utf8Length } from "../../src/entries/size.ts";
import { RelayError } from "../../src/errors.ts";
import { maxBodyBytes } from "../../src/limits.ts";
import { expectProblem, readAnswer } from "../helpers/http.ts";
import { seedTenant } from "../helpers/tenants.ts";
import { installFakeUpstream } from "../helpers/upstream.ts";

afterEach(() => vi.restoreAllMocks());

const SOURCE = "aws.partner/example.com/t1/orders";
const utf8 = (s: string) => new TextEncoder().encode(s).byteLength;

function base(extra: Record<string, unknown> = {}): Record<string, unknown> {
  return { Source: SOURCE, DetailType: "Order Created", Detail: '{"id":1}', ...extra };
}

function ok(slot: Slot) {
  if (!slot.ok) throw new Error(`expected a valid entry, got ${slot.code}: ${slot.message}`);
  return slot;
}

function fail(slot: Slot, code: string, message?: RegExp) {
  expect(slot.ok).toBe(false);
  if (slot.ok) return;
  expect(slot.code).toBe(code);
  if (message) expect(slot.message).toMatch(message);
}

function relayErrorOf(fn: () => unknown): RelayError {
  try {
    fn();
  } catch (e) {
    if (e instanceof RelayError) return e;
    throw e;
  }
  throw new Error("expected a RelayError");
}

describe("utf8Length and entrySize (AWS's formula)", () => {
  it.each([
    ["", 0],
    ["a", 1],
    ["é", 2],
    ["€", 3],
    ["😀", 4],
    ["a€é😀", 10],
    ["\ud800", 3], // a lone high surrogate is encoded as U+FFFD
    ["\udc00x", 4], // a lone low surrogate too
    ["\ud83d", 3], // a high surrogate at the end
  ])("utf8Length(%j) = %i, as TextEncoder counts", (s, n) => {
    expect(utf8Length(s)).toBe(n);
    expect(utf8Length(s)).toBe(utf8(s));
  });

  it("counts Time as 14 whatever its form; Source, DetailType, Detail and each Resource in UTF-8 bytes; nothing else", () => {
    const e = { Source: "aws.partner/ü.com/x", DetailType: "Créé ✓", Detail: '{"k":"😀"}', Resources: ["arn:é", "r"] };
    const bytes = utf8(e.Source) + utf8(e.DetailType) + utf8(e.Detail) + utf8("arn:é") + 1;
    expect(entrySize(e)).toBe(bytes);
    expect(entrySize({ ...e, Time: 1 })).toBe(bytes + 14);
    expect(entrySize({ ...e, Time: "2024-01-02T03:04:05.123456+02:00" })).toBe(bytes + 14);
    expect(entrySize({ ...e, Unknown: "x".repeat(1000) } as never)).toBe(bytes);
  });

  it("counts a Detail object as the JSON it is serialised to upstream", () => {
    const detail = { a: "é", b: [1, 2] };
    expect(entrySize({ Source: "s", DetailType: "d", Detail: detail })).toBe(2 + utf8(JSON.stringify(detail)));
  });
});

describe("validateEntry", () => {
  it("passes a valid entry through in wire form and key order, with its size", () => {
    const slot = ok(validateEntry(base({ Resources: ["arn:x"], Time: 1704164645 }), 0));
    expect(Object.keys(slot.entry)).toEqual(["Time", "Source", "Resources", "DetailType", "Detail"]);
    expect(slot.entry).toEqual({
      Time: 1704164645,
      Source: SOURCE,
      Resources: ["arn:x"],
      DetailType: "Order Created",
      Detail: '{"id":1}',
    });
    expect(slot.bytes).toBe(14 + utf8(SOURCE) + utf8("Order Created") + utf8('{"id":1}') + 5);
  });

  describe("Source", () => {
    it.each([
      "aws.partner/example.com/orders",
      "aws.partner/example.com/t1/orders",
      "aws.partner/a/b/c/d/e",
      "aws.partner/Ex-am_ple.com/..._-/A9",
    ])("accepts %s", (s) => {
      expect(ok(validateEntry(base({ Source: s }), 0)).entry.Source).toBe(s);
    });

    it.each([
      ["too few segments", "aws.partner/example.com"],
      ["no segments", "aws.partner"],
      ["an empty segment", "aws.partner/example.com//orders"],
      ["a trailing slash", "aws.partner/example.com/orders/"],
      ["a space", "aws.partner/example.com/my orders"],
      ["a non-ASCII letter", "aws.partner/exämple.com/orders"],
      ["a colon", "aws.partner/example.com/a:b"],
      ["not anchored at the start", "xaws.partner/example.com/orders"],
      ["a leading space", " aws.partner/example.com/orders"],
      ["not anchored at the end (newline)", "aws.partner/example.com/orders\n"],
      ["a different service", "aws.events/example.com/orders"],
      ["an unescaped dot wildcard", "awsXpartner/example.com/orders"],
      ["empty", ""],
    ])("refuses %s with InvalidArgument", (_, s) => {
      fail(validateEntry(base({ Source: s }), 3), "InvalidArgument", /^Entries\[3\]\.Source: /);
    });

    it("accepts 256 characters and refuses 257", () => {
      const prefix = "aws.partner/example.com/";
      const s256 = prefix + "a".repeat(256 - prefix.length);
      expect(s256).toHaveLength(256);
      expect(ok(validateEntry(base({ Source: s256 }), 0)).entry.Source).toBe(s256);
      fail(validateEntry(base({ Source: s256 + "a" }), 0), "InvalidArgument", /at most 256/);
    });

    it("refuses a missing or non-string Source", () => {
      const { Source: _, ...rest } = base();
      fail(validateEntry(rest, 0), "InvalidArgument", /Source is required/);
      fail(validateEntry(base({ Source: 42 }), 0), "InvalidArgument", /Source must be a string/);
    });
  });

  describe("DetailType", () => {
    it("accepts 128 characters (multi-byte ones count as one) and refuses 129", () => {
      expect(ok(validateEntry(base({ DetailType: "é".repeat(128) }), 0)).entry.DetailType).toBe("é".repeat(128));
      fail(
        validateEntry(base({ DetailType: "a".repeat(129) }), 0),
        "InvalidArgument",
        /DetailType must be at most 128/,
      );
    });

    it("refuses missing, empty and non-string", () => {
      const { DetailType: _, ...rest } = base();
      fail(validateEntry(rest, 0), "InvalidArgument", /DetailType is required/);
      fail(validateEntry(base({ DetailType: "" }), 0), "InvalidArgument", /DetailType must not be empty/);
      fail(validateEntry(base({ DetailType: 7 }), 0), "InvalidArgument", /DetailType must be a string/);
    });
  });

  describe("Detail", () => {
    it("keeps a JSON string exactly as sent", () => {
      const d = '{ "b" : 2,\n "a": [1, {"x": "é"}] }';
      expect(ok(validateEntry(base({ Detail: d }), 0)).entry.Detail).toBe(d);
    });

    it("serialises a JSON object", () => {
      const d = { nested: { list: [1, "two", null, true], s: "ünï" }, n: 1.5 };
      const slot = ok(validateEntry(base({ Detail: d }), 0));
      expect(slot.entry.Detail).toBe(JSON.stringify(d));
      expect(slot.bytes).toBe(utf8(SOURCE) + utf8("Order Created") + utf8(JSON.stringify(d)));
    });

    it('serialises an object with a "__proto__" member intact (it is data, not a prototype)', () => {
      const raw = JSON.parse(
        '{"Source":"aws.partner/example.com/t1/orders","DetailType":"T","Detail":{"__proto__":{"x":1},"a":1}}',
      ) as unknown;
      const slot = ok(validateEntry(raw, 0));
      expect(slot.entry.Detail).toBe('{"__proto__":{"x":1},"a":1}');
      expect(slot.bytes).toBe(utf8(SOURCE) + 1 + utf8('{"__proto__":{"x":1},"a":1}'));
    });

    it.each([
      ["invalid JSON", "{not json"],
      ["truncated JSON", '{"a":'],
      ["an empty string", ""],
      ["a JSON array string", "[1,2]"],
      ["a JSON number string", "42"],
      ["a JSON string string", '"text"'],
      ["a JSON null string", "null"],
      ["an array", [1, 2]],
      ["an empty array", []],
      ["a number", 42],
      ["a boolean", true],
      ["null", null],
    ])("answers MalformedDetail for %s", (_, d) => {
      fail(validateEntry(base({ Detail: d }), 5), "MalformedDetail", /^Entries\[5\]\.Detail: /);
    });

    it("answers InvalidArgument when Detail is missing", () => {
      const { Detail: _, ...rest } = base();
      fail(validateEntry(rest, 0), "InvalidArgument", /Detail is required/);
    });
  });

  describe("Resources", () => {
    it("accepts an empty list and resources of 2048 characters", () => {
      expect(ok(validateEntry(base({ Resources: [] }), 0)).entry.Resources).toEqual([]);
      const r = ["a".repeat(2048), "arn:aws:s3:::b"];
      expect(ok(validateEntry(base({ Resources: r }), 0)).entry.Resources).toEqual(r);
    });

    it.each([
      ["a resource of 2049 characters", ["ok", "a".repeat(2049)]],
      ["a string instead of a list", "arn:x"],
      ["an object", { a: "arn:x" }],
      ["a non-string resource", ["arn:x", 5]],
      ["null", null],
    ])("refuses %s with InvalidArgument", (_, r) => {
      fail(validateEntry(base({ Resources: r }), 0), "InvalidArgument", /^Entries\[0\]\.Resources/);
    });
  });

  describe("Time", () => {
    const T = Date.UTC(2024, 0, 2, 3, 4, 5) / 1000; // 1704164645
    it.each([
      ["ISO-8601 with Z", "2024-01-02T03:04:05Z", T],
      ["lower-case t and z", "2024-01-02t03:04:05z", T],
      ["an offset", "2024-01-02T05:04:05+02:00", T],
      ["a negative offset", "2024-01-02T00:34:05-02:30", T],
      ["a compact offset", "2024-01-02T05:04:05+0200", T],
      ["fractional seconds (truncated)", "2024-01-02T03:04:05.999Z", T],
      ["nanoseconds", "2024-01-02T03:04:05.123456789Z", T],
      ["no zone (UTC)", "2024-01-02T03:04:05", T],
      ["a space separator", "2024-01-02 03:04:05Z", T],
      ["minutes only", "2024-01-02T03:04Z", T - 5],
      ["date only (midnight UTC)", "2024-01-02", Date.UTC(2024, 0, 2) / 1000],
      ["a leap day", "2024-02-29T00:00:00Z", Date.UTC(2024, 1, 29) / 1000],
      ["epoch seconds", T, T],
      ["fractional epoch seconds (truncated)", T + 0.999, T],
      ["zero", 0, 0],
      ["a numeric string", String(T), T],
      ["a fractional numeric string", `${T}.75`, T],
      ["the last second of 9999", 253402300799, 253402300799],
      ["a fraction into the last second of 9999", 253402300799.5, 253402300799],
      ["the last millisecond of 9999", "9999-12-31T23:59:59.999Z", 253402300799],
    ])("accepts %s", (_, input, expected) => {
      expect(ok(validateEntry(base({ Time: input }), 0)).entry.Time).toBe(expected);
    });

    it.each([
      ["a word", "yesterday"],
      ["an empty string", ""],
      ["a negative number", -1],
      ["a negative fraction", -0.5],
      ["a negative numeric string", "-1"],
      ["exponent notation in a string", "1e9"],
      ["month 13", "2024-13-01T00:00:00Z"],
      ["February 30", "2024-02-30"],
      ["February 29 in a common year", "2023-02-29T00:00:00Z"],
      ["April 31", "2024-04-31T12:00:00Z"],
      ["day 0", "2024-01-00"],
      ["minute 60", "2024-01-02T03:60:00Z"],
      ["hour 25", "2024-01-02T25:00:00Z"],
      ["an unpadded date", "2024-1-2"],
      ["year 10000 in epoch seconds", 253402300800],
      ["a boolean", true],
      ["null", null],
      ["an object", { seconds: 1 }],
    ])("refuses %s with InvalidArgument", (_, input) => {
      fail(validateEntry(base({ Time: input }), 2), "InvalidArgument", /^Entries\[2\]\.Time/);
    });
  });

  it("refuses an unknown field (TraceHeader included: PutPartnerEvents has none) with InvalidArgument", () => {
    fail(validateEntry(base({ Extra: 1 }), 0), "InvalidArgument", /unknown field\(s\) "Extra"/);
    fail(validateEntry(base({ TraceHeader: "Root=1" }), 0), "InvalidArgument", /TraceHeader/);
    fail(validateEntry(base({ source: SOURCE }), 0), "InvalidArgument", /"source"/);
  });
});

describe("validateBatch", () => {
  const CAP = 262_144;

  it("accepts 1 and 20 entries; refuses 0 and 21 whole (400 invalid_request)", () => {
    expect(validateBatch({ Entries: [base()] }, CAP).slots).toHaveLength(1);
    expect(validateBatch({ Entries: Array.from({ length: 20 }, () => base()) }, CAP).slots).toHaveLength(20);
    for (const n of [0, 21]) {
      const err = relayErrorOf(() => validateBatch({ Entries: Array.from({ length: n }, () => base()) }, CAP));
      expect(err.status).toBe(400);
      expect(err.code).toBe("invalid_request");
      expect(err.detail).toMatch(n === 0 ? /at least 1/ : /at most 20/);
    }
  });

  it.each([
    ["Entries missing", {}, /Entries is required/],
    ["Entries not a list", { Entries: { 0: {} } }, /Entries must be a list/],
    ["Entries a string", { Entries: "[]" }, /Entries must be a list/],
    ["the body a list", [base()], /must be a JSON object/],
    ["the body a string", "Entries", /must be a JSON object/],
    ["the body null", null, /must be a JSON object/],
    ["an unknown top-level field", { Entries: [base()], EventBusName: "x" }, /unknown field\(s\) "EventBusName"/],
    ["an entry that is a number", { Entries: [base(), 5] }, /Entries\[1\]: an entry must be a JSON object/],
    ["an entry that is a list", { Entries: [[base()]] }, /Entries\[0\]: an entry must be a JSON object/],
    ["an entry that is null", { Entries: [base(), base(), null] }, /Entries\[2\]: an entry must be a JSON object/],
  ])("refuses %s whole with 400 invalid_request", (_, body, detail) => {
    const err = relayErrorOf(() => validateBatch(body, CAP));
    expect(err.status).toBe(400);
    expect(err.code).toBe("invalid_request");
    expect(err.detail).toMatch(detail);
  });

  it("sums every entry's size, valid or not, against the cap: at the cap passes, one byte over is 413", () => {
    const a = base({ Time: "2024-01-02T03:04:05Z", DetailType: "Créé", Resources: ["arn:é"] });
    const invalid = { Source: "bad", DetailType: "€", Detail: "[1]" }; // counts although it will fail
    const used = 14 + utf8(SOURCE) + utf8("Créé") + utf8('{"id":1}') + utf8("arn:é") + utf8("bad") + 3 + 3;
    const r = validateBatch({ Entries: [a, invalid] }, used);
    expect(r.totalBytes).toBe(used);
    expect(r.slots.map((s) => s.ok)).toEqual([true, false]);
    const err = relayErrorOf(() => validateBatch({ Entries: [a, invalid] }, used - 1));
    expect(err.status).toBe(413);
    expect(err.code).toBe("batch_too_large");
    expect(err.extra).toEqual({ size: used, limit: used - 1 });
  });

  it("returns one slot per entry, index-aligned, invalid ones with a precise message", () => {
    const { DetailType: _, ...noType } = base();
    const slots = validateBatch({ Entries: [base(), noType, base({ Detail: "nope" }), base()] }, CAP).slots;
    expect(slots.map((s) => (s.ok ? "ok" : s.code))).toEqual(["ok", "InvalidArgument", "MalformedDetail", "ok"]);
    expect(slots[1]).toMatchObject({
      message: expect.stringMatching(/^Entries\[1\]\.DetailType: DetailType is required/),
    });
    expect(slots[2]).toMatchObject({
      message: expect.stringMatching(/^Entries\[2\]\.Detail: Detail is not valid JSON/),
    });
  });
});

describe("raw body cap", () => {
  it("is six times the batch cap (every counted byte \\u-escaped) plus 64 KiB", () => {
    expect(maxBodyBytes(262_144)).toBe(1_638_400);
    expect(maxBodyBytes(4096)).toBe(90_112);
  });
});

describe("MAX_BATCH_BYTES Worker variable (app.request with an env override)", () => {
  async function postWith(vars: Partial<Record<"MAX_BATCH_BYTES", string>>, body: string, key: string) {
    const ctx = createExecutionContext();
    const res = await app.request(
      "/v1/events",
      { method: "POST", headers: { authorization: `Bearer ${key}`, "content-type": "application/json" }, body },
      { ...env, ...vars },
      ctx,
    );
    await waitOnExecutionContext(ctx);
    return res;
  }

  /** One entry of exactly `bytes` by AWS's formula, its Detail padded with multi-byte characters. */
  function entryOf(source: string, bytes: number) {
    const fixed = utf8(source) + utf8("Typé") + utf8('{"p":""}');
    const pad = bytes - fixed;
    const emoji = Math.max(0, Math.floor((pad - 6) / 4));
    const rest = pad - 4 * emoji; // 6..9
    const fill = "😀".repeat(emoji) + "€" + "é".repeat(Math.floor((rest - 3) / 2)) + ((rest - 3) % 2 ? "a" : "");
    const e = { Source: source, DetailType: "Typé", Detail: `{"p":"${fill}"}` };
    expect(utf8(e.Source) + utf8(e.DetailType) + utf8(e.Detail)).toBe(bytes);
    return e;
  }

  it("sets the cap: 4096 forwards a 4096-byte batch and refuses 4097 with 413 batch_too_large", async () => {
    const t = await seedTenant();
    const fake = installFakeUpstream({ credentials: [t.aws] });
    const source = `aws.partner/example.com/${t.record.id}/orders`;
    const at = entryOf(source, 4096);
    const res = await postWith({ MAX_BATCH_BYTES: "4096" }, JSON.stringify({ Entries: [at] }), t.apiKey);
    expect(res.status).toBe(200);
    expect((await readAnswer(res)).FailedEntryCount).toBe(0);
    expect(fake.events.map((e) => e.entry)).toEqual([at]);

    const over = await postWith(
      { MAX_BATCH_BYTES: "4096" },
      JSON.stringify({ Entries: [entryOf(source, 4097)] }),
      t.apiKey,
    );
    const p = await expectProblem(over, 413, "batch_too_large");
    expect(p).toMatchObject({ size: 4097, limit: 4096 });
    expect(fake.calls).toHaveLength(1);
  });

  it("sets the raw body cap with it (6 x 4096 + 64 KiB): one byte over is 413 payload_too_large", async () => {
    const t = await seedTenant();
    const fake = installFakeUpstream({ credentials: [t.aws] });
    const json = JSON.stringify({ Entries: [entryOf(`aws.partner/example.com/${t.record.id}/orders`, 100)] });
    const atCap = json + " ".repeat(90_112 - utf8(json));
    expect((await postWith({ MAX_BATCH_BYTES: "4096" }, atCap, t.apiKey)).status).toBe(200);
    await expectProblem(await postWith({ MAX_BATCH_BYTES: "4096" }, atCap + " ", t.apiKey), 413, "payload_too_large");
    expect(fake.events).toHaveLength(1);
  });

  it("falls back to 262144 when the variable is not a whole number in range, and says so in the log", async () => {
    const t = await seedTenant();
    const fake = installFakeUpstream({ credentials: [t.aws] });
    const lines: string[] = [];
    vi.spyOn(console, "error").mockImplementation((l: unknown) => void lines.push(String(l)));
    vi.spyOn(console, "log").mockImplementation(() => {});
    const res = await postWith(
      { MAX_BATCH_BYTES: "lots" },
      JSON.stringify({ Entries: [entryOf(`aws.partner/example.com/${t.record.id}/orders`, 5000)] }),
      t.apiKey,
    );
    expect(res.status).toBe(200);
    expect(fake.events).toHaveLength(1);
    expect(lines.some((l) => l.includes('"config_invalid"') && l.includes("MAX_BATCH_BYTES"))).toBe(true);
  });
});
