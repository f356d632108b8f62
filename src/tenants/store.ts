/**
 * Reading tenants from KV (docs/storage.md) with an in-isolate cache.
 *
 * KV is eventually consistent (~60 s); the isolate cache adds at most TENANT_CACHE_TTL_MS on top.
 * Neither matters for revocation or disabling: the tenant's Durable Object is the authority there
 * and is asked on every request. A record that does not parse, or whose secrets do not open, is
 * refused with a logged reason rather than guessed at.
 */
import { AwsClient } from "aws4fetch";
import { TENANT_CACHE_MAX_ENTRIES, TENANT_CACHE_TTL_MS } from "../limits.ts";
import { log } from "../log.ts";
import { TtlCache } from "./cache.ts";
import {
  type ApiKeyIndex,
  apiKeyIndexSchema,
  KV,
  type Sigv4Index,
  sigv4IndexSchema,
  type TenantRecord,
  tenantRecordSchema,
} from "./record.ts";
import { importSealingKey, unseal } from "./sealed.ts";

/** A negative lookup is remembered briefly so a flood of bad keys doesn't become a flood of KV reads. */
const NEGATIVE_TTL_MS = 5_000;

export class TenantRecordError extends Error {
  override name = "TenantRecordError";
}

const indexCache = new TtlCache<ApiKeyIndex | Sigv4Index | null>(TENANT_CACHE_TTL_MS, TENANT_CACHE_MAX_ENTRIES);
const recordCache = new TtlCache<TenantRecord>(TENANT_CACHE_TTL_MS, TENANT_CACHE_MAX_ENTRIES);
const clientCache = new TtlCache<Promise<AwsClient>>(TENANT_CACHE_TTL_MS, TENANT_CACHE_MAX_ENTRIES);

async function readIndex<T extends ApiKeyIndex | Sigv4Index>(
  kv: KVNamespace,
  key: string,
  parse: (v: unknown) => T,
): Promise<T | null> {
  const cached = indexCache.get(key);
  if (cached !== undefined) return cached as T | null;
  const raw = await kv.get(key, "json");
  let value: T | null = null;
  if (raw !== null) {
    try {
      value = parse(raw);
    } catch {
      log.error("kv_index_unreadable", { key: key.split(":")[0] });
      value = null;
    }
  }
  indexCache.set(key, value, value === null ? NEGATIVE_TTL_MS : TENANT_CACHE_TTL_MS);
  return value;
}

export function lookupApiKey(kv: KVNamespace, hash: string): Promise<ApiKeyIndex | null> {
  return readIndex(kv, KV.apiKey(hash), (v) => apiKeyIndexSchema.parse(v));
}

export function lookupSigV4(kv: KVNamespace, accessKeyId: string): Promise<Sigv4Index | null> {
  return readIndex(kv, KV.sigv4(accessKeyId), (v) => sigv4IndexSchema.parse(v));
}

/**
 * The tenant's record, or null when there is none. Throws TenantRecordError when unreadable.
 * `fresh` skips this isolate's cache: for a credential the index knows but the cached record
 * doesn't list yet (a key minted after the record was cached).
 */
export async function getTenant(
  kv: KVNamespace,
  id: string,
  opts: { fresh?: boolean } = {},
): Promise<TenantRecord | null> {
  const cached = opts.fresh ? undefined : recordCache.get(id);
  if (cached) return cached;
  const raw = await kv.get(KV.tenant(id), "json");
  if (raw === null) return null;
  const parsed = tenantRecordSchema.safeParse(raw);
  if (!parsed.success) {
    const version = (raw as { schemaVersion?: unknown }).schemaVersion;
    throw new TenantRecordError(
      `tenant record ${id} does not match schema version 1 (found ${JSON.stringify(version)}): ${parsed.error.issues[0]?.path.join(".")} ${parsed.error.issues[0]?.message}`,
    );
  }
  if (parsed.data.id !== id) throw new TenantRecordError(`tenant record under ${id} names tenant ${parsed.data.id}`);
  recordCache.set(id, parsed.data);
  return parsed.data;
}

/** Drops a tenant from this isolate's cache (the DO saw a newer revision). */
export function invalidateTenant(id: string): void {
  recordCache.delete(id);
}

/** Test hook: forget everything cached in this isolate. */
export function clearTenantCaches(): void {
  indexCache.clear();
  recordCache.clear();
  clientCache.clear();
  sigv4SecretCache.clear();
}

/**
 * An aws4fetch client holding the tenant's opened credentials, cached per record revision (the
 * client also caches its derived signing keys). Throws TenantRecordError when there are no
 * credentials or they fail to open.
 */
export function awsClientFor(record: TenantRecord, sealingKey: string): Promise<AwsClient> {
  const cacheKey = `${record.id}@${record.revision}`;
  let client = clientCache.get(cacheKey);
  if (!client) {
    client = (async () => {
      const creds = record.credentials;
      if (!creds) throw new TenantRecordError(`tenant ${record.id} has no AWS credentials`);
      // A role is assumed with STS, not opened here: src/credentials/ resolves both kinds.
      if (creds.kind === "role") throw new TenantRecordError(`tenant ${record.id} signs with a role, not static keys`);
      let key: CryptoKey;
      try {
        key = await importSealingKey(sealingKey);
      } catch (e) {
        throw new TenantRecordError((e as Error).message);
      }
      try {
        const secretAccessKey = await unseal(key, record.id, "secretAccessKey", creds.secretAccessKey);
        const sessionToken = creds.sessionToken
          ? await unseal(key, record.id, "sessionToken", creds.sessionToken)
          : undefined;
        return new AwsClient({
          accessKeyId: creds.accessKeyId,
          secretAccessKey,
          ...(sessionToken ? { sessionToken } : {}),
          service: "events",
          region: record.region,
          retries: 0,
        });
      } catch (e) {
        throw new TenantRecordError(`tenant ${record.id}: ${(e as Error).message}`);
      }
    })();
    client.catch(() => clientCache.delete(cacheKey));
    clientCache.set(cacheKey, client);
  }
  return client;
}

const sigv4SecretCache = new TtlCache<Promise<string>>(TENANT_CACHE_TTL_MS, TENANT_CACHE_MAX_ENTRIES);

/**
 * The opened secret of one of the tenant's relay-issued SigV4 key pairs, or null when the record
 * does not list that access key id. Throws TenantRecordError when it fails to open.
 */
export function sigv4SecretFor(record: TenantRecord, accessKeyId: string, sealingKey: string): Promise<string> | null {
  const pair = record.sigv4Keys.find((k) => k.accessKeyId === accessKeyId);
  if (!pair) return null;
  const cacheKey = `${record.id}@${record.revision}:${accessKeyId}`;
  let secret = sigv4SecretCache.get(cacheKey);
  if (!secret) {
    secret = (async () => {
      try {
        const key = await importSealingKey(sealingKey);
        return await unseal(key, record.id, `sigv4:${accessKeyId}`, pair.secret);
      } catch (e) {
        throw new TenantRecordError(`tenant ${record.id}: ${(e as Error).message}`);
      }
    })();
    secret.catch(() => sigv4SecretCache.delete(cacheKey));
    sigv4SecretCache.set(cacheKey, secret);
  }
  return secret;
}
