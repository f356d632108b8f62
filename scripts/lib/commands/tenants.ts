/**
 * Tenant lifecycle: create, list, show, update, disable, enable, delete.
 */

import { assertTenantId, firstIssue, isLive, publicView } from "../../../src/admin/store.ts";
import {
  createTenant,
  deleteTenant,
  disableTenant,
  enableTenant,
  hasChanges,
  listAllTenants,
  listView,
  showTenant,
  updateTenant,
} from "../../../src/admin/tenants.ts";
import { MAX_BURST, MAX_RATE_PER_SECOND, MAX_SHARDS, SHARD_TARGET_REQUESTS_PER_SECOND } from "../../../src/limits.ts";
import {
  endpointSchema,
  regionSchema,
  sourceRuleSchema,
  type TenantLimits,
  type TenantRecord,
} from "../../../src/tenants/record.ts";
import {
  bool,
  type CommandSpec,
  clip,
  type Options,
  parseIntFlag,
  parsePositiveNumberFlag,
  SKIP_RELAY_OPTION,
  str,
  strs,
  type Values,
} from "../args.ts";
import { usageError } from "../errors.ts";
import { dash, fields, table } from "../output.ts";

/** Longest tenant display name, in characters (record schema). */
const MAX_NAME_CHARS = 200;
/** Largest queued-entries / queued-bytes caps the CLI accepts (DO storage: 10 GB per object). */
const MAX_QUEUED_ENTRIES_FLAG = 10_000_000;
const MAX_QUEUED_BYTES_FLAG = 10_000_000_000;

const TENANT_OPTIONS: Options = {
  name: { type: "string", value: "<name>", help: "display name (1-200 characters)" },
  source: {
    type: "string",
    multiple: true,
    value: "<source>",
    help: "partner event source the tenant owns: aws.partner/<domain>/<name>, or a prefix ending in *",
  },
  region: { type: "string", value: "<aws-region>", help: "AWS region of the partner event bus, e.g. us-east-1" },
  endpoint: {
    type: "string",
    value: "<url>",
    help: "upstream origin instead of events.<region>.amazonaws.com (honoured only where ALLOW_ENDPOINT_OVERRIDE=true)",
  },
  rate: {
    type: "string",
    value: "<requests/s>",
    help: `PutPartnerEvents requests per second toward AWS (max ${MAX_RATE_PER_SECOND})`,
  },
  burst: { type: "string", value: "<n>", help: `requests the token bucket holds (1-${MAX_BURST})` },
  shards: {
    type: "string",
    value: "<n>",
    help: `Durable Object shards the tenant is spread over, each taking rate/N (1-${MAX_SHARDS}; docs/scaling.md)`,
  },
  "max-queued-entries": { type: "string", value: "<n>", help: "cap on entries buffered for later delivery" },
  "max-queued-bytes": { type: "string", value: "<n>", help: "cap on bytes buffered for later delivery" },
  "allow-shared-source": {
    type: "boolean",
    help: "allow sources that overlap another tenant's (both tenants may then send as them)",
  },
};

interface TenantFlags {
  name?: string;
  sources?: string[];
  region?: string;
  endpoint?: string | null;
  limits: Partial<TenantLimits>;
}

