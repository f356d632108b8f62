/**
 * Relay-issued SigV4 key pairs, for the AWS CLI and SDKs (`--endpoint-url` pointed at the relay).
 * The secret is sealed with field `sigv4:<accessKeyId>` (verification needs the secret itself);
 * the index `sigv4:<accessKeyId>` → {tenantId} finds the tenant.
 */
import { generateSigV4KeyPair, SIGV4_ACCESS_KEY_PATTERN } from "../auth/sigv4.ts";
import { MAX_SIGV4_KEYS_PER_TENANT } from "../limits.ts";
import { KV, type TenantRecord } from "../tenants/record.ts";
import { seal } from "../tenants/sealed.ts";
import { applyAccess, assertRelayConfigured, planRelay } from "./access.ts";
import type { Admin } from "./context.ts";
import { clip, conflict, invalidInput, notFound } from "./errors.ts";
import type { Revoked } from "./keys.ts";
import {
  assertTenantId,
  deleteInOrder,
  loadTenant,
  nextRevision,
  putInOrder,
  recordEntry,
  sigv4IndexEntry,
} from "./store.ts";
import type { RelayOptions } from "./tenants.ts";

/** The field a SigV4 secret is sealed under (bound into the AES-GCM additional data). */
export function sigv4SecretField(accessKeyId: string): string {
  return `sigv4:${accessKeyId}`;
}

export interface MintedSigV4Pair {
  tenantId: string;
  accessKeyId: string;
  /** Shown once; stored only sealed. */
  secretAccessKey: string;
  region: string;
  createdAt: string;
}

/**
 * A new pair's record entry, sealed with `key`: for callers that write the record themselves
 * (`npm start`'s demo tenant). The pair's access key id is unique within `record`.
 */
export async function newSigV4Entry(
  key: CryptoKey,
  record: Pick<TenantRecord, "id" | "sigv4Keys">,
  now: Date,
): Promise<{ pair: { accessKeyId: string; secretAccessKey: string }; entry: TenantRecord["sigv4Keys"][number] }> {
  let pair = generateSigV4KeyPair();
  while (record.sigv4Keys.some((k) => k.accessKeyId === pair.accessKeyId)) pair = generateSigV4KeyPair();
  const secret = await seal(key, record.id, sigv4SecretField(pair.accessKeyId), pair.secretAccessKey);
  return { pair, entry: { accessKeyId: pair.accessKeyId, secret, createdAt: now.toISOString() } };
}

/** Mints a pair (at most MAX_SIGV4_KEYS_PER_TENANT): record and index entry, in that order. */
export async function createSigV4Pair(admin: Admin, rawId: string): Promise<MintedSigV4Pair> {
  const id = assertTenantId(rawId);
  const key = await admin.sealingKey();
  const record = await loadTenant(admin.kv, id);
  if (record.sigv4Keys.length >= MAX_SIGV4_KEYS_PER_TENANT) {
    throw conflict(
      `tenant ${id} already has ${record.sigv4Keys.length} SigV4 key pairs (at most ${MAX_SIGV4_KEYS_PER_TENANT}): ` +
        `revoke one first (\`sigv4 list ${id}\`, \`sigv4 revoke ${id} <accessKeyId>\`)`,
    );
  }
  const now = admin.now();
  const { pair, entry } = await newSigV4Entry(key, record, now);
  const next = nextRevision(record, { sigv4Keys: [...record.sigv4Keys, entry] }, now);
  await putInOrder(admin.kv, [recordEntry(next), sigv4IndexEntry(pair.accessKeyId, id)]);
  if (record.status === "disabled") admin.notices.note(`tenant ${id} is disabled: the pair works once it is enabled`);
  return {
    tenantId: id,
    accessKeyId: pair.accessKeyId,
    secretAccessKey: pair.secretAccessKey,
    region: record.region,
    createdAt: now.toISOString(),
  };
}

export async function listSigV4Pairs(admin: Admin, rawId: string) {
  const id = assertTenantId(rawId);
  const record = await loadTenant(admin.kv, id);
  return {
    tenantId: id,
    sigv4Keys: record.sigv4Keys.map((k) => ({ accessKeyId: k.accessKeyId, createdAt: k.createdAt })),
  };
}

/** (1) the Durable Object records the access key id as revoked, (2) the record without it, (3) the index entry deleted. */
export async function revokeSigV4Pair(
  admin: Admin,
  rawId: string,
  accessKeyId: string,
  opts: RelayOptions = {},
): Promise<Revoked & { accessKeyId: string }> {
  const id = assertTenantId(rawId);
  if (!SIGV4_ACCESS_KEY_PATTERN.test(accessKeyId) && !/^\w{16,128}$/.test(accessKeyId)) {
    throw invalidInput(`"${clip(accessKeyId)}" is not an access key id (RLY...; see \`sigv4 list ${id}\`)`);
  }
  const skip = opts.skipRelay === true;
  assertRelayConfigured(admin, skip);
  const record = await loadTenant(admin.kv, id);
  if (!record.sigv4Keys.some((k) => k.accessKeyId === accessKeyId)) {
    throw notFound(`tenant ${id} has no SigV4 key pair ${accessKeyId} (see \`sigv4 list ${id}\`)`);
  }
  const plan = await planRelay(admin, skip);
  const next = nextRevision(
    record,
    { sigv4Keys: record.sigv4Keys.filter((k) => k.accessKeyId !== accessKeyId) },
    admin.now(),
  );
  await applyAccess(plan, id, {
    revision: next.revision,
    status: record.status,
    revokeApiKeyIds: [],
    revokeAccessKeyIds: [accessKeyId],
  });
  await putInOrder(admin.kv, [recordEntry(next)]);
  await deleteInOrder(admin.kv, [KV.sigv4(accessKeyId)]);
  return { tenantId: id, accessKeyId, revoked: true, revision: next.revision, relay: plan.outcome };
}
