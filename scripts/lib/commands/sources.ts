/**
 * `source create|list|show|refresh|delete|import`: a tenant's partner event sources, held by its
 * Durable Object and managed through the relay's admin API (docs/sources.md). Thin: the calls
 * are src/admin/sources.ts; this parses, checks and prints. Every command needs the relay.
 */
import {
  AdminApiError,
  type AdminTarget,
  createSource,
  deleteSource,
  formatSource,
  importSources,
  listSources,
  refreshSources,
  showSource,
} from "../../../src/admin/sources.ts";
import { SOURCE_PATTERN } from "../../../src/limits.ts";
import type { SourceView } from "../../../src/sources/view.ts";
import { type CommandSpec, clip, str } from "../args.ts";
import { type Context, readDevVars } from "../context.ts";
import { CliError, EXIT, usageError } from "../errors.ts";
import { fields, table } from "../output.ts";
import { assertTenantId, loadTenant } from "../tenant-store.ts";

const ACCOUNT_PATTERN = /^\d{12}$/;

function sourceName(raw: string | undefined, what = "--name"): string {
  if (!raw)
    throw usageError(`${what} is required: the partner event source name (aws.partner/<partner>/<namespace>/<name>)`);
  if (raw.length > 256 || !SOURCE_PATTERN.test(raw)) {
    throw usageError(
      `${what} "${clip(raw)}" is not a partner event source name (aws.partner/<partner>/<namespace>/<name>)`,
    );
  }
  return raw;
}

/** The relay's admin API as the library needs it: the URL and token the other relay commands use. */
function target(ctx: Context): AdminTarget {
  const client = ctx.relay(); // checks --url / RELAY_URL / --remote settings (CliError when missing)
  const token =
    ctx.env.RELAY_ADMIN_TOKEN || (ctx.mode === "local" ? readDevVars(ctx.devVarsPath).ADMIN_TOKEN : undefined) || "";
  return { url: client.baseUrl, token };
}

/** Runs one library call; an unreachable relay and the admin API's refusals become CLI errors. */
async function call<T>(ctx: Context, id: string, fn: (t: AdminTarget) => Promise<T>): Promise<T> {
  const t = target(ctx);
  await loadTenant(ctx.kv, id);
  try {
    return await fn(t);
  } catch (e) {
    if (e instanceof AdminApiError) {
      const exit = e.status === 404 ? EXIT.notFound : e.status === 400 || e.status === 403 ? EXIT.usage : EXIT.failure;
      throw new CliError(`the relay refused (${e.status} ${e.code}): ${e.message}`, exit);
    }
    if (e instanceof TypeError) {
      throw new CliError(
        ctx.mode === "local"
          ? `this command needs the relay, and none answers at ${t.url}: start it with \`npm start\` (or pass --url / set RELAY_URL).`
          : `this command needs the relay, and ${t.url} does not answer. Check RELAY_URL and the deployment.`,
        EXIT.failure,
      );
    }
    throw e;
  }
}

function detail(s: SourceView): string {
  return fields([
    ["name", s.name],
    ["state", s.state],
    ["account", s.account ?? "-"],
    ["managed", s.managed ? "yes (created or adopted here)" : "no (looked up on first use)"],
    ["warning", s.warning ?? "-"],
    ["arn", s.arn ?? "-"],
    ["created (AWS)", s.creationTime ?? "-"],
    ["expires (AWS)", s.expirationTime ?? "-"],
    ["state read", s.checkedAt ?? "never"],
    ["next read", s.nextCheckAt ?? "-"],
    ["last error", s.lastError ?? "-"],
    ["held", `${s.held.entries} entries, ${s.held.bytes} bytes`],
  ]);
}

const create: CommandSpec = {
  name: "source create",
  summary: "create a partner event source for a customer's AWS account (an existing one is adopted)",
  args: "<id>",
  minPositionals: 1,
  maxPositionals: 1,
  options: {
    name: {
      type: "string",
      value: "<source>",
      help: "aws.partner/<partner>/<namespace>/<name>, under the tenant's sources",
    },
    account: { type: "string", value: "<12 digits>", help: "the customer's AWS account id" },
  },
  details:
    "Calls CreatePartnerEventSource with the tenant's AWS credentials. The source is PENDING until the customer creates the matching event bus; events for it are held until then (docs/sources.md).",
  examples: ["source create acme --name aws.partner/acme.com/cust-42/orders --account 123456789012"],
  async run(ctx, { values, positionals }) {
    const id = assertTenantId(positionals[0]!);
    const name = sourceName(str(values, "name"));
    const account = str(values, "account");
    if (!account || !ACCOUNT_PATTERN.test(account))
      throw usageError("--account is the customer's 12-digit AWS account id");
    const out = await call(ctx, id, (t) => createSource(t, id, name, account));
    ctx.out.result(
      { tenantId: id, ...out },
      () => `${out.created ? "created" : "adopted"}: ${formatSource(out.source)}`,
    );
  },
};

