/**
 * Micro-benchmarks of the relay's pure pieces, run inside workerd (the V8 and WebCrypto the relay
 * really runs on). Timers don't advance while a Worker computes, so this Worker only repeats a
 * step `n` times per request; profile.ts reads workerd's CPU time from /proc around each request
 * and subtracts a no-op request. Bundled with esbuild by profile.ts; never deployed.
 *
 *   PUT  /body?size=small|max   the request body to work on (kept in memory)
 *   POST /run?step=<name>&size=small|max&n=<count>
 *   POST /read?mode=reader|arrayBuffer   reads the posted body one way and drops it (the cost of
 *                                        reading a body chunk by chunk in JS, as readBodyCapped
 *                                        does, against the runtime's arrayBuffer())
 */
import { AwsClient } from "aws4fetch";
import { generateApiKey, hashApiKey, isWellFormedApiKey, toHex } from "../../src/auth/api-key.ts";
import { entrySchema, validateBatch, type WireEntry } from "../../src/entries/schema.ts";
import { entrySize, utf8Length } from "../../src/entries/size.ts";
import { renderJson } from "../../src/ingest/json-api.ts";
import { log } from "../../src/log.ts";

interface Prepared {
  bytes: Uint8Array<ArrayBuffer>;
  text: string;
  parsed: { Entries: Record<string, unknown>[] };
  wire: WireEntry[];
  details: string[];
  upstreamBody: string;
  upstreamBytes: Uint8Array<ArrayBuffer>;
  rows: string[];
}

const bodies = new Map<string, Prepared>();
const decoder = new TextDecoder("utf-8", { fatal: true, ignoreBOM: false });
const client = new AwsClient({
  accessKeyId: "AKIAFAKEEVENTBRIDGE0",
  secretAccessKey: "fakeEventBridgeSecretKey0000000000000000",
  service: "events",
  region: "us-east-1",
  retries: 0,
});
/** Random values are not allowed at global scope in Workers: made on first use. */
let apiKeyValue: string | null = null;
const apiKey = (): string => (apiKeyValue ??= generateApiKey());
const SIGN_INIT = {
  method: "POST",
  headers: { "content-type": "application/x-amz-json-1.1", "x-amz-target": "AWSEvents.PutPartnerEvents" },
  aws: { service: "events", region: "us-east-1", allHeaders: true },
};

function prepare(bytes: Uint8Array<ArrayBuffer>): Prepared {
  const text = decoder.decode(bytes);
  const parsed = JSON.parse(text) as Prepared["parsed"];
  const wire = validateBatch(parsed, 262_144).slots.map((s) => (s as { entry: WireEntry }).entry);
  const upstreamBody = JSON.stringify({ Entries: wire });
  return {
    bytes,
    text,
    parsed,
    wire,
    details: parsed.Entries.map((e) => e.Detail as string),
    upstreamBody,
    upstreamBytes: new TextEncoder().encode(upstreamBody) as Uint8Array<ArrayBuffer>,
    rows: wire.map((e) => JSON.stringify(e)),
  };
}

type Step = (p: Prepared) => unknown;

/** UTF-8 length with a native pre-check: pure ASCII (the common case) is its own length. */
const NON_ASCII = /[^\x00-\x7f]/;
function asciiShortcutLength(s: string): number {
  return NON_ASCII.test(s) ? utf8Length(s) : s.length;
}

/** UTF-8 length by encoding into a scratch buffer (WTF-16 lone surrogates become U+FFFD, 3 bytes, as in utf8Length). */
let scratch = new Uint8Array(64 * 1024);
const encoder = new TextEncoder();
function encodeIntoLength(s: string): number {
  if (scratch.length < s.length * 3) scratch = new Uint8Array(s.length * 3);
  return encoder.encodeInto(s, scratch).written;
}

/** AWS's formula with a given string length function (mirrors src/entries/size.ts). */
function sizeWith(e: Record<string, unknown> | WireEntry, len: (s: string) => number): number {
  const r = e as Record<string, unknown>;
  let n = r.Time === undefined || r.Time === null ? 0 : 14;
  if (typeof r.Source === "string") n += len(r.Source);
  if (typeof r.DetailType === "string") n += len(r.DetailType);
  if (typeof r.Detail === "string") n += len(r.Detail);
  if (Array.isArray(r.Resources)) for (const x of r.Resources) if (typeof x === "string") n += len(x);
  return n;
}

