/**
 * The fuzz's request generator: seeded, one category per request, both front doors. Every entry
 * that carries an id carries it in Detail ({"fuzzId"}); a case says which ids may reach the upstream
 * (valid entries of a request that is authenticated and authorized for their source) and which
 * strings the answer must not echo (the credentials the caller sent).
 */
import { AwsClient } from "aws4fetch";
import { generateApiKey } from "../../src/auth/api-key.ts";
import type { WireRequest } from "./http.ts";

export interface FuzzTenant {
  id: string;
  source: string;
  apiKey: string;
  revokedKey: string;
  sigv4: { accessKeyId: string; secretAccessKey: string };
}

export type Door = "json" | "aws" | "other";

export interface Case {
  category: string;
  door: Door;
  /** node:http request, or raw bytes for broken framing. */
  wire: WireRequest | { raw: Uint8Array; halfClose: boolean };
  /** Ids that may reach the upstream, with the tenant they must arrive under. */
  allowed: { id: string; tenant: number }[];
  /** Every other id this request carried: must never reach the upstream. */
  forbidden: string[];
  /** Credential material this caller sent (its own key, secret, Authorization value): never echoed. */
  sent: string[];
  /** True when the request is valid and the relay must accept it (200/202). */
  mustAccept?: boolean;
}

type Rand = () => number;

const enc = new TextEncoder();
/** The relay's raw body cap with the default MAX_BATCH_BYTES: 6 × 262144 + 64 KiB. */
export const BODY_CAP = 6 * 262_144 + 65_536;
const AWS_TARGET = "AWSEvents.PutPartnerEvents";
const AWS_CT = "application/x-amz-json-1.1";

export class CaseMaker {
  readonly #r: Rand;
  readonly #tenants: FuzzTenant[];
  readonly #signers: AwsClient[];
  #n = 0;
  /** Ids minted in this case so far (every id of a case is distinct). */
  #ids = 0;
  readonly #origin: string;

  /** One maker per case (its own PRNG, seeded from the run's seed and the case number): runs replay. */
  constructor(random: Rand, tenants: FuzzTenant[], signers: AwsClient[], caseNumber: number, origin: string) {
    this.#origin = origin;
    this.#r = random;
    this.#tenants = tenants;
    this.#signers = signers;
    this.#n = caseNumber - 1;
  }

  static signers(tenants: FuzzTenant[]): AwsClient[] {
    return tenants.map(
      (t) =>
        new AwsClient({
          accessKeyId: t.sigv4.accessKeyId,
          secretAccessKey: t.sigv4.secretAccessKey,
          service: "events",
          region: "us-east-1",
          retries: 0,
        }),
    );
  }

