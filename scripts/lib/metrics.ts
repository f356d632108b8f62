/**
 * `npm run tenant -- metrics <id> --remote [--since 1h]`: a tenant's per-minute numbers from
 * Workers Analytics Engine, through the SQL API (docs/metrics.md). The queries are the ones
 * docs/metrics.md gives operators; the column names are src/metrics.ts's layout.
 *
 * Needs CLOUDFLARE_API_TOKEN (Account Analytics: Read) and CLOUDFLARE_ACCOUNT_ID.
 * CLOUDFLARE_API_BASE_URL overrides the API's base URL, as it does for wrangler.
 */
import { TENANT_ID_PATTERN } from "../../src/tenants/record.ts";

/** The dataset wrangler.toml binds as METRICS. */
export const METRICS_DATASET = "eventbridge_relay";
export const DEFAULT_API_BASE_URL = "https://api.cloudflare.com/client/v4";
/** Analytics Engine keeps data points for 3 months; the CLI asks for at most 90 days. */
export const MAX_SINCE_SECONDS = 90 * 86_400;

export class MetricsError extends Error {
  override name = "MetricsError";
  /** "config": nothing configured; "usage": a bad argument; "api": the SQL API refused or failed. */
  readonly kind: "config" | "usage" | "api";
  constructor(kind: "config" | "usage" | "api", message: string) {
    super(message);
    this.kind = kind;
  }
}

/** `--since`: a number and a unit (s, m, h, d), e.g. 90m, 1h, 7d; in seconds. */
export function parseSince(raw: string): number {
  const m = /^(\d+)([smhd])$/.exec(raw.trim());
  if (!m)
    throw new MetricsError(
      "usage",
      `--since must be a number and a unit (s, m, h, d), e.g. 1h or 7d; got ${JSON.stringify(raw)}`,
    );
  const seconds = Number(m[1]) * { s: 1, m: 60, h: 3600, d: 86_400 }[m[2] as "s" | "m" | "h" | "d"];
  if (seconds < 60 || seconds > MAX_SINCE_SECONDS) {
    throw new MetricsError("usage", "--since must be between 1m and 90d (Analytics Engine keeps 3 months)");
  }
  return seconds;
}

export interface MetricsQueries {
  ingest: string;
  drain: string;
  refusals: string;
}

/**
 * The three queries for one tenant over the last `sinceSeconds`: ingest per minute, drain per
 * minute (with upstream latency quantiles) and refusals by code. Every sum is weighted by
 * `_sample_interval` (each stored row stands for that many data points).
 */
export function buildMetricsQueries(tenantId: string, sinceSeconds: number, dataset = METRICS_DATASET): MetricsQueries {
  // The id goes into SQL: only the tenant-id alphabet is allowed, so nothing needs escaping.
  if (!TENANT_ID_PATTERN.test(tenantId)) {
    throw new MetricsError("usage", `not a tenant id: ${JSON.stringify(tenantId.slice(0, 70))}`);
  }
  if (!Number.isInteger(sinceSeconds) || sinceSeconds <= 0) throw new MetricsError("usage", "bad interval");
  const where = (kind: string) =>
    `WHERE index1 = '${tenantId}' AND blob1 = '${kind}' AND timestamp > NOW() - INTERVAL '${sinceSeconds}' SECOND`;
  const minute = "toStartOfInterval(timestamp, INTERVAL '1' MINUTE) AS minute";
  return {
    ingest: [
      `SELECT ${minute},`,
      "  SUM(_sample_interval) AS requests,",
      "  SUM(_sample_interval * (double2 + double3)) AS accepted,",
      "  SUM(_sample_interval * double2) AS delivered,",
      "  SUM(_sample_interval * double3) AS queued,",
      "  SUM(_sample_interval * double4) AS failed,",
      "  SUM(_sample_interval * double7) AS throttled,",
      "  quantileExactWeighted(0.5)(double6, _sample_interval) AS latency_p50_ms,",
      "  quantileExactWeighted(0.99)(double6, _sample_interval) AS latency_p99_ms",
      `FROM ${dataset}`,
      where("ingest"),
      "GROUP BY minute ORDER BY minute",
      "FORMAT JSON",
    ].join("\n"),
    drain: [
      `SELECT ${minute},`,
      "  SUM(_sample_interval) AS calls,",
      "  SUM(_sample_interval * double1) AS entries,",
      "  SUM(_sample_interval * double2) AS delivered,",
      "  SUM(_sample_interval * double3) AS retried,",
      "  SUM(_sample_interval * double4) AS dead_lettered,",
      "  SUM(_sample_interval * double7) AS throttled,",
      "  quantileExactWeighted(0.5)(double6, _sample_interval) AS upstream_p50_ms,",
      "  quantileExactWeighted(0.99)(double6, _sample_interval) AS upstream_p99_ms",
      `FROM ${dataset}`,
      where("drain"),
      "GROUP BY minute ORDER BY minute",
      "FORMAT JSON",
    ].join("\n"),
    refusals: [
      "SELECT blob5 AS code, blob3 AS status, SUM(_sample_interval) AS requests",
      `FROM ${dataset}`,
      `${where("ingest")} AND blob4 = 'refused'`,
      "GROUP BY code, status ORDER BY requests DESC",
      "FORMAT JSON",
    ].join("\n"),
  };
}

