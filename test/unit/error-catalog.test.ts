/// <reference types="vite/client" />
/**
 * The error catalog (src/errors.ts `ERROR_CATALOG`) against everything that must agree with it:
 * the source (no RelayError is built outside src/errors.ts, every code has exactly one
 * constructor), every constructor's wire forms (problem+json and AWS JSON 1.1 `__type`), and the
 * README's error tables (parsed), which must list exactly the catalog's codes with their statuses.
 */
import { describe, expect, it } from "vitest";
import readme from "../../README.md?raw";
import { ERROR_CATALOG, type ErrorCode, errorResponse, errors, type RelayError } from "../../src/errors.ts";

const SOURCES = import.meta.glob<string>("../../src/**/*.ts", { query: "?raw", import: "default", eager: true });
const ERRORS_TS = "../../src/errors.ts";
const CATALOG = new Map(ERROR_CATALOG.map((e) => [e.code, e]));
const CODES = new Set<string>(CATALOG.keys());

const CHALLENGE = 'Bearer realm="eventbridge-relay"';
const upstream = (code: string, status: number, outcomeUnknown = false) => ({
  code,
  message: "injected",
  status,
  requestId: "upstream-req-1",
  outcomeUnknown,
});

/** One sample call per constructor (a new constructor without a sample fails the first test). */
const SAMPLES: Record<keyof typeof errors, () => RelayError> = {
  invalidJson: () => errors.invalidJson(),
  invalidRequest: () => errors.invalidRequest("Entries is required"),
  invalidAuthorizationHeader: () => errors.invalidAuthorizationHeader(CHALLENGE),
  invalidIdempotencyKey: () => errors.invalidIdempotencyKey(255),
  bodyIncomplete: () => errors.bodyIncomplete("Error: Network connection lost"),
  payloadTooLarge: () => errors.payloadTooLarge(1_638_400),
  batchTooLarge: () => errors.batchTooLarge(262_145, 262_144),
  unsupportedMediaType: () => errors.unsupportedMediaType("application/json"),
  unknownOperation: () => errors.unknownOperation("AWSEvents.PutPartnerEvents", "AWSEvents.PutEvents"),
  notFound: () => errors.notFound(),
  methodNotAllowed: () => errors.methodNotAllowed("POST"),
  missingApiKey: () => errors.missingApiKey(CHALLENGE),
  malformedApiKey: () => errors.malformedApiKey(CHALLENGE),
  invalidApiKey: () => errors.invalidApiKey(CHALLENGE),
  missingSignature: () => errors.missingSignature(),
  malformedSignature: () => errors.malformedSignature("Signature must be 64 hexadecimal characters."),
  presignedNotSupported: () => errors.presignedNotSupported(),
  invalidCredentialScope: () => errors.invalidCredentialScope("Credential should be scoped to a valid region. "),
  signatureExpired: () => errors.signatureExpired("Signature expired: ...", "Thu, 03 Dec 2026 07:00:00 GMT"),
  signatureNotYetCurrent: () => errors.signatureNotYetCurrent("Signature not yet current: ...", "Thu, 03 Dec 2026"),
  unsignedPayloadNotSupported: () => errors.unsignedPayloadNotSupported("The relay requires a signed payload"),
  contentSha256Mismatch: () => errors.contentSha256Mismatch(),
  signatureMismatch: () => errors.signatureMismatch("accessKeyId=RLY..."),
  unknownAccessKey: () => errors.unknownAccessKey(true, "access key id RLY..."),
  temporaryCredentialsNotSupported: () => errors.temporaryCredentialsNotSupported(),
  tenantDisabled: () => errors.tenantDisabled(),
  tenantMisconfigured: () => errors.tenantMisconfigured("record does not parse"),
  tenantOverloaded: () => errors.tenantOverloaded("overloaded"),
  tenantGateUnavailable: () => errors.tenantGateUnavailable("reset"),
  idempotencyInProgress: () => errors.idempotencyInProgress(2),
  idempotencyKeyReused: () => errors.idempotencyKeyReused(),
  bufferFull: () => errors.bufferFull(3, { limit: 10, windowS: 1 }),
  upstreamThrottled: () => errors.upstreamThrottled(upstream("ThrottlingException", 400)),
  upstreamTimeout: () => errors.upstreamTimeout(upstream("RequestTimeout", 0, true)),
  upstreamUnavailable: () => errors.upstreamUnavailable(upstream("NetworkError", 0, true)),
  upstreamAuthFailed: () => errors.upstreamAuthFailed(upstream("UnrecognizedClientException", 400)),
  upstreamRejected: () => errors.upstreamRejected(upstream("ValidationException", 400)),
  adminDisabled: () => errors.adminDisabled(),
  missingAdminToken: () => errors.missingAdminToken(CHALLENGE),
  invalidAdminToken: () => errors.invalidAdminToken(CHALLENGE),
  invalidTenantId: () => errors.invalidTenantId("lower-case letters, digits and dashes"),
  eventsQueued: () => errors.eventsQueued("acme", 3),
  fanOutIncomplete: () => errors.fanOutIncomplete([2]),
  internalError: () => errors.internalError(),
  sourceNotOwned: () => errors.sourceNotOwned("aws.partner/other.com/x/y", ["aws.partner/example.com/*"]),
  sourceNotFound: () => errors.sourceNotFound("This tenant has no source aws.partner/example.com/x/y."),
  tenantNotFound: () => errors.tenantNotFound("acme"),
  sourceExists: () => errors.sourceExists("already a source of account 222222222222"),
  sourceAccountUnknown: () => errors.sourceAccountUnknown("the relay does not know the account"),
  tooManySources: () => errors.tooManySources("this tenant already tracks 1000 sources"),
  invalidSource: () => errors.invalidSource("EventBridge answered CreatePartnerEventSource with ValidationException"),
  controlPlaneThrottled: () => errors.controlPlaneThrottled("EventBridge throttled", 30),
  controlPlaneDenied: () => errors.controlPlaneDenied("AccessDeniedException"),
  controlPlaneNotImplemented: () => errors.controlPlaneNotImplemented("not implemented"),
  controlPlaneUnavailable: () => errors.controlPlaneUnavailable("InternalException"),
};