  // ---- small random helpers -------------------------------------------------------------------
  int(n: number): number {
    return Math.floor(this.#r() * n);
  }
  pick<T>(xs: readonly T[]): T {
    return xs[this.int(xs.length)]!;
  }
  chance(p: number): boolean {
    return this.#r() < p;
  }
  str(len: number, alphabet = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_."): string {
    let s = "";
    for (let i = 0; i < len; i++) s += alphabet[this.int(alphabet.length)];
    return s;
  }

  // ---- entries --------------------------------------------------------------------------------

  /** A valid entry for tenant `ti` with a fresh id. */
  validEntry(ti: number, ids: string[]): Record<string, unknown> {
    const id = `z${this.#n}-${this.#ids++}`;
    ids.push(id);
    const t = this.#tenants[ti]!;
    const e: Record<string, unknown> = {
      Source: t.source,
      DetailType: this.pick(["Order Created", "x", "D".repeat(128), "ünïcödé ✓"]),
      Detail: this.chance(0.3) ? { fuzzId: id, n: this.int(1000) } : JSON.stringify({ fuzzId: id, n: this.int(1000) }),
    };
    if (this.chance(0.3)) e.Resources = this.chance(0.5) ? [] : ["arn:aws:x:::r/" + this.str(10), "r".repeat(2048)];
    if (this.chance(0.3)) e.Time = this.pick([0, 1_700_000_000, "2026-11-26T10:00:00Z", "2026-11-26", "1700000000"]);
    return e;
  }

  /** An entry that must fail on its own (per-entry InvalidArgument / MalformedDetail). */
  invalidEntry(ti: number, ids: string[]): Record<string, unknown> {
    const id = `z${this.#n}-${this.#ids++}`;
    ids.push(id);
    const t = this.#tenants[ti]!;
    const detail = JSON.stringify({ fuzzId: id });
    const base = { Source: t.source, DetailType: "T", Detail: detail };
    switch (this.int(16)) {
      case 0:
        return { ...base, Source: undefined };
      case 1:
        return { ...base, DetailType: "" };
      case 2:
        return { ...base, DetailType: "D".repeat(129) };
      case 3:
        return { ...base, Detail: `[${detail}]` };
      case 4:
        return { ...base, Detail: detail.slice(0, -1) };
      case 5:
        return { ...base, Detail: 42 };
      case 6:
        return { ...base, Source: `aws.partner/${"x".repeat(260)}/a` };
      case 7:
        return { ...base, Source: "not.a.partner/source" };
      case 8:
        return { ...base, Resources: "arn" };
      case 9:
        return { ...base, Resources: ["r".repeat(2049)] };
      case 10:
        return { ...base, Resources: [42] };
      case 11:
        return { ...base, Time: "yesterday" };
      case 12:
        return { ...base, Time: -1 };
      case 13:
        return { ...base, Detailtype: "typo" };
      case 14:
        return { ...base, Time: "2024-02-30T00:00:00Z" };
      default:
        return { ...base, DetailType: ["T"] };
    }
  }

  // ---- the cases ------------------------------------------------------------------------------

  async next(): Promise<Case> {
    this.#n++;
    const roll = this.#r();
    if (roll < 0.12) return this.validJson();
    if (roll < 0.2) return this.validAws();
    if (roll < 0.3) return this.mixedEntries();
    if (roll < 0.4) return this.malformedBody();
    if (roll < 0.48) return this.wrongShape();
    if (roll < 0.53) return this.hostileNesting();
    if (roll < 0.58) return this.duplicateAndProtoKeys();
    if (roll < 0.63) return this.contentTypes();
    if (roll < 0.665) return this.sizes();
    if (roll < 0.69) return this.framing();
    if (roll < 0.74) return this.hostileHeaders();
    if (roll < 0.83) return this.authVariants();
    if (roll < 0.93) return this.sigv4Tampering();
    return this.methodsAndPaths();
  }

  #json(
    category: string,
    ti: number,
    body: Uint8Array | string,
    opts: { key?: string; headers?: Record<string, string>; allowed?: string[]; forbidden?: string[] } = {},
  ): Case {
    const key = opts.key ?? this.#tenants[ti]!.apiKey;
    const headers: Record<string, string> = { "content-type": "application/json", ...opts.headers };
    if (opts.key !== "" && !("authorization" in headers) && !("x-api-key" in headers)) {
      headers.authorization = `Bearer ${key}`;
    }
    return {
      category,
      door: "json",
      wire: { method: "POST", path: "/v1/events", headers, body: typeof body === "string" ? enc.encode(body) : body },
      allowed: (opts.allowed ?? []).map((id) => ({ id, tenant: ti })),
      forbidden: opts.forbidden ?? [],
      sent: [key, headers.authorization ?? "", headers["x-api-key"] ?? ""].filter((s) => s.length >= 16),
    };
  }

