/**
 * Relay-issued SigV4 key pairs, for the AWS CLI and SDKs (`--endpoint-url` pointed at the relay).
 * The secret is sealed with field `sigv4:<accessKeyId>` (verification needs the secret itself);
 * the index `sigv4:<accessKeyId>` → {tenantId} finds the tenant.
 */

import { generateSigV4KeyPair, SIGV4_ACCESS_KEY_PATTERN } from "../../../src/auth/sigv4.ts";
import { MAX_SIGV4_KEYS_PER_TENANT } from "../../../src/limits.ts";
import { KV } from "../../../src/tenants/record.ts";
import { seal } from "../../../src/tenants/sealed.ts";
import { applyAccess, assertRelayConfigured, planRelay } from "../access.ts";
import { bool, type CommandSpec, clip, SKIP_RELAY_OPTION } from "../args.ts";
import { conflict, notFound, usageError } from "../errors.ts";
import { table } from "../output.ts";
import { assertTenantId, loadTenant, nextRevision, recordEntry, sigv4IndexEntry } from "../tenant-store.ts";

export function sigv4SecretField(accessKeyId: string): string {
  return `sigv4:${accessKeyId}`;
}

const sigv4Create: CommandSpec = {
  name: "sigv4 create",
  summary: "mint a SigV4 key pair for the AWS CLI / SDKs; the secret is printed once",
  args: "<id>",
  minPositionals: 1,
  maxPositionals: 1,
  options: {},
  details: `A tenant holds at most ${MAX_SIGV4_KEYS_PER_TENANT} pairs. Needs the sealing key (like \`credentials set\`).`,
  examples: ["sigv4 create acme", "sigv4 create acme --json"],
  async run(ctx, { positionals }) {
    const id = assertTenantId(positionals[0]!);
    const key = await ctx.sealingKey();
    const record = await loadTenant(ctx.kv, id);
    if (record.sigv4Keys.length >= MAX_SIGV4_KEYS_PER_TENANT) {
      throw conflict(
        `tenant ${id} already has ${record.sigv4Keys.length} SigV4 key pairs (at most ${MAX_SIGV4_KEYS_PER_TENANT}): ` +
          `revoke one first (\`sigv4 list ${id}\`, \`sigv4 revoke ${id} <accessKeyId>\`)`,
      );
    }
    let pair = generateSigV4KeyPair();
    while (record.sigv4Keys.some((k) => k.accessKeyId === pair.accessKeyId)) pair = generateSigV4KeyPair();
    const now = ctx.now();
    const sealed = await seal(key, id, sigv4SecretField(pair.accessKeyId), pair.secretAccessKey);
    const next = nextRevision(
      record,
      {
        sigv4Keys: [
          ...record.sigv4Keys,
          { accessKeyId: pair.accessKeyId, secret: sealed, createdAt: now.toISOString() },
        ],
      },
      now,
    );
    await ctx.kv.putMany([recordEntry(next), sigv4IndexEntry(pair.accessKeyId, id)]);
    if (record.status === "disabled") ctx.out.note(`tenant ${id} is disabled: the pair works once it is enabled`);
    ctx.out.result(
      {
        tenantId: id,
        accessKeyId: pair.accessKeyId,
        secretAccessKey: pair.secretAccessKey,
        region: record.region,
        createdAt: now.toISOString(),
      },
      () =>
        [
          `SigV4 key pair for tenant ${id}. The secret is shown this once; store it now:`,
          "",
          `  AWS_ACCESS_KEY_ID=${pair.accessKeyId}`,
          `  AWS_SECRET_ACCESS_KEY=${pair.secretAccessKey}`,
          "",
          `Use with: aws events put-partner-events --endpoint-url <relay URL> --region ${record.region} --entries ...`,
        ].join("\n"),
    );
  },
};

const sigv4List: CommandSpec = {
  name: "sigv4 list",
  summary: "list a tenant's SigV4 access key ids (never the secrets)",
  args: "<id>",
  minPositionals: 1,
  maxPositionals: 1,
  options: {},
  examples: ["sigv4 list acme"],
  async run(ctx, { positionals }) {
    const id = assertTenantId(positionals[0]!);
    const record = await loadTenant(ctx.kv, id);
    const keys = record.sigv4Keys.map((k) => ({ accessKeyId: k.accessKeyId, createdAt: k.createdAt }));
    ctx.out.result({ tenantId: id, sigv4Keys: keys }, () =>
      keys.length === 0
        ? `tenant ${id} has no SigV4 key pairs; create one with \`sigv4 create ${id}\``
        : table(
            ["ACCESS KEY ID", "CREATED"],
            keys.map((k) => [k.accessKeyId, k.createdAt]),
          ),
    );
  },
};

const sigv4Revoke: CommandSpec = {
  name: "sigv4 revoke",
  summary: "revoke a SigV4 key pair: refused from the very next request",
  args: "<id> <accessKeyId>",
  minPositionals: 2,
  maxPositionals: 2,
  options: { ...SKIP_RELAY_OPTION },
  details:
    "Order: (1) the relay's Durable Object records the access key id as revoked (forever), (2) the record\n" +
    "is written without the pair, (3) its index entry sigv4:<accessKeyId> is deleted.",
  examples: ["sigv4 revoke acme RLYABCDEFGHIJKLMNOPQ"],
  async run(ctx, { values, positionals }) {
    const id = assertTenantId(positionals[0]!);
    const accessKeyId = positionals[1]!;
    if (!SIGV4_ACCESS_KEY_PATTERN.test(accessKeyId) && !/^\w{16,128}$/.test(accessKeyId)) {
      throw usageError(`"${clip(accessKeyId)}" is not an access key id (RLY...; see \`sigv4 list ${id}\`)`);
    }
    assertRelayConfigured(ctx, bool(values, "skip-relay"));
    const record = await loadTenant(ctx.kv, id);
    if (!record.sigv4Keys.some((k) => k.accessKeyId === accessKeyId)) {
      throw notFound(`tenant ${id} has no SigV4 key pair ${accessKeyId} (see \`sigv4 list ${id}\`)`);
    }
    const plan = await planRelay(ctx, bool(values, "skip-relay"));
    const now = ctx.now();
    const next = nextRevision(
      record,
      { sigv4Keys: record.sigv4Keys.filter((k) => k.accessKeyId !== accessKeyId) },
      now,
    );
    await applyAccess(plan, id, {
      revision: next.revision,
      status: record.status,
      revokeApiKeyIds: [],
      revokeAccessKeyIds: [accessKeyId],
    });
    await ctx.kv.putMany([recordEntry(next)]);
    await ctx.kv.deleteMany([KV.sigv4(accessKeyId)]);
    ctx.out.result(
      { tenantId: id, accessKeyId, revoked: true, revision: next.revision, relay: plan.outcome },
      () => `revoked SigV4 key pair ${accessKeyId} of tenant ${id} (relay: ${plan.outcome})`,
    );
  },
};

export const sigv4Commands: CommandSpec[] = [sigv4Create, sigv4List, sigv4Revoke];
