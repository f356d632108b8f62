/**
 * The tenant record as stored in KV under `tenant:<id>` (docs/storage.md), and the small index
 * records beside it. One versioned zod schema is the only definition of the shape: the Worker
 * reads with it, the admin CLI writes with it. A record that does not parse is refused, never
 * guessed at.
 */
import { z } from "zod";
import {
  DEFAULT_BURST,
  DEFAULT_MAX_QUEUED_BYTES,
  DEFAULT_MAX_QUEUED_ENTRIES,
  DEFAULT_RATE_PER_SECOND,
  DEFAULT_SHARDS,
  MAX_BURST,
  MAX_RATE_PER_SECOND,
  MAX_SHARDS,
  MAX_SOURCE_CHARS,
  SOURCE_PATTERN,
} from "../limits.ts";

export const TENANT_SCHEMA_VERSION = 1;

/** Tenant ids: lower-case letters, digits and dashes, 1 to 63 characters, starting alphanumeric. */
export const TENANT_ID_PATTERN = /^[a-z0-9][a-z0-9-]{0,62}$/;
/** AWS region names: us-east-1, eu-central-2, us-gov-west-1, cn-north-1, ap-southeast-5, ... */
export const REGION_PATTERN = /^[a-z]{2}(-[a-z]+)+-\d{1,2}$/;
/** A source prefix: `aws.partner/<domain>/...` followed by `*`. */
const SOURCE_PREFIX_PATTERN = /^aws\.partner\/[.\-_A-Za-z0-9]+(\/[.\-_A-Za-z0-9]*)*\*$/;

export const tenantIdSchema = z.string().regex(TENANT_ID_PATTERN, {
  error: "tenant ids are 1-63 lower-case letters, digits and dashes, starting with a letter or digit",
});

export const regionSchema = z.string().regex(REGION_PATTERN, {
  error: "not an AWS region name (e.g. us-east-1)",
});

/** An owned source: an exact partner event source name, or a prefix ending in `*`. */
export const sourceRuleSchema = z
  .string()
  .max(MAX_SOURCE_CHARS)
  .refine((s) => SOURCE_PATTERN.test(s) || SOURCE_PREFIX_PATTERN.test(s), {
    error: "a source is a partner event source name (aws.partner/<domain>/<name>...) or a prefix of one ending in *",
  });

export const endpointSchema = z.string().refine(
  (s) => {
    try {
      const u = new URL(s);
      return (
        (u.protocol === "https:" || u.protocol === "http:") &&
        !u.username &&
        !u.password &&
        !u.search &&
        !u.hash &&
        (u.pathname === "/" || u.pathname === "")
      );
    } catch {
      return false;
    }
  },
  {
    error:
      "an endpoint is an http(s) origin with no path, query or credentials, e.g. https://events.eu-west-1.amazonaws.com",
  },
);

const isoDate = z.iso.datetime({ offset: true });

export const limitsSchema = z.object({
  /** PutPartnerEvents requests per second toward EventBridge. */
  ratePerSecond: z.number().positive().max(MAX_RATE_PER_SECOND).default(DEFAULT_RATE_PER_SECOND),
  /** Requests the bucket holds (bursts sent at once). */
  burst: z.number().int().min(1).max(MAX_BURST).default(DEFAULT_BURST),
  maxQueuedEntries: z.number().int().min(0).default(DEFAULT_MAX_QUEUED_ENTRIES),
  maxQueuedBytes: z.number().int().min(0).default(DEFAULT_MAX_QUEUED_BYTES),
  /** Data shards (TenantGate objects) the tenant is spread over; each takes rate/N (docs/scaling.md). */
  shards: z.number().int().min(1).max(MAX_SHARDS).default(DEFAULT_SHARDS),
});

export const apiKeyEntrySchema = z.object({
  id: z.string().min(1),
  /** hex SHA-256 of the key; the key itself is never stored */
  hash: z.string().regex(/^[0-9a-f]{64}$/),
  createdAt: isoDate,
  expiresAt: isoDate.nullable().default(null),
});

export const sigv4KeyEntrySchema = z.object({
  accessKeyId: z.string().min(16).max(128),
  /** sealed (AES-GCM) SigV4 secret; verification needs the secret itself */
  secret: z.string().startsWith("v1."),
  createdAt: isoDate,
});

/** Long-lived keys of the partner's account, sealed. A record without `kind` is this kind. */
export const staticCredentialsSchema = z.object({
  kind: z.literal("static").optional(),
  accessKeyId: z.string().min(16).max(128),
  /** sealed (AES-GCM) secret access key */
  secretAccessKey: z.string().startsWith("v1."),
  /** sealed session token, for temporary credentials */
  sessionToken: z.string().startsWith("v1.").nullable().default(null),
});

