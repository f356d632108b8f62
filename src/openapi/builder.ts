/**
 * A small OpenAPI 3.1 builder over zod 4's JSON Schema output: one `route()` call per route, each
 * naming the zod schemas the relay validates and answers with. Schemas that carry a zod `id`
 * (`.meta({ id })`) become `components.schemas`; everything else is inlined. Error responses are
 * generated from error codes (./error-codes.ts), grouped by status, with the codes as an enum.
 *
 * No shape is written here by hand: request bodies are the validation schemas themselves
 * (src/entries/schema.ts), response bodies are ./schemas.ts.
 */
import { z } from "zod";
import { ERROR_CODES, type ErrorCodeDoc, errorCode, type ResponseHeaderName } from "./error-codes.ts";

export type JsonSchema = Record<string, unknown>;
type Io = "input" | "output";

export interface Example {
  summary?: string;
  value: unknown;
}

export interface ParameterSpec {
  name: string;
  in: "path" | "header" | "query";
  required?: boolean;
  description: string;
  schema: z.ZodType;
  example?: unknown;
}

export interface BodySpec {
  /** Media types the route accepts or answers with (the first is the canonical one). */
  contentTypes: string[];
  schema: z.ZodType;
  description?: string;
  examples?: Record<string, Example>;
}

export interface ResponseSpec {
  description: string;
  body?: BodySpec;
  /** Response headers by component name; `true`: always present. */
  headers?: Partial<Record<HeaderComponent, boolean>>;
}

export type Security = "apiKey" | "sigv4" | "none";

export interface ErrorSpec {
  /** problem+json (the JSON API) or AWS JSON 1.1 `__type` (the AWS front door). */
  format: "problem" | "aws";
  codes: readonly string[];
  /** Extra AWS responses whose status is EventBridge's own (e.g. "5XX"), by status key. */
  passthrough?: Record<string, string>;
}

export interface RouteSpec {
  method: "get" | "post" | "delete";
  /** OpenAPI path template, e.g. `/v1/events/{relayEventId}`. */
  path: string;
  operationId: string;
  summary: string;
  description: string;
  tags: string[];
  security: Security;
  /** The header every answer carries the relay's request id in (default X-Request-Id). */
  requestIdHeader?: "X-Request-Id" | "X-Amzn-RequestId";
  parameters?: ParameterSpec[];
  requestBody?: BodySpec & { required?: boolean };
  responses: Record<string, ResponseSpec>;
  errors?: ErrorSpec;
}

/** Response headers the document describes (each described once, here). */
export type HeaderComponent =
  | ResponseHeaderName
  | "Cache-Control"
  | "X-Request-Id"
  | "Idempotent-Replayed"
  | "X-Amzn-RequestId"
  | "X-Amzn-ErrorType";

const PROBLEM_JSON = "application/problem+json";
const AWS_JSON = "application/x-amz-json-1.1";

const HEADERS: Record<HeaderComponent, { description: string; schema: z.ZodType }> = {
  "Cache-Control": { description: "Every answer is `no-store`.", schema: z.literal("no-store") },
  "X-Request-Id": {
    description: "The relay's id for this request (also `requestId` in the problem); quote it to the operator.",
    schema: z.uuid(),
  },
  "X-Amzn-RequestId": {
    description: "The relay's id for this request, where AWS clients look for it.",
    schema: z.uuid(),
  },
  "X-Amzn-ErrorType": { description: "The error's `__type`, as AWS sends it.", schema: z.string().min(1) },
  "Retry-After": { description: "Seconds to wait before retrying (RFC 9110).", schema: z.string().regex(/^\d+$/) },
  RateLimit: {
    description:
      'IETF RateLimit (draft-ietf-httpapi-ratelimit-headers): the tenant\'s token bucket toward EventBridge, `"eventbridge";r=<remaining>;t=<seconds to refill>`.',
    schema: z.string().regex(/^"eventbridge";r=\d+;t=\d+$/),
  },
  "RateLimit-Policy": {
    description: 'IETF RateLimit-Policy: `"eventbridge";q=<burst>;w=<window seconds>`.',
    schema: z.string().regex(/^"eventbridge";q=\d+;w=\d+$/),
  },
  "WWW-Authenticate": {
    description:
      'The challenge: `Bearer realm="eventbridge-relay"` (with `error=` when a key was sent), or AWS4-HMAC-SHA256.',
    schema: z.string().min(1),
  },
  Allow: { description: "The methods this path accepts.", schema: z.string().min(1) },
  "Accept-Post": { description: "The media type this route accepts.", schema: z.string().min(1) },
  Date: { description: "The relay's clock (lets AWS SDKs correct their clock skew).", schema: z.string().min(1) },
  "Idempotent-Replayed": {
    description: "`true` when this is the stored answer to an earlier request with the same Idempotency-Key.",
    schema: z.literal("true"),
  },
};

