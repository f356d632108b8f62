/// <reference types="vite/client" />
/**
 * The document lists every error code the relay's partner-facing routes answer with, taken from
 * the catalog in src/errors.ts (ERROR_CATALOG): a code added there shows up in the document's
 * per-status enums and in `x-error-codes` without touching the document's code.
 */
import { describe, expect, it } from "vitest";
import { ERROR_CATALOG } from "../../src/errors.ts";
import { buildOpenApiDocument } from "../../src/openapi/document.ts";

const doc = buildOpenApiDocument() as unknown as {
  paths: Record<
    string,
    Record<
      string,
      {
        responses: Record<
          string,
          {
            description: string;
            content?: Record<string, { schema: { allOf?: { properties?: { code?: { enum?: string[] } } }[] } }>;
          }
        >;
      }
    >
  >;
  "x-error-codes": { code: string; status: number; awsType?: string }[];
};

function enumsOf(path: string, method: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const [status, r] of Object.entries(doc.paths[path]![method]!.responses)) {
    for (const code of r.content?.["application/problem+json"]?.schema.allOf?.[1]?.properties?.code?.enum ?? []) {
      out.set(code, Number(status));
    }
  }
  return out;
}

describe("error codes from the catalog", () => {
  it("x-error-codes is the catalog's partner-facing codes, each with its status and AWS type", () => {
    const partner = ERROR_CATALOG.filter((e) => e.doors.includes("json") || e.doors.includes("aws"));
    expect(doc["x-error-codes"].map((c) => [c.code, c.status])).toEqual(partner.map((e) => [e.code, e.status]));
    for (const e of partner.filter((x) => x.doors.includes("aws"))) {
      expect(doc["x-error-codes"].find((c) => c.code === e.code)?.awsType).toBe(e.aws.type);
    }
  });

  it("POST /v1/events lists every JSON API code at its status (but those of a wrong path or method)", () => {
    const listed = enumsOf("/v1/events", "post");
    const expected = ERROR_CATALOG.filter(
      (e) => e.doors.includes("json") && e.code !== "not_found" && e.code !== "method_not_allowed",
    );
    expect([...listed.entries()].sort()).toEqual(expected.map((e) => [e.code, e.status]).sort());
  });

  it("GET routes list authentication, the gate and (for the event lookup) not_found", () => {
    expect(enumsOf("/v1/events/{relayEventId}", "get").get("not_found")).toBe(404);
    expect(enumsOf("/v1/status", "get").has("not_found")).toBe(false);
    expect(enumsOf("/v1/status", "get").get("invalid_api_key")).toBe(401);
  });

  it("POST / describes every AWS front door code's __type at the AWS status", () => {
    const responses = doc.paths["/"]!.post!.responses;
    for (const e of ERROR_CATALOG.filter((x) => x.doors.includes("aws"))) {
      expect(responses[String(e.aws.status)]?.description, e.code).toContain(`\`${e.aws.type}\``);
    }
    expect(responses["5XX"]).toBeDefined();
  });
});
