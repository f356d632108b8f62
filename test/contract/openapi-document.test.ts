/**
 * The document as a document: valid OpenAPI 3.1 by a maintained validator of the official
 * schemas (run in Node: it compiles the schemas with ajv, which workerd's no-eval rule forbids),
 * and every example in it valid against the schema it illustrates.
 */
/// <reference types="vite/client" />
import { Validator } from "@seriousme/openapi-schema-validator";
import { describe, expect, it } from "vitest";
import committed from "../../docs/openapi.json?raw";
import { buildOpenApiDocument } from "../../src/openapi/document.ts";
import { Contract } from "../helpers/contract.ts";

const doc = buildOpenApiDocument() as unknown as Record<string, unknown>;

describe("the OpenAPI document", () => {
  it("is valid OpenAPI 3.1 (the official schema, via @seriousme/openapi-schema-validator)", async () => {
    const validator = new Validator();
    const res = await validator.validate(structuredClone(doc));
    expect(res.errors ?? []).toEqual([]);
    expect(res.valid).toBe(true);
    expect(validator.version).toBe("3.1");
  });

  it("docs/openapi.json is the document the relay serves (npm run openapi writes it)", () => {
    expect(committed).toBe(`${JSON.stringify(doc, null, 2)}\n`);
  });

  it("resolves every $ref", () => {
    const text = JSON.stringify(doc);
    const refs = [...text.matchAll(/"\$ref":"#\/([^"]+)"/g)].map((m) => m[1]!);
    expect(refs.length).toBeGreaterThan(10);
    for (const ref of new Set(refs)) {
      let node: unknown = doc;
      for (const seg of ref.split("/")) node = (node as Record<string, unknown>)[seg.replaceAll("~1", "/")];
      expect(node, ref).toBeDefined();
    }
  });

  it("every example validates against the schema beside it", () => {
    const contract = new Contract(doc);
    let checked = 0;
    const walk = (node: unknown, pointer: string) => {
      if (!node || typeof node !== "object") return;
      const o = node as Record<string, unknown>;
      if (o.schema && o.examples) {
        for (const [name, ex] of Object.entries(o.examples as Record<string, { value: unknown }>)) {
          expect({
            at: `${pointer}/examples/${name}`,
            errors: contract.validate(`${pointer}/schema`, ex.value),
          }).toEqual({
            at: `${pointer}/examples/${name}`,
            errors: [],
          });
          checked++;
        }
      }
      if (o.schema && o.example !== undefined) {
        expect(contract.validate(`${pointer}/schema`, o.example)).toEqual([]);
        checked++;
      }
      for (const [k, v] of Object.entries(o)) walk(v, `${pointer}/${k.replaceAll("~", "~0").replaceAll("/", "~1")}`);
    };
    walk(doc, "");
    expect(checked).toBeGreaterThanOrEqual(8);
  });

  it("the schemas refuse what the relay refuses, at the boundary", () => {
    const contract = new Contract(doc);
    const ptr = "/components/schemas/PutPartnerEventsRequestEntry";
    const ok = { Source: "aws.partner/example.com/acme/orders", DetailType: "d".repeat(128), Detail: "{}" };
    expect(contract.validate(ptr, ok)).toEqual([]);
    expect(contract.validate(ptr, { ...ok, DetailType: "d".repeat(129) })).not.toEqual([]);
    expect(contract.validate(ptr, { ...ok, Detail: { a: 1 } })).toEqual([]);
    expect(contract.validate(ptr, { ...ok, Detail: [1] })).not.toEqual([]);
    expect(contract.validate(ptr, { ...ok, Source: "aws.partner/example.com" })).not.toEqual([]);
    expect(contract.validate(ptr, { ...ok, Time: 1_700_000_000 })).toEqual([]);
    expect(contract.validate(ptr, { ...ok, Detailtype: "x" })).not.toEqual([]);
  });
});
