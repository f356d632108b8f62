/**
 * GET /openapi.json on the running Worker, and the document against the relay's behaviour: the
 * limits it states are the ones the relay enforces (one past each is refused the way the document
 * says), and the answers the relay gives match it. Every other workers test's answers are checked
 * too (test/helpers/contract-setup.ts wraps exports.default.fetch).
 */
import { exports } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { Contract, relayContract } from "../helpers/contract.ts";
import { ContractViolation, checkedFetch } from "../helpers/contract-setup.ts";
import { postEvents, readAnswer } from "../helpers/http.ts";
import { entry, seedTenant } from "../helpers/tenants.ts";
import { installFakeUpstream } from "../helpers/upstream.ts";

// biome-ignore lint/suspicious/noExplicitAny: the assertions walk the parsed document by path
type Json = Record<string, any>;

async function servedDocument(): Promise<Json> {
  const res = await exports.default.fetch("http://relay.test/openapi.json");
  expect(res.status).toBe(200);
  expect(res.headers.get("content-type")).toBe("application/json");
  return (await res.json()) as Json;
}

function entrySchema(doc: Json): Json {
  return doc.components.schemas.PutPartnerEventsRequestEntry;
}

describe("GET /openapi.json", () => {
  it("serves an OpenAPI 3.1 document without authentication, the same text every time", async () => {
    const a = await exports.default.fetch("http://relay.test/openapi.json");
    const b = await exports.default.fetch("http://relay.test/openapi.json");
    expect(await a.text()).toBe(await b.text());
    const doc = await servedDocument();
    expect(doc.openapi).toBe("3.1.0");
    expect(Object.keys(doc.paths).sort()).toEqual([
      "/",
      "/healthz",
      "/openapi.json",
      "/v1/events",
      "/v1/events/{relayEventId}",
      "/v1/sources",
      "/v1/sources/{name}",
      "/v1/status",
    ]);
    expect(Object.keys(doc.components.securitySchemes).sort()).toEqual(["apiKeyHeader", "bearerAuth", "sigv4"]);
  });

  it("answers other methods with 405 and Allow: GET", async () => {
    const res = await exports.default.fetch("http://relay.test/openapi.json", { method: "POST" });
    expect(res.status).toBe(405);
    expect(res.headers.get("allow")).toBe("GET");
  });
});

describe("the document's limits are the relay's", () => {
  it("Entries: minItems / maxItems are the bounds the relay refuses outside of", async () => {
    const t = await seedTenant();
    installFakeUpstream({ credentials: [t.aws] });
    const doc = await servedDocument();
    const entries = doc.paths["/v1/events"].post.requestBody.content["application/json"].schema.properties.Entries;
    expect([entries.minItems, entries.maxItems]).toEqual([1, 20]);
    const contract = relayContract();
    for (const n of [entries.minItems - 1, entries.minItems, entries.maxItems, entries.maxItems + 1]) {
      const body = { Entries: Array.from({ length: n }, () => entry(t)) };
      const headers = { "content-type": "application/json", authorization: `Bearer ${t.apiKey}` };
      const docSaysValid = contract.checkRequest("POST", "/v1/events", headers, body).length === 0;
      const res = await postEvents(body, { key: t.apiKey });
      await res.body?.cancel();
      expect({ n, accepted: res.status === 200 }).toEqual({ n, accepted: docSaysValid });
      if (!docSaysValid) expect(res.status).toBe(400);
    }
  });

  it("entry fields: at each documented bound the relay accepts, one past it the entry fails on its own", async () => {
    const t = await seedTenant();
    installFakeUpstream({ credentials: [t.aws] });
    const e = entrySchema(await servedDocument());
    const props = e.properties;
    expect(props.DetailType.maxLength).toBe(128);
    expect(props.Source.maxLength).toBe(256);
    expect(props.Resources.items.maxLength).toBe(2048);
    const source = (len: number) => {
      const base = `aws.partner/example.com/${t.record.id}/`;
      return base + "x".repeat(len - base.length);
    };
    const cases: [string, Record<string, unknown>][] = [
      ["DetailType at max", { DetailType: "d".repeat(props.DetailType.maxLength) }],
      ["DetailType past max", { DetailType: "d".repeat(props.DetailType.maxLength + 1) }],
      ["DetailType at min", { DetailType: "d".repeat(props.DetailType.minLength) }],
      ["DetailType under min", { DetailType: "" }],
      ["Resource at max", { Resources: ["r".repeat(props.Resources.items.maxLength)] }],
      ["Resource past max", { Resources: ["r".repeat(props.Resources.items.maxLength + 1)] }],
      ["Source past max", { Source: source(props.Source.maxLength + 1) }],
      ["Source off pattern", { Source: "partner/example.com/x" }],
      ["unknown field", { Detailtype: "typo" }],
      ["Detail as an object", { Detail: { a: 1 } }],
      ["Time as epoch seconds", { Time: 1_700_000_000 }],
    ];
    const contract = relayContract();
    for (const [name, patch] of cases) {
      const body = { Entries: [{ ...entry(t), ...patch }] };
      const headers = { "content-type": "application/json" };
      const docSaysValid = contract.checkRequest("POST", "/v1/events", headers, body).length === 0;
      const answer = await readAnswer(await postEvents(body, { key: t.apiKey }));
      const refused = "ErrorCode" in answer.Entries[0]!;
      expect({ name, refused }).toEqual({ name, refused: !docSaysValid });
    }
  });

  it("Idempotency-Key: 255 characters are accepted, 256 refused with the documented problem", async () => {
    const t = await seedTenant();
    installFakeUpstream({ credentials: [t.aws] });
    const contract = relayContract();
    for (const len of [255, 256]) {
      const key = "k".repeat(len);
      const headers = { "content-type": "application/json", "idempotency-key": key };
      const body = { Entries: [entry(t)] };
      const docSaysValid = contract.checkRequest("POST", "/v1/events", headers, body).length === 0;
      const res = await postEvents(body, { key: t.apiKey, headers: { "idempotency-key": key } });
      await res.body?.cancel();
      expect({ len, ok: res.status === 200 }).toEqual({ len, ok: docSaysValid });
    }
  });

  it("lists every code the relay answers with per status, and a refusal carries one of them", async () => {
    const doc = await servedDocument();
    const codes = (doc["x-error-codes"] as { code: string }[]).map((c) => c.code);
    for (const c of ["batch_too_large", "invalid_request", "buffer_full", "missing_api_key", "upstream_timeout"]) {
      expect(codes).toContain(c);
    }
    const res = await postEvents({ Entries: [] }, {});
    expect(res.status).toBe(401);
    const enumAt401 =
      doc.paths["/v1/events"].post.responses["401"].content["application/problem+json"].schema.allOf[1].properties.code
        .enum;
    expect(enumAt401).toContain(((await res.json()) as { code: string }).code);
  });
});

