/**
 * `npm run tenant -- metrics`: the SQL it sends to Analytics Engine's SQL API, the request itself
 * (to a local stand-in for the API on 127.0.0.1: nothing reaches the internet), and the messages
 * when nothing is configured or the API refuses.
 */
import { createServer, type IncomingMessage } from "node:http";
import type { AddressInfo } from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import {
  buildMetricsQueries,
  LOCAL_METRICS_MESSAGE,
  MetricsError,
  parseSince,
  sqlApiSettings,
  tenantMetrics,
} from "../../scripts/lib/metrics.ts";
import { BLOB_COLUMNS, DOUBLE_COLUMNS } from "../../src/metrics.ts";

const ACCOUNT = "0123456789abcdef0123456789abcdef";
const closers: (() => void)[] = [];
afterEach(() => closers.splice(0).forEach((c) => c()));

interface Seen {
  method: string;
  url: string;
  authorization: string | undefined;
  body: string;
}

async function fakeSqlApi(
  answer: (sql: string) => { status: number; body: string },
): Promise<{ base: string; seen: Seen[] }> {
  const seen: Seen[] = [];
  const server = createServer(async (req: IncomingMessage, res) => {
    let body = "";
    for await (const chunk of req) body += chunk;
    seen.push({ method: req.method!, url: req.url!, authorization: req.headers.authorization, body });
    const a = answer(body);
    res.writeHead(a.status, { "content-type": "application/json" }).end(a.body);
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  closers.push(() => server.close());
  return { base: `http://127.0.0.1:${(server.address() as AddressInfo).port}/client/v4`, seen };
}

describe("the metrics queries", () => {
  it("weight every sum by _sample_interval, scope to the tenant (index1) and the window, per minute", () => {
    const q = buildMetricsQueries("acme", 3600);
    for (const sql of [q.ingest, q.drain, q.refusals]) {
      expect(sql).toContain("FROM eventbridge_relay");
      expect(sql).toContain("WHERE index1 = 'acme'");
      expect(sql).toContain("timestamp > NOW() - INTERVAL '3600' SECOND");
      expect(sql).toMatch(/SUM\(_sample_interval/);
      expect(sql).not.toMatch(/count\(\)/i);
    }
    expect(q.ingest).toContain("blob1 = 'ingest'");
    expect(q.ingest).toContain("toStartOfInterval(timestamp, INTERVAL '1' MINUTE) AS minute");
    expect(q.drain).toContain("quantileExactWeighted(0.99)(double6, _sample_interval) AS upstream_p99_ms");
    expect(q.refusals).toContain("blob4 = 'refused'");
  });

  it("use the columns src/metrics.ts writes", () => {
    const q = buildMetricsQueries("acme", 60);
    // double2 delivered, double3 queued, double4 failed, double6 latency, double7 throttled.
    expect([DOUBLE_COLUMNS[1], DOUBLE_COLUMNS[2], DOUBLE_COLUMNS[3], DOUBLE_COLUMNS[5], DOUBLE_COLUMNS[6]]).toEqual([
      "delivered",
      "queued",
      "failed",
      "latency_ms",
      "throttled",
    ]);
    expect([BLOB_COLUMNS[0], BLOB_COLUMNS[3], BLOB_COLUMNS[4]]).toEqual(["kind", "outcome", "code"]);
    expect(q.ingest).toContain("SUM(_sample_interval * double2) AS delivered");
    expect(q.ingest).toContain("SUM(_sample_interval * double3) AS queued");
    expect(q.ingest).toContain("SUM(_sample_interval * double4) AS failed");
  });

  it("refuse a tenant id outside the id alphabet (nothing is interpolated unchecked)", () => {
    expect(() => buildMetricsQueries("acme' OR '1'='1", 60)).toThrow(MetricsError);
  });

  it("--since takes s, m, h, d within Analytics Engine's retention", () => {
    expect(parseSince("1h")).toBe(3600);
    expect(parseSince("90m")).toBe(5400);
    expect(parseSince("7d")).toBe(604_800);
    expect(() => parseSince("1 hour")).toThrow(/number and a unit/);
    expect(() => parseSince("91d")).toThrow(/between 1m and 90d/);
  });
});

describe("the SQL API call", () => {
  it("nothing configured: a message naming both variables and the token's permission", () => {
    const err = (() => {
      try {
        sqlApiSettings({});
      } catch (e) {
        return e as MetricsError;
      }
    })();
    expect(err?.kind).toBe("config");
    expect(err?.message).toContain("CLOUDFLARE_API_TOKEN and CLOUDFLARE_ACCOUNT_ID");
    expect(err?.message).toContain("Account Analytics: Read");
    expect(() => sqlApiSettings({ CLOUDFLARE_API_TOKEN: "t" })).toThrow(/needs CLOUDFLARE_ACCOUNT_ID:/);
    expect(LOCAL_METRICS_MESSAGE).toContain("--remote");
  });

  it("posts each query to /accounts/{id}/analytics_engine/sql with the token, and returns the rows", async () => {
    const api = await fakeSqlApi((sql) => ({
      status: 200,
      body: JSON.stringify({
        meta: [],
        data: sql.includes("blob1 = 'drain'") ? [{ minute: "2026-12-03 07:00:00", calls: 3 }] : [],
        rows: 0,
      }),
    }));
    const settings = sqlApiSettings({
      CLOUDFLARE_API_TOKEN: "secret-token-value",
      CLOUDFLARE_ACCOUNT_ID: ACCOUNT,
      CLOUDFLARE_API_BASE_URL: api.base,
    });
    const m = await tenantMetrics(settings, "acme", 3600);
    expect(m.drain).toEqual([{ minute: "2026-12-03 07:00:00", calls: 3 }]);
    expect(api.seen).toHaveLength(3);
    for (const s of api.seen) {
      expect(s.method).toBe("POST");
      expect(s.url).toBe(`/client/v4/accounts/${ACCOUNT}/analytics_engine/sql`);
      expect(s.authorization).toBe("Bearer secret-token-value");
    }
    expect(api.seen.map((s) => s.body).sort()).toEqual(Object.values(buildMetricsQueries("acme", 3600)).sort());
  });

  it("a refused token: the status and what to check, never the token", async () => {
    const api = await fakeSqlApi(() => ({ status: 403, body: '{"errors":[{"message":"Authentication error"}]}' }));
    const settings = sqlApiSettings({
      CLOUDFLARE_API_TOKEN: "secret-token-value",
      CLOUDFLARE_ACCOUNT_ID: ACCOUNT,
      CLOUDFLARE_API_BASE_URL: api.base,
    });
    const err = await tenantMetrics(settings, "acme", 3600).catch((e: MetricsError) => e);
    expect(err).toBeInstanceOf(MetricsError);
    expect((err as MetricsError).message).toMatch(/answered 403 \(check CLOUDFLARE_API_TOKEN/);
    expect((err as MetricsError).message).not.toContain("secret-token-value");
  });
});

describe("npm run tenant -- metrics", () => {
  async function run(argv: string[], env: Record<string, string | undefined>) {
    const { main } = await import("../../scripts/lib/cli.ts");
    let out = "";
    let err = "";
    const base = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith("CLOUDFLARE_")));
    const code = await main(argv, {
      env: { ...base, ...env },
      io: { stdout: (s) => void (out += s), stderr: (s) => void (err += s), readStdin: async () => "" },
    });
    return { code, out, err };
  }

  it("--remote without CLOUDFLARE_API_TOKEN / CLOUDFLARE_ACCOUNT_ID: exit 1 and what to set", async () => {
    const r = await run(["metrics", "acme", "--remote"], {});
    expect(r.code).toBe(1);
    expect(r.err).toContain("needs CLOUDFLARE_API_TOKEN and CLOUDFLARE_ACCOUNT_ID");
  });

  it("--remote with settings: the per-minute tables from the SQL API", async () => {
    const api = await fakeSqlApi((sql) => ({
      status: 200,
      body: JSON.stringify({
        data: sql.includes("blob1 = 'drain'")
          ? [{ minute: "2026-12-03 07:00:00", calls: 3, entries: 60, delivered: 60, upstream_p99_ms: 41.5 }]
          : [],
      }),
    }));
    const r = await run(["metrics", "acme", "--remote", "--since", "2h"], {
      CLOUDFLARE_API_TOKEN: "secret-token-value",
      CLOUDFLARE_ACCOUNT_ID: ACCOUNT,
      CLOUDFLARE_API_BASE_URL: api.base,
    });
    expect(r.err).toBe("");
    expect(r.code).toBe(0);
    expect(r.out).toContain("drain per minute");
    expect(r.out).toMatch(/2026-12-03 07:00:00\s+3\s+60\s+60/);
    expect(r.out).toContain("ingest per minute: no data points in this window");
    expect(api.seen[0]!.body).toContain("INTERVAL '7200' SECOND");
    expect(r.out + r.err).not.toContain("secret-token-value");
  });
});
