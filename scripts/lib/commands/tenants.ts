/**
 * Tenant lifecycle: create, list, show, update, disable, enable, delete.
 */
import { MAX_BURST, MAX_RATE_PER_SECOND } from "../../../src/limits.ts";
import {
  endpointSchema,
  KV,
  regionSchema,
  sourceRuleSchema,
  TENANT_SCHEMA_VERSION,
  type TenantLimits,
  type TenantRecord,
} from "../../../src/tenants/record.ts";
import { applyAccess, assertRelayConfigured, planRelay } from "../access.ts";
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
import { CliError, conflict, EXIT, notFound, usageError } from "../errors.ts";
import { dash, fields, table } from "../output.ts";
import { RelayHttpError, RelayUnreachableError } from "../relay-client.ts";
import {
  assertTenantId,
  firstIssue,
  indexKeys,
  isLive,
  listTenants,
  loadTenant,
  loadTenantOrNull,
  nextRevision,
  publicView,
  recordEntry,
  validateRecord,
} from "../tenant-store.ts";

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
  const qe = str(values, "max-queued-entries");
  if (qe !== undefined)
    flags.limits.maxQueuedEntries = parseIntFlag("max-queued-entries", qe, 0, MAX_QUEUED_ENTRIES_FLAG);
  const qb = str(values, "max-queued-bytes");
  if (qb !== undefined) flags.limits.maxQueuedBytes = parseIntFlag("max-queued-bytes", qb, 0, MAX_QUEUED_BYTES_FLAG);
  return flags;
}

/** True when some source could match both rules (exact names and `prefix*` rules). */
export function rulesOverlap(a: string, b: string): boolean {
  const pa = a.endsWith("*") ? a.slice(0, -1) : null;
  const pb = b.endsWith("*") ? b.slice(0, -1) : null;
  if (pa === null && pb === null) return a === b;
  if (pa !== null && pb !== null) return pa.startsWith(pb) || pb.startsWith(pa);
  if (pa !== null) return b.startsWith(pa);
  return a.startsWith(pb!);
}

