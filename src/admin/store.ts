/**
 * Tenant records in the TENANTS KV namespace, read and written only through src/tenants/record.ts:
 * every write is validated with tenantRecordSchema, bumps `revision` and sets `updatedAt`. Key
 * layout: `tenant:<id>`, `apikey:<sha256 hex>` → {tenantId, keyId}, `sigv4:<accessKeyId>` →
 * {tenantId} (docs/storage.md).
 *
 * `TenantsKv` is the part of a Workers `KVNamespace` these functions use, so they run over the
 * Worker's binding, wrangler's `getPlatformProxy` (local state or remote), or Miniflare alike.
 */
import type { z } from "zod";
import {
  apiKeyIndexSchema,
  KV,
  sigv4IndexSchema,
  type TenantRecord,
  tenantIdSchema,
  tenantRecordSchema,
} from "../tenants/record.ts";
import { AdminError, clip, invalidInput, notFound } from "./errors.ts";

/** The subset of `KVNamespace` tenant administration needs (a KVNamespace satisfies it). */
export interface TenantsKv {
  get(key: string): Promise<string | null>;
  put(key: string, value: string): Promise<void>;
  delete(key: string): Promise<void>;
  list(options: {
    prefix?: string | null;
    cursor?: string | null;
  }): Promise<{ keys: { name: string }[]; list_complete: boolean; cursor?: string }>;
}

export interface KvEntry {
  key: string;
  value: string;
}

export const TENANT_PREFIX = "tenant:";

export function assertTenantId(id: string): string {
  const r = tenantIdSchema.safeParse(id);
  if (!r.success) throw invalidInput(`invalid tenant id "${clip(id, 70)}": ${firstIssue(r.error)}`);
  return id;
}

export function firstIssue(error: z.ZodError): string {
  const issue = error.issues[0];
  if (!issue) return "invalid";
  const path = issue.path.length ? issue.path.join(".") + ": " : "";
  return path + issue.message;
}

/** Reads keys; a missing key maps to null. */
export async function getMany(kv: TenantsKv, keys: readonly string[]): Promise<Map<string, string | null>> {
  const values = await Promise.all(keys.map((k) => kv.get(k)));
  return new Map(keys.map((k, i) => [k, values[i] ?? null]));
}

/** Writes entries in order (each put completes before the next starts). */
export async function putInOrder(kv: TenantsKv, entries: readonly KvEntry[]): Promise<void> {
  for (const e of entries) await kv.put(e.key, e.value);
}

/** Deletes keys in order; deleting a missing key is not an error. */
export async function deleteInOrder(kv: TenantsKv, keys: readonly string[]): Promise<void> {
  for (const k of keys) await kv.delete(k);
}

/** Every key name under a prefix, following the list cursor. */
export async function listKeys(kv: TenantsKv, prefix: string): Promise<string[]> {
  const names: string[] = [];
  let cursor: string | undefined;
  for (;;) {
    const page = await kv.list({ prefix, cursor: cursor ?? null });
    for (const k of page.keys) names.push(k.name);
    if (page.list_complete || !page.cursor) return names;
    cursor = page.cursor;
  }
}

/** Parses a stored record; a record the Worker could not read is an error, never guessed at. */
export function parseRecord(id: string, raw: string): TenantRecord {
  let json: unknown;
  try {
    json = JSON.parse(raw);
  } catch {
    throw new AdminError(`the stored record tenant:${id} is not JSON; the relay refuses it too. Fix or delete it.`);
  }
  const r = tenantRecordSchema.safeParse(json);
  if (!r.success) {
    throw new AdminError(
      `the stored record tenant:${id} does not match the tenant schema (${firstIssue(r.error)}); the relay refuses it too.`,
    );
  }
  return r.data;
}

export function unknownTenant(id: string): AdminError {
  return notFound(`unknown tenant "${id}" (see \`npm run tenant -- list\`)`);
}

/** The record, or a not_found AdminError. */
export async function loadTenant(kv: TenantsKv, id: string): Promise<TenantRecord> {
  const record = await loadTenantOrNull(kv, id);
  if (!record) throw unknownTenant(id);
  return record;
}

export async function loadTenantOrNull(kv: TenantsKv, id: string): Promise<TenantRecord | null> {
  const raw = await kv.get(KV.tenant(id));
  return raw === null ? null : parseRecord(id, raw);
}