/** An IAM role ARN (IAM: arn:<partition>:iam::<12-digit account>:role/<path><name>, 20-2048 chars). */
export const ROLE_ARN_PATTERN = /^arn:aws(-[a-z]+)*:iam::\d{12}:role\/[\w+=,.@/-]{1,512}$/;
/** STS ExternalId: 2-1224 characters of [\w+=,.@:/-] (STS API reference, AssumeRole). */
export const EXTERNAL_ID_PATTERN = /^[\w+=,.@:/-]{2,1224}$/;
/** STS DurationSeconds: 900 s up to the role's maximum, at most 43,200 s (12 h). */
export const MIN_ROLE_DURATION_S = 900;
export const MAX_ROLE_DURATION_S = 43_200;

/**
 * A role in the partner's account that trusts the relay's own AWS identity on condition of the
 * external id (docs/credentials.md). Nothing here is a secret: the relay assumes the role with
 * STS for short-lived credentials, cached in memory only (src/credentials/).
 */
export const roleCredentialsSchema = z.object({
  kind: z.literal("role"),
  roleArn: z.string().max(2048).regex(ROLE_ARN_PATTERN, {
    error: "a role ARN looks like arn:aws:iam::<12-digit account>:role/<name>",
  }),
  externalId: z.string().regex(EXTERNAL_ID_PATTERN, {
    error: "an external id is 2-1224 characters of letters, digits and + = , . @ : / - _",
  }),
  /** Session length asked of STS, in seconds; null: STS_DEFAULT_DURATION_S (src/limits.ts). */
  durationSeconds: z.number().int().min(MIN_ROLE_DURATION_S).max(MAX_ROLE_DURATION_S).nullable().default(null),
});

/** Static keys (the default when `kind` is absent, as every record before roles) or a role. */
export const credentialsSchema = z.discriminatedUnion("kind", [roleCredentialsSchema, staticCredentialsSchema]);
export type StaticCredentials = z.infer<typeof staticCredentialsSchema>;
export type RoleCredentials = z.infer<typeof roleCredentialsSchema>;

export const tenantRecordSchema = z.object({
  schemaVersion: z.literal(TENANT_SCHEMA_VERSION),
  id: tenantIdSchema,
  name: z.string().min(1).max(200),
  status: z.enum(["active", "disabled"]),
  /** Bumped by every write; the tenant's Durable Object keeps the highest it has seen. */
  revision: z.number().int().min(1),
  sources: z.array(sourceRuleSchema).min(1),
  region: regionSchema,
  endpoint: endpointSchema.nullable().default(null),
  limits: limitsSchema.default(() => limitsSchema.parse({})),
  credentials: credentialsSchema.nullable().default(null),
  apiKeys: z.array(apiKeyEntrySchema).default([]),
  sigv4Keys: z.array(sigv4KeyEntrySchema).default([]),
  /**
   * Events for a partner event source the relay does not manage (docs/sources.md): "verify"
   * (default: forward, read its state at once and from then on hold or refuse as for a managed
   * one), "hold" (hold until its state is read), "forward" (never read it: as before).
   */
  unmanagedSources: z.enum(["verify", "hold", "forward"]).default("verify"),
  createdAt: isoDate,
  updatedAt: isoDate,
});

export type TenantRecord = z.infer<typeof tenantRecordSchema>;
export type TenantLimits = z.infer<typeof limitsSchema>;

/** `apikey:<sha256 hex>` → which tenant and key it is. */
export const apiKeyIndexSchema = z.object({
  tenantId: tenantIdSchema,
  keyId: z.string().min(1),
});
export type ApiKeyIndex = z.infer<typeof apiKeyIndexSchema>;

/** `sigv4:<access key id>` → which tenant holds the pair. */
export const sigv4IndexSchema = z.object({ tenantId: tenantIdSchema });
export type Sigv4Index = z.infer<typeof sigv4IndexSchema>;

export const KV = {
  tenant: (id: string) => `tenant:${id}`,
  apiKey: (hash: string) => `apikey:${hash}`,
  sigv4: (accessKeyId: string) => `sigv4:${accessKeyId}`,
} as const;

/** True when `source` is one of the tenant's own partner event sources. */
export function ownsSource(rules: readonly string[], source: string): boolean {
  for (const rule of rules) {
    if (rule.endsWith("*") ? source.startsWith(rule.slice(0, -1)) : source === rule) return true;
  }
  return false;
}

/** True when the tenant's credentials are a role to assume (not static keys). */
export function isRoleCredentials(c: TenantRecord["credentials"]): c is RoleCredentials {
  return c !== null && c.kind === "role";
}

/** The EventBridge endpoint for the tenant (the override only when the Worker allows it). */
export function upstreamEndpoint(record: TenantRecord, allowOverride: boolean): string {
  if (record.endpoint && allowOverride) return record.endpoint.replace(/\/$/, "");
  return `https://events.${record.region}.amazonaws.com`;
}