const camel = (code: string) => code.replace(/_([a-z0-9])/g, (_, c: string) => c.toUpperCase());

describe("the source", () => {
  it("builds every RelayError in src/errors.ts and nowhere else", () => {
    expect(Object.keys(SOURCES).length).toBeGreaterThan(20);
    const outside = Object.entries(SOURCES)
      .filter(([path, text]) => path !== ERRORS_TS && /new RelayError\(/.test(text))
      .map(([path]) => path);
    expect(outside).toEqual([]);
  });

  it("makes each catalog code in exactly one constructor, and no code outside the catalog", () => {
    const made = [...SOURCES[ERRORS_TS]!.matchAll(/\bmake\(\s*"([^"]+)"/g)].map((m) => m[1]!);
    expect(made.filter((c) => !CODES.has(c))).toEqual([]);
    const counts = new Map<string, number>();
    for (const c of made) counts.set(c, (counts.get(c) ?? 0) + 1);
    expect([...CODES].filter((c) => counts.get(c) !== 1)).toEqual([]);
  });

  it("has a sample for every constructor, and each constructor is named after its code", () => {
    expect(Object.keys(SAMPLES).sort()).toEqual(Object.keys(errors).sort());
    for (const [name, sample] of Object.entries(SAMPLES)) expect(camel(sample().code)).toBe(name);
  });
});

describe.each(Object.entries(SAMPLES))("errors.%s()", (_name, sample) => {
  const err = sample();
  const entry = CATALOG.get(err.code as ErrorCode)!;

  it("has the catalog's status and AWS shape", () => {
    expect(entry).toBeDefined();
    expect(err.status).toBe(entry.status);
    if (!entry.awsFromUpstream) expect(err.aws).toEqual(entry.aws);
  });

  it("is problem+json: type, title, status, code, detail, requestId; never cached", async () => {
    const res = errorResponse(err, "problem", "req-1");
    expect(res.status).toBe(entry.status);
    expect(res.headers.get("content-type")).toBe("application/problem+json");
    expect(res.headers.get("cache-control")).toBe("no-store");
    expect(res.headers.get("x-request-id")).toBe("req-1");
    const body = (await res.json()) as Record<string, unknown>;
    expect(body).toMatchObject({
      type: `urn:eventbridge-relay:problem:${err.code}`,
      title: entry.title,
      status: entry.status,
      code: err.code,
      detail: err.detail,
      requestId: "req-1",
    });
    expect(typeof body.detail === "string" && body.detail.length > 0).toBe(true);
  });

  it("is AWS JSON 1.1 on the AWS front door: __type and message only", async () => {
    const res = errorResponse(err, "aws", "req-2");
    expect(res.status).toBe(err.aws.status);
    expect(res.headers.get("content-type")).toBe("application/x-amz-json-1.1");
    expect(res.headers.get("x-amzn-errortype")).toBe(err.aws.type);
    expect(res.headers.get("x-amzn-requestid")).toBe("req-2");
    expect(res.headers.get("cache-control")).toBe("no-store");
    expect(await res.json()).toEqual({ __type: err.aws.type, message: err.detail });
  });
});

describe("upstream codes pass EventBridge's own __type through on the AWS front door", () => {
  it("upstream_unavailable: EventBridge's 5xx type and status; a lost answer is ServiceUnavailableException 503", () => {
    expect(errors.upstreamUnavailable(upstream("InternalException", 500)).aws).toEqual({
      type: "InternalException",
      status: 500,
    });
    expect(errors.upstreamUnavailable(upstream("NetworkError", 0, true)).aws).toEqual(
      CATALOG.get("upstream_unavailable")!.aws,
    );
  });

  it("upstream_rejected: EventBridge's 4xx type", () => {
    expect(errors.upstreamRejected(upstream("OperationDisabledException", 400)).aws).toEqual({
      type: "OperationDisabledException",
      status: 400,
    });
  });
});

// ---- The README's tables -------------------------------------------------------------------------

/** The Markdown tables of one `## ` section: header cells and rows of cells. */
function tables(markdown: string, heading: string): { header: string[]; rows: string[][] }[] {
  const start = markdown.indexOf(`\n## ${heading}\n`);
  expect(start, `README section "## ${heading}"`).toBeGreaterThan(-1);
  const end = markdown.indexOf("\n## ", start + 1);
  const lines = markdown.slice(start, end === -1 ? undefined : end).split("\n");
  const out: { header: string[]; rows: string[][] }[] = [];
  const cells = (line: string) =>
    line
      .trim()
      .replace(/^\||\|$/g, "")
      .split(/(?<!\\)\|/)
      .map((c) => c.trim());
  for (let i = 0; i < lines.length; i++) {
    if (!lines[i]!.trim().startsWith("|") || !/^\|\s*-{3}/.test(lines[i + 1]?.trim() ?? "")) continue;
    const header = cells(lines[i]!);
    const rows: string[][] = [];
    for (i += 2; i < lines.length && lines[i]!.trim().startsWith("|"); i++) rows.push(cells(lines[i]!));
    out.push({ header, rows });
  }
  return out;
}

const backticked = (cell: string) => [...cell.matchAll(/`([^`]+)`/g)].map((m) => m[1]!);

describe("the README's error tables list exactly the catalog's codes", () => {
  it("## Errors: every code the JSON API and the admin API answer, with its status", () => {
    const found = new Map<string, number>();
    for (const t of tables(readme, "Errors")) {
      const codeCol = t.header.findIndex((h) => /`code`/.test(h));
      const statusCol = t.header.indexOf("status");
      if (codeCol === -1) continue;
      for (const row of t.rows) {
        for (const code of backticked(row[codeCol]!)) {
          expect(found.has(code), `${code} listed twice`).toBe(false);
          found.set(code, Number(row[statusCol]));
        }
      }
    }
    const expected = ERROR_CATALOG.filter((e) => e.doors.includes("json") || e.doors.includes("admin"));
    expect([...found.keys()].sort()).toEqual(expected.map((e) => e.code).sort());
    for (const e of expected) expect([e.code, found.get(e.code)]).toEqual([e.code, e.status]);
  });

  it("## Using the AWS CLI or an SDK: every code the AWS front door answers, with its __type and HTTP status", () => {
    const [t] = tables(readme, "Using the AWS CLI or an SDK").filter((x) => x.header.includes("`__type`"));
    expect(t).toBeDefined();
    const typeCol = t!.header.indexOf("`__type`");
    const httpCol = t!.header.indexOf("HTTP");
    const codeCol = t!.header.findIndex((h) => /`code`/.test(h));
    expect(codeCol).toBeGreaterThan(-1);
    const found = new Set<string>();
    for (const row of t!.rows) {
      const [type] = backticked(row[typeCol]!);
      for (const code of backticked(row[codeCol]!)) {
        const e = CATALOG.get(code as ErrorCode);
        expect(e, `${code} is not in the catalog`).toBeDefined();
        expect(found.has(code), `${code} listed twice`).toBe(false);
        found.add(code);
        expect([code, type, row[httpCol]]).toEqual([code, e!.aws.type, String(e!.aws.status)]);
        // A code that passes EventBridge's own __type through says so in its row.
        if (e!.awsFromUpstream) expect(row.join(" ")).toMatch(/EventBridge's own `__type`|its own `__type`/);
      }
    }
    const expected = ERROR_CATALOG.filter((e) => e.doors.includes("aws")).map((e) => e.code);
    expect([...found].sort()).toEqual(expected.sort());
  });
});
