/**
 * What the tenant's Durable Object holds: counters (`status`) and dead letters (`dlq list`,
 * `dlq replay`). These need the relay; an unreachable relay is an error here, also locally.
 */
import {
  DLQ_DEFAULT_LIMIT,
  DLQ_MAX_LIMIT,
  listDeadLetters,
  notDeadLetters,
  replayDeadLetters,
  tenantStatus,
} from "../../../src/admin/relay-state.ts";
import { assertTenantId } from "../../../src/admin/store.ts";
import { bool, type CommandSpec, clip, parseIntFlag, str } from "../args.ts";
import { usageError } from "../errors.ts";
import { dash, fields, humanMs, table } from "../output.ts";

function fmtTime(v: unknown): string {
  if (typeof v === "number") return new Date(v).toISOString();
  if (typeof v === "string") return v;
  return "-";
}

const status: CommandSpec = {
  name: "status",
  summary: "a tenant's delivery counters and queue, from its Durable Object",
  args: "<id>",
  minPositionals: 1,
  maxPositionals: 1,
  options: {},
  examples: ["status acme", "status acme --remote --json"],
  async run(ctx, { positionals }) {
    const id = assertTenantId(positionals[0]!);
    const s = await tenantStatus(ctx.admin, id);
    ctx.out.result(s, () => {
      const n = (v: unknown) => (typeof v === "number" ? String(v) : dash(v as string | undefined));
      const last = s.lastUpstreamError;
      const lastText =
        last === null || last === undefined
          ? "-"
          : typeof last === "string"
            ? last
            : JSON.stringify(last).slice(0, 300);
      const known = new Set([
        "accepted",
        "delivered",
        "failed",
        "queued",
        "queuedBytes",
        "oldestQueuedAgeMs",
        "deadLetters",
        "duplicatesPossible",
        "lastUpstreamError",
      ]);
      const extra = Object.entries(s)
        .filter(([k, v]) => !known.has(k) && (typeof v === "number" || typeof v === "string" || typeof v === "boolean"))
        .map(([k, v]) => [k, String(v)] as [string, string]);
      return fields([
        ["tenant", id],
        ["accepted", n(s.accepted)],
        ["delivered", n(s.delivered)],
        ["failed", n(s.failed)],
        ["queued", `${n(s.queued)} entries, ${n(s.queuedBytes)} bytes`],
        ["oldest queued", humanMs(s.oldestQueuedAgeMs ?? null)],
        ["dead letters", n(s.deadLetters)],
        ["duplicates possible", n(s.duplicatesPossible)],
        ["last upstream error", lastText],
        ...extra,
      ]);
    });
  },
};

const dlqList: CommandSpec = {
  name: "dlq list",
  summary: "list a tenant's dead letters (entries the relay gave up on, with the reason)",
  args: "<id>",
  minPositionals: 1,
  maxPositionals: 1,
  options: {
    limit: {
      type: "string",
      value: "<n>",
      help: `entries per page (1-${DLQ_MAX_LIMIT}, default ${DLQ_DEFAULT_LIMIT})`,
    },
    after: { type: "string", value: "<cursor>", help: "continue after this cursor (printed when there are more)" },
  },
  examples: ["dlq list acme", "dlq list acme --limit 200 --json"],
  async run(ctx, { values, positionals }) {
    const id = assertTenantId(positionals[0]!);
    const limitRaw = str(values, "limit");
    const limit = limitRaw === undefined ? DLQ_DEFAULT_LIMIT : parseIntFlag("limit", limitRaw, 1, DLQ_MAX_LIMIT);
    const after = str(values, "after");
    const page = await listDeadLetters(ctx.admin, id, { limit, ...(after ? { after } : {}) });
    const items = page.items;
    ctx.out.result(page, () => {
      if (items.length === 0) return `tenant ${id} has no dead letters${after ? " after that cursor" : ""}`;
      const rows = items.map((d) => [
        String(d.relayEventId),
        fmtTime(d.failedAt),
        String(d.attempts ?? "-"),
        `${d.errorCode ?? "-"}: ${clip(String(d.errorMessage ?? ""), 60)}`,
        String((d.entry as { Source?: unknown })?.Source ?? "-"),
        clip(String((d.entry as { DetailType?: unknown })?.DetailType ?? "-"), 40),
      ]);
      let text = table(["RELAY EVENT ID", "FAILED AT", "ATTEMPTS", "ERROR", "SOURCE", "DETAIL TYPE"], rows);
      if (page.next) text += `\n\nmore: npm run tenant -- dlq list ${id} --after ${page.next}`;
      text += `\nreplay: npm run tenant -- dlq replay ${id} --all   (or name relay event ids)`;
      return text;
    });
  },
};

const dlqReplay: CommandSpec = {
  name: "dlq replay",
  summary: "put dead letters back in the tenant's queue for another delivery attempt",
  args: "<id> [relayEventId...]",
  minPositionals: 1,
  maxPositionals: 1000,
  options: { all: { type: "boolean", help: "replay every dead letter of the tenant" } },
  details: "Give --all or one or more relay event ids (from `dlq list`). Ids the relay does not hold exit with code 3.",
  examples: ["dlq replay acme --all", "dlq replay acme rly_01JD3... rly_01JD4..."],
  async run(ctx, { values, positionals }) {
    const id = assertTenantId(positionals[0]!);
    const ids = positionals.slice(1);
    const all = bool(values, "all");
    if (all && ids.length) throw usageError("give either --all or relay event ids, not both");
    if (!all && ids.length === 0) throw usageError("dlq replay needs --all or at least one relay event id");
    const r = await replayDeadLetters(ctx.admin, id, all ? { all: true } : { relayEventIds: ids });
    ctx.out.result(
      r,
      () =>
        `replayed ${r.replayed} dead letter(s) of tenant ${id}` +
        (r.notFound.length ? `\nnot found: ${r.notFound.join(", ")}` : ""),
    );
    if (r.notFound.length) throw notDeadLetters(id, r.notFound);
  },
};

export const relayStateCommands: CommandSpec[] = [status, dlqList, dlqReplay];