  async #aws(
    category: string,
    ti: number,
    body: string | Uint8Array,
    opts: {
      allowed?: string[];
      forbidden?: string[];
      tamper?: (h: Headers) => void;
      signBody?: string;
      aws?: Record<string, unknown>;
      headers?: Record<string, string>;
    } = {},
  ): Promise<Case> {
    const signed = await this.#signers[ti]!.sign(`${this.#origin}/`, {
      method: "POST",
      headers: { "content-type": AWS_CT, "x-amz-target": AWS_TARGET, ...opts.headers },
      body: opts.signBody ?? (typeof body === "string" ? body : new TextDecoder().decode(body)),
      ...(opts.aws ? { aws: opts.aws } : {}),
    });
    const h = new Headers(signed.headers);
    opts.tamper?.(h);
    const headers: Record<string, string> = {};
    h.forEach((v, k) => {
      if (k !== "host" && k !== "content-length") headers[k] = v;
    });
    const t = this.#tenants[ti]!;
    return {
      category,
      door: "aws",
      wire: { method: "POST", path: "/", headers, body: typeof body === "string" ? enc.encode(body) : body },
      allowed: (opts.allowed ?? []).map((id) => ({ id, tenant: ti })),
      forbidden: opts.forbidden ?? [],
      sent: [t.sigv4.secretAccessKey, headers.authorization ?? ""].filter((s) => s.length >= 16),
    };
  }

  #tenant(): number {
    return this.int(this.#tenants.length);
  }

  validJson(): Case {
    const ti = this.#tenant();
    const ids: string[] = [];
    const entries = Array.from({ length: 1 + this.int(20) }, () => this.validEntry(ti, ids));
    const headers: Record<string, string> = {};
    if (this.chance(0.2)) headers["idempotency-key"] = `fuzz-${this.#n}`;
    if (this.chance(0.2)) {
      headers["x-api-key"] = this.#tenants[ti]!.apiKey;
    }
    const c = this.#json("valid (JSON API)", ti, JSON.stringify({ Entries: entries }), { allowed: ids, headers });
    c.mustAccept = true;
    return c;
  }

  async validAws(): Promise<Case> {
    const ti = this.#tenant();
    const ids: string[] = [];
    const entries = Array.from({ length: 1 + this.int(20) }, () => this.validEntry(ti, ids));
    // The AWS door takes Detail as a string only (PutPartnerEvents' shape).
    for (const e of entries) if (typeof e.Detail === "object") e.Detail = JSON.stringify(e.Detail);
    const c = await this.#aws("valid (AWS door)", ti, JSON.stringify({ Entries: entries }), { allowed: ids });
    c.mustAccept = true;
    return c;
  }

  mixedEntries(): Case {
    const ti = this.#tenant();
    const good: string[] = [];
    const bad: string[] = [];
    const other = (ti + 1 + this.int(this.#tenants.length - 1)) % this.#tenants.length;
    const entries: Record<string, unknown>[] = [];
    const n = 1 + this.int(20);
    for (let i = 0; i < n; i++) {
      const k = this.int(3);
      if (k === 0) entries.push(this.validEntry(ti, good));
      else if (k === 1) entries.push(this.invalidEntry(ti, bad));
      // Another tenant's source: NotAuthorizedForSourceException, never sent upstream.
      else if (this.#tenants.length > 1) entries.push(this.validEntry(other, bad));
      else entries.push(this.invalidEntry(ti, bad));
    }
    return this.#json("mixed valid / invalid / foreign-source entries", ti, JSON.stringify({ Entries: entries }), {
      allowed: good,
      forbidden: bad,
    });
  }

  malformedBody(): Case | Promise<Case> {
    const ti = this.#tenant();
    const ids: string[] = [];
    const full = JSON.stringify({ Entries: [this.validEntry(ti, ids), this.validEntry(ti, ids)] });
    const bytes = enc.encode(full);
    let body: Uint8Array;
    let bom = false;
    switch (this.int(8)) {
      case 0:
        body = bytes.subarray(0, this.int(bytes.length)); // truncated
        break;
      case 1: {
        body = new Uint8Array(bytes);
        body[this.int(body.length)] = 0xff; // invalid UTF-8
        break;
      }
      case 2:
        body = Uint8Array.from([...enc.encode('{"Entries":[{"Source":"'), 0xc3, 0x28, ...enc.encode('"}]}')]);
        break;
      case 3:
        // A UTF-8 BOM before valid JSON: decoders may ignore it (RFC 8259 §8.1) and the relay does.
        body = Uint8Array.from([0xef, 0xbb, 0xbf, ...bytes]);
        bom = true;
        break;
      case 4:
        body = Uint8Array.from({ length: 1 + this.int(2000) }, () => this.int(256)); // noise
        break;
      case 5:
        body = enc.encode(full.replace('"Source"', "Source")); // unquoted key
        break;
      case 6:
        body = enc.encode(`${full},`); // trailing garbage
        break;
      default:
        body = Uint8Array.from([...enc.encode('{"Entries":[{"Detail":"\\ud800'), ...enc.encode('"}]}')]); // lone surrogate escape
    }
    const aws = this.chance(0.3);
    if (aws) return this.#awsSync("malformed body (AWS door)", ti, body, bom ? [] : ids);
    return this.#json(
      bom ? "UTF-8 BOM before the JSON" : "malformed body",
      ti,
      body,
      bom ? { allowed: ids } : { forbidden: ids },
    );
  }

  /** The AWS door for a body built by a JSON-API generator. */
  #awsSync(category: string, ti: number, body: Uint8Array, forbidden: string[]): Promise<Case> {
    return this.#aws(category, ti, body, { forbidden });
  }

  wrongShape(): Case | Promise<Case> {
    const ti = this.#tenant();
    const ids: string[] = [];
    const e = () => this.validEntry(ti, ids);
    const shapes: unknown[] = [
      null,
      42,
      "Entries",
      [],
      [{ Entries: [e()] }],
      {},
      { Entries: null },
      { Entries: "x" },
      { Entries: {} },
      { Entries: [] },
      { Entries: Array.from({ length: 21 }, e) },
      { Entries: [e(), 42] },
      { Entries: [e(), null] },
      { Entries: [[e()]] },
      { Entries: [e()], Extra: 1 },
      { entries: [e()] },
      { Entries: [e()], EndpointId: "x" },
      { Entries: true },
    ];
    const body = JSON.stringify(this.pick(shapes));
    if (this.chance(0.3)) return this.#awsSync("wrong shape (AWS door)", ti, enc.encode(body), ids);
    return this.#json("wrong shape / types / boundaries", ti, body, { forbidden: ids });
  }

  hostileNesting(): Case {
    const ti = this.#tenant();
    const ids: string[] = [];
    const depth = this.pick([100, 1_000, 10_000, 100_000, 500_000]);
    const id = `z${this.#n}-0`;
    ids.push(id);
    const t = this.#tenants[ti]!;
    let body: string;
    switch (this.int(4)) {
      case 0: // Detail as a deeply nested object: the relay serialises it
        body = `{"Entries":[{"Source":"${t.source}","DetailType":"T","Detail":{"fuzzId":"${id}","d":${"[".repeat(depth)}${"]".repeat(depth)}}}]}`;
        break;
      case 1: // Detail string holding deep nesting
        body = JSON.stringify({
          Entries: [
            {
              Source: t.source,
              DetailType: "T",
              Detail: `{"fuzzId":"${id}","d":${'{"a":'.repeat(depth)}1${"}".repeat(depth)}}`,
            },
          ],
        });
        break;
      case 2: // the body itself nests
        body = `{"Entries":${"[".repeat(depth)}${"]".repeat(depth)}}`;
        break;
      default: // unbalanced
        body = `{"Entries":[${"{".repeat(depth)}`;
    }
    // A deeply nested Detail is still a JSON object: accepted when it fits MAX_BATCH_BYTES (allowed, not required).
    return this.#json(`hostile nesting (depth ${depth})`, ti, body, { allowed: ids });
  }

  duplicateAndProtoKeys(): Case {
    const ti = this.#tenant();
    const ids: string[] = [];
    const t = this.#tenants[ti]!;
    const v = JSON.stringify(this.validEntry(ti, ids));
    const forbiddenIds: string[] = [];
    const bad = JSON.stringify(this.invalidEntry(ti, forbiddenIds));
    const bodies = [
      // Duplicate keys: JSON.parse keeps the last one.
      { body: `{"Entries":[${bad}],"Entries":[${v}]}`, allowed: ids, forbidden: forbiddenIds },
      { body: `{"Entries":[${v}],"Entries":[${bad}]}`, allowed: [], forbidden: [...ids, ...forbiddenIds] },
      { body: `{"__proto__":{"Entries":[${v}]}}`, allowed: [], forbidden: ids },
      { body: `{"Entries":[${v}],"__proto__":{"x":1}}`, allowed: [], forbidden: ids },
      { body: `{"constructor":{"prototype":{"polluted":1}},"Entries":[${v}]}`, allowed: [], forbidden: ids },
      {
        body: `{"Entries":[{"__proto__":{"Source":"${t.source}"},"DetailType":"T","Detail":"{\\"fuzzId\\":\\"${ids[0]}\\"}"}]}`,
        allowed: [],
        forbidden: ids,
      },
      {
        body: `{"Entries":[{"Source":"${t.source}","DetailType":"T","Detail":{"__proto__":{"fuzzId":"${ids[0]}"},"fuzzId":"${ids[0]}"}}]}`,
        allowed: ids,
        forbidden: forbiddenIds,
      },
      {
        body: `{"Entries":[${v.replace('"Source"', '"Source":"aws.partner/evil.example/x","Source"')}]}`,
        allowed: ids,
        forbidden: forbiddenIds,
      },
    ];
    const b = this.pick(bodies);
    // Top-level unknown fields make the whole request invalid; what is allowed may still be refused.
    return this.#json("duplicate and prototype keys", ti, b.body, { allowed: b.allowed, forbidden: b.forbidden });
  }

  contentTypes(): Case {
    const ti = this.#tenant();
    const ids: string[] = [];
    const body = JSON.stringify({ Entries: [this.validEntry(ti, ids)] });
    const ct = this.pick([
      "",
      "text/plain",
      "application/x-www-form-urlencoded",
      "multipart/form-data; boundary=x",
      "application/jsonx",
      "application/json; charset=latin1",
      "application/json; charset=utf-8",
      "APPLICATION/JSON",
      "application/vnd.api+json",
      "application/json, text/plain",
      `application/${"j".repeat(5000)}`,
      "application/x-amz-json-1.1",
    ]);
    const headers: Record<string, string> = ct ? { "content-type": ct } : {};
    const c = this.#json(`content type "${ct.slice(0, 40)}"`, ti, body, { headers });
    if (!ct) delete (c.wire as WireRequest).headers["content-type"];
    // Some of these are JSON types the relay accepts (charset, +json): the entry may go through.
    c.allowed = ids.map((id) => ({ id, tenant: ti }));
    return c;
  }

  sizes(): Case {
    const ti = this.#tenant();
    const t = this.#tenants[ti]!;
    const ids: string[] = [];
    switch (this.int(4)) {
      case 0: {
        // Entries over MAX_BATCH_BYTES by AWS's formula: 413 batch_too_large
        const id = `z${this.#n}-0`;
        ids.push(id);
        const pad = "p".repeat(262_144);
        const body = JSON.stringify({
          Entries: [{ Source: t.source, DetailType: "T", Detail: JSON.stringify({ fuzzId: id, pad }) }],
        });
        return this.#json("batch over MAX_BATCH_BYTES", ti, body, { forbidden: ids });
      }
      case 1: {
        // Exactly at the limit: accepted (one entry, Detail sized to fill 262,144 bytes).
        const id = `z${this.#n}-0`;
        ids.push(id);
        const fixed = t.source.length + 1 + JSON.stringify({ fuzzId: id, pad: "" }).length;
        const pad = "p".repeat(262_144 - fixed);
        const body = JSON.stringify({
          Entries: [{ Source: t.source, DetailType: "T", Detail: JSON.stringify({ fuzzId: id, pad }) }],
        });
        const c = this.#json("batch exactly MAX_BATCH_BYTES", ti, body, { allowed: ids });
        c.mustAccept = true;
        return c;
      }
      case 2: {
        // Body over the raw cap with a correct Content-Length: 413 payload_too_large
        const body = new Uint8Array(BODY_CAP + 1 + this.int(200_000)).fill(0x20);
        const c = this.#json("body over the cap (correct Content-Length)", ti, body);
        (c.wire as WireRequest).fresh = true;
        return c;
      }
      default: {
        // Chunked body over the cap: 413 counted as it arrives
        const body = new Uint8Array(BODY_CAP + 1 + this.int(200_000)).fill(0x20);
        const c = this.#json("chunked body over the cap", ti, body);
        (c.wire as WireRequest).chunked = 16_384 + this.int(65_536);
        (c.wire as WireRequest).fresh = true;
        return c;
      }
    }
  }

  framing(): Case {
    const ti = this.#tenant();
    const t = this.#tenants[ti]!;
    const ids: string[] = [];
    const body = enc.encode(JSON.stringify({ Entries: [this.validEntry(ti, ids)] }));
    const head = (extra: string) =>
      enc.encode(
        `POST /v1/events HTTP/1.1\r\nHost: relay.local\r\nAuthorization: Bearer ${t.apiKey}\r\nContent-Type: application/json\r\nConnection: close\r\n${extra}\r\n`,
      );
    const cat = (...parts: Uint8Array[]) => {
      const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
      let o = 0;
      for (const p of parts) {
        out.set(p, o);
        o += p.length;
      }
      return out;
    };
    let raw: Uint8Array;
    let halfClose = true;
    let category: string;
    switch (this.int(4)) {
      case 0:
        category = "body ends before its Content-Length (half-close)";
        raw = cat(head(`Content-Length: ${body.length + 1 + this.int(1000)}\r\n`), body);
        break;
      case 1:
        category = "broken chunk framing";
        raw = cat(head("Transfer-Encoding: chunked\r\n"), enc.encode(`zz\r\n`), body, enc.encode("\r\n0\r\n\r\n"));
        halfClose = this.chance(0.5);
        break;
      case 2:
        category = "chunked body cut off (half-close)";
        raw = cat(head("Transfer-Encoding: chunked\r\n"), enc.encode(`${(body.length * 2).toString(16)}\r\n`), body);
        break;
      default:
        category = "Content-Length shorter than the body";
        raw = cat(head(`Content-Length: ${Math.max(1, body.length - 5)}\r\n`), body);
        halfClose = false;
    }
    return {
      category,
      door: "json",
      wire: { raw, halfClose },
      // A cut-off or mis-framed body must never be accepted; a short Content-Length may parse as valid JSON? Never.
      allowed: [],
      forbidden: ids,
      sent: [t.apiKey],
    };
  }

  hostileHeaders(): Case {
    const ti = this.#tenant();
    const ids: string[] = [];
    const body = JSON.stringify({ Entries: [this.validEntry(ti, ids)] });
    const t = this.#tenants[ti]!;
    const variants: Record<string, string>[] = [
      { "idempotency-key": "" },
      { "idempotency-key": "x".repeat(256) },
      { "idempotency-key": "a b" },
      { "idempotency-key": '"' },
      { "x-api-key": t.apiKey, authorization: `Bearer ${t.apiKey}` },
      { authorization: `Bearer  ${t.apiKey}` },
      { authorization: `bearer ${t.apiKey}` },
      { authorization: `Bearer ${t.apiKey} extra` },
      { "x-forwarded-for": "1.2.3.4, ".repeat(500) },
      { "x-long": "v".repeat(30_000) },
      { "content-encoding": "gzip" },
      { "transfer-encoding": "identity" },
      { expect: "100-continue" },
      { host: "evil.example" },
      { "x-amz-target": AWS_TARGET },
      { accept: "text/html" },
      { "cf-connecting-ip": "::1" },
    ];
    const headers = this.pick(variants);
    // "Transfer-Encoding: identity" is refused by the HTTP layer before any Worker runs (a framing matter).
    const name = "transfer-encoding" in headers ? "hostile header: transfer-encoding framing" : "hostile header values";
    const c = this.#json(name, ti, body, { headers });
    // Some of these are harmless to a valid request: it may be accepted.
    c.allowed = ids.map((id) => ({ id, tenant: ti }));
    return c;
  }

  authVariants(): Case {
    const ti = this.#tenant();
    const ids: string[] = [];
    const t = this.#tenants[ti]!;
    const other = this.#tenants[(ti + 1) % this.#tenants.length]!;
    const body = JSON.stringify({ Entries: [this.validEntry(ti, ids)] });
    const flipped = t.apiKey.slice(0, -1) + (t.apiKey.endsWith("A") ? "B" : "A");
    const variants: [string, Record<string, string>, string[]][] = [
      ["missing", {}, []],
      ["empty Bearer", { authorization: "Bearer " }, []],
      ["Basic", { authorization: `Basic ${Buffer.from(`u:${t.apiKey}`).toString("base64")}` }, [t.apiKey]],
      ["not a relay key", { authorization: `Bearer ${this.str(40)}` }, []],
      ["wrong checksum", { authorization: `Bearer ${flipped}` }, [flipped]],
      ["unknown well-formed key", { authorization: `Bearer ${generateApiKey()}` }, []],
      ["another tenant's key", { authorization: `Bearer ${other.apiKey}` }, [other.apiKey]],
      ["revoked key", { authorization: `Bearer ${t.revokedKey}` }, [t.revokedKey]],
      ["revoked key in X-Api-Key", { "x-api-key": t.revokedKey }, [t.revokedKey]],
      ["SigV4 secret as the key", { authorization: `Bearer ${t.sigv4.secretAccessKey}` }, [t.sigv4.secretAccessKey]],
      ["the key as the whole Authorization", { authorization: t.apiKey }, [t.apiKey]],
      [
        "SigV4 on the JSON API",
        {
          authorization: `AWS4-HMAC-SHA256 Credential=${t.sigv4.accessKeyId}/20260101/us-east-1/events/aws4_request, SignedHeaders=host, Signature=${"0".repeat(64)}`,
        },
        [],
      ],
    ];
    const [name, headers, sent] = this.pick(variants);
    const c = this.#json(`auth: ${name}`, ti, body, { key: "", headers, forbidden: ids });
    c.sent = [...sent, ...Object.values(headers)].filter((s) => s.length >= 16 && !s.startsWith("AWS4-HMAC"));
    return c;
  }

  async sigv4Tampering(): Promise<Case> {
    const ti = this.#tenant();
    const t = this.#tenants[ti]!;
    const other = this.#tenants[(ti + 1) % this.#tenants.length]!;
    const ids: string[] = [];
    const body = JSON.stringify({ Entries: [this.validEntry(ti, ids)] });
    const swapIds: string[] = [];
    const swapped = JSON.stringify({ Entries: [this.validEntry(ti, swapIds)] });
    const forbidden = [...ids, ...swapIds];
    const old = new Date(Date.now() - 10 * 60_000).toISOString().replace(/[-:]|\.\d{3}/g, "");
    switch (this.int(14)) {
      case 0:
        return this.#aws("sigv4: body swapped under a valid signature", ti, swapped, { signBody: body, forbidden });
      case 1:
        return this.#aws("sigv4: stale X-Amz-Date", ti, body, { aws: { datetime: old }, forbidden });
      case 2:
        return this.#aws("sigv4: UNSIGNED-PAYLOAD", ti, body, {
          headers: { "x-amz-content-sha256": "UNSIGNED-PAYLOAD" },
          forbidden,
        });
      case 3:
        return this.#aws("sigv4: wrong service in scope", ti, body, { aws: { service: "s3" }, forbidden });
      case 4:
        return this.#aws("sigv4: scope date not X-Amz-Date's", ti, body, {
          tamper: (h) => h.set("x-amz-date", old),
          forbidden,
        });
      case 5:
        return this.#aws("sigv4: junk Authorization", ti, body, {
          tamper: (h) =>
            h.set(
              "authorization",
              this.pick([
                "AWS4-HMAC-SHA256",
                "junk",
                "AWS4-HMAC-SHA256 Credential=",
                `AWS4-HMAC-SHA256 ${this.str(200)}`,
              ]),
            ),
          forbidden,
        });
      case 6:
        return this.#aws("sigv4: no Authorization", ti, body, { tamper: (h) => h.delete("authorization"), forbidden });
      case 7:
        return this.#aws("sigv4: the API key as the whole Authorization", ti, body, {
          tamper: (h) => h.set("authorization", t.apiKey),
          forbidden,
        }).then((c) => ({ ...c, sent: [...c.sent, t.apiKey] }));
      case 8:
        return this.#aws("sigv4: the secret as the whole Authorization", ti, body, {
          tamper: (h) => h.set("authorization", t.sigv4.secretAccessKey),
          forbidden,
        });
      case 9: {
        // Another tenant's valid pair, this tenant's source: NotAuthorizedForSourceException per entry.
        const c = await this.#aws("sigv4: another tenant's pair", (ti + 1) % this.#tenants.length, body, { forbidden });
        c.sent = [other.sigv4.secretAccessKey, ...c.sent];
        return c;
      }
      case 10:
        return this.#aws("sigv4: a session token sent", ti, body, {
          headers: { "x-amz-security-token": this.str(100) },
          forbidden,
        });
      case 11:
        return this.#aws("sigv4: wrong X-Amz-Target", ti, body, {
          headers: {
            "x-amz-target": this.pick(["AWSEvents.PutEvents", "", "x".repeat(300), "AWSEvents.putpartnerevents"]),
          },
          forbidden,
        });
      case 12:
        return this.#aws("sigv4: the secret as the access key id", ti, body, {
          tamper: (h) =>
            h.set(
              "authorization",
              (h.get("authorization") ?? "").replace(t.sigv4.accessKeyId, t.sigv4.secretAccessKey),
            ),
          forbidden,
        });
      default:
        return this.#aws("sigv4: swapped key pair (secret as id, id as secret)", ti, body, {
          tamper: (h) =>
            h.set(
              "authorization",
              (h.get("authorization") ?? "").replace(
                `Credential=${t.sigv4.accessKeyId}`,
                `Credential=${t.sigv4.secretAccessKey}`,
              ),
            ),
          forbidden,
        });
    }
  }

  methodsAndPaths(): Case {
    const ti = this.#tenant();
    const t = this.#tenants[ti]!;
    const method = this.pick(["GET", "PUT", "DELETE", "PATCH", "OPTIONS", "HEAD", "POST", "TRACE", "PROPFIND"]);
    const path = this.pick([
      "/v1/events",
      "/v1/events/",
      `/v1/events/relay-${crypto.randomUUID()}`,
      "/v1/events/../../admin",
      "/v1/status",
      "/v1/status?x=1",
      "/v1",
      "/v2/events",
      "/admin/v1/tenants/x/status",
      "/admin/v1/tenants/%2e%2e/status",
      "/healthz",
      "/healthz/",
      `/${this.str(2000)}`,
      "/%00",
      "/%ff",
      "/v1/events?Entries=1",
      "//v1//events",
      "/",
      "/?Action=PutPartnerEvents",
      "/_fake/events",
    ]);
    const headers: Record<string, string> = this.chance(0.5) ? { authorization: `Bearer ${t.apiKey}` } : {};
    const body = method === "GET" || method === "HEAD" || method === "TRACE" ? undefined : enc.encode("{}");
    return {
      category: "random method and path",
      door: path.split("?")[0] === "/" && method === "POST" ? "aws" : "other",
      wire: { method, path, headers, ...(body ? { body } : {}) },
      allowed: [],
      forbidden: [],
      sent: headers.authorization ? [t.apiKey] : [],
    };
  }
}