/** Validates create/update flags (all before any KV call). */
function parseTenantFlags(values: Values): TenantFlags {
  const flags: TenantFlags = { limits: {} };
  const name = str(values, "name");
  if (name !== undefined) {
    if (!name.trim()) throw usageError("--name must not be empty");
    if (name.length > MAX_NAME_CHARS) throw usageError(`--name is at most ${MAX_NAME_CHARS} characters`);
    if (/[\u0000-\u001f\u007f]/.test(name)) throw usageError("--name must not contain control characters");
    flags.name = name;
  }
  const sources = strs(values, "source");
  if (sources.length) {
    for (const s of sources) {
      const r = sourceRuleSchema.safeParse(s);
      if (!r.success) throw usageError(`invalid --source "${clip(s)}": ${firstIssue(r.error)}`);
    }
    flags.sources = [...new Set(sources)];
  }
  const region = str(values, "region");
  if (region !== undefined) {
    const r = regionSchema.safeParse(region);
    if (!r.success) throw usageError(`invalid --region "${clip(region)}": ${firstIssue(r.error)}`);
    flags.region = region;
  }
  const endpoint = str(values, "endpoint");
  if (endpoint !== undefined && bool(values, "clear-endpoint")) {
    throw usageError("--endpoint and --clear-endpoint exclude each other");
  }
  if (endpoint !== undefined) {
    const r = endpointSchema.safeParse(endpoint);
    if (!r.success) throw usageError(`invalid --endpoint "${clip(endpoint)}": ${firstIssue(r.error)}`);
    flags.endpoint = new URL(endpoint).origin;
  } else if (bool(values, "clear-endpoint")) {
    flags.endpoint = null;
  }
  const rate = str(values, "rate");
  if (rate !== undefined) flags.limits.ratePerSecond = parsePositiveNumberFlag("rate", rate, MAX_RATE_PER_SECOND);
  const burst = str(values, "burst");
  if (burst !== undefined) flags.limits.burst = parseIntFlag("burst", burst, 1, MAX_BURST);
  const shards = str(values, "shards");
  if (shards !== undefined) flags.limits.shards = parseIntFlag("shards", shards, 1, MAX_SHARDS);
  const qe = str(values, "max-queued-entries");
  if (qe !== undefined)
    flags.limits.maxQueuedEntries = parseIntFlag("max-queued-entries", qe, 0, MAX_QUEUED_ENTRIES_FLAG);
  const qb = str(values, "max-queued-bytes");
  if (qb !== undefined) flags.limits.maxQueuedBytes = parseIntFlag("max-queued-bytes", qb, 0, MAX_QUEUED_BYTES_FLAG);
  return flags;
}

/**
 * The shard count, and the relay's suggestion for the tenant's rate (docs/scaling.md): one shard
 * per SHARD_TARGET_REQUESTS_PER_SECOND of the rate. The relay never changes N on its own.
 */
function shardsLine(shards: number, ratePerSecond: number): string {
  const suggested = Math.min(MAX_SHARDS, Math.max(1, Math.ceil(ratePerSecond / SHARD_TARGET_REQUESTS_PER_SECOND)));
  return suggested === shards
    ? `${shards}`
    : `${shards} (suggested for ${ratePerSecond} requests/s: ${suggested}; \`update <id> --shards ${suggested}\`)`;
}

function describe(record: TenantRecord, now: Date): string {
  const v = publicView(record, now);
  const pairs: [string, string][] = [
    ["tenant", v.id],
    ["name", v.name],
    ["status", v.status],
    ["revision", String(v.revision)],
    ["sources", v.sources.join(", ")],
    ["region", v.region],
    ["endpoint", v.endpoint ?? `(default) https://events.${v.region}.amazonaws.com`],
    ["rate", `${v.limits.ratePerSecond} requests/s, burst ${v.limits.burst}`],
    ["shards", shardsLine(v.limits.shards ?? 1, v.limits.ratePerSecond)],
    ["buffer cap", `${v.limits.maxQueuedEntries} entries, ${v.limits.maxQueuedBytes} bytes`],
    [
      "credentials",
      !v.credentials
        ? "none (set with `credentials set`)"
        : "roleArn" in v.credentials
          ? `role ${v.credentials.roleArn}, external id ${v.credentials.externalId} (assumed with STS)`
          : `access key id ${v.credentials.accessKeyId}, secret sealed${v.credentials.sessionToken ? ", session token sealed" : ""}`,
    ],
    ["created", v.createdAt],
    ["updated", v.updatedAt],
  ];
  let text = fields(pairs);
  text += "\n\nAPI keys:\n";
  text += v.apiKeys.length
    ? indent(
        table(
          ["KEY ID", "CREATED", "EXPIRES", "STATE"],
          v.apiKeys.map((k) => [k.keyId, k.createdAt, dash(k.expiresAt), k.state]),
        ),
      )
    : "  none (create one with `key create`)";
  text += "\n\nSigV4 key pairs:\n";
  text += v.sigv4Keys.length
    ? indent(
        table(
          ["ACCESS KEY ID", "CREATED"],
          v.sigv4Keys.map((k) => [k.accessKeyId, k.createdAt]),
        ),
      )
    : "  none (create one with `sigv4 create`)";
  return text;
}

