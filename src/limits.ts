/**
 * Every limit the relay enforces, with its unit and the rule behind it.
 * AWS facts: ../shared/reference/putpartnerevents.md; platform facts: ../shared/reference/platform.md.
 */

/** Entries per PutPartnerEvents request (AWS: 1 to 20). */
export const MIN_ENTRIES = 1;
export const MAX_ENTRIES = 20;

/** Source length in characters (AWS: 1 to 256), and its anchored pattern (AWS service model). */
export const MAX_SOURCE_CHARS = 256;
export const SOURCE_PATTERN = /^aws\.partner(\/[.\-_A-Za-z0-9]+){2,}$/;

/** DetailType length in characters (AWS: at most 128; longer ones are dropped silently by AWS). */
export const MAX_DETAIL_TYPE_CHARS = 128;

/** One Resource's length in characters (AWS: at most 2048). */
export const MAX_RESOURCE_CHARS = 2048;

/** What `Time` counts toward the batch size when present, in bytes (AWS's size formula). */
export const TIME_SIZE_BYTES = 14;

/**
 * Default cap on a batch's size by AWS's formula, in bytes (AWS: 256 KiB). AWS raised event
 * payloads to 1 MB in January 2026; whether PutPartnerEvents follows is unverified, so the cap is
 * the MAX_BATCH_BYTES Worker variable.
 */
export const DEFAULT_MAX_BATCH_BYTES = 262_144;
/** The largest cap MAX_BATCH_BYTES may be set to, in bytes (AWS's 1 MB payload limit). */
export const MAX_BATCH_BYTES_CEILING = 1_048_576;

/**
 * Raw request body cap, in bytes: what the largest legal batch can take on the wire. Bytes are
 * counted as they arrive (platform: bodies up to 100 MB reach a Worker; Content-Length may lie or
 * be absent). Each byte AWS's formula counts can take up to 6 bytes in JSON: botocore (AWS CLI v1,
 * boto3) escapes every non-ASCII character as \uXXXX, and a control character is always escaped
 * so. 64 KiB more covers what the formula does not count (field names, Time, punctuation).
 */
export function maxBodyBytes(maxBatchBytes: number): number {
  return maxBatchBytes * 6 + 65_536;
}

/** Upstream call timeout default, in milliseconds (a signature is good for ~5 minutes). */
export const DEFAULT_UPSTREAM_TIMEOUT_MS = 10_000;

/** EventBridge's EventId length, in characters (AWS: at most 64). Relay ids stay within it. */
export const MAX_EVENT_ID_CHARS = 64;

/** In-isolate cache lifetime for tenant records and API-key lookups, in milliseconds. */
export const TENANT_CACHE_TTL_MS = 30_000;
/** Entries kept in each in-isolate cache before the oldest are evicted (isolate: 128 MB). */
export const TENANT_CACHE_MAX_ENTRIES = 1_000;

/** API keys a tenant may hold at once (rotation needs at least two). */
export const MAX_API_KEYS_PER_TENANT = 10;
/** SigV4 key pairs a tenant may hold at once. */
export const MAX_SIGV4_KEYS_PER_TENANT = 10;

/** Token bucket defaults toward EventBridge, in PutPartnerEvents requests per second / burst. */
export const DEFAULT_RATE_PER_SECOND = 10;
export const DEFAULT_BURST = 20;
/** Partner-account quota (AWS, older docs): 1,400 requests/s sustained, 3,600 burst. */
export const MAX_RATE_PER_SECOND = 1_400;
export const MAX_BURST = 3_600;

/** Buffer caps per tenant: queued entries and bytes (DO storage: 10 GB per object). */
export const DEFAULT_MAX_QUEUED_ENTRIES = 100_000;
export const DEFAULT_MAX_QUEUED_BYTES = 1_073_741_824;

/** Drain retry policy defaults (Worker vars DRAIN_*): attempts, backoff base and cap (ms), maximum age (ms). */
export const DRAIN_MAX_ATTEMPTS = 20;
export const DRAIN_BACKOFF_BASE_MS = 1_000;
export const DRAIN_BACKOFF_CAP_MS = 300_000;
export const DRAIN_MAX_AGE_MS = 24 * 3600_000;
/** A drain claims a batch for this long, in ms; longer than the upstream timeout. */
export const DRAIN_LEASE_MS = 60_000;
/** One alarm run sends for at most this long, in ms, then re-arms (keeps the object responsive). */
export const DRAIN_RUN_BUDGET_MS = 20_000;
/** Batches one alarm run keeps in flight at once. */
export const DRAIN_CONCURRENCY = 4;
/**
 * The longest a rate-limited drain waits beyond its next token so that several calls go out on
 * one wake, in ms: a wake costs about as much CPU as the call it makes (measured in
 * `npm run bench`, docs/bench.md), so at 50 calls/s the drain wakes for 4 calls every 80 ms
 * instead of once every 20 ms. Never more calls than the tenant's burst allows at once.
 */
export const DRAIN_GATHER_MS = 100;

