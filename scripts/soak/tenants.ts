/**
 * Tenant provisioning for `npm run soak` and `npm run fuzz`, in one module so it is easy to
 * repoint: everything goes through the tenant-administration library (src/admin/: createTenant,
 * setCredentials, createApiKey, createSigV4Pair, revokeApiKey), in its fail-closed order, over the
 * local TENANTS namespace (scripts/lib/kv.ts) and the relay's admin API, as `npm run tenant` does.
 *
 * Every tenant gets its own AWS key pair, which the emulator learns: a delivery signed with the
 * wrong tenant's pair is visible in the emulator's records (cross-tenant check).
 */
import { randomBytes } from "node:crypto";
import type { FakeCredential, FakeEventBridge } from "../../emulator/eventbridge.ts";
import {
  type Admin,
  type AdminClient,
  createApiKey,
  createSigV4Pair,
  createTenant,
  revokeApiKey,
  SILENT,
  setCredentials,
  type TenantsKv,
  updateTenant,
} from "../../src/admin/index.ts";
import type { TenantRecord } from "../../src/tenants/record.ts";

export interface ProvisionedTenant {
  id: string;
  /** The partner event source this tenant sends as (its rule is `aws.partner/<id>.example.com/*`). */
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
  kv: TenantsKv;
  sealingKey: CryptoKey;
  /** The relay's admin API, once the relay runs (revocation needs it; creation does not). */
  relay: () => AdminClient;
  /** The emulator's origin (the tenants' endpoint override). */
  endpoint: string;
  /** Learns each tenant's AWS pair. */
  fake: FakeEventBridge;
  count: number;
  /** Tenant id prefix, e.g. "soak" → soak-00, soak-01, … */
  prefix: string;
  ratePerSecond: number;
  burst: number;
}

/** The Admin the library runs with: local, notes dropped, no `npm start` record. */
export function adminFor(o: Pick<ProvisionOptions, "kv" | "sealingKey" | "relay">): Admin {
  return {
    kv: o.kv,
    mode: "local",
    now: () => new Date(),
    notices: SILENT,
    relay: o.relay,
    runningRelay: () => null,
    sealingKey: () => Promise.resolve(o.sealingKey),
  };
}

/** Creates `count` tenants, each with AWS credentials, two API keys and a SigV4 pair. */
export async function provisionTenants(opts: ProvisionOptions): Promise<ProvisionedTenant[]> {
  const admin = adminFor(opts);
  const tenants: ProvisionedTenant[] = [];
  for (let i = 0; i < opts.count; i++) {
    const id = `${opts.prefix}-${String(i).padStart(2, "0")}`;
    const domain = `${id}.example.com`;
    const aws: FakeCredential = {
      accessKeyId: `AKIA${randomBytes(8).toString("hex").toUpperCase()}`,
      secretAccessKey: randomBytes(30).toString("base64"),
    };
    opts.fake.addCredential(aws);
    await createTenant(admin, {
      id,
      name: `Soak/fuzz tenant ${i}`,
      sources: [`aws.partner/${domain}/*`],
      region: "us-east-1",
      endpoint: opts.endpoint,
      limits: { ratePerSecond: opts.ratePerSecond, burst: opts.burst },
    });
    await setCredentials(admin, id, aws);
    const main = await createApiKey(admin, id);
    const spare = await createApiKey(admin, id);
    const pair = await createSigV4Pair(admin, id);
    tenants.push({
      id,
      source: `aws.partner/${domain}/orders`,
      region: pair.region,
      apiKey: { keyId: main.keyId, key: main.key },
      spareKey: { keyId: spare.keyId, key: spare.key },
      sigv4: { accessKeyId: pair.accessKeyId, secretAccessKey: pair.secretAccessKey },
      aws,
      record: (await admin.kv.get(`tenant:${id}`).then((r) => JSON.parse(r!))) as TenantRecord,
    });
  }
  return tenants;
}

/**
 * Revokes each tenant's spare API key as `npm run tenant -- key revoke` does: the Durable Object
 * first (refused from the very next request), then the record, then the index entry.
 */
export async function revokeSpareKeys(
  opts: Pick<ProvisionOptions, "kv" | "sealingKey" | "relay">,
  tenants: ProvisionedTenant[],
): Promise<void> {
  const admin = adminFor(opts);
  for (const t of tenants) await revokeApiKey(admin, t.id, t.spareKey.keyId);
}

/**
 * Spreads every `every`-th tenant (the 2nd, 4th, … for 2) over `shards` shards, as `npm run
 * tenant -- update <id> --shards N` does (the control object first, then the record), so the
 * soak's crashes and the fuzz's inputs also land on a sharded gate. Run once the relay is up.
 */
export async function shardTenants(
  opts: Pick<ProvisionOptions, "kv" | "sealingKey" | "relay">,
  tenants: ProvisionedTenant[],
  shards: number,
  every = 2,
): Promise<void> {
  if (shards <= 1) return;
  const admin = adminFor(opts);
  for (const [i, t] of tenants.entries()) {
    if (i % every !== every - 1) continue;
    t.record = await updateTenant(admin, t.id, { limits: { shards } });
  }
}
