/**
 * API keys: create (printed once), list, revoke. Only SHA-256(key) is stored, in the record and
 * as the index `apikey:<hash>` → {tenantId, keyId}.
 */
import { generateApiKey, generateKeyId, hashApiKey } from "../../../src/auth/api-key.ts";
import { MAX_API_KEYS_PER_TENANT } from "../../../src/limits.ts";
import { KV } from "../../../src/tenants/record.ts";
import { applyAccess, assertRelayConfigured, planRelay } from "../access.ts";
import { bool, type CommandSpec, clip, parseExpires, SKIP_RELAY_OPTION, str } from "../args.ts";
import { conflict, notFound, usageError } from "../errors.ts";
import { dash, table } from "../output.ts";
import {
  apiKeyIndexEntry,
  assertTenantId,
  isLive,
  loadTenant,
  nextRevision,
  publicView,
  recordEntry,
} from "../tenant-store.ts";

/** Key ids as generateKeyId() makes them. */
const KEY_ID_PATTERN = /^key_[0-9A-Za-z]{1,64}$/;

const keyCreate: CommandSpec = {
  name: "key create",
  summary: "mint an API key; it is printed once and never stored",
  args: "<id>",
  minPositionals: 1,
  maxPositionals: 1,
  options: {
    expires: {
      type: "string",
      value: "<when>",
      help: "expiry: ISO date (2027-01-31), ISO date-time (2027-01-31T12:00:00Z) or from now (30m, 12h, 90d, 2w)",
    },
  },
  details: `A tenant holds at most ${MAX_API_KEYS_PER_TENANT} live keys. To rotate: create a new key, move clients to it, revoke the old one.`,
  examples: ["key create acme", "key create acme --expires 90d --json"],
  async run(ctx, { values, positionals }) {
    const id = assertTenantId(positionals[0]!);
    const now = ctx.now();
    const expiresRaw = str(values, "expires");
    const expiresAt = expiresRaw === undefined ? null : parseExpires(expiresRaw, now);
    const record = await loadTenant(ctx.kv, id);
    const live = record.apiKeys.filter((k) => isLive(k.expiresAt, now)).length;
    if (live >= MAX_API_KEYS_PER_TENANT) {
      throw conflict(
        `tenant ${id} already has ${live} live API keys (the most a tenant may hold is ${MAX_API_KEYS_PER_TENANT}): ` +
          `revoke one first (\`key list ${id}\`, \`key revoke ${id} <keyId>\`)`,
      );
    }
    const key = generateApiKey();
    const hash = await hashApiKey(key);
    let keyId = generateKeyId();
    while (record.apiKeys.some((k) => k.id === keyId)) keyId = generateKeyId();
    const next = nextRevision(
      record,
      { apiKeys: [...record.apiKeys, { id: keyId, hash, createdAt: now.toISOString(), expiresAt }] },
      now,
    );
    await ctx.kv.putMany([recordEntry(next), apiKeyIndexEntry(hash, id, keyId)]);
    const expired = record.apiKeys.length - live;
    if (expired > 0) ctx.out.note(`tenant ${id} holds ${expired} expired key(s); remove them with \`key revoke\``);
    if (record.status === "disabled") ctx.out.note(`tenant ${id} is disabled: the key works once it is enabled`);
    ctx.out.result({ tenantId: id, keyId, key, expiresAt }, () =>
      [
        `API key ${keyId} for tenant ${id} (expires: ${expiresAt ?? "never"}).`,
        "It is shown this once and cannot be recovered; store it now:",
        "",
        `  ${key}`,
        "",
        "Send it as `Authorization: Bearer <key>` (or `X-Api-Key: <key>`).",
      ].join("\n"),
    );
  },
};

const keyList: CommandSpec = {
  name: "key list",
  summary: "list a tenant's API keys (ids and dates, never the keys)",
  args: "<id>",
  minPositionals: 1,
  maxPositionals: 1,
  options: {},
  examples: ["key list acme"],
  async run(ctx, { positionals }) {
    const id = assertTenantId(positionals[0]!);
    const record = await loadTenant(ctx.kv, id);
    const keys = publicView(record, ctx.now()).apiKeys;
    ctx.out.result({ tenantId: id, keys }, () =>
      keys.length === 0
        ? `tenant ${id} has no API keys; create one with \`key create ${id}\``
        : table(
            ["KEY ID", "CREATED", "EXPIRES", "STATE"],
            keys.map((k) => [k.keyId, k.createdAt, dash(k.expiresAt), k.state]),
          ),
    );
  },
};

const keyRevoke: CommandSpec = {
  name: "key revoke",
  summary: "revoke an API key: refused from the very next request",
  args: "<id> <keyId>",
  minPositionals: 2,
  maxPositionals: 2,
  options: { ...SKIP_RELAY_OPTION },
  details:
    "Order: (1) the relay's Durable Object records the key id as revoked (forever), (2) the record is\n" +
    "written without the key, (3) its index entry apikey:<hash> is deleted.",
  examples: ["key revoke acme key_3fJ9aQ0bX2Lm"],
  async run(ctx, { values, positionals }) {
    const id = assertTenantId(positionals[0]!);
    const keyId = positionals[1]!;
    if (!KEY_ID_PATTERN.test(keyId))
      throw usageError(`"${clip(keyId)}" is not a key id (key_...; see \`key list ${id}\`)`);
    assertRelayConfigured(ctx, bool(values, "skip-relay"));
    const record = await loadTenant(ctx.kv, id);
    const entry = record.apiKeys.find((k) => k.id === keyId);
    if (!entry) throw notFound(`tenant ${id} has no API key ${keyId} (see \`key list ${id}\`)`);
    const plan = await planRelay(ctx, bool(values, "skip-relay"));
    const now = ctx.now();
    const next = nextRevision(record, { apiKeys: record.apiKeys.filter((k) => k.id !== keyId) }, now);
    await applyAccess(plan, id, {
      revision: next.revision,
      status: record.status,
      revokeApiKeyIds: [keyId],
      revokeAccessKeyIds: [],
    });
    await ctx.kv.putMany([recordEntry(next)]);
    await ctx.kv.deleteMany([KV.apiKey(entry.hash)]);
    ctx.out.result(
      { tenantId: id, keyId, revoked: true, revision: next.revision, relay: plan.outcome },
      () => `revoked API key ${keyId} of tenant ${id} (relay: ${plan.outcome})`,
    );
  },
};

export const keyCommands: CommandSpec[] = [keyCreate, keyList, keyRevoke];
