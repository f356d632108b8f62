/**
 * Property-based tests (fast-check) through the Worker's fetch handler and the fake EventBridge:
 * - generated batches mixing valid entries (every accepted form of Time, Detail, Resources) with
 *   entries broken in one known way: the answer is index-aligned with exactly the expected codes,
 *   and the valid entries, only they, arrive upstream intact in wire form;
 * - generated malformed bodies (random JSON, random entries, random text and bytes): never a 5xx,
 *   every error in the documented problem format, and whatever is forwarded is forwarded intact.
 * The expected wire form is computed here, independently of src/entries.
 */
import fc from "fast-check";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import type { WireEntry } from "../../emulator/eventbridge.ts";
import { checkProblemShape, type PutAnswer, postEvents } from "../helpers/http.ts";
import { captureLogs } from "../helpers/leaks.ts";
import { seedTenant } from "../helpers/tenants.ts";
import { installFakeUpstream } from "../helpers/upstream.ts";

/**
 * Runs per property (issue 11: counts that find things within npm test's budget). Measured on the
 * project's 2-core machine: ~55 ms a run for the entries property (a batch of up to 20 through
 * the Worker, the gate and the fake upstream), ~20 ms for the malformed bodies (most are refused
 * before the gate). 400 + 1,000 runs add about 40 s to `npm test` on a quiet machine; the soak
 * and the fuzz (`npm run soak`, `npm run fuzz`) go much further against the real local runtime.
 */
const ENTRY_RUNS = 400;
const BODY_RUNS = 1_000;
/** Per-test guard against hangs on a loaded machine (not a timing assertion). */
const PROPERTY_TIMEOUT_MS = 240_000;
const MAX_EPOCH = 253_402_300_799; // 9999-12-31T23:59:59Z

let logs: string[] = [];
beforeEach(() => {
  logs = captureLogs();
});
afterEach(() => {
  // An exception the relay did not expect is logged as unhandled_error (and answered 500).
  expect(logs.filter((l) => l.includes("unhandled_error"))).toEqual([]);
  vi.restoreAllMocks();
});

// ---- Generators -------------------------------------------------------------------------------

const segment = fc.stringMatching(/^[.\-_A-Za-z0-9]{1,20}$/);
const ownedSource = (prefix: string) =>
  fc.array(segment, { minLength: 1, maxLength: 3 }).map((s) => `${prefix}${s.join("/")}`);
const detailType = fc
  .string({ unit: "grapheme", minLength: 1, maxLength: 40 })
  .filter((s) => s.length >= 1 && s.length <= 128);
// Keys include the ones JavaScript treats specially: in a Detail they are just data.
const detailKey = fc.oneof(
  { weight: 4, arbitrary: fc.string({ maxLength: 10 }) },
  { weight: 1, arbitrary: fc.constantFrom("__proto__", "constructor", "prototype", "toString") },
);
const detailObject = fc.dictionary(detailKey, fc.jsonValue({ maxDepth: 2 }), { maxKeys: 5 });

/** Each accepted form of Time, with the epoch seconds it must travel as. */
const time: fc.Arbitrary<{ input: unknown; secs: number }> = fc.oneof(
  fc.integer({ min: 0, max: MAX_EPOCH }).map((s) => ({ input: s, secs: s })),
  fc.double({ min: 0, max: MAX_EPOCH, noNaN: true }).map((s) => ({ input: s, secs: Math.floor(s) })),
  fc.integer({ min: 0, max: MAX_EPOCH }).map((s) => ({ input: String(s), secs: s })),
  fc
    .integer({ min: 0, max: MAX_EPOCH * 1000 + 999 })
    .map((ms) => ({ input: new Date(ms).toISOString(), secs: Math.floor(ms / 1000) })),
  fc
    .tuple(
      fc.integer({ min: 86_400_000, max: (MAX_EPOCH - 86_400) * 1000 }),
      fc.integer({ min: -14 * 60, max: 14 * 60 }),
    )
    .map(([ms, offMin]) => {
      // The same instant written in another zone: local wall-clock time plus ±hh:mm.
      const local = new Date(ms + offMin * 60_000).toISOString().slice(0, 19);
      const sign = offMin < 0 ? "-" : "+";
      const abs = Math.abs(offMin);
      const zone = `${sign}${String(Math.floor(abs / 60)).padStart(2, "0")}:${String(abs % 60).padStart(2, "0")}`;
      return { input: `${local}${zone}`, secs: Math.floor(ms / 1000) };
    }),
  fc
    .integer({ min: 0, max: Math.floor(MAX_EPOCH / 86_400) })
    .map((d) => ({ input: new Date(d * 86_400_000).toISOString().slice(0, 10), secs: d * 86_400 })),
);

