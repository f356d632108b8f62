/**
 * `source create|list|show|refresh|delete|import`: a tenant's partner event sources, held by its
 * Durable Object and managed through the relay's admin API (docs/sources.md). Thin: the library
 * is src/admin/sources.ts; this parses and prints. Every command needs the relay.
 */
import {
  assertSourceName,
  createSource,
  deleteSource,
  formatSource,
  importSources,
  listSources,
  refreshSources,
  showSource,
} from "../../../src/admin/sources.ts";
import { assertTenantId } from "../../../src/admin/store.ts";
import type { SourceView } from "../../../src/sources/view.ts";
import { type CommandSpec, str } from "../args.ts";
import { usageError } from "../errors.ts";
import { fields, table } from "../output.ts";

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
    const name = str(values, "name");
    const account = str(values, "account");
    if (!name) throw usageError("--name is required: the partner event source name");
    if (!account) throw usageError("--account is required: the customer's 12-digit AWS account id");
    const out = await createSource(ctx.admin, id, assertSourceName(name, "--name"), account);
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
    const sources = await listSources(ctx.admin, id);
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
    const s = await showSource(ctx.admin, id, assertSourceName(positionals[1], "<source>"));
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
    const name = positionals[1] === undefined ? null : assertSourceName(positionals[1], "<source>");
    const sources = await refreshSources(ctx.admin, id, name);
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
    const s = await deleteSource(ctx.admin, id, assertSourceName(positionals[1], "<source>"));
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
    const out = await importSources(ctx.admin, id);
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