describe("answers are checked against the document", () => {
  it("every workers test's exports.default.fetch goes through the contract check", () => {
    expect(exports.default.fetch).toBe(checkedFetch);
  });

  it("an answer that drifts from the document is reported (status, body, headers)", async () => {
    const contract = relayContract();
    const url = "http://relay.test/v1/status";
    const wrongBody = new Response(JSON.stringify({ tenantId: "acme" }), {
      status: 200,
      headers: { "content-type": "application/json", "cache-control": "no-store" },
    });
    expect((await contract.checkResponse("GET", url, wrongBody)).join("\n")).toMatch(/required/);
    const undocumented = new Response("{}", { status: 418, headers: { "content-type": "application/json" } });
    expect(await contract.checkResponse("GET", url, undocumented)).toEqual([
      expect.stringMatching(/418 is not documented/),
    ]);
    const noCacheControl = new Response(JSON.stringify({ ok: true }), {
      headers: { "content-type": "application/json" },
    });
    expect(await contract.checkResponse("GET", "http://relay.test/healthz", noCacheControl)).toEqual(
      expect.arrayContaining([expect.stringMatching(/Cache-Control is required/)]),
    );
    const wrongCode = new Response(
      JSON.stringify({
        type: "urn:eventbridge-relay:problem:not_found",
        title: "Not Found",
        status: 401,
        code: "not_found",
        detail: "x",
      }),
      {
        status: 401,
        headers: {
          "content-type": "application/problem+json",
          "cache-control": "no-store",
          "x-request-id": crypto.randomUUID(),
          "www-authenticate": "Bearer",
        },
      },
    );
    expect((await contract.checkResponse("GET", url, wrongCode)).join("\n")).toMatch(
      /code: Instance does not match any of/,
    );
    expect(ContractViolation.name).toBe("ContractViolation");
  });

  it("a relay answer passes: 200 and 202 on /v1/events, the event lookup, status and healthz", async () => {
    const t = await seedTenant({ rate: 1, burst: 1 });
    const fake = installFakeUpstream({ credentials: [t.aws] });
    const contract = new Contract(await servedDocument());
    const first = await postEvents({ Entries: [entry(t)] }, { key: t.apiKey });
    expect(await contract.checkResponse("POST", "http://relay.test/v1/events", first)).toEqual([]);
    expect(first.status).toBe(200);
    fake.inject({ type: "throttle" });
    const queued = await postEvents({ Entries: [entry(t), { ...entry(t), DetailType: "" }] }, { key: t.apiKey });
    expect(queued.status).toBe(202);
    const answer = (await queued.json()) as { Entries: { RelayEventId?: string }[] };
    const id = answer.Entries[0]!.RelayEventId!;
    const lookup = await exports.default.fetch(`http://relay.test/v1/events/${id}`, {
      headers: { authorization: `Bearer ${t.apiKey}` },
    });
    expect(((await lookup.json()) as { state: string }).state).toBe("queued");
    const status = await exports.default.fetch("http://relay.test/v1/status", { headers: { "x-api-key": t.apiKey } });
    expect(status.status).toBe(200);
    const health = await exports.default.fetch("http://relay.test/healthz");
    expect(health.status).toBe(200);
  });
});