/** How long an Idempotency-Key's first response is replayed, in ms (24 h). */
export const IDEMPOTENCY_TTL_MS = 24 * 3600_000;
/** How long an in-flight Idempotency-Key blocks duplicates before it may run again, in ms. */
export const IDEMPOTENCY_LOCK_MS = 60_000;
/** Idempotency-Key length, in characters (IETF draft: a string; 255 is Stripe's cap). */
export const MAX_IDEMPOTENCY_KEY_CHARS = 255;

/** Delivered/failed event status is kept for this long, in ms, then pruned. */
export const EVENT_STATUS_TTL_MS = 7 * 24 * 3600_000;

/** Inbound SigV4: accepted clock skew for X-Amz-Date, in ms (AWS: 5 minutes). */
export const SIGV4_MAX_SKEW_MS = 5 * 60_000;

/**
 * Data shards (TenantGate objects) one tenant may be spread over (docs/scaling.md). A shard is
 * one Durable Object: Cloudflare's guidance is ~1,000 simple requests/s per object and 200-500/s
 * with storage writes (platform.md, "Durable Objects at scale"); 64 shards is well past what the
 * AWS partner quota (MAX_RATE_PER_SECOND) needs.
 */
export const DEFAULT_SHARDS = 1;
export const MAX_SHARDS = 64;

/**
 * Requests per second one shard is sized for, for the relay's suggestion of `limits.shards`
 * (docs/scaling.md): the low end of Cloudflare's 200-500 requests/s for an object that writes
 * storage on every request (platform.md), since a burst buffers, and a buffered request writes.
 */
export const SHARD_TARGET_REQUESTS_PER_SECOND = 200;

/**
 * Durable Object `locationHint` for a tenant's AWS region: its objects are created near the
 * region their drain sends to, since an object never moves after its first `get()` (platform.md).
 * First matching prefix wins. Sources: AWS's list of Regions (docs.aws.amazon.com, "Regions and
 * Zones": the city of each region) and Cloudflare's Durable Objects docs ("Data location":
 * wnam, enam, sam, weur, eeur, apac, oc, afr, me). A region that matches nothing gets no hint
 * (the object is created near the first request, as before).
 */
export type LocationHint = "wnam" | "enam" | "sam" | "weur" | "eeur" | "apac" | "oc" | "afr" | "me";
export const REGION_LOCATION_HINTS: readonly (readonly [prefix: string, hint: LocationHint])[] = [
  ["us-east-", "enam"], // N. Virginia, Ohio
  ["us-west-", "wnam"], // N. California, Oregon
  ["us-gov-east-", "enam"], // Ohio
  ["us-gov-west-", "wnam"], // Oregon
  ["ca-central-", "enam"], // Montreal
  ["ca-west-", "wnam"], // Calgary
  ["mx-", "wnam"], // Querétaro: nearer western North America's Cloudflare region than South America's
  ["sa-", "sam"], // São Paulo
  ["eu-", "weur"], // Ireland, London, Paris, Frankfurt, Zurich, Milan, Spain, Stockholm
  ["il-", "me"], // Tel Aviv
  ["me-", "me"], // Bahrain, UAE
  ["af-", "afr"], // Cape Town
  ["ap-southeast-2", "oc"], // Sydney
  ["ap-southeast-4", "oc"], // Melbourne
  ["ap-southeast-6", "oc"], // New Zealand
  ["ap-", "apac"], // Tokyo, Seoul, Osaka, Singapore, Jakarta, Mumbai, Hyderabad, Hong Kong, ...
  ["cn-", "apac"], // Beijing, Ningxia
];

/** The locationHint for an AWS region, or undefined when the table has none. */
export function locationHintFor(region: string): LocationHint | undefined {
  for (const [prefix, hint] of REGION_LOCATION_HINTS) if (region.startsWith(prefix)) return hint;
  return undefined;
}

/** A relay event id, as the buffer mints them (`relay-<uuid>`: since shards a version 8 layout naming the shard, tenant-gate/protocol.ts); GET /v1/events/{id} takes only these. */
export const RELAY_EVENT_ID_PATTERN = /^relay-[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
/** STS AssumeRole session length asked for when a role sets none, in s (STS: 900-43,200; default 1 h). */
export const STS_DEFAULT_DURATION_S = 3_600;
/** Assumed-role credentials are refreshed this long before they expire, in ms (what the AWS SDKs do: 5 min). */
export const STS_REFRESH_BEFORE_EXPIRY_MS = 5 * 60_000;
/** Credentials this close to expiry are never used to sign, in ms (a signature is checked on arrival). */
export const STS_EXPIRY_MARGIN_MS = 30_000;
/** A failed AssumeRole is remembered this long per tenant before STS is asked again, in ms. */
export const STS_FAILURE_CACHE_MS = 5_000;
/** The largest STS answer read, in bytes (an AssumeRole answer with a session token is ~3 KB). */
export const STS_MAX_RESPONSE_BYTES = 65_536;
/** Assumed-role credentials kept per isolate before the oldest are dropped (one per role tenant). */
export const STS_CACHE_MAX_ENTRIES = 1_000;

/**
 * How long after a shard answered "queue" a Worker isolate sends the next request's entries along
 * with the admission call (src/ingest/pipeline.ts, `buffering`), in ms: while a shard buffers, a
 * queued request is then one call instead of two (admit, then enqueue). A direct answer ends it.
 */
export const BUFFERING_MS = 1_000;