function indent(s: string): string {
  return s
    .split("\n")
    .map((l) => "  " + l)
    .join("\n");
}

// ---- create ------------------------------------------------------------------------------------

const create: CommandSpec = {
  name: "create",
  summary: "create a tenant (active, no keys yet)",
  args: "<id>",
  minPositionals: 1,
  maxPositionals: 1,
  options: TENANT_OPTIONS,
  details:
    "Required: --name, at least one --source, --region. Ids are 1-63 lower-case letters, digits and dashes.\n" +
    "A source another tenant already owns (or that overlaps one of its prefixes) is refused.",
  examples: [
    'create acme --name "Acme Corp" --source "aws.partner/acme.com/*" --region us-east-1',
    "create acme-eu --name Acme --source aws.partner/acme.com/prod/orders --region eu-west-1 --rate 50 --burst 100",
  ],
  async run(ctx, { values, positionals }) {
    const id = assertTenantId(positionals[0]!);
    const flags = parseTenantFlags(values);
    const missing = [!flags.name && "--name", !flags.sources && "--source", !flags.region && "--region"].filter(
      Boolean,
    );
    if (missing.length) throw usageError(`create needs ${missing.join(", ")}`);
    const record = await createTenant(ctx.admin, {
      id,
      name: flags.name!,
      sources: flags.sources!,
      region: flags.region!,
      endpoint: flags.endpoint ?? null,
      limits: flags.limits,
      allowSharedSource: bool(values, "allow-shared-source"),
    });
    const now = ctx.admin.now();
    ctx.out.result(publicView(record, now), () =>
      [
        `created tenant ${record.id} (${ctx.mode})`,
        "",
        describe(record, now),
        "",
        `next: npm run tenant -- credentials set ${record.id} --access-key-id <AKIA...> --secret-access-key-stdin`,
        `      npm run tenant -- key create ${record.id}`,
      ].join("\n"),
    );
  },
};

// ---- list / show ---------------------------------------------------------------------------------

const list: CommandSpec = {
  name: "list",
  summary: "list tenants",
  args: "",
  minPositionals: 0,
  maxPositionals: 0,
  options: {},
  examples: ["list", "list --remote --json"],
  async run(ctx) {
    const now = ctx.admin.now();
    const tenants = await listAllTenants(ctx.admin);
    ctx.out.result(listView(tenants, now), () =>
      tenants.length === 0
        ? `no tenants (${ctx.mode}); create one with \`npm run tenant -- create <id> ...\``
        : table(
            ["ID", "NAME", "STATUS", "REGION", "SOURCES", "KEYS", "SIGV4", "CREDENTIALS", "UPDATED"],
            tenants.map((t) => {
              const r = t.record;
              if (!r) return [t.id, "-", "INVALID", "-", "-", "-", "-", "-", "-"];
              return [
                r.id,
                r.name,
                r.status,
                r.region,
                r.sources.length === 1 ? r.sources[0]! : `${r.sources[0]} (+${r.sources.length - 1})`,
                String(r.apiKeys.filter((k) => isLive(k.expiresAt, now)).length),
                String(r.sigv4Keys.length),
                r.credentials ? "yes" : "no",
                r.updatedAt,
              ];
            }),
          ),
    );
  },
};

const show: CommandSpec = {
  name: "show",
  summary: "show a tenant (never a secret: key ids, the access key id, dates)",
  args: "<id>",
  minPositionals: 1,
  maxPositionals: 1,
  options: {},
  examples: ["show acme", "show acme --json"],
  async run(ctx, { positionals }) {
    const record = await showTenant(ctx.admin, assertTenantId(positionals[0]!));
    const now = ctx.admin.now();
    ctx.out.result(publicView(record, now), () => describe(record, now));
  },
};

// ---- update --------------------------------------------------------------------------------------

