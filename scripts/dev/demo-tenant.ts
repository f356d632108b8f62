/**
 * The demo tenant `npm start` keeps ready: `demo`, owning aws.partner/example.com/demo/*, region
 * us-east-1, pointed at the local EventBridge and signing with its well-known test key pair; plus
 * one API key and one SigV4 pair, minted locally and kept in a git-ignored file inside the state
 * directory (relay-demo.json) so every start can print them again.
 *
 * Built from the tenant-administration library (src/admin/: the record store, key and pair minting,
 * credential sealing) rather than its command functions, because a start repairs only what differs
 * and writes everything it changed as one revision (the commands would write one revision each).
 * The reads and writes go to the KV `npm start` opens on its state, while wrangler dev starts.
 * Nothing here needs the relay's admin API: adding keys and changing the endpoint revoke nothing
 * (docs/admin.md, "order").
 *
 * Each start checks the record against what it should be and repairs only what differs: a missing
 * tenant is created; a changed emulator port moves the endpoint; credentials or a SigV4 secret the
 * current SEALING_KEY cannot open are sealed again / replaced; a key that was revoked, expired or
 * lost is replaced. Anything an admin changed on purpose (name, sources, region, status, limits)
 * is left alone, with a warning when it stops the demo from working.
 */
import { chmodSync, mkdirSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import { dirname } from "node:path";
import { z } from "zod";
import { FAKE_DEFAULT_CREDENTIAL } from "../../emulator/eventbridge.ts";
import { FAKE_DEMO_EXTERNAL_ID, FAKE_DEMO_ROLE_ARN } from "../../emulator/sts.ts";
import { SECRET_ACCESS_KEY_FIELD, sealCredentials } from "../../src/admin/credentials.ts";
import { newApiKeyEntry } from "../../src/admin/keys.ts";
import { newSigV4Entry, sigv4SecretField } from "../../src/admin/sigv4.ts";
import {
  getMany,
  isLive,
  type KvEntry,
  nextRevision,
  parseRecord,
  putInOrder,
  recordEntry,
  sigv4IndexEntry,
  type TenantsKv,
  validateRecord,
} from "../../src/admin/store.ts";
import { hashApiKey, isWellFormedApiKey } from "../../src/auth/api-key.ts";
import { MAX_API_KEYS_PER_TENANT, MAX_SIGV4_KEYS_PER_TENANT } from "../../src/limits.ts";
import {
  apiKeyIndexSchema,
  KV,
  ownsSource,
  sigv4IndexSchema,
  TENANT_SCHEMA_VERSION,
  type TenantRecord,
} from "../../src/tenants/record.ts";
import { unseal } from "../../src/tenants/sealed.ts";

export const DEMO_TENANT_ID = "demo";
export const DEMO_TENANT_NAME = "Demo tenant (npm start)";
export const DEMO_SOURCE_RULE = "aws.partner/example.com/demo/*";
/** The source the printed examples send as (one the rule above owns). */
export const DEMO_EVENT_SOURCE = "aws.partner/example.com/demo/orders";
export const DEMO_REGION = "us-east-1";
/** Tries for a local KV call that found the state locked by wrangler dev starting on it. */
const KV_ATTEMPTS = 4;
/** Pause between those tries, in ms. */
const KV_RETRY_MS = 400;

const demoFileSchema = z.object({
  tenantId: z.literal(DEMO_TENANT_ID),
  apiKey: z.object({ keyId: z.string(), key: z.string() }).nullable(),
  sigv4: z.object({ accessKeyId: z.string(), secretAccessKey: z.string() }).nullable(),
});
export type DemoFile = z.infer<typeof demoFileSchema>;

export interface DemoCredentials {
  tenantId: string;
  region: string;
  apiKey: { keyId: string; key: string } | null;
  sigv4: { accessKeyId: string; secretAccessKey: string } | null;
}

export interface DemoResult {
  /** What was done, one short phrase each ("created tenant demo", "minted an API key"). */
  actions: string[];
  /** What keeps the demo from working, for people to fix. */
  warnings: string[];
  credentials: DemoCredentials;
  record: TenantRecord | null;
}

export interface DemoOptions {
  kv: TenantsKv;
  sealingKey: CryptoKey;
  /** The local EventBridge's origin, e.g. http://127.0.0.1:4010. */
  endpoint: string;
  /** Where the demo credentials are kept between runs. */
  file: string;
  now?: Date;
}

export async function ensureDemoTenant(opts: DemoOptions): Promise<DemoResult> {
  const now = opts.now ?? new Date();
  const actions: string[] = [];
  const warnings: string[] = [];
  const saved = readDemoFile(opts.file);
  const savedKeyHash =
    saved?.apiKey && isWellFormedApiKey(saved.apiKey.key) ? await hashApiKey(saved.apiKey.key) : null;

  // One read: the record and the index entries the saved keys need.
  const keys = [KV.tenant(DEMO_TENANT_ID)];
  if (savedKeyHash) keys.push(KV.apiKey(savedKeyHash));
  if (saved?.sigv4) keys.push(KV.sigv4(saved.sigv4.accessKeyId));
  const found = await retryLocked(() => getMany(opts.kv, keys));
  const rawRecord = found.get(KV.tenant(DEMO_TENANT_ID)) ?? null;

  let record: TenantRecord | null = null;
  if (rawRecord !== null) {
    try {
      record = parseRecord(DEMO_TENANT_ID, rawRecord);
    } catch (e) {
      warnings.push(
        `${(e as Error).message} The demo is skipped; remove it with \`npm run tenant -- delete ${DEMO_TENANT_ID} --force\` and start again.`,
      );
      return {
        actions,
        warnings,
        credentials: { tenantId: DEMO_TENANT_ID, region: DEMO_REGION, apiKey: null, sigv4: null },
        record: null,
      };
    }
  }

  // The record as this start wants it: `base` (the stored one, or a new one) plus `changes`.
  const writes: KvEntry[] = [];
  const changes: Partial<TenantRecord> = {};
  const base: TenantRecord =
    record ??
    validateRecord({
      schemaVersion: TENANT_SCHEMA_VERSION,
      id: DEMO_TENANT_ID,
      name: DEMO_TENANT_NAME,
      status: "active",
      // As `tenant create` does: a re-created tenant outranks what its Durable Object remembers.
      revision: now.getTime(),
      sources: [DEMO_SOURCE_RULE],
      region: DEMO_REGION,
      endpoint: opts.endpoint,
      limits: {},
      credentials: await sealedFakeCredentials(opts.sealingKey),
      apiKeys: [],
      sigv4Keys: [],
      createdAt: now.toISOString(),
      updatedAt: now.toISOString(),
    });
  const view = (): TenantRecord => ({ ...base, ...changes });
  if (!record) actions.push(`created tenant ${DEMO_TENANT_ID}`);
  else {
    if (record.endpoint !== opts.endpoint) {
      changes.endpoint = opts.endpoint;
      actions.push(`endpoint ${record.endpoint ?? "(AWS default)"} → ${opts.endpoint}`);
    }
    // Put on the emulator's demo role (`credentials set demo --role-arn ...`, docs/credentials.md): kept.
    const onDemoRole =
      record.credentials?.kind === "role" &&
      record.credentials.roleArn === FAKE_DEMO_ROLE_ARN &&
      record.credentials.externalId === FAKE_DEMO_EXTERNAL_ID;
    if (!onDemoRole && !(await opensToFakeCredentials(opts.sealingKey, record))) {
      changes.credentials = await sealedFakeCredentials(opts.sealingKey);
      // Another pair, another secret, or sealed under another SEALING_KEY: the emulator's pair again.
      actions.push(record.credentials ? "credentials reset to the local EventBridge's key pair" : "credentials set");
    }
  }

  // The API key: the saved one while the record and its index entry still hold it, else a new one.
  let apiKey = saved?.apiKey ?? null;
  const keyEntry =
    apiKey && savedKeyHash ? base.apiKeys.find((k) => k.id === apiKey!.keyId && k.hash === savedKeyHash) : undefined;
  const keyIndex = savedKeyHash ? parseIndex(apiKeyIndexSchema, found.get(KV.apiKey(savedKeyHash))) : null;
  const keyOk =
    keyEntry &&
    isLive(keyEntry.expiresAt, now) &&
    keyIndex?.tenantId === DEMO_TENANT_ID &&
    keyIndex.keyId === keyEntry.id;
  if (!keyOk) {
    apiKey = null;
    if (base.apiKeys.filter((k) => isLive(k.expiresAt, now)).length >= MAX_API_KEYS_PER_TENANT) {
      warnings.push(
        `tenant ${DEMO_TENANT_ID} already holds ${MAX_API_KEYS_PER_TENANT} API keys, none of them the saved demo key: ` +
          `revoke one (\`npm run tenant -- key list ${DEMO_TENANT_ID}\`) and start again`,
      );
    } else {
      const minted = await newApiKeyEntry(base, now);
      changes.apiKeys = [...base.apiKeys, minted.entry];
      writes.push(minted.index);
      apiKey = { keyId: minted.entry.id, key: minted.key };
      actions.push(
        saved?.apiKey ? "minted a new API key (the saved one was revoked, expired or lost)" : "minted an API key",
      );
    }
  }

  // The SigV4 pair: the saved one while the record holds it under a secret this SEALING_KEY opens.
  let sigv4 = saved?.sigv4 ?? null;
  const pairEntry = sigv4 ? base.sigv4Keys.find((k) => k.accessKeyId === sigv4!.accessKeyId) : undefined;
  const pairIndex = sigv4 ? parseIndex(sigv4IndexSchema, found.get(KV.sigv4(sigv4.accessKeyId))) : null;
  const pairOk =
    sigv4 !== null &&
    pairEntry !== undefined &&
    pairIndex?.tenantId === DEMO_TENANT_ID &&
    (await unseal(opts.sealingKey, DEMO_TENANT_ID, sigv4SecretField(sigv4.accessKeyId), pairEntry.secret).then(
      (s) => s === sigv4!.secretAccessKey,
      () => false,
    ));
  if (!pairOk) {
    sigv4 = null;
    if (base.sigv4Keys.length >= MAX_SIGV4_KEYS_PER_TENANT) {
      warnings.push(
        `tenant ${DEMO_TENANT_ID} already holds ${MAX_SIGV4_KEYS_PER_TENANT} SigV4 pairs, none of them the saved demo pair: ` +
          `revoke one (\`npm run tenant -- sigv4 list ${DEMO_TENANT_ID}\`) and start again`,
      );
    } else {
      const minted = await newSigV4Entry(opts.sealingKey, base, now);
      changes.sigv4Keys = [...base.sigv4Keys, minted.entry];
      writes.push(sigv4IndexEntry(minted.pair.accessKeyId, DEMO_TENANT_ID));
      sigv4 = minted.pair;
      actions.push(
        saved?.sigv4 ? "minted a new SigV4 pair (the saved one was revoked or no longer opens)" : "minted a SigV4 pair",
      );
    }
  }

  // One revision for everything this start changed (a new record keeps its creation revision).
  const changed = Object.keys(changes).length > 0;
  const next = !record ? validateRecord(view()) : changed ? nextRevision(record, changes, now) : record;
  if (!record || changed) {
    // The record first, then the index entries that point at it (the CLI's order).
    await retryLocked(() => putInOrder(opts.kv, [recordEntry(next), ...writes]));
  }
  const credentials: DemoCredentials = { tenantId: DEMO_TENANT_ID, region: next.region, apiKey, sigv4 };
  writeDemoFile(opts.file, { tenantId: DEMO_TENANT_ID, apiKey, sigv4 });

  if (next.status !== "active") {
    warnings.push(
      `tenant ${DEMO_TENANT_ID} is ${next.status}: \`npm run tenant -- enable ${DEMO_TENANT_ID}\` to send with it`,
    );
  }
  if (!ownsSource(next.sources, DEMO_EVENT_SOURCE)) {
    warnings.push(
      `tenant ${DEMO_TENANT_ID} no longer owns ${DEMO_EVENT_SOURCE} (its sources: ${next.sources.join(", ")}): the examples below are refused`,
    );
  }
  return { actions, warnings, credentials, record: next };
}

function sealedFakeCredentials(key: CryptoKey): Promise<NonNullable<TenantRecord["credentials"]>> {
  return sealCredentials(key, DEMO_TENANT_ID, FAKE_DEFAULT_CREDENTIAL);
}

/** True when the record signs with the local EventBridge's key pair and this SEALING_KEY opens it. */
async function opensToFakeCredentials(key: CryptoKey, record: TenantRecord): Promise<boolean> {
  const c = record.credentials;
  if (!c || c.kind === "role" || c.accessKeyId !== FAKE_DEFAULT_CREDENTIAL.accessKeyId || c.sessionToken) return false;
  try {
    return (
      (await unseal(key, DEMO_TENANT_ID, SECRET_ACCESS_KEY_FIELD, c.secretAccessKey)) ===
      FAKE_DEFAULT_CREDENTIAL.secretAccessKey
    );
  } catch {
    return false;
  }
}

function parseIndex<T>(schema: z.ZodType<T>, raw: string | null | undefined): T | null {
  if (raw === null || raw === undefined) return null;
  try {
    const r = schema.safeParse(JSON.parse(raw));
    return r.success ? r.data : null;
  } catch {
    return null;
  }
}

/** The saved demo credentials, or null when there are none (or the file is not ours). */
export function readDemoFile(path: string): DemoFile | null {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch {
    return null;
  }
  try {
    const r = demoFileSchema.safeParse(JSON.parse(text));
    return r.success ? r.data : null;
  } catch {
    return null;
  }
}

/** Written whole (a temporary file renamed over it), mode 0600. */
function writeDemoFile(path: string, data: DemoFile): void {
  const doc = {
    note:
      "Local demo credentials minted by `npm start` for the demo tenant in this local state. They open only " +
      "this machine's local relay. Git-ignored; never commit them. Wiping the state directory removes them too.",
    ...data,
  };
  mkdirSync(dirname(path), { recursive: true });
  const tmp = `${path}.${process.pid}.tmp`;
  writeFileSync(tmp, JSON.stringify(doc, null, 2) + "\n", { mode: 0o600 });
  chmodSync(tmp, 0o600);
  renameSync(tmp, path);
}

/** Runs a local KV call again when wrangler dev, starting on the same state, held its lock. */
async function retryLocked<T>(fn: () => Promise<T>): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await fn();
    } catch (e) {
      if (attempt >= KV_ATTEMPTS || !/locked|SQLITE_BUSY/i.test((e as Error).message)) throw e;
      await new Promise((r) => setTimeout(r, KV_RETRY_MS * attempt));
    }
  }
}
