/**
 * API keys: create (printed once), list, revoke (src/admin/keys.ts).
 */
import { createApiKey, listApiKeys, revokeApiKey } from "../../../src/admin/keys.ts";
import { assertTenantId } from "../../../src/admin/store.ts";
import { MAX_API_KEYS_PER_TENANT } from "../../../src/limits.ts";
import { bool, type CommandSpec, parseExpires, SKIP_RELAY_OPTION, str } from "../args.ts";
import { dash, table } from "../output.ts";

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
    const expiresRaw = str(values, "expires");
    const expiresAt = expiresRaw === undefined ? null : parseExpires(expiresRaw, ctx.admin.now());
    const minted = await createApiKey(ctx.admin, id, { expiresAt });
    ctx.out.result(minted, () =>
      [
        `API key ${minted.keyId} for tenant ${id} (expires: ${minted.expiresAt ?? "never"}).`,
        "It is shown this once and cannot be recovered; store it now:",
        "",
        `  ${minted.key}`,
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
    const listed = await listApiKeys(ctx.admin, id);
    ctx.out.result(listed, () =>
      listed.keys.length === 0
        ? `tenant ${id} has no API keys; create one with \`key create ${id}\``
        : table(
            ["KEY ID", "CREATED", "EXPIRES", "STATE"],
            listed.keys.map((k) => [k.keyId, k.createdAt, dash(k.expiresAt), k.state]),
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
    const r = await revokeApiKey(ctx.admin, id, positionals[1]!, { skipRelay: bool(values, "skip-relay") });
    ctx.out.result(
      { tenantId: r.tenantId, keyId: r.keyId, revoked: r.revoked, revision: r.revision, relay: r.relay },
      () => `revoked API key ${r.keyId} of tenant ${id} (relay: ${r.relay})`,
    );
  },
};

export const keyCommands: CommandSpec[] = [keyCreate, keyList, keyRevoke];
