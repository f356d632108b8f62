/**
 * The relay's response bodies as zod schemas: what the OpenAPI document publishes and what the
 * contract tests hold every real answer to. Request shapes are not here: they are the validation
 * schemas themselves (src/entries/schema.ts), imported by the document, never copied.
 *
 * Built on first use (`responseSchemas()`), so an isolate that never serves /openapi.json never
 * constructs them.
 */
import { z } from "zod";
import { MAX_ENTRIES, MAX_EVENT_ID_CHARS, MIN_ENTRIES, RELAY_EVENT_ID_PATTERN } from "../limits.ts";
/** A problem's `type`: the code under the relay's URN. */
export const PROBLEM_TYPE_PATTERN = /^urn:eventbridge-relay:problem:[a-z0-9_]+$/;

function build() {
  const count = z.int().min(0);
  const isoTime = z.iso.datetime().meta({ description: "An RFC 3339 instant in UTC, with milliseconds." });

  const eventId = z
    .string()
    .max(MAX_EVENT_ID_CHARS)
    .nullable()
    .meta({ description: "EventBridge's id for the event (null if EventBridge returned none)." });
  const relayEventId = z.string().regex(RELAY_EVENT_ID_PATTERN).meta({
    description: "The relay's id for a queued entry; look it up with GET /v1/events/{relayEventId}.",
  });
  const entryFailure = z
    .strictObject({
      ErrorCode: z.string().meta({
        description:
          "InvalidArgument, MalformedDetail, NotAuthorizedForSourceException (the relay's), or EventBridge's own code.",
      }),
      ErrorMessage: z.string(),
    })
    .meta({ id: "EntryFailure", description: "The entry was refused, by the relay or by EventBridge." });
  const entriesOf = <T extends z.ZodType>(item: T) => z.array(item).min(MIN_ENTRIES).max(MAX_ENTRIES);

  const putEventsResult = z
    .strictObject({
      FailedEntryCount: count,
      QueuedEntryCount: z
        .int()
        .min(1)
        .optional()
        .meta({ description: "Entries the relay queued durably (present only when some were; HTTP 202)." }),
      Entries: entriesOf(
        z.union([
          z.strictObject({ EventId: eventId }).meta({ id: "EntryDelivered", description: "EventBridge accepted it." }),
          z
            .strictObject({ RelayEventId: relayEventId })
            .meta({ id: "EntryQueued", description: "Queued durably; the relay will deliver it. Do not resend." }),
          entryFailure,
        ]),
      ).meta({ description: "One result per request entry, in the request's order." }),
    })
    .meta({
      id: "PutEventsResult",
      description: "EventBridge's PutPartnerEvents output, plus the relay's queued entries.",
    });

  const awsPutResult = z
    .strictObject({
      FailedEntryCount: count,
      Entries: entriesOf(
        z.union([
          z.strictObject({ EventId: z.string().max(MAX_EVENT_ID_CHARS).nullable() }).meta({
            id: "AwsEntryAccepted",
            description: "EventBridge's id, or the relay's (`relay-<uuid>`) for an entry it queued.",
          }),
          entryFailure,
        ]),
      ),
    })
    .meta({ id: "AwsPutPartnerEventsResult", description: "EventBridge's PutPartnerEvents output exactly." });

  const problem = z
    .strictObject({
      type: z.string().regex(PROBLEM_TYPE_PATTERN),
      title: z.string(),
      status: z.int().min(400).max(599),
      code: z.string().meta({ description: "Stable machine-readable code (see the error codes table)." }),
      detail: z.string(),
      requestId: z.string().optional(),
      size: z.int().optional().meta({ description: "batch_too_large: the batch's size by AWS's formula, in bytes." }),
      limit: z.int().optional().meta({ description: "batch_too_large: the limit, in bytes." }),
      upstreamCode: z.string().optional().meta({ description: "upstream_*: EventBridge's error code." }),
      upstreamRequestId: z.string().optional().meta({ description: "upstream_*: EventBridge's request id." }),
      upstreamService: z.literal("sts").optional().meta({
        description:
          "upstream_*: present when AWS STS failed (the tenant's role could not be assumed); upstreamCode is then STS's.",
      }),
    })
    .meta({ id: "Problem", description: "RFC 9457 problem details." });

  const awsError = z
    .strictObject({
      __type: z.string().meta({ description: "The AWS error code, e.g. ValidationException." }),
      message: z.string(),
    })
    .meta({ id: "AwsError", description: "AWS JSON 1.1 error, as the AWS CLI and SDKs read it." });

  const eventStatus = z
    .discriminatedUnion("state", [
      z.strictObject({
        relayEventId,
        state: z.literal("queued"),
        attempts: count,
        lastErrorCode: z.string().nullable(),
        acceptedAt: isoTime,
        nextAttemptAt: isoTime,
      }),
      z.strictObject({
        relayEventId,
        state: z.literal("delivered"),
        eventId,
        attempts: count,
        deliveredAt: isoTime,
      }),
      z.strictObject({
        relayEventId,
        state: z.literal("held"),
        source: z.string().meta({ description: "The partner event source the entry is for." }),
        reason: z.string().meta({ description: "Why it is held: the source is not ACTIVE yet (docs/sources.md)." }),
        acceptedAt: isoTime,
        holdUntil: isoTime.meta({
          description: "When it is dead-lettered (EventSourceHoldExpired) if the source is still not ACTIVE.",
        }),
      }),
      z.strictObject({
        relayEventId,
        state: z.literal("failed"),
        errorCode: z.string(),
        errorMessage: z.string(),
        attempts: count,
        failedAt: isoTime,
        deadLettered: z.boolean(),
      }),
    ])
    .meta({ id: "EventStatus", description: "A queued (or held) event's fate." });

  const sourceState = z.enum(["PENDING", "ACTIVE", "DELETED", "UNKNOWN"]).meta({
    description:
      "EventBridge's state of the source for its account (UNKNOWN: not read yet, or unreadable: see warning).",
  });
  const source = z
    .strictObject({
      name: z.string().meta({ description: "aws.partner/<partner>/<namespace>/<name>" }),
      account: z
        .string()
        .regex(/^\d{12}$/)
        .nullable()
        .meta({ description: "The customer's AWS account the source is for." }),
      managed: z.boolean().meta({ description: "The relay created or adopted it (and reads its state)." }),
      state: sourceState,
      warning: z.string().nullable().meta({
        description: "Set when the state cannot be read (events are forwarded as before): why.",
      }),
      arn: z.string().nullable(),
      creationTime: isoTime.nullable(),
      expirationTime: isoTime.nullable().meta({ description: "When a PENDING source is deleted by EventBridge." }),
      checkedAt: isoTime.nullable().meta({ description: "When the relay last read its state." }),
      nextCheckAt: isoTime.nullable(),
      lastError: z.string().nullable(),
      held: z.strictObject({ entries: count, bytes: count }).meta({
        description: "Entries held until the source is ACTIVE, and their size.",
      }),
    })
    .meta({ id: "Source", description: "A partner event source the relay tracks for the tenant (docs/sources.md)." });
  const sourceList = z
    .strictObject({ sources: z.array(source) })
    .meta({ id: "SourceList", description: "The tenant's sources." });
  const sourceCounts = z
    .strictObject({
      tracked: count,
      managed: count,
      pending: count,
      active: count,
      deleted: count,
      unknown: count,
      unverifiable: count,
      heldEntries: count,
      heldBytes: count,
      items: z.array(source),
    })
    .meta({ id: "SourceCounts", description: "The tenant's partner event sources: counts by state, held entries." });

  const tenantStatus = z
    .strictObject({
      tenantId: z.string(),
      accepted: count.meta({ description: "Entries the relay took responsibility for: delivered + failed + queued." }),
      delivered: count,
      failed: count,
      queued: count,
      queuedBytes: count,
      oldestQueuedAgeMs: count.nullable(),
      deadLetters: count,
      duplicatesPossible: count,
      lastUpstreamError: z.strictObject({ code: z.string(), message: z.string(), at: isoTime }).nullable(),
      rate: z.strictObject({ perSecond: z.number().positive(), burst: z.int().min(1) }),
      sources: sourceCounts.optional().meta({ description: "Present when the tenant tracks sources." }),
    })
    .meta({ id: "TenantStatus", description: "The tenant's counters." });

  const health = z.strictObject({ ok: z.literal(true) }).meta({ id: "Health" });

  return {
    putEventsResult,
    awsPutResult,
    problem,
    awsError,
    eventStatus,
    tenantStatus,
    health,
    entryFailure,
    source,
    sourceList,
  };
}

export type ResponseSchemas = ReturnType<typeof build>;
let cached: ResponseSchemas | undefined;

/** The response schemas, built once per isolate on first use. */
export function responseSchemas(): ResponseSchemas {
  cached ??= build();
  return cached;
}