/** Each step is one request's worth of that piece of work. */
export const STEPS: Record<string, Step> = {
  noop: () => 0,
  decode: (p) => decoder.decode(p.bytes),
  parse: (p) => JSON.parse(p.text),
  validateBatch: (p) => validateBatch(p.parsed, 262_144),
  entrySchema20: (p) => p.parsed.Entries.map((e) => entrySchema.safeParse(e)),
  detailParse20: (p) => p.details.map((d) => JSON.parse(d)),
  entrySize40: (p) => {
    let n = 0;
    for (const e of p.parsed.Entries) n += entrySize(e);
    for (const e of p.wire) n += entrySize(e);
    return n;
  },
  // Candidates for a cheaper size check (not the relay's code): the same 40 sizes.
  entrySize40AsciiShortcut: (p) => {
    let n = 0;
    for (const e of p.parsed.Entries) n += sizeWith(e, asciiShortcutLength);
    for (const e of p.wire) n += sizeWith(e, asciiShortcutLength);
    return n;
  },
  entrySize40EncodeInto: (p) => {
    let n = 0;
    for (const e of p.parsed.Entries) n += sizeWith(e, encodeIntoLength);
    for (const e of p.wire) n += sizeWith(e, encodeIntoLength);
    return n;
  },
  stringifyUpstream: (p) => JSON.stringify({ Entries: p.wire }),
  // Candidate for the drain (not the relay's code): the upstream body from stored JSON rows.
  concatRows: (p) => `{"Entries":[${p.rows.join(",")}]}`,
  encodeUpstream: (p) => new TextEncoder().encode(p.upstreamBody),
  sha256Upstream: (p) => crypto.subtle.digest("SHA-256", p.upstreamBytes),
  signString: (p) => client.sign("http://127.0.0.1:9/", { ...SIGN_INIT, body: p.upstreamBody }),
  signBytes: (p) => client.sign("http://127.0.0.1:9/", { ...SIGN_INIT, body: p.upstreamBytes }),
  requestString: (p) => new Request("http://127.0.0.1:9/", { method: "POST", body: p.upstreamBody }),
  apiKeyFormat: () => isWellFormedApiKey(apiKey()),
  apiKeyHash: () => hashApiKey(apiKey()),
  render: (p) =>
    renderJson({
      entries: p.wire.map((_, i) => ({ kind: "delivered", eventId: `e-${i}` })),
      failed: 0,
      queued: 0,
      rate: null,
    }),
  logLine: () =>
    log.info("ingest", { requestId: "r", tenantId: "bench-direct", entries: 20, delivered: 20, queued: 0, failed: 0 }),
  logLineEmitted: () =>
    log.info("ingest", { requestId: "r", tenantId: "bench-direct", entries: 20, delivered: 20, queued: 0, failed: 0 }),
  idempotencyHash: async (p) => toHex(new Uint8Array(await crypto.subtle.digest("SHA-256", p.bytes))),
  enqueueStringify20: (p) => p.wire.map((e) => JSON.stringify(e)),
  claimParse20: (p) => p.rows.map((r) => JSON.parse(r)),
};

export default {
  async fetch(request: Request): Promise<Response> {
    const url = new URL(request.url);
    if (url.pathname === "/read") {
      let n = 0;
      if (url.searchParams.get("mode") === "reader" && request.body) {
        const reader = request.body.getReader();
        const chunks: Uint8Array[] = [];
        for (;;) {
          const { done, value } = await reader.read();
          if (done) break;
          n += value.byteLength;
          chunks.push(value);
        }
        const out = new Uint8Array(n);
        let off = 0;
        for (const c of chunks) {
          out.set(c, off);
          off += c.byteLength;
        }
        return new Response(`${chunks.length} chunks`);
      }
      n = (await request.arrayBuffer()).byteLength;
      return new Response(`${n} bytes`);
    }
    const size = url.searchParams.get("size") ?? "small";
    if (request.method === "PUT" && url.pathname === "/body") {
      bodies.set(size, prepare(new Uint8Array(await request.arrayBuffer())));
      return new Response("ok");
    }
    const step = STEPS[url.searchParams.get("step") ?? ""];
    const p = bodies.get(size);
    const n = Number(url.searchParams.get("n") ?? "1");
    if (!step || !p || !(n >= 1)) return new Response("bad request", { status: 400 });
    const quiet = url.searchParams.get("step") === "logLine";
    const orig = console.log;
    if (quiet) console.log = () => {};
    try {
      for (let i = 0; i < n; i++) {
        const r = step(p);
        if (r instanceof Promise) await r;
      }
    } finally {
      console.log = orig;
    }
    return new Response("done");
  },
};
