/**
 * The public routes as the OpenAPI document describes them: one `api.route()` per route. A new
 * public route adds one registration here (or in its own module, called from ./document.ts).
 *
 * Examples are the README's (API section), with whole ids where the README abbreviates them.
 */
import { z } from "zod";
import { requestSchema } from "../entries/schema.ts";
import { MAX_IDEMPOTENCY_KEY_CHARS, MAX_SOURCE_CHARS } from "../limits.ts";
import { createSourceSchema } from "../sources/http.ts";
import type { OpenApiBuilder } from "./builder.ts";
import { codesFor } from "./error-codes.ts";
import type { ResponseSchemas } from "./schemas.ts";

const JSON_TYPE = "application/json";
const AWS_JSON = "application/x-amz-json-1.1";

/** Codes every API-key route can answer with (authentication, the tenant's gate, bugs). */
const API_KEY_AUTH_CODES = [
  "invalid_authorization_header",
  "missing_api_key",
  "malformed_api_key",
  "invalid_api_key",
  "tenant_disabled",
  "tenant_misconfigured",
  "tenant_overloaded",
  "tenant_gate_unavailable",
  "internal_error",
] as const;

const EXAMPLE_RELAY_ID = "relay-8f14e45f-ceea-467f-a0e6-44c5c5f0b8a1";

export const EXAMPLES = {
  batch: {
    Entries: [
      {
        Time: "2026-11-26T10:00:00Z",
        Source: "aws.partner/example.com/acme/orders",
        Resources: ["arn:aws:example:::order/42"],
        DetailType: "Order Created",
        Detail: '{"orderId":42,"total":99.5}',
      },
      { Source: "aws.partner/example.com/acme/orders", DetailType: "Order Paid", Detail: { orderId: 42 } },
    ],
  },
  awsBatch: {
    Entries: [{ Source: "aws.partner/example.com/acme/orders", DetailType: "Order Created", Detail: '{"orderId":42}' }],
  },
  result: {
    FailedEntryCount: 1,
    QueuedEntryCount: 1,
    Entries: [
      { EventId: "4b2d0c9e-1f7a-4c55-9d8e-2a6b3c4d5e6f" },
      { RelayEventId: EXAMPLE_RELAY_ID },
      { ErrorCode: "MalformedDetail", ErrorMessage: "Entries[2].Detail: Detail is not valid JSON" },
    ],
  },
  delivered: {
    FailedEntryCount: 0,
    Entries: [{ EventId: "4b2d0c9e-1f7a-4c55-9d8e-2a6b3c4d5e6f" }],
  },
  eventDelivered: {
    relayEventId: EXAMPLE_RELAY_ID,
    state: "delivered",
    eventId: "9a1c2b3d-4e5f-6a7b-8c9d-0e1f2a3b4c5d",
    attempts: 2,
    deliveredAt: "2026-11-26T10:00:03.512Z",
  },
  status: {
    tenantId: "acme",
    accepted: 1200,
    delivered: 1180,
    failed: 0,
    queued: 20,
    queuedBytes: 9120,
    oldestQueuedAgeMs: 850,
    deadLetters: 0,
    duplicatesPossible: 0,
    lastUpstreamError: { code: "ThrottlingException", message: "Rate exceeded", at: "2026-11-26T10:00:01.250Z" },
    rate: { perSecond: 10, burst: 20 },
  },
  batchTooLarge: {
    type: "urn:eventbridge-relay:problem:batch_too_large",
    title: "Content Too Large",
    status: 413,
    code: "batch_too_large",
    detail: "The entries total 262145 bytes by EventBridge's size formula; the limit is 262144 bytes.",
    size: 262145,
    limit: 262144,
    requestId: "2f0c7a52-5f0e-4b7e-9a43-1d2c3b4a5e6f",
  },
} as const;

