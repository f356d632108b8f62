/**
 * Tenant provisioning for `npm run soak` and `npm run fuzz`, in one module so it is easy to repoint
 * (the tenant store is moving into src/admin/): everything goes through the admin CLI's own code
 * (scripts/lib/tenant-store.ts for records and index entries, src/auth for key material,
 * src/tenants/sealed.ts for sealing, scripts/lib/kv.ts for wrangler kv, the relay's admin API via
 * scripts/lib/relay-client.ts for revocation), in the CLI's order, batched into one `kv bulk put`
 * as npm start's demo tenant is (scripts/dev/demo-tenant.ts explains why).
 *
 * Every tenant gets its own AWS key pair, which the emulator learns: a delivery signed with the
 * wrong tenant's pair is visible in the emulator's records (cross-tenant check).
 */
import { randomBytes } from "node:crypto";
import type { FakeCredential } from "../../emulator/eventbridge.ts";
import { generateApiKey, generateKeyId, hashApiKey } from "../../src/auth/api-key.ts";
import { generateSigV4KeyPair } from "../../src/auth/sigv4.ts";
import { KV, TENANT_SCHEMA_VERSION, type TenantRecord } from "../../src/tenants/record.ts";
import { seal } from "../../src/tenants/sealed.ts";
import { sigv4SecretField } from "../lib/commands/sigv4.ts";
import type { KvEntry, WranglerKv } from "../lib/kv.ts";
import type { RelayClient } from "../lib/relay-client.ts";
import { apiKeyIndexEntry, nextRevision, recordEntry, sigv4IndexEntry, validateRecord } from "../lib/tenant-store.ts";

/** Field name the CLI seals a tenant's AWS secret under (scripts/lib/commands/credentials.ts). */
const AWS_SECRET_FIELD = "secretAccessKey";

export interface ProvisionedTenant {
  id: string;
  /** The partner event source this tenant sends as (its rule is `<prefix>/*`). */
  source: string;
  region: string;
  apiKey: { keyId: string; key: string };
  /** A second key, for revocation (fuzz). */
  spareKey: { keyId: string; key: string };
  sigv4: { accessKeyId: string; secretAccessKey: string };
  /** The tenant's AWS pair: what the relay signs its PutPartnerEvents with. */
  aws: FakeCredential;
  record: TenantRecord;
}

export interface ProvisionOptions {
  kv: WranglerKv;
  sealingKey: CryptoKey;
  /** The emulator's origin (the tenants' endpoint override). */
  endpoint: string;
  count: number;
  /** Tenant id prefix, e.g. "soak" → soak-00, soak-01, … */
  prefix: string;
  ratePerSecond: number;
  burst: number;
  now?: Date;
}

/** Builds `count` tenants and writes them (records first, then index entries) in one wrangler call. */
export async function provisionTenants(opts: ProvisionOptions): Promise<ProvisionedTenant[]> {
  const now = opts.now ?? new Date();
  const tenants: ProvisionedTenant[] = [];
  const records: KvEntry[] = [];
  const indexes: KvEntry[] = [];
  for (let i = 0; i < opts.count; i++) {
    const id = `${opts.prefix}-${String(i).padStart(2, "0")}`;
    const domain = `${id}.example.com`;
    const aws: FakeCredential = {
      accessKeyId: `AKIA${randomBytes(8).toString("hex").toUpperCase()}`,
      secretAccessKey: randomBytes(30).toString("base64"),
    };
    const mint = async () => {
      const key = generateApiKey();
      return { keyId: generateKeyId(), key, hash: await hashApiKey(key) };
    };
    const main = await mint();
    const spare = await mint();
    const pair = generateSigV4KeyPair();
    const record = validateRecord({
      schemaVersion: TENANT_SCHEMA_VERSION,
      id,
      name: `Soak/fuzz tenant ${i}`,
      status: "active",
      // As `tenant create` does: a re-created tenant outranks what its Durable Object remembers.
      revision: now.getTime(),
      sources: [`aws.partner/${domain}/*`],
      region: "us-east-1",
      endpoint: opts.endpoint,
      limits: { ratePerSecond: opts.ratePerSecond, burst: opts.burst },
      credentials: {
        accessKeyId: aws.accessKeyId,
        secretAccessKey: await seal(opts.sealingKey, id, AWS_SECRET_FIELD, aws.secretAccessKey),
        sessionToken: null,
      },
      apiKeys: [main, spare].map((k) => ({
        id: k.keyId,
        hash: k.hash,
        createdAt: now.toISOString(),
        expiresAt: null,
      })),
      sigv4Keys: [
        {
          accessKeyId: pair.accessKeyId,
          secret: await seal(opts.sealingKey, id, sigv4SecretField(pair.accessKeyId), pair.secretAccessKey),
          createdAt: now.toISOString(),
        },
      ],
      createdAt: now.toISOString(),
      updatedAt: now.toISOString(),
    });
    records.push(recordEntry(record));
    indexes.push(apiKeyIndexEntry(main.hash, id, main.keyId), apiKeyIndexEntry(spare.hash, id, spare.keyId));
    indexes.push(sigv4IndexEntry(pair.accessKeyId, id));
    tenants.push({
      id,
      source: `aws.partner/${domain}/orders`,
      region: record.region,
      apiKey: { keyId: main.keyId, key: main.key },
      spareKey: { keyId: spare.keyId, key: spare.key },
      sigv4: pair,
      aws,
      record,
    });
  }
  await opts.kv.putMany([...records, ...indexes]);
  return tenants;
}

/**
 * Revokes each tenant's spare API key the way `npm run tenant -- key revoke` does, batched: the
 * Durable Objects first (refused from the very next request), then the records (one
 * `kv bulk put`), then the index entries (one `kv bulk delete`).
 */
export async function revokeSpareKeys(kv: WranglerKv, relay: RelayClient, tenants: ProvisionedTenant[]): Promise<void> {
  const now = new Date();
  const next = tenants.map((t) =>
    nextRevision(t.record, { apiKeys: t.record.apiKeys.filter((k) => k.id !== t.spareKey.keyId) }, now),
  );
  await Promise.all(
    tenants.map((t, i) =>
      relay.putAccess(t.id, {
        revision: next[i]!.revision,
        status: next[i]!.status,
        revokeApiKeyIds: [t.spareKey.keyId],
        revokeAccessKeyIds: [],
      }),
    ),
  );
  await kv.putMany(next.map(recordEntry));
  await kv.deleteMany(await Promise.all(tenants.map(async (t) => KV.apiKey(await hashApiKey(t.spareKey.key)))));
  tenants.forEach((t, i) => {
    t.record = next[i]!;
  });
}
