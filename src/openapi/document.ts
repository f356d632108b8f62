/**
 * `GET /openapi.json`: the OpenAPI 3.1 document, built from the zod schemas on the first request
 * an isolate serves it and kept (as its JSON text) for the isolate's life. Nothing here runs on the
 * ingest path: the schemas' JSON Schema conversion happens only when the document is asked for.
 */
import type { Context } from "hono";
import type { z } from "zod";
import { entrySchema, requestSchema } from "../entries/schema.ts";
import { type JsonSchema, OpenApiBuilder, type OpenApiDocument } from "./builder.ts";
import { registerRoutes } from "./routes.ts";
import { responseSchemas } from "./schemas.ts";

const ENTRY_ID = "PutPartnerEventsRequestEntry";

/** Descriptions (and what zod cannot express) for the request's fields, keyed by the zod schema. */
function requestOverrides(): Map<z.ZodType, (js: JsonSchema) => void> {
  const shape = entrySchema.shape;
  const detailUnion = (shape.Detail as unknown as { in: { options: readonly z.ZodType[] } }).in;
  const detailObject = detailUnion.options[1]!;
  const items = (requestSchema.shape.Entries as unknown as { element: z.ZodType }).element;
  const describe = (text: string) => (js: JsonSchema) => {
    js.description = text;
  };
  return new Map<z.ZodType, (js: JsonSchema) => void>([
    [
      entrySchema,
      (js) => {
        js.description =
          "One PutPartnerEvents entry. An entry that breaks a rule here fails on its own (a per-entry ErrorCode), not the request. Unknown fields are refused (InvalidArgument).";
      },
    ],
    [
      items,
      (js) => {
        // The request validates each entry on its own (so one bad entry fails alone); the document
        // says what a valid entry is.
        js.$ref = `#/components/schemas/${ENTRY_ID}`;
      },
    ],
    [
      shape.Time,
      describe(
        "An ISO-8601 / RFC 3339 date-time (no zone means UTC; 1970 to 9999), or epoch seconds (a number or numeric string). Sent upstream as whole epoch seconds. Absent: EventBridge stamps the time of the call.",
      ),
    ],
    [
      shape.Source,
      describe("A partner event source name, `aws.partner/<domain>/<name>…`; must be one of the tenant's sources."),
    ],
    [shape.DetailType, describe("Free text; EventBridge silently drops longer ones, the relay refuses them.")],
    [
      shape.Detail,
      describe(
        "A string holding JSON whose top level is an object, or (a convenience) a JSON object, which the relay serialises.",
      ),
    ],
    [
      detailObject,
      (js) => {
        js.type = "object";
      },
    ],
    [shape.Resources, describe("ARNs the event concerns.")],
  ]);
}

/** Builds the document (every call builds anew; the route serves a cached copy). */
export function buildOpenApiDocument(): OpenApiDocument {
  const s = responseSchemas();
  const overrides = requestOverrides();
  const api = new OpenApiBuilder({
    info: {
      title: "EventBridge partner relay",
      version: "1.0.0",
      description:
        "An edge relay for Amazon EventBridge PutPartnerEvents. Partners post batches with an API key (POST /v1/events) or point the AWS CLI / SDKs at POST / with a relay-issued SigV4 key pair. Every non-2xx answer on /v1 is RFC 9457 problem+json with a stable `code` (listed per status, and all of them in `x-error-codes`); on POST / it is AWS JSON 1.1 (`__type`, `message`). Every answer carries `Cache-Control: no-store`.",
      license: { name: "Proprietary" },
    },
    tags: [
      { name: "events", description: "Send events and follow queued ones." },
      { name: "status", description: "The tenant's counters." },
      { name: "aws", description: "The AWS front door (AWS CLI, SDKs)." },
      { name: "sources", description: "Your partner event sources (docs/sources.md)." },
      { name: "health", description: "Liveness and this document." },
    ],
    errorSchemas: { problem: s.problem, awsError: s.awsError },
    override: (schema, js) => overrides.get(schema)?.(js),
  });
  api.component(ENTRY_ID, entrySchema);
  registerRoutes(api, s);
  return api.build();
}

let cached: string | undefined;

/** The document's JSON text, built once per isolate. */
export function openApiJson(): string {
  cached ??= JSON.stringify(buildOpenApiDocument());
  return cached;
}

export function openApiHandler(c: Context): Response {
  return c.body(openApiJson(), 200, { "content-type": "application/json", "cache-control": "no-store" });
}
