/**
 * Relay-issued SigV4 key pairs, for the AWS CLI and SDKs (src/admin/sigv4.ts).
 */
import { createSigV4Pair, listSigV4Pairs, revokeSigV4Pair } from "../../../src/admin/sigv4.ts";
import { assertTenantId } from "../../../src/admin/store.ts";
import { MAX_SIGV4_KEYS_PER_TENANT } from "../../../src/limits.ts";
import { bool, type CommandSpec, SKIP_RELAY_OPTION } from "../args.ts";
import { table } from "../output.ts";

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
    const pair = await createSigV4Pair(ctx.admin, id);
    ctx.out.result(pair, () =>
      [
        `SigV4 key pair for tenant ${id}. The secret is shown this once; store it now:`,
        "",
        `  AWS_ACCESS_KEY_ID=${pair.accessKeyId}`,
        `  AWS_SECRET_ACCESS_KEY=${pair.secretAccessKey}`,
        "",
        `Use with: aws events put-partner-events --endpoint-url <relay URL> --region ${pair.region} --entries ...`,
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
    const listed = await listSigV4Pairs(ctx.admin, id);
    ctx.out.result(listed, () =>
      listed.sigv4Keys.length === 0
        ? `tenant ${id} has no SigV4 key pairs; create one with \`sigv4 create ${id}\``
        : table(
            ["ACCESS KEY ID", "CREATED"],
            listed.sigv4Keys.map((k) => [k.accessKeyId, k.createdAt]),
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
    const r = await revokeSigV4Pair(ctx.admin, id, positionals[1]!, { skipRelay: bool(values, "skip-relay") });
    ctx.out.result(
      { tenantId: r.tenantId, accessKeyId: r.accessKeyId, revoked: r.revoked, revision: r.revision, relay: r.relay },
      () => `revoked SigV4 key pair ${r.accessKeyId} of tenant ${id} (relay: ${r.relay})`,
    );
  },
};

export const sigv4Commands: CommandSpec[] = [sigv4Create, sigv4List, sigv4Revoke];
