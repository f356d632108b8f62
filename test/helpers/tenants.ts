/**
 * Seeds tenants into the test KV exactly as the admin CLI writes them (same schema, same sealing,
 * same key format), so Worker tests start from real records.
 */
import { env } from "cloudflare:workers";
import { generateApiKey, generateKeyId, hashApiKey } from "../../src/auth/api-key.ts";
import { KV, type TenantRecord, tenantRecordSchema } from "../../src/tenants/record.ts";
import { importSealingKey, seal } from "../../src/tenants/sealed.ts";

export const UPSTREAM = "http://fake-eventbridge.test";

export interface SeededTenant {
  record: TenantRecord;
  apiKey: string;
  keyId: string;
  aws: { accessKeyId: string; secretAccessKey: string };
}

let counter = 0;

/** Every tenant seeded in this isolate (tests purge their gates afterwards). */
export const seededTenantIds: string[] = [];

export interface SeedOptions {
  id?: string;
  sources?: string[];
  region?: string;
  endpoint?: string | null;
  status?: "active" | "disabled";
  rate?: number;
  burst?: number;
  maxQueuedEntries?: number;
  maxQueuedBytes?: number;
  /** limits.shards (default 1). */
  shards?: number;
  aws?: { accessKeyId: string; secretAccessKey: string; sessionToken?: string } | null;
  keyExpiresAt?: string | null;
}

export async function seedTenant(opts: SeedOptions = {}): Promise<SeededTenant> {
  const id = opts.id ?? `t-${Date.now().toString(36)}-${(counter++).toString(36)}`;
  seededTenantIds.push(id);
  const key = await importSealingKey(env.SEALING_KEY);
  const aws =
    opts.aws === null
      ? null
      : (opts.aws ?? {
          accessKeyId: `AKIA${id
            .replace(/[^a-z0-9]/g, "")
            .toUpperCase()
            .padEnd(16, "X")
            .slice(0, 16)}`,
          secretAccessKey: `secret/${id}/0123456789abcdefghijklmnopqrstuv`,
        });
  const apiKey = generateApiKey();
  const keyId = generateKeyId();
  const now = new Date().toISOString();
  const record = tenantRecordSchema.parse({
    schemaVersion: 1,
    id,
    name: `Tenant ${id}`,
    status: opts.status ?? "active",
    revision: 1,
    sources: opts.sources ?? [`aws.partner/example.com/${id}/*`],
    region: opts.region ?? "us-east-1",
    endpoint: opts.endpoint === undefined ? UPSTREAM : opts.endpoint,
    limits: {
      ratePerSecond: opts.rate ?? 1000,
      burst: opts.burst ?? 1000,
      ...(opts.maxQueuedEntries !== undefined ? { maxQueuedEntries: opts.maxQueuedEntries } : {}),
      ...(opts.maxQueuedBytes !== undefined ? { maxQueuedBytes: opts.maxQueuedBytes } : {}),
      ...(opts.shards !== undefined ? { shards: opts.shards } : {}),
    },
    credentials: aws
      ? {
          accessKeyId: aws.accessKeyId,
          secretAccessKey: await seal(key, id, "secretAccessKey", aws.secretAccessKey),
          sessionToken:
            "sessionToken" in aws && aws.sessionToken ? await seal(key, id, "sessionToken", aws.sessionToken) : null,
        }
      : null,
    apiKeys: [{ id: keyId, hash: await hashApiKey(apiKey), createdAt: now, expiresAt: opts.keyExpiresAt ?? null }],
    sigv4Keys: [],
    createdAt: now,
    updatedAt: now,
  });
  await env.TENANTS.put(KV.tenant(id), JSON.stringify(record));
  await env.TENANTS.put(KV.apiKey(await hashApiKey(apiKey)), JSON.stringify({ tenantId: id, keyId }));
  return { record, apiKey, keyId, aws: aws ?? { accessKeyId: "", secretAccessKey: "" } };
}

/** Rewrites a tenant's record (as `npm run tenant -- update` would), bumping its revision. */
export async function updateTenant(t: SeededTenant, patch: Partial<TenantRecord>): Promise<TenantRecord> {
  const record = tenantRecordSchema.parse({
    ...t.record,
    ...patch,
    revision: t.record.revision + 1,
    updatedAt: new Date().toISOString(),
  });
  await env.TENANTS.put(KV.tenant(record.id), JSON.stringify(record));
  t.record = record;
  return record;
}

export function entry(
  t: SeededTenant | string,
  detail: Record<string, unknown> = { n: 1 },
  extra: Record<string, unknown> = {},
) {
  const id = typeof t === "string" ? t : t.record.id;
  return {
    Source: `aws.partner/example.com/${id}/orders`,
    DetailType: "Order Created",
    Detail: JSON.stringify(detail),
    ...extra,
  };
}

/** Issues a SigV4 key pair to the tenant, as `npm run tenant -- sigv4 create` does. */
export async function addSigV4Key(t: SeededTenant): Promise<{ accessKeyId: string; secretAccessKey: string }> {
  const { generateSigV4KeyPair } = await import("../../src/auth/sigv4.ts");
  const pair = generateSigV4KeyPair();
  const key = await importSealingKey(env.SEALING_KEY);
  const sealed = await seal(key, t.record.id, `sigv4:${pair.accessKeyId}`, pair.secretAccessKey);
  await updateTenant(t, {
    sigv4Keys: [
      ...t.record.sigv4Keys,
      { accessKeyId: pair.accessKeyId, secret: sealed, createdAt: new Date().toISOString() },
    ],
  });
  await env.TENANTS.put(KV.sigv4(pair.accessKeyId), JSON.stringify({ tenantId: t.record.id }));
  return pair;
}