const list: CommandSpec = {
  name: "source list",
  summary: "a tenant's partner event sources with their states",
  args: "<id>",
  minPositionals: 1,
  maxPositionals: 1,
  options: {},
  examples: ["source list acme", "source list acme --json"],
  async run(ctx, { positionals }) {
    const id = assertTenantId(positionals[0]!);
    const sources = await call(ctx, id, (t) => listSources(t, id));
    ctx.out.result({ tenantId: id, sources }, () =>
      sources.length === 0
        ? `tenant ${id} has no partner event sources (source create / source import)`
        : table(
            ["STATE", "NAME", "ACCOUNT", "HELD", "STATE READ", "NOTE"],
            sources.map((s) => [
              s.state,
              s.name,
              s.account ?? "-",
              String(s.held.entries),
              s.checkedAt ?? "never",
              s.warning ? "unverifiable" : s.managed ? "" : "looked up",
            ]),
          ),
    );
  },
};

const show: CommandSpec = {
  name: "source show",
  summary: "one partner event source: state, AWS times, reads, what is held",
  args: "<id> <source>",
  minPositionals: 2,
  maxPositionals: 2,
  options: {},
  examples: ["source show acme aws.partner/acme.com/cust-42/orders"],
  async run(ctx, { positionals }) {
    const id = assertTenantId(positionals[0]!);
    const name = sourceName(positionals[1], "<source>");
    const s = await call(ctx, id, (t) => showSource(t, id, name));
    ctx.out.result({ tenantId: id, source: s }, () => detail(s));
  },
};

const refresh: CommandSpec = {
  name: "source refresh",
  summary: "read the state now (ListPartnerEventSourceAccounts): one source, or every one not DELETED",
  args: "<id> [<source>]",
  minPositionals: 1,
  maxPositionals: 2,
  options: {},
  examples: ["source refresh acme aws.partner/acme.com/cust-42/orders", "source refresh acme"],
  async run(ctx, { positionals }) {
    const id = assertTenantId(positionals[0]!);
    const name = positionals[1] === undefined ? null : sourceName(positionals[1], "<source>");
    const sources = await call(ctx, id, (t) => refreshSources(t, id, name));
    ctx.out.result({ tenantId: id, sources }, () =>
      sources.length === 0 ? `tenant ${id} has no source to read` : sources.map(formatSource).join("\n"),
    );
  },
};

const remove: CommandSpec = {
  name: "source delete",
  summary: "delete a partner event source (DeletePartnerEventSource); its held entries are dead-lettered",
  args: "<id> <source>",
  minPositionals: 2,
  maxPositionals: 2,
  options: {},
  examples: ["source delete acme aws.partner/acme.com/cust-42/orders"],
  async run(ctx, { positionals }) {
    const id = assertTenantId(positionals[0]!);
    const name = sourceName(positionals[1], "<source>");
    const s = await call(ctx, id, (t) => deleteSource(t, id, name));
    ctx.out.result({ tenantId: id, source: s }, () => `deleted: ${formatSource(s)}`);
  },
};

const importCmd: CommandSpec = {
  name: "source import",
  summary: "adopt the partner event sources that exist under the tenant's names",
  args: "<id>",
  minPositionals: 1,
  maxPositionals: 1,
  options: {},
  details:
    "ListPartnerEventSources per source rule, then ListPartnerEventSourceAccounts per source, within the tenant's control-plane budget; run it again if it says it stopped early.",
  examples: ["source import acme", "source import acme --json"],
  async run(ctx, { positionals }) {
    const id = assertTenantId(positionals[0]!);
    const out = await call(ctx, id, (t) => importSources(t, id));
    ctx.out.result(
      { tenantId: id, ...out },
      () =>
        `imported ${out.imported.length} source(s)${out.imported.length ? `: ${out.imported.join(", ")}` : ""}` +
        (out.skipped.length ? `\nalready managed: ${out.skipped.join(", ")}` : "") +
        (out.complete ? "" : "\nstopped early (budget or limit): run it again"),
    );
  },
};

export const sourceCommands: CommandSpec[] = [create, list, show, refresh, remove, importCmd];