const SECURITY: Record<Security, Record<string, string[]>[]> = {
  apiKey: [{ bearerAuth: [] }, { apiKeyHeader: [] }],
  sigv4: [{ sigv4: [] }],
  none: [],
};

export interface OpenApiDocument {
  openapi: string;
  info: Record<string, unknown>;
  servers: Record<string, unknown>[];
  tags: Record<string, unknown>[];
  paths: Record<string, Record<string, Record<string, unknown>>>;
  components: {
    schemas: Record<string, JsonSchema>;
    securitySchemes: Record<string, Record<string, unknown>>;
  };
  "x-error-codes": Record<string, unknown>[];
}

export interface BuilderInit {
  info: Record<string, unknown>;
  tags: Record<string, unknown>[];
  /** The Problem and AwsError schemas error responses are made of (a status's codes narrow Problem). */
  errorSchemas: { problem: z.ZodType; awsError: z.ZodType };
  /** Adjusts zod's JSON Schema for one schema (descriptions, unrepresentable types); see zod's `override`. */
  override?: (zodSchema: z.ZodType, jsonSchema: JsonSchema) => void;
}

export class OpenApiBuilder {
  readonly #init: BuilderInit;
  readonly #routes: RouteSpec[] = [];
  readonly #named: [string, z.ZodType, Io][] = [];

  constructor(init: BuilderInit) {
    this.#init = init;
  }

  /** Registers one route. */
  route(spec: RouteSpec): this {
    if (this.#routes.some((r) => r.path === spec.path && r.method === spec.method)) {
      throw new Error(`route ${spec.method.toUpperCase()} ${spec.path} registered twice`);
    }
    this.#routes.push(spec);
    return this;
  }

  /** Names a schema that has no zod id (one the relay's validation owns) as a component. */
  component(id: string, schema: z.ZodType, io: Io = "input"): this {
    this.#named.push([id, schema, io]);
    return this;
  }