const update: CommandSpec = {
  name: "update",
  summary: "change a tenant's name, sources, region, endpoint or limits",
  args: "<id>",
  minPositionals: 1,
  maxPositionals: 1,
  options: {
    ...TENANT_OPTIONS,
    "clear-endpoint": { type: "boolean", help: "go back to the default AWS endpoint for the region" },
  },
  details: "--source replaces the whole source list (repeat it for several).",
  examples: [
    "update acme --rate 100 --burst 200",
    'update acme --source "aws.partner/acme.com/*" --source aws.partner/acme.io/x',
    "update acme --clear-endpoint",
  ],
  async run(ctx, { values, positionals }) {
    const id = assertTenantId(positionals[0]!);
    const flags = parseTenantFlags(values);
    const changes = { ...flags, allowSharedSource: bool(values, "allow-shared-source") };
    if (!hasChanges(changes)) throw usageError("update: nothing to change (give at least one of the flags below)");
    const next = await updateTenant(ctx.admin, id, changes);
    const now = ctx.admin.now();
    ctx.out.result(
      publicView(next, now),
      () => `updated tenant ${id} (revision ${next.revision})\n\n${describe(next, now)}`,
    );
  },
};

// ---- disable / enable ----------------------------------------------------------------------------

const disable: CommandSpec = {
  name: "disable",
  summary: "refuse all of a tenant's requests from the very next one (keys and queue are kept)",
  args: "<id>",
  minPositionals: 1,
  maxPositionals: 1,
  options: { ...SKIP_RELAY_OPTION },
  details:
    "Order: (1) the relay's Durable Object is set to disabled at the new revision, (2) the KV record is written.",
  examples: ["disable acme", "disable acme --remote"],
  async run(ctx, { values, positionals }) {
    const id = assertTenantId(positionals[0]!);
    const r = await disableTenant(ctx.admin, id, { skipRelay: bool(values, "skip-relay") });
    ctx.out.result(r, () => `disabled tenant ${id} (revision ${r.revision}; relay: ${r.relay})`);
  },
};

const enable: CommandSpec = {
  name: "enable",
  summary: "accept a disabled tenant's requests again",
  args: "<id>",
  minPositionals: 1,
  maxPositionals: 1,
  options: { ...SKIP_RELAY_OPTION },
  details:
    "Order: (1) the KV record is written, (2) the relay's Durable Object is set to active at the new revision.\n" +
    "A crash between the two leaves the tenant disabled (the Durable Object still says so): run enable again.",
  examples: ["enable acme"],
  async run(ctx, { values, positionals }) {
    const id = assertTenantId(positionals[0]!);
    const r = await enableTenant(ctx.admin, id, { skipRelay: bool(values, "skip-relay") });
    ctx.out.result(r, () => `enabled tenant ${id} (revision ${r.revision}; relay: ${r.relay})`);
  },
};

// ---- delete --------------------------------------------------------------------------------------

const remove: CommandSpec = {
  name: "delete",
  summary: "delete a tenant, its API-key and SigV4 index entries, and its relay state",
  args: "<id>",
  minPositionals: 1,
  maxPositionals: 1,
  options: {
    force: {
      type: "boolean",
      help: "delete even when the relay still holds queued events for it (they are dropped); also purges the relay state of a tenant whose record is already gone",
    },
    ...SKIP_RELAY_OPTION,
  },
  details:
    "Order: (1) the Durable Object is set to disabled with every key revoked, (2) the index entries and\n" +
    "(3) the record are deleted from KV, (4) the Durable Object's state is purged, (5) the disabled status\n" +
    "and revocations of (1) are written again as a tombstone (caches may hold the old record for a minute).\n" +
    "Without --force, a tenant with queued (not yet delivered) events is refused before anything changes.",
  examples: ["delete acme", "delete acme --force"],
  async run(ctx, { values, positionals }) {
    const id = assertTenantId(positionals[0]!);
    const r = await deleteTenant(ctx.admin, id, {
      force: bool(values, "force"),
      skipRelay: bool(values, "skip-relay"),
    });
    ctx.out.result(
      {
        tenantId: r.tenantId,
        deleted: r.deleted,
        indexEntriesDeleted: r.indexEntriesDeleted,
        relay: r.relay,
        relayState: r.relayState,
      },
      () =>
        `deleted tenant ${id}` +
        (r.deleted ? ` (${r.apiKeys} API key(s), ${r.sigv4Keys} SigV4 pair(s))` : "") +
        `; relay: ${r.relay}${r.relay === "applied" ? ", state purged" : ""}`,
    );
  },
};

export const tenantCommands: CommandSpec[] = [create, list, show, update, disable, enable, remove];