const resources = fc.array(fc.string({ maxLength: 60 }), { maxLength: 3 });

interface Case {
  entry: Record<string, unknown>;
  /** The wire entry EventBridge must receive, or the code the relay must answer. */
  expect: { wire: WireEntry } | { code: string };
}

function validEntry(prefix: string): fc.Arbitrary<Case> {
  return fc
    .record(
      {
        source: ownedSource(prefix),
        detailType,
        detail: detailObject,
        detailAsString: fc.boolean(),
        time: fc.option(time, { nil: undefined }),
        resources: fc.option(resources, { nil: undefined }),
      },
      { requiredKeys: ["source", "detailType", "detail", "detailAsString"] },
    )
    .map((g) => {
      const detailText = JSON.stringify(g.detail);
      const entry: Record<string, unknown> = {
        Source: g.source,
        DetailType: g.detailType,
        Detail: g.detailAsString ? detailText : g.detail,
      };
      if (g.time !== undefined) entry["Time"] = g.time.input;
      if (g.resources !== undefined) entry["Resources"] = g.resources;
      const wire: WireEntry = { Source: g.source, DetailType: g.detailType, Detail: detailText };
      if (g.time !== undefined) wire.Time = g.time.secs;
      if (g.resources !== undefined) wire.Resources = g.resources;
      return { entry, expect: { wire } };
    });
}

const ENTRY_FIELDS = new Set(["Time", "Source", "Resources", "DetailType", "Detail"]);

/** A valid entry broken in exactly one way, with the code EventBridge (or the relay) answers. */
function brokenEntry(prefix: string): fc.Arbitrary<Case> {
  const breakers: fc.Arbitrary<[string, (e: Record<string, unknown>) => void]>[] = [
    fc.constantFrom("Source", "DetailType", "Detail").map((k) => ["InvalidArgument", (e) => void delete e[k]]),
    fc.integer({ min: 129, max: 300 }).map((n) => ["InvalidArgument", (e) => void (e["DetailType"] = "d".repeat(n))]),
    fc.constantFrom(1, null, [], {}).map((v) => ["InvalidArgument", (e) => void (e["DetailType"] = v)]),
    fc
      .constantFrom(
        "aws.partner/example.com",
        "xaws.partner/a/b",
        "aws.partner/a b/c",
        "aws.partner/a/b/",
        "aws.partner/ä/b",
        `aws.partner/a/${"b".repeat(255)}`,
        "",
        7,
      )
      .map((s) => ["InvalidArgument", (e) => void (e["Source"] = s)]),
    segment.map((s) => [
      "NotAuthorizedForSourceException",
      (e) => void (e["Source"] = `aws.partner/elsewhere.example/${s}`),
    ]),
    fc
      .constantFrom("{oops", "[1,2]", "42", "null", '"text"', "", '{"a":}', [1], 42, true, null)
      .map((d) => ["MalformedDetail", (e) => void (e["Detail"] = d)]),
    fc
      .constantFrom(-1, -0.5, "yesterday", "2024-02-30", "1e9", true, null, {}, 253_402_300_800)
      .map((t) => ["InvalidArgument", (e) => void (e["Time"] = t)]),
    fc
      .constantFrom("arn:x", [1], ["x".repeat(2049)], { a: 1 }, null)
      .map((r) => ["InvalidArgument", (e) => void (e["Resources"] = r)]),
    fc
      .tuple(
        fc.string({ minLength: 1, maxLength: 12 }).filter((k) => !ENTRY_FIELDS.has(k)),
        fc.jsonValue({ maxDepth: 1 }),
      )
      // An own property even for "__proto__" (fast-check generates it): `e[k] = v` would set the
      // object's prototype instead, or do nothing, and the entry would not be broken at all.
      .map(([k, v]) => [
        "InvalidArgument",
        (e) => void Object.defineProperty(e, k, { value: v, enumerable: true, writable: true, configurable: true }),
      ]),
  ];
  return fc.tuple(validEntry(prefix), fc.oneof(...breakers)).map(([c, [code, breakIt]]) => {
    const entry = { ...c.entry };
    breakIt(entry);
    return { entry, expect: { code } };
  });
}

