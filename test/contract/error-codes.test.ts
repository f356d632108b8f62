/**
 * The document lists every error code the relay's public routes answer with: a `code: "..."`
 * written anywhere in src/ (outside the admin API, which is not public) must be in the catalog the
 * document is built from, with the status and AWS form the relay really gives it.
 */
import { describe, expect, it } from "vitest";
import { Errors, internalError } from "../../src/errors.ts";
import { buildOpenApiDocument } from "../../src/openapi/document.ts";
import { ERROR_CODES, errorCode } from "../../src/openapi/error-codes.ts";

const sources = import.meta.glob("../../src/**/*.ts", { query: "?raw", import: "default", eager: true });

describe("error codes", () => {
  it("every code src/ can answer with is in the document's catalog", () => {
    const found = new Set<string>();
    for (const [path, text] of Object.entries(sources)) {
      if (path.includes("/admin/") || path.includes("/openapi/")) continue;
      for (const m of text.matchAll(/\bcode: "([a-z0-9_]+)"/g)) if (m[1] !== "custom") found.add(m[1]!);
      for (const m of text.matchAll(/\binvalid\(\s*"([a-z0-9_]+)"/g)) found.add(m[1]!);
    }
    expect(found.size).toBeGreaterThan(25);
    const catalog = new Set(ERROR_CODES.map((e) => e.code));
    expect([...found].filter((c) => !catalog.has(c))).toEqual([]);
    // ...and the catalog names nothing the relay never says.
    expect(
      [...catalog].filter((c) => !found.has(c) && !["tenant_overloaded", "tenant_gate_unavailable"].includes(c)),
    ).toEqual([]);
  });

  it("the document lists each code once, with its status", () => {
    const doc = buildOpenApiDocument();
    const listed = doc["x-error-codes"] as { code: string; status: number }[];
    expect(new Set(listed.map((c) => c.code)).size).toBe(listed.length);
    expect(listed.map((c) => c.code).sort()).toEqual(ERROR_CODES.map((e) => e.code).sort());
  });

  it("statuses and AWS forms agree with the errors src/errors.ts builds", () => {
    const built = [
      Errors.missingCredentials("Bearer"),
      Errors.malformedKey("Bearer"),
      Errors.invalidKey("Bearer"),
      Errors.tenantDisabled(),
      Errors.tenantUnavailable("x"),
      Errors.invalidJson(),
      Errors.invalidRequest("x"),
      Errors.bodyTooLarge(1),
      Errors.batchTooLarge(2, 1),
      // (unsupported_media_type: the AWS front door builds its own, SerializationException.)
      Errors.notFound(),
      Errors.methodNotAllowed("GET"),
      internalError(),
    ];
    for (const err of built) {
      const doc = errorCode(err.code);
      expect({ code: err.code, status: doc.status, aws: doc.aws?.type ?? null }).toEqual({
        code: err.code,
        status: err.status,
        // null: the code never reaches the AWS front door (API-key routes only).
        aws: doc.aws === null ? null : err.aws.type,
      });
    }
  });
});