export function registerRoutes(api: OpenApiBuilder, s: ResponseSchemas): void {
  const idempotencyKey = z
    .string()
    .regex(
      new RegExp(`^(?:"[\\x21-\\x7e]{1,${MAX_IDEMPOTENCY_KEY_CHARS}}"|[\\x21-\\x7e]{1,${MAX_IDEMPOTENCY_KEY_CHARS}})$`),
    );
  const rateHeaders = { RateLimit: false, "RateLimit-Policy": false, "Cache-Control": true } as const;

  api.route({
    method: "post",
    path: "/v1/events",
    operationId: "putEvents",
    summary: "Send a batch of partner events",
    description: [
      "PutPartnerEvents' input shape. Each entry is validated as EventBridge would (and stricter where",
      "EventBridge silently drops data); an entry that breaks a rule fails on its own with a per-entry",
      "`ErrorCode` (InvalidArgument, MalformedDetail, NotAuthorizedForSourceException) while its valid",
      "siblings go through. The request fails whole (problem+json) when its shape is wrong or the entries",
      "total more than MAX_BATCH_BYTES (default 262,144) by AWS's size formula: the UTF-8 bytes of",
      "Source, DetailType, Detail and each Resource, plus 14 for a Time.",
      "",
      "HTTP 200 when every entry is final, 202 when any was queued durably, 429 when the buffer is full.",
    ].join("\n"),
    tags: ["events"],
    security: "apiKey",
    parameters: [
      {
        name: "Idempotency-Key",
        in: "header",
        description: `Makes a retry safe for 24 hours: the same key with the same body gets the first answer again (Idempotent-Replayed: true); with a different body, 422. 1-${MAX_IDEMPOTENCY_KEY_CHARS} printable ASCII characters, optionally quoted.`,
        schema: idempotencyKey,
        example: "order-42-created",
      },
    ],
    requestBody: {
      contentTypes: [JSON_TYPE],
      schema: requestSchema,
      examples: { readme: { summary: "Two entries (README)", value: EXAMPLES.batch } },
    },
    responses: {
      "200": {
        description: "Every entry is final: delivered to EventBridge or refused (per entry).",
        headers: { ...rateHeaders, "Idempotent-Replayed": false },
        body: {
          contentTypes: [JSON_TYPE],
          schema: s.putEventsResult,
          examples: { delivered: { value: EXAMPLES.delivered } },
        },
      },
      "202": {
        description: "Some entries were queued durably (RelayEventId); the relay will deliver them.",
        headers: { ...rateHeaders, "Idempotent-Replayed": false },
        body: {
          contentTypes: [JSON_TYPE],
          schema: s.putEventsResult,
          examples: { readme: { summary: "README", value: EXAMPLES.result } },
        },
      },
    },
    errors: {
      format: "problem",
      // Every code of the JSON API but those only a wrong path or method gets.
      codes: codesFor("json").filter((c) => c !== "not_found" && c !== "method_not_allowed"),
    },
  });

  api.route({
    method: "get",
    path: "/v1/events/{relayEventId}",
    operationId: "getEvent",
    summary: "A queued event's fate",
    description:
      "`queued` (with attempts, lastErrorCode, nextAttemptAt), `delivered` (with EventBridge's eventId) or `failed` (with errorCode, errorMessage, deadLettered). Another tenant's id, an id not in the relay's form, or one older than 7 days is 404.",
    tags: ["events"],
    security: "apiKey",
    parameters: [
      {
        name: "relayEventId",
        in: "path",
        description: "A RelayEventId from a 202 answer (or an EventId `relay-…` from the AWS front door).",
        schema: s.eventStatus.options[0].shape.relayEventId,
        example: EXAMPLE_RELAY_ID,
      },
    ],
    responses: {
      "200": {
        description: "The event's state.",
        headers: { "Cache-Control": true },
        body: {
          contentTypes: [JSON_TYPE],
          schema: s.eventStatus,
          examples: { readme: { summary: "README", value: EXAMPLES.eventDelivered } },
        },
      },
    },
    errors: { format: "problem", codes: [...API_KEY_AUTH_CODES, "not_found"] },
  });

  api.route({
    method: "get",
    path: "/v1/status",
    operationId: "getStatus",
    summary: "Your tenant's counters",
    description: "`accepted = delivered + failed + queued` (entries the relay took responsibility for).",
    tags: ["status"],
    security: "apiKey",
    responses: {
      "200": {
        description: "The tenant's counters and its bucket toward EventBridge (RateLimit fields).",
        headers: rateHeaders,
        body: {
          contentTypes: [JSON_TYPE],
          schema: s.tenantStatus,
          examples: { readme: { summary: "README", value: EXAMPLES.status } },
        },
      },
    },
    errors: { format: "problem", codes: API_KEY_AUTH_CODES },
  });

  api.route({
    method: "post",
    path: "/",
    operationId: "putPartnerEvents",
    summary: "PutPartnerEvents for the AWS CLI and SDKs",
    description: [
      "AWS JSON 1.1 with `X-Amz-Target: AWSEvents.PutPartnerEvents`, signed with Signature V4 by a",
      "relay-issued key pair: point `aws events put-partner-events --endpoint-url` or an SDK's `endpoint`",
      "here. Same validation and path as POST /v1/events; the answer is EventBridge's exactly (always",
      "HTTP 200; a queued entry's EventId is its relay id, `relay-<uuid>`), errors are `{__type, message}`.",
    ].join("\n"),
    tags: ["aws"],
    security: "sigv4",
    requestIdHeader: "X-Amzn-RequestId",
    parameters: [
      {
        name: "X-Amz-Target",
        in: "header",
        required: true,
        description: "The operation; anything else is UnknownOperationException.",
        schema: z.literal("AWSEvents.PutPartnerEvents"),
      },
      {
        name: "X-Amz-Date",
        in: "header",
        required: true,
        description: "The signing time, `YYYYMMDDTHHMMSSZ`, within 5 minutes of the relay's clock.",
        schema: z.string().regex(/^\d{8}T\d{6}Z$/),
        example: "20261126T100000Z",
      },
      {
        name: "X-Amz-Content-Sha256",
        in: "header",
        description: "The hex SHA-256 of the body, if sent (UNSIGNED-PAYLOAD and streaming payloads are refused).",
        schema: z.string().regex(/^[0-9a-fA-F]{64}$/),
      },
    ],
    requestBody: {
      contentTypes: [AWS_JSON, JSON_TYPE],
      schema: requestSchema,
      examples: { readme: { summary: "aws events put-partner-events --entries (README)", value: EXAMPLES.awsBatch } },
    },
    responses: {
      "200": {
        description: "EventBridge's PutPartnerEvents answer.",
        headers: { "Cache-Control": true, RateLimit: false, "RateLimit-Policy": false },
        body: { contentTypes: [AWS_JSON], schema: s.awsPutResult },
      },
    },
    errors: {
      format: "aws",
      codes: codesFor("aws"),
      passthrough: {
        "5XX":
          "EventBridge failed (5xx or no connection) and the relay's buffer had no room: EventBridge's own `__type` and status.",
      },
    },
  });

  registerSourceRoutes(api, s);

  api.route({
    method: "get",
    path: "/healthz",
    operationId: "health",
    summary: "Liveness",
    description: "No authentication; for load balancers and scripts.",
    tags: ["health"],
    security: "none",
    responses: {
      "200": {
        description: "The Worker is serving.",
        headers: { "Cache-Control": true },
        body: { contentTypes: [JSON_TYPE], schema: s.health, examples: { readme: { value: { ok: true } } } },
      },
    },
  });

  api.route({
    method: "get",
    path: "/openapi.json",
    operationId: "openapi",
    summary: "This document",
    description: "The OpenAPI 3.1 document, generated from the relay's own zod schemas. No authentication.",
    tags: ["health"],
    security: "none",
    responses: {
      "200": {
        description: "OpenAPI 3.1.",
        headers: { "Cache-Control": true },
        body: { contentTypes: [JSON_TYPE], schema: z.looseObject({ openapi: z.string().startsWith("3.1.") }) },
      },
    },
  });
}