export interface ListedTenant {
  id: string;
  record: TenantRecord | null;
  /** Why the record could not be read, when it could not. */
  problem?: string;
}

/** Every tenant record, sorted by id; unreadable ones are listed with the reason. */
export async function listTenants(kv: TenantsKv): Promise<ListedTenant[]> {
  const keys = (await listKeys(kv, TENANT_PREFIX)).filter((k) => k.startsWith(TENANT_PREFIX)).sort();
  if (keys.length === 0) return [];
  const values = await getMany(kv, keys);
  return keys.map((key) => {
    const id = key.slice(TENANT_PREFIX.length);
    const raw = values.get(key) ?? null;
    if (raw === null) return { id, record: null, problem: "deleted while listing" };
    try {
      return { id, record: parseRecord(id, raw) };
    } catch (e) {
      return { id, record: null, problem: (e as Error).message };
    }
  });
}

/**
 * The next revision of a record: `changes` applied, revision + 1, updatedAt now, validated with
 * the schema. A change that breaks the schema is an invalid-input error naming the field.
 */
export function nextRevision(record: TenantRecord, changes: Partial<TenantRecord>, now: Date): TenantRecord {
  return validateRecord({ ...record, ...changes, revision: record.revision + 1, updatedAt: now.toISOString() });
}

export function validateRecord(candidate: unknown): TenantRecord {
  const r = tenantRecordSchema.safeParse(candidate);
  if (!r.success) throw invalidInput(`the tenant record would be invalid: ${firstIssue(r.error)}`);
  return r.data;
}

export function recordEntry(record: TenantRecord): KvEntry {
  return { key: KV.tenant(record.id), value: JSON.stringify(tenantRecordSchema.parse(record)) };
}

export function apiKeyIndexEntry(hash: string, tenantId: string, keyId: string): KvEntry {
  return { key: KV.apiKey(hash), value: JSON.stringify(apiKeyIndexSchema.parse({ tenantId, keyId })) };
}

export function sigv4IndexEntry(accessKeyId: string, tenantId: string): KvEntry {
  return { key: KV.sigv4(accessKeyId), value: JSON.stringify(sigv4IndexSchema.parse({ tenantId })) };
}

/** Every index key that points at this tenant. */
export function indexKeys(record: TenantRecord): string[] {
  return [...record.apiKeys.map((k) => KV.apiKey(k.hash)), ...record.sigv4Keys.map((k) => KV.sigv4(k.accessKeyId))];
}

/** True when an API key counts against the live-key limit (not expired). */
export function isLive(expiresAt: string | null, now: Date): boolean {
  return expiresAt === null || Date.parse(expiresAt) > now.getTime();
}

/**
 * What `show`/`list --json` print: the record without any sealed value or key hash. Secrets are
 * never printed; a sealed value is replaced by the fact that it is set.
 */
export function publicView(record: TenantRecord, now: Date) {
  return {
    id: record.id,
    name: record.name,
    status: record.status,
    revision: record.revision,
    sources: record.sources,
    region: record.region,
    endpoint: record.endpoint,
    limits: record.limits,
    credentials: credentialsView(record.credentials),
    apiKeys: record.apiKeys.map((k) => ({
      keyId: k.id,
      createdAt: k.createdAt,
      expiresAt: k.expiresAt,
      state: isLive(k.expiresAt, now) ? "live" : "expired",
    })),
    sigv4Keys: record.sigv4Keys.map((k) => ({ accessKeyId: k.accessKeyId, createdAt: k.createdAt })),
    createdAt: record.createdAt,
    updatedAt: record.updatedAt,
  };
}

export type PublicTenant = ReturnType<typeof publicView>;

/** Static keys: the key id and that the secret is sealed. A role: its ARN and external id (neither is a secret). */
function credentialsView(c: TenantRecord["credentials"]) {
  if (!c) return null;
  if (c.kind === "role") {
    return { kind: "role" as const, roleArn: c.roleArn, externalId: c.externalId, durationSeconds: c.durationSeconds };
  }
  return {
    accessKeyId: c.accessKeyId,
    secretAccessKey: "sealed" as const,
    sessionToken: c.sessionToken ? "sealed" : null,
  };
}