  build(): OpenApiDocument {
    const components: Record<string, JsonSchema> = {};
    const convert = (schema: z.ZodType, io: Io): JsonSchema => this.#convert(schema, io, components);
    for (const [id, schema, io] of this.#named) components[id] = convert(schema, io);
    const paths: OpenApiDocument["paths"] = {};

    for (const r of this.#routes) {
      const responses: Record<string, unknown> = {};
      const idHeader = r.requestIdHeader ?? "X-Request-Id";
      const withId = (spec: ResponseSpec): ResponseSpec => ({
        ...spec,
        headers: { ...spec.headers, [idHeader]: true },
      });
      for (const [status, spec] of Object.entries(r.responses)) {
        responses[status] = this.#response(withId(spec), convert);
      }
      if (r.errors) {
        for (const [status, spec] of Object.entries(errorResponses(r.errors, this.#init.errorSchemas))) {
          if (responses[status]) throw new Error(`${r.operationId}: status ${status} documented twice`);
          responses[status] = this.#response(withId(spec), convert);
        }
      }
      const op: Record<string, unknown> = {
        operationId: r.operationId,
        summary: r.summary,
        description: r.description,
        tags: r.tags,
        security: SECURITY[r.security],
      };
      if (r.parameters?.length) {
        op.parameters = r.parameters.map((p) => ({
          name: p.name,
          in: p.in,
          required: p.in === "path" ? true : (p.required ?? false),
          description: p.description,
          schema: convert(p.schema, "input"),
          ...(p.example !== undefined ? { example: p.example } : {}),
        }));
      }
      if (r.requestBody) {
        op.requestBody = {
          required: r.requestBody.required ?? true,
          ...(r.requestBody.description ? { description: r.requestBody.description } : {}),
          content: content(r.requestBody, convert(r.requestBody.schema, "input")),
        };
      }
      op.responses = responses;
      paths[r.path] ??= {};
      paths[r.path]![r.method] = op;
    }

    return {
      openapi: "3.1.0",
      info: this.#init.info,
      servers: [{ url: "/", description: "The relay that served this document." }],
      tags: this.#init.tags,
      paths,
      components: {
        schemas: sortKeys(components),
        securitySchemes: {
          bearerAuth: {
            type: "http",
            scheme: "bearer",
            bearerFormat: "ebr_…",
            description: "A relay API key (`npm run tenant -- key create <tenant>`): `Authorization: Bearer ebr_…`.",
          },
          apiKeyHeader: {
            type: "apiKey",
            in: "header",
            name: "X-Api-Key",
            description: "The same API key in `X-Api-Key`, for clients that cannot set Authorization.",
          },
          sigv4: {
            type: "apiKey",
            in: "header",
            name: "Authorization",
            description:
              "AWS Signature Version 4 (`AWS4-HMAC-SHA256 Credential=RLY…/<date>/<region>/events/aws4_request, SignedHeaders=…, Signature=…`) with a relay-issued key pair (`npm run tenant -- sigv4 create <tenant>`), as the AWS CLI and SDKs sign it. `host` and `x-amz-date` must be signed; X-Amz-Date within ±5 minutes; service `events`, any region; the body hash whenever x-amz-content-sha256 is sent (UNSIGNED-PAYLOAD refused); no session token; no presigned URLs.",
            "x-amazon-apigateway-authtype": "awsSigv4",
          },
        },
      },
      "x-error-codes": ERROR_CODES.map((e) => ({
        code: e.code,
        status: e.status,
        ...(e.aws ? { awsType: e.aws.type, awsStatus: e.aws.status } : {}),
        when: e.when,
      })),
    };
  }

  #response(spec: ResponseSpec, convert: (s: z.ZodType, io: Io) => JsonSchema): Record<string, unknown> {
    const out: Record<string, unknown> = { description: spec.description };
    if (spec.headers) {
      const headers: Record<string, unknown> = {};
      for (const [name, required] of Object.entries(spec.headers) as [HeaderComponent, boolean][]) {
        const h = HEADERS[name];
        // Inline: OpenAPI 3.1 ignores `required` beside a $ref.
        headers[name] = { description: h.description, required, schema: convert(h.schema, "output") };
      }
      out.headers = headers;
    }
    if (spec.body) out.content = content(spec.body, convert(spec.body.schema, "output"));
    return out;
  }

  /** zod → JSON Schema 2020-12; schemas with an id are hoisted into components and referenced. */
  #convert(schema: z.ZodType, io: Io, components: Record<string, JsonSchema>): JsonSchema {
    const override = this.#init.override;
    const js = z.toJSONSchema(schema, {
      target: "draft-2020-12",
      io,
      unrepresentable: "any",
      reused: "inline",
      override: override
        ? (ctx) => override(ctx.zodSchema as unknown as z.ZodType, ctx.jsonSchema as JsonSchema)
        : undefined,
    }) as JsonSchema;
    delete js.$schema;
    const defs = (js.$defs ?? {}) as Record<string, JsonSchema>;
    delete js.$defs;
    for (const [id, raw] of Object.entries(defs)) {
      const def = rewriteRefs(raw);
      const prev = components[id];
      if (prev && JSON.stringify(prev) !== JSON.stringify(def)) throw new Error(`two different schemas named ${id}`);
      components[id] = def;
    }
    return rewriteRefs(js);
  }
}

/** Problem (or AWS error) responses for a route's codes, one per status, the codes as an enum. */
function errorResponses(spec: ErrorSpec, schemas: BuilderInit["errorSchemas"]): Record<string, ResponseSpec> {
  const byStatus = new Map<number, ErrorCodeDoc[]>();
  for (const c of spec.codes) {
    const e = errorCode(c);
    const status = spec.format === "problem" ? e.status : e.aws?.status;
    if (status === undefined) throw new Error(`${c} has no AWS form`);
    byStatus.set(status, [...(byStatus.get(status) ?? []), e]);
  }
  const out: Record<string, ResponseSpec> = {};
  for (const [status, list] of [...byStatus.entries()].sort((a, b) => a[0] - b[0])) {
    const table = list.map((e) => `- \`${spec.format === "problem" ? e.code : e.aws!.type}\`: ${e.when}`);
    const headers: Partial<Record<HeaderComponent, boolean>> = { "Cache-Control": true };
    const all = new Set(list.flatMap((e) => e.headers ?? []));
    for (const h of all) headers[h] = list.every((e) => e.headers?.includes(h));
    if (spec.format === "problem") {
      headers["X-Request-Id"] = true;
      out[String(status)] = {
        description: table.join("\n"),
        headers,
        body: {
          contentTypes: [PROBLEM_JSON],
          schema: z.intersection(
            schemas.problem,
            z.looseObject({
              status: z.literal(status),
              code: z.enum(list.map((e) => e.code) as [string, ...string[]]),
            }),
          ),
        },
      };
    } else {
      headers["X-Amzn-RequestId"] = true;
      headers["X-Amzn-ErrorType"] = true;
      out[String(status)] = {
        description: [...new Set(table)].join("\n"),
        headers,
        body: { contentTypes: [AWS_JSON], schema: schemas.awsError },
      };
    }
  }
  for (const [status, description] of Object.entries(spec.passthrough ?? {})) {
    out[status] = {
      description,
      headers: { "Cache-Control": true, "X-Amzn-RequestId": true, "X-Amzn-ErrorType": true },
      body: { contentTypes: [AWS_JSON], schema: schemas.awsError },
    };
  }
  return out;
}

function content(body: BodySpec, schema: JsonSchema): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  body.contentTypes.forEach((type, i) => {
    out[type] = { schema, ...(i === 0 && body.examples ? { examples: body.examples } : {}) };
  });
  return out;
}

function rewriteRefs(js: JsonSchema): JsonSchema {
  return JSON.parse(JSON.stringify(js).replaceAll('"#/$defs/', '"#/components/schemas/')) as JsonSchema;
}

function sortKeys<T>(o: Record<string, T>): Record<string, T> {
  return Object.fromEntries(Object.entries(o).sort(([a], [b]) => a.localeCompare(b)));
}