/** Codes every source call that reaches EventBridge's control plane can answer with. */
const CONTROL_PLANE_CODES = [
  "control_plane_throttled",
  "control_plane_denied",
  "control_plane_not_implemented",
  "control_plane_unavailable",
] as const;

const EXAMPLE_SOURCE = {
  name: "aws.partner/example.com/acme/orders",
  account: "444455556666",
  managed: true,
  state: "PENDING",
  warning: null,
  arn: "arn:aws:events:eu-west-1::event-source/aws.partner/example.com/acme/orders",
  creationTime: "2026-11-26T10:00:00.000Z",
  expirationTime: "2026-12-10T10:00:00.000Z",
  checkedAt: "2026-11-26T10:00:00.000Z",
  nextCheckAt: "2026-11-26T10:01:00.000Z",
  lastError: null,
  held: { entries: 2, bytes: 180 },
} as const;

/** The partner's own partner event sources (docs/sources.md): src/ingest/sources-api.ts. */
function registerSourceRoutes(api: OpenApiBuilder, s: ResponseSchemas): void {
  const noStore = { "Cache-Control": true } as const;
  const nameParam = {
    name: "name",
    in: "path" as const,
    description:
      "The source's name, percent-encoded (`aws.partner%2Fexample.com%2Facme%2Forders`); one outside the tenant's source rules is 404.",
    schema: z
      .string()
      .min(1)
      .max(MAX_SOURCE_CHARS * 3),
    example: encodeURIComponent(EXAMPLE_SOURCE.name),
  };

  api.route({
    method: "post",
    path: "/v1/sources",
    operationId: "createSource",
    summary: "Create (or adopt) a partner event source",
    description: [
      "CreatePartnerEventSource for the customer's account, signed with the tenant's AWS credentials",
      "(static keys, or the role's session). A source that already exists for that account is adopted",
      "(200); a new one is 201. It is PENDING until the customer associates it with an event bus; the",
      "relay holds its events meanwhile and sends them, in order, once it is ACTIVE.",
    ].join("\n"),
    tags: ["sources"],
    security: "apiKey",
    requestBody: {
      contentTypes: [JSON_TYPE],
      schema: createSourceSchema,
      examples: {
        create: { value: { Name: EXAMPLE_SOURCE.name, Account: EXAMPLE_SOURCE.account } },
      },
    },
    responses: {
      "200": {
        description: "The source existed for that account: adopted.",
        headers: noStore,
        body: { contentTypes: [JSON_TYPE], schema: s.source },
      },
      "201": {
        description: "Created (PENDING until the customer creates the bus).",
        headers: noStore,
        body: { contentTypes: [JSON_TYPE], schema: s.source, examples: { pending: { value: EXAMPLE_SOURCE } } },
      },
    },
    errors: {
      format: "problem",
      codes: [
        ...API_KEY_AUTH_CODES,
        "invalid_json",
        "invalid_request",
        "source_not_owned",
        "source_exists",
        "source_account_unknown",
        "too_many_sources",
        "invalid_source",
        ...CONTROL_PLANE_CODES,
      ],
    },
  });

  api.route({
    method: "get",
    path: "/v1/sources",
    operationId: "listSources",
    summary: "Your partner event sources",
    description: "Every source the relay tracks for the tenant, with its state and what is held for it.",
    tags: ["sources"],
    security: "apiKey",
    responses: {
      "200": {
        description: "The tenant's sources.",
        headers: noStore,
        body: {
          contentTypes: [JSON_TYPE],
          schema: s.sourceList,
          examples: { one: { value: { sources: [EXAMPLE_SOURCE] } } },
        },
      },
    },
    errors: { format: "problem", codes: API_KEY_AUTH_CODES },
  });

  api.route({
    method: "get",
    path: "/v1/sources/{name}",
    operationId: "getSource",
    summary: "One partner event source",
    description: "The source's state as last read, AWS's creation and expiration times, what is held.",
    tags: ["sources"],
    security: "apiKey",
    parameters: [nameParam],
    responses: {
      "200": {
        description: "The source.",
        headers: noStore,
        body: { contentTypes: [JSON_TYPE], schema: s.source, examples: { pending: { value: EXAMPLE_SOURCE } } },
      },
    },
    errors: { format: "problem", codes: [...API_KEY_AUTH_CODES, "source_not_found"] },
  });

  api.route({
    method: "delete",
    path: "/v1/sources/{name}",
    operationId: "deleteSource",
    summary: "Delete a partner event source",
    description:
      "DeletePartnerEventSource for its account; the entries held for it are dead-lettered (`EventSourceDeleted`). The answer is the source as it was deleted (state DELETED).",
    tags: ["sources"],
    security: "apiKey",
    parameters: [nameParam],
    responses: {
      "200": {
        description: "Deleted.",
        headers: noStore,
        body: { contentTypes: [JSON_TYPE], schema: s.source },
      },
    },
    errors: {
      format: "problem",
      codes: [...API_KEY_AUTH_CODES, "source_not_found", "invalid_source", ...CONTROL_PLANE_CODES],
    },
  });
}
