/**
 * Writes benchmark tenants into the relay's TENANTS namespace exactly as the admin CLI and
 * test/helpers/tenants.ts do: the src modules' own schema, sealing and key format.
 */

import { FAKE_DEFAULT_CREDENTIAL } from "../../emulator/eventbridge.ts";
import { generateApiKey, generateKeyId, hashApiKey } from "../../src/auth/api-key.ts";
import { KV, type TenantRecord, tenantRecordSchema } from "../../src/tenants/record.ts";
import { bytesToBase64, importSealingKey, seal } from "../../src/tenants/sealed.ts";

export interface BenchTenant {
  id: string;
  apiKey: string;
  record: TenantRecord;
}

export interface TenantSpec {
  id: string;
  /** Upstream origin (the fake EventBridge). */
  endpoint: string;
  ratePerSecond: number;
  burst: number;
  /** limits.shards (default 1). */
  shards?: number;
}

/** What seeding needs from a KV namespace (workers.ts gives one per KV binding). */
export interface KvWriter {
  put(key: string, value: string): Promise<unknown>;
}

/** A fresh AES-256 sealing key for this run: base64 of 32 random bytes. */
export function newSealingKey(): string {
  return bytesToBase64(crypto.getRandomValues(new Uint8Array(32)));
}

export async function seedTenant(kv: KvWriter, sealingKey: string, spec: TenantSpec): Promise<BenchTenant> {
  const key = await importSealingKey(sealingKey);
  const apiKey = generateApiKey();
  const hash = await hashApiKey(apiKey);
  const keyId = generateKeyId();
  const now = new Date().toISOString();
  const record = tenantRecordSchema.parse({
    schemaVersion: 1,
    id: spec.id,
    name: `Benchmark tenant ${spec.id}`,
    status: "active",
    revision: 1,
    sources: [`aws.partner/example.com/${spec.id}/*`],
    region: "us-east-1",
    endpoint: spec.endpoint,
    limits: { ratePerSecond: spec.ratePerSecond, burst: spec.burst, shards: spec.shards ?? 1 },
    credentials: {
      accessKeyId: FAKE_DEFAULT_CREDENTIAL.accessKeyId,
      secretAccessKey: await seal(key, spec.id, "secretAccessKey", FAKE_DEFAULT_CREDENTIAL.secretAccessKey),
      sessionToken: null,
    },
    apiKeys: [{ id: keyId, hash, createdAt: now, expiresAt: null }],
    sigv4Keys: [],
    createdAt: now,
    updatedAt: now,
  });
  await kv.put(KV.tenant(spec.id), JSON.stringify(record));
  await kv.put(KV.apiKey(hash), JSON.stringify({ tenantId: spec.id, keyId }));
  return { id: spec.id, apiKey, record };
}
