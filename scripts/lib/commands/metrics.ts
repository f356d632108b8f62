/**
 * `metrics <id> [--since 1h] --remote`: a tenant's per-minute numbers from Workers Analytics
 * Engine (docs/metrics.md). The queries and the SQL API call are scripts/lib/metrics.ts; this is
 * the command around them.
 */
import { assertTenantId } from "../../../src/admin/store.ts";
import { type CommandSpec, str } from "../args.ts";
import { CliError, EXIT, usageError } from "../errors.ts";
import {
  LOCAL_METRICS_MESSAGE,
  MetricsError,
  parseSince,
  type Row,
  sqlApiSettings,
  tenantMetrics,
} from "../metrics.ts";
import { table } from "../output.ts";

const cell = (v: Row[string] | undefined) =>
  v === null || v === undefined ? "-" : typeof v === "number" ? String(Math.round(v * 100) / 100) : v;

function rowsTable(title: string, rows: Row[], columns: string[]): string {
  if (rows.length === 0) return `${title}: no data points in this window`;
  return `${title}\n${table(
    columns,
    rows.map((r) => columns.map((c) => cell(r[c]))),
  )}`;
}

const metrics: CommandSpec = {
  name: "metrics",
  summary: "a tenant's per-minute metrics from Workers Analytics Engine (--remote)",
  args: "<id>",
  minPositionals: 1,
  maxPositionals: 1,
  options: {
    since: { type: "string", value: "<duration>", help: "how far back: 30m, 1h (default), 7d; at most 90d" },
  },
  details:
    "Reads the METRICS dataset through the Analytics Engine SQL API: needs CLOUDFLARE_ACCOUNT_ID and CLOUDFLARE_API_TOKEN (Account Analytics: Read). Without --remote, explains how to see data points locally (LOG_LEVEL=info).",
  examples: ["metrics acme --remote", "metrics acme --remote --since 1d --json"],
  async run(ctx, { positionals, values }) {
    const id = assertTenantId(positionals[0]!);
    try {
      const since = parseSince(str(values, "since") ?? "1h");
      if (ctx.mode !== "remote") throw new CliError(LOCAL_METRICS_MESSAGE, EXIT.usage);
      const m = await tenantMetrics(sqlApiSettings(ctx.env), id, since);
      ctx.out.result(m, () =>
        [
          `tenant ${id}, the last ${str(values, "since") ?? "1h"} (weighted by _sample_interval)`,
          rowsTable("ingest per minute", m.ingest, [
            "minute",
            "requests",
            "accepted",
            "delivered",
            "queued",
            "failed",
            "throttled",
            "latency_p50_ms",
            "latency_p99_ms",
          ]),
          rowsTable("drain per minute", m.drain, [
            "minute",
            "calls",
            "entries",
            "delivered",
            "retried",
            "dead_lettered",
            "throttled",
            "upstream_p50_ms",
            "upstream_p99_ms",
          ]),
          rowsTable("refused requests", m.refusals, ["code", "status", "requests"]),
        ].join("\n\n"),
      );
    } catch (e) {
      if (!(e instanceof MetricsError)) throw e;
      if (e.kind === "usage") throw usageError(e.message);
      throw new CliError(e.message, EXIT.failure);
    }
  },
};

export const metricsCommands: CommandSpec[] = [metrics];