/** What must arrive upstream for a request entry the relay forwarded (independent of src/entries). */
function wireOf(e: Record<string, unknown>): WireEntry {
  const wire: WireEntry = {
    Source: e["Source"] as string,
    DetailType: e["DetailType"] as string,
    Detail: typeof e["Detail"] === "string" ? e["Detail"] : JSON.stringify(e["Detail"]),
  };
  const t = e["Time"];
  if (typeof t === "number") wire.Time = Math.floor(t);
  if (typeof t === "string" && /^\d+$/.test(t)) wire.Time = Number(t);
  if (typeof t === "string" && /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z$/.test(t))
    wire.Time = Math.floor(Date.parse(t) / 1000);
  if (e["Resources"] !== undefined) wire.Resources = e["Resources"] as string[];
  return wire;
}

// ---- Properties -------------------------------------------------------------------------------

describe("POST /v1/events, generated inputs", () => {
  it(
    "valid and individually broken entries: index-aligned codes; exactly the valid entries arrive upstream, intact",
    async () => {
      const t = await seedTenant();
      const fake = installFakeUpstream({ credentials: [t.aws] });
      const prefix = `aws.partner/example.com/${t.record.id}/`;
      const cases = fc.array(
        fc.oneof({ weight: 3, arbitrary: validEntry(prefix) }, { weight: 2, arbitrary: brokenEntry(prefix) }),
        { minLength: 1, maxLength: 20 },
      );
      await fc.assert(
        fc.asyncProperty(cases, async (batch) => {
          fake.reset();
          const res = await postEvents({ Entries: batch.map((c) => c.entry) }, { key: t.apiKey });
          expect(res.status).toBe(200);
          const answer = (await res.json()) as PutAnswer;
          const expected = batch.map((c) => ("code" in c.expect ? c.expect.code : "ok"));
          expect(
            answer.Entries.map((e) => ("EventId" in e ? "ok" : "ErrorCode" in e ? e.ErrorCode : "queued")),
          ).toEqual(expected);
          expect(answer.FailedEntryCount).toBe(expected.filter((c) => c !== "ok").length);
          const wires = batch.flatMap((c) => ("wire" in c.expect ? [c.expect.wire] : []));
          expect(fake.calls).toHaveLength(wires.length > 0 ? 1 : 0);
          expect(fake.events.map((e) => e.entry)).toEqual(wires);
          expect(answer.Entries.flatMap((e) => ("EventId" in e ? [e.EventId] : []))).toEqual(
            fake.events.map((e) => e.eventId),
          );
          for (const e of answer.Entries) if ("ErrorCode" in e) expect(e.ErrorMessage.length).toBeGreaterThan(0);
        }),
        { numRuns: ENTRY_RUNS },
      );
    },
    PROPERTY_TIMEOUT_MS,
  ); // a run is one request through the Worker and the gate: allow for a loaded machine

  it(
    "malformed bodies: never a 5xx, every error in the problem format, anything forwarded forwarded intact",
    async () => {
      const t = await seedTenant();
      const fake = installFakeUpstream({ credentials: [t.aws] });
      const prefix = `aws.partner/example.com/${t.record.id}/`;
      const anyField = fc.oneof(
        fc.jsonValue({ maxDepth: 2 }),
        ownedSource(prefix),
        detailType,
        detailObject.map((d) => JSON.stringify(d)),
        time.map((x) => x.input),
      );
      // Each member: mostly a valid value, sometimes any JSON, sometimes absent.
      const ABSENT = Symbol("absent");
      const member = <T>(valid: fc.Arbitrary<T>) =>
        fc.oneof(
          { weight: 8, arbitrary: valid },
          { weight: 1, arbitrary: anyField },
          { weight: 1, arbitrary: fc.constant(ABSENT) },
        );
      const looseEntry = fc
        .record({
          Time: fc.oneof(
            { weight: 3, arbitrary: fc.constant(ABSENT) },
            { weight: 3, arbitrary: time.map((x) => x.input) },
            { weight: 1, arbitrary: anyField },
          ),
          Source: member(ownedSource(prefix)),
          DetailType: member(detailType),
          Detail: member(
            fc.oneof(
              detailObject,
              detailObject.map((d) => JSON.stringify(d)),
            ),
          ),
          Resources: fc.oneof(
            { weight: 3, arbitrary: fc.constant(ABSENT) },
            { weight: 3, arbitrary: resources },
            { weight: 1, arbitrary: anyField },
          ),
        })
        .map((r) => Object.fromEntries(Object.entries(r).filter(([, v]) => v !== ABSENT)));
      const body: fc.Arbitrary<unknown> = fc.oneof(
        { weight: 1, arbitrary: fc.jsonValue({ maxDepth: 3 }) },
        { weight: 1, arbitrary: fc.record({ Entries: fc.array(fc.jsonValue({ maxDepth: 2 }), { maxLength: 22 }) }) },
        { weight: 6, arbitrary: fc.record({ Entries: fc.array(looseEntry, { minLength: 0, maxLength: 22 }) }) },
        {
          weight: 1,
          arbitrary: fc.record({
            Entries: fc.array(looseEntry, { minLength: 1, maxLength: 3 }),
            extra: fc.jsonValue({ maxDepth: 1 }),
          }),
        },
        { weight: 1, arbitrary: fc.string({ maxLength: 200 }).map((s) => ({ raw: s })) },
        { weight: 1, arbitrary: fc.uint8Array({ maxLength: 200 }).map((b) => ({ bytes: b })) },
      );
      await fc.assert(
        fc.asyncProperty(body, async (b) => {
          fake.reset();
          const payload = isRaw(b) ? ("raw" in b ? b.raw : b.bytes) : JSON.stringify(b);
          const res = await postEvents(payload, { key: t.apiKey });
          expect(res.status).toBeLessThan(500);
          if (res.status >= 400) {
            expect(res.headers.get("content-type")).toBe("application/problem+json");
            expect(res.headers.get("cache-control")).toBe("no-store");
            checkProblemShape(await res.json(), res.status);
            expect(fake.calls).toHaveLength(0);
            return;
          }
          expect(res.status).toBe(200);
          const text = typeof payload === "string" ? payload : new TextDecoder().decode(payload);
          const sent = JSON.parse(text) as { Entries: Record<string, unknown>[] };
          const answer = (await res.json()) as PutAnswer;
          expect(answer.Entries).toHaveLength(sent.Entries.length);
          expect(answer.FailedEntryCount).toBe(answer.Entries.filter((e) => "ErrorCode" in e).length);
          const forwarded = sent.Entries.filter((_, i) => "EventId" in answer.Entries[i]!);
          expect(fake.events.map((e) => e.entry)).toEqual(
            forwarded.map((e) => expect.objectContaining(pick(wireOf(e)))),
          );
          for (const e of fake.events) {
            expect(Object.keys(e.entry).every((k) => ENTRY_FIELDS.has(k))).toBe(true);
            if (e.entry.Time !== undefined) expect(Number.isInteger(e.entry.Time)).toBe(true);
          }
        }),
        { numRuns: BODY_RUNS },
      );
    },
    PROPERTY_TIMEOUT_MS,
  ); // a run is one request through the Worker and the gate: allow for a loaded machine
});

function isRaw(b: unknown): b is { raw: string } | { bytes: Uint8Array } {
  return (
    typeof b === "object" &&
    b !== null &&
    !Array.isArray(b) &&
    Object.keys(b).length === 1 &&
    ("raw" in b || ("bytes" in b && b.bytes instanceof Uint8Array))
  );
}

/** The wire members the oracle can state for any input (Time only when it could compute it). */
function pick(w: WireEntry): Partial<WireEntry> {
  return Object.fromEntries(Object.entries(w).filter(([, v]) => v !== undefined));
}
