/**
 * API keys: create (returned once, never stored), list, revoke. Only SHA-256(key) is stored, in the
 * record and as the index `apikey:<hash>` → {tenantId, keyId}.
 */
import { generateApiKey, generateKeyId, hashApiKey } from "../auth/api-key.ts";
import { MAX_API_KEYS_PER_TENANT } from "../limits.ts";
import { KV, type TenantRecord } from "../tenants/record.ts";
import { applyAccess, assertRelayConfigured, planRelay, type RelayOutcome } from "./access.ts";
import type { Admin } from "./context.ts";
import { clip, conflict, invalidInput, notFound } from "./errors.ts";
import {
  apiKeyIndexEntry,
  assertTenantId,
  deleteInOrder,
  isLive,
  type KvEntry,
  loadTenant,
  nextRevision,
  publicView,
  putInOrder,
  recordEntry,
} from "./store.ts";
import type { RelayOptions } from "./tenants.ts";

/** Key ids as generateKeyId() makes them. */
export const KEY_ID_PATTERN = /^key_[0-9A-Za-z]{1,64}$/;

export interface MintedApiKey {
  tenantId: string;
  keyId: string;
  /** The key itself: shown once, never stored. */
  key: string;
  expiresAt: string | null;
}

/**
 * A new key, its record entry (the hash) and its index entry: for callers that write the record
 * themselves (`npm start`'s demo tenant). The key id is unique within `record`.
 */
export async function newApiKeyEntry(
  record: Pick<TenantRecord, "id" | "apiKeys">,
  now: Date,
  expiresAt: string | null = null,
): Promise<{ key: string; entry: TenantRecord["apiKeys"][number]; index: KvEntry }> {
  const key = generateApiKey();
  const hash = await hashApiKey(key);
  let keyId = generateKeyId();
  while (record.apiKeys.some((k) => k.id === keyId)) keyId = generateKeyId();
  return {
    key,
    entry: { id: keyId, hash, createdAt: now.toISOString(), expiresAt },
    index: apiKeyIndexEntry(hash, record.id, keyId),
  };
}

/** Mints a key (at most MAX_API_KEYS_PER_TENANT live ones): record and index entry, in that order. */
export async function createApiKey(
  admin: Admin,
  rawId: string,
  opts: { expiresAt?: string | null } = {},
): Promise<MintedApiKey> {
  const id = assertTenantId(rawId);
  const now = admin.now();
  const expiresAt = opts.expiresAt ?? null;
  const record = await loadTenant(admin.kv, id);
  const live = record.apiKeys.filter((k) => isLive(k.expiresAt, now)).length;
  if (live >= MAX_API_KEYS_PER_TENANT) {
    throw conflict(
      `tenant ${id} already has ${live} live API keys (the most a tenant may hold is ${MAX_API_KEYS_PER_TENANT}): ` +
        `revoke one first (\`key list ${id}\`, \`key revoke ${id} <keyId>\`)`,
    );
  }
  const { key, entry, index } = await newApiKeyEntry(record, now, expiresAt);
  const keyId = entry.id;
  const next = nextRevision(record, { apiKeys: [...record.apiKeys, entry] }, now);
  await putInOrder(admin.kv, [recordEntry(next), index]);
  const expired = record.apiKeys.length - live;
  if (expired > 0) admin.notices.note(`tenant ${id} holds ${expired} expired key(s); remove them with \`key revoke\``);
  if (record.status === "disabled") admin.notices.note(`tenant ${id} is disabled: the key works once it is enabled`);
  return { tenantId: id, keyId, key, expiresAt };
}

export async function listApiKeys(admin: Admin, rawId: string) {
  const id = assertTenantId(rawId);
  const record = await loadTenant(admin.kv, id);
  return { tenantId: id, keys: publicView(record, admin.now()).apiKeys };
}

export interface Revoked {
  tenantId: string;
  revoked: true;
  revision: number;
  relay: RelayOutcome;
}

/** (1) the Durable Object records the key id as revoked, (2) the record without it, (3) the index entry deleted. */
export async function revokeApiKey(
  admin: Admin,
  rawId: string,
  keyId: string,
  opts: RelayOptions = {},
): Promise<Revoked & { keyId: string }> {
  const id = assertTenantId(rawId);
  if (!KEY_ID_PATTERN.test(keyId))
    throw invalidInput(`"${clip(keyId)}" is not a key id (key_...; see \`key list ${id}\`)`);
  const skip = opts.skipRelay === true;
  assertRelayConfigured(admin, skip);
  const record = await loadTenant(admin.kv, id);
  const entry = record.apiKeys.find((k) => k.id === keyId);
  if (!entry) throw notFound(`tenant ${id} has no API key ${keyId} (see \`key list ${id}\`)`);
  const plan = await planRelay(admin, skip);
  const next = nextRevision(record, { apiKeys: record.apiKeys.filter((k) => k.id !== keyId) }, admin.now());
  await applyAccess(plan, id, {
    revision: next.revision,
    status: record.status,
    revokeApiKeyIds: [keyId],
    revokeAccessKeyIds: [],
  });
  await putInOrder(admin.kv, [recordEntry(next)]);
  await deleteInOrder(admin.kv, [KV.apiKey(entry.hash)]);
  return { tenantId: id, keyId, revoked: true, revision: next.revision, relay: plan.outcome };
}