export interface SqlApiSettings {
  accountId: string;
  token: string;
  baseUrl: string;
}

/** Reads the SQL API's settings from the environment; a clear message when they are missing. */
export function sqlApiSettings(env: Record<string, string | undefined>): SqlApiSettings {
  const token = env.CLOUDFLARE_API_TOKEN?.trim();
  const accountId = env.CLOUDFLARE_ACCOUNT_ID?.trim();
  const missing = [!token && "CLOUDFLARE_API_TOKEN", !accountId && "CLOUDFLARE_ACCOUNT_ID"].filter(Boolean);
  if (missing.length > 0) {
    throw new MetricsError(
      "config",
      `metrics are read from Workers Analytics Engine's SQL API, which needs ${missing.join(" and ")}: set CLOUDFLARE_ACCOUNT_ID to your account id and CLOUDFLARE_API_TOKEN to an API token with "Account Analytics: Read" (see docs/metrics.md).`,
    );
  }
  if (!/^[0-9a-f]{32}$/i.test(accountId!)) {
    throw new MetricsError("config", "CLOUDFLARE_ACCOUNT_ID must be the account's 32-character hex id");
  }
  return {
    accountId: accountId!,
    token: token!,
    baseUrl: (env.CLOUDFLARE_API_BASE_URL ?? DEFAULT_API_BASE_URL).replace(/\/+$/, ""),
  };
}

export type Row = Record<string, string | number | null>;

/** Runs one query; returns its rows. The token is sent, never printed. */
export async function runSql(settings: SqlApiSettings, sql: string, fetchImpl: typeof fetch = fetch): Promise<Row[]> {
  const url = `${settings.baseUrl}/accounts/${settings.accountId}/analytics_engine/sql`;
  let res: Response;
  try {
    res = await fetchImpl(url, {
      method: "POST",
      headers: { authorization: `Bearer ${settings.token}`, "content-type": "text/plain" },
      body: sql,
      signal: AbortSignal.timeout(30_000),
    });
  } catch (e) {
    throw new MetricsError("api", `the Analytics Engine SQL API did not answer (${(e as Error).message})`);
  }
  const text = await res.text();
  if (!res.ok) {
    const hint =
      res.status === 401 || res.status === 403
        ? ' (check CLOUDFLARE_API_TOKEN: it needs "Account Analytics: Read" on this account)'
        : "";
    throw new MetricsError("api", `the Analytics Engine SQL API answered ${res.status}${hint}: ${text.slice(0, 300)}`);
  }
  try {
    const body = JSON.parse(text) as { data?: Row[] };
    return body.data ?? [];
  } catch {
    throw new MetricsError(
      "api",
      `the Analytics Engine SQL API answered something other than JSON: ${text.slice(0, 200)}`,
    );
  }
}

export interface TenantMetrics {
  tenantId: string;
  sinceSeconds: number;
  ingest: Row[];
  drain: Row[];
  refusals: Row[];
}

export async function tenantMetrics(
  settings: SqlApiSettings,
  tenantId: string,
  sinceSeconds: number,
  fetchImpl: typeof fetch = fetch,
): Promise<TenantMetrics> {
  const q = buildMetricsQueries(tenantId, sinceSeconds);
  const [ingest, drain, refusals] = await Promise.all([
    runSql(settings, q.ingest, fetchImpl),
    runSql(settings, q.drain, fetchImpl),
    runSql(settings, q.refusals, fetchImpl),
  ]);
  return { tenantId, sinceSeconds, ingest, drain, refusals };
}

/** The message for a local run: there is no local SQL API. */
export const LOCAL_METRICS_MESSAGE =
  'metrics live in Workers Analytics Engine, which has no local query API. Locally, add LOG_LEVEL=info to .dev.vars and restart `npm start`: every data point is logged as a `"msg":"metric"` line. For production numbers add --remote (CLOUDFLARE_API_TOKEN and CLOUDFLARE_ACCOUNT_ID).';