function assertNoSharedSources(id: string, sources: readonly string[], others: readonly TenantRecord[]): void {
  for (const other of others) {
    if (other.id === id) continue;
    for (const mine of sources) {
      const clash = other.sources.find((theirs) => rulesOverlap(mine, theirs));
      if (clash) {
        throw conflict(
          `source "${mine}" overlaps tenant ${other.id}'s "${clash}": each partner event source should belong to one ` +
            "tenant. Pass --allow-shared-source if both tenants really send as it.",
        );
      }
    }
  }
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
    const now = ctx.now();
    const record = validateRecord({
      schemaVersion: TENANT_SCHEMA_VERSION,
      id,
      name: flags.name,
      status: "active",
      // Revisions start at the creation time in ms, so a re-created tenant outranks anything the
      // relay's Durable Object still remembers about an earlier tenant with the same id.
      revision: now.getTime(),
      sources: flags.sources,
      region: flags.region,
      endpoint: flags.endpoint ?? null,
      limits: flags.limits,
      credentials: null,
      apiKeys: [],
      sigv4Keys: [],
      createdAt: now.toISOString(),
      updatedAt: now.toISOString(),
    });
    const existing = await listTenants(ctx.kv);
    if (existing.some((t) => t.id === id)) throw conflict(`tenant "${id}" already exists (see \`show ${id}\`)`);
    if (!bool(values, "allow-shared-source")) {
      assertNoSharedSources(
        id,
        record.sources,
        existing.flatMap((t) => (t.record ? [t.record] : [])),
      );
    }
    await ctx.kv.putMany([recordEntry(record)]);
    if (record.endpoint && ctx.mode === "remote") {
      ctx.out.note("the endpoint override is ignored unless the Worker runs with ALLOW_ENDPOINT_OVERRIDE=true");
    }
    ctx.out.result(publicView(record, now), () =>
      [
        `created tenant ${id} (${ctx.mode})`,
        "",
        describe(record, now),
        "",
        `next: npm run tenant -- credentials set ${id} --access-key-id <AKIA...> --secret-access-key-stdin`,
        `      npm run tenant -- key create ${id}`,
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
    const now = ctx.now();
    const tenants = await listTenants(ctx.kv);
    for (const t of tenants) if (t.problem) ctx.out.warn(`tenant:${t.id}: ${t.problem}`);
    ctx.out.result(
      { tenants: tenants.map((t) => (t.record ? publicView(t.record, now) : { id: t.id, invalid: t.problem })) },
      () =>
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
    const id = assertTenantId(positionals[0]!);
    const record = await loadTenant(ctx.kv, id);
    const now = ctx.now();
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
    const changed =
      flags.name !== undefined ||
      flags.sources !== undefined ||
      flags.region !== undefined ||
      flags.endpoint !== undefined ||
      Object.keys(flags.limits).length > 0;
    if (!changed) throw usageError("update: nothing to change (give at least one of the flags below)");
    let record: TenantRecord;
    if (flags.sources && !bool(values, "allow-shared-source")) {
      // One listing gives the record and everyone else's sources (2 wrangler calls).
      const all = await listTenants(ctx.kv);
      const mine = all.find((t) => t.id === id);
      if (!mine) throw notFound(`unknown tenant "${id}" (see \`npm run tenant -- list\`)`);
      if (!mine.record) throw new CliError(mine.problem ?? `tenant:${id} is unreadable`);
      record = mine.record;
      assertNoSharedSources(
        id,
        flags.sources,
        all.flatMap((t) => (t.record ? [t.record] : [])),
      );
    } else {
      record = await loadTenant(ctx.kv, id);
    }
    const now = ctx.now();
    const next = nextRevision(
      record,
      {
        ...(flags.name !== undefined ? { name: flags.name } : {}),
        ...(flags.sources !== undefined ? { sources: flags.sources } : {}),
        ...(flags.region !== undefined ? { region: flags.region } : {}),
        ...(flags.endpoint !== undefined ? { endpoint: flags.endpoint } : {}),
        limits: { ...record.limits, ...flags.limits },
      },
      now,
    );
    await ctx.kv.putMany([recordEntry(next)]);
    if (flags.endpoint && ctx.mode === "remote") {
      ctx.out.note("the endpoint override is ignored unless the Worker runs with ALLOW_ENDPOINT_OVERRIDE=true");
    }
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
    assertRelayConfigured(ctx, bool(values, "skip-relay"));
    const record = await loadTenant(ctx.kv, id);
    const plan = await planRelay(ctx, bool(values, "skip-relay"));
    const now = ctx.now();
    const next = nextRevision(record, { status: "disabled" }, now);
    await applyAccess(plan, id, {
      revision: next.revision,
      status: "disabled",
      revokeApiKeyIds: [],
      revokeAccessKeyIds: [],
    });
    await ctx.kv.putMany([recordEntry(next)]);
    ctx.out.result(
      { tenantId: id, status: next.status, revision: next.revision, relay: plan.outcome },
      () => `disabled tenant ${id} (revision ${next.revision}; relay: ${plan.outcome})`,
    );
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
    assertRelayConfigured(ctx, bool(values, "skip-relay"));
    const record = await loadTenant(ctx.kv, id);
    const plan = await planRelay(ctx, bool(values, "skip-relay"));
    const now = ctx.now();
    const next = nextRevision(record, { status: "active" }, now);
    await ctx.kv.putMany([recordEntry(next)]);
    await applyAccess(
      plan,
      id,
      { revision: next.revision, status: "active", revokeApiKeyIds: [], revokeAccessKeyIds: [] },
      true,
    );
    ctx.out.result(
      { tenantId: id, status: next.status, revision: next.revision, relay: plan.outcome },
      () => `enabled tenant ${id} (revision ${next.revision}; relay: ${plan.outcome})`,
    );
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
    const force = bool(values, "force");
    assertRelayConfigured(ctx, bool(values, "skip-relay"));
    const record = await loadTenantOrNull(ctx.kv, id);
    if (!record && !force) throw notFound(`unknown tenant "${id}" (see \`npm run tenant -- list\`)`);
    const plan = await planRelay(ctx, bool(values, "skip-relay"));
    if (plan.client && !force) {
      let queued = 0;
      try {
        const status = await plan.client.status(id);
        queued = Number(status.queued ?? 0);
      } catch (e) {
        if (!(e instanceof RelayHttpError && e.status === 404)) throw e;
      }
      if (queued > 0) {
        throw conflict(
          `tenant ${id} still has ${queued} queued event(s) the relay has accepted but not delivered. Wait for them ` +
            "(`status " +
            id +
            "`), or pass --force to drop them. Nothing was changed.",
        );
      }
    }
    // Without a record (an earlier delete stopped after step 3), the ids are unknown, but a
    // disabled status at the current time still outranks any record a cache may hold.
    const tombstone = record
      ? {
          revision: record.revision + 1,
          status: "disabled" as const,
          revokeApiKeyIds: record.apiKeys.map((k) => k.id),
          revokeAccessKeyIds: record.sigv4Keys.map((k) => k.accessKeyId),
        }
      : { revision: ctx.now().getTime(), status: "disabled" as const, revokeApiKeyIds: [], revokeAccessKeyIds: [] };
    if (record) {
      await applyAccess(plan, id, tombstone);
      // (2) then (3), in one call: the index entries first, the record last.
      await ctx.kv.deleteMany([...indexKeys(record), KV.tenant(id)]);
    } else {
      ctx.out.note(`no record tenant:${id} in KV; purging the relay state only`);
    }
    let purged: "purged" | "skipped" = "skipped";
    if (plan.client) {
      try {
        await plan.client.purge(id, force);
        purged = "purged";
        // (5) The purge also wiped the revocations and the disabled status, while Worker isolates
        // and KV edge caches may still hold the old record for a minute: leave a tombstone.
        await applyAccess(plan, id, tombstone);
      } catch (e) {
        if (e instanceof RelayHttpError && e.status === 404) purged = "purged";
        else if (e instanceof RelayHttpError && e.status === 409) {
          throw new CliError(
            `tenant ${id} is deleted from KV and disabled in the relay, but events were queued meanwhile and the relay kept ` +
              `its state: run \`delete ${id} --force\` to drop them.`,
            EXIT.conflict,
          );
        } else if (e instanceof RelayUnreachableError) {
          throw new CliError(
            `tenant ${id} is deleted from KV and disabled in the relay, but the final purge failed (${e.message}): run \`delete ${id} --force\` again.`,
          );
        } else throw e;
      }
    }
    ctx.out.result(
      {
        tenantId: id,
        deleted: record !== null,
        indexEntriesDeleted: record ? indexKeys(record).length : 0,
        relay: plan.outcome,
        relayState: purged,
      },
      () =>
        `deleted tenant ${id}` +
        (record ? ` (${record.apiKeys.length} API key(s), ${record.sigv4Keys.length} SigV4 pair(s))` : "") +
        `; relay: ${plan.outcome}${plan.client ? ", state purged" : ""}`,
    );
  },
};

export const tenantCommands: CommandSpec[] = [create, list, show, update, disable, enable, remove];
