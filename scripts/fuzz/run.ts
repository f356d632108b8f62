/**
 * `npm run fuzz`: seeded hostile requests against a private local relay (started as `npm run soak`
 * starts one: wrangler dev on a temporary state directory and free ports, the emulator upstream,
 * tenants provisioned through the admin code, one API key per tenant revoked through the admin
 * API), on both front doors. Every answer is checked: no 5xx, every error in its door's documented
 * format with a documented code and status (README tables), no stack trace, nothing secret echoed
 * (the run's secrets, and the credentials the caller itself sent), valid requests accepted; at the
 * end only valid, authorized entries may have reached the upstream, under their own tenant's
 * credentials, and every acknowledged one must have; then a health check and the figures.
 *
 *   npm run fuzz -- [--requests 100000] [--seed N] [--concurrency 16] [--tenants 3] [--shards 3] [--keep]
 *
 * Docs: docs/reliability.md.
 */
import { parseArgs } from "node:util";
import { mulberry32 } from "../../emulator/eventbridge.ts";
import { intFlag, machineLine, mib, Runtime, sleep } from "../soak/runtime.ts";
import { revokeSpareKeys } from "../soak/tenants.ts";
import { type Case, CaseMaker, type FuzzTenant } from "./cases.ts";
import { readDocumented } from "./documented.ts";
import { type Answer, makeAgent, send, sendRaw } from "./http.ts";

const HELP = `usage: npm run fuzz -- [options]

  --requests N     generated requests (default 100000)
  --seed N         PRNG seed (default: from the clock; printed, so a run replays)
  --concurrency N  requests in flight (default 16)
  --tenants N      tenants (default 3)
  --shards N       every second tenant is spread over N shards (default 3; 1: none)
  --keep           keep the temporary state directory

Exit 0 when every answer passed its checks and only valid, authorized entries reached the
upstream; 1 otherwise; 2 on a usage error. Docs: docs/reliability.md.`;

/** A stack trace in an answer: "    at fn (file.ts:1:2)". */
const STACK = /\n\s+at \S.*:\d+:\d+\)?/;
/** Failures printed in full (the rest are counted). */
const SHOW_FAILURES = 25;
/** Categories where the HTTP layer in front of the Worker may answer a broken request itself. */
const FRAMING = /half-close|framing|Content-Length shorter|cut off/;

interface Figures {
  byCategory: Map<string, number>;
  byAnswer: Map<string, number>;
  failures: Map<string, number>;
  examples: string[];
  noAnswer: number;
  clientRefused: number;
  runtimeAnswered: number;
}

function bump(m: Map<string, number>, k: string): void {
  m.set(k, (m.get(k) ?? 0) + 1);
}

async function main(): Promise<number> {
  let values: Record<string, string | boolean | undefined>;
  try {
    values = parseArgs({
      options: {
        requests: { type: "string" },
        seed: { type: "string" },
        concurrency: { type: "string" },
        tenants: { type: "string" },
        shards: { type: "string" },
        keep: { type: "boolean" },
        help: { type: "boolean", short: "h" },
      },
      strict: true,
    }).values;
  } catch (e) {
    console.error(`fuzz: ${(e as Error).message}\n\n${HELP}`);
    return 2;
  }
  if (values.help) {
    console.log(HELP);
    return 0;
  }
  let requests: number, seed: number, concurrency: number, tenantCount: number, shards: number;
  try {
    requests = intFlag(values, "requests", 100_000, 1);
    seed = intFlag(values, "seed", Date.now() % 2_147_483_647, 0);
    concurrency = intFlag(values, "concurrency", 16, 1);
    tenantCount = intFlag(values, "tenants", 3, 2);
    shards = intFlag(values, "shards", 3, 1);
  } catch (e) {
    console.error(`fuzz: ${(e as Error).message}`);
    return 2;
  }
  const started = Date.now();
  const log = (s: string) => console.log(`fuzz ${((Date.now() - started) / 1000).toFixed(1).padStart(6)}s  ${s}`);
  console.log(
    `fuzz: seed ${seed} (replay: npm run fuzz -- --seed ${seed} --requests ${requests} --concurrency ${concurrency} --tenants ${tenantCount} --shards ${shards})`,
  );
  console.log(`fuzz: machine ${machineLine()}`);
  const documented = readDocumented();

  const rt = new Runtime({
    tenants: tenantCount,
    prefix: "fuzz",
    ratePerSecond: 1_000,
    burst: 2_000,
    shards,
    seed,
    keep: Boolean(values.keep),
  });
  try {
    await rt.start();
    log(
      `relay ${rt.url} (state ${rt.stateDir}), emulator ${rt.emulator.url}, ${tenantCount} tenants provisioned (${rt.tenants.filter((t) => t.record.limits.shards > 1).length} of them over ${shards} shards)`,
    );
    const port = rt.relay.port;
    const agent = makeAgent(concurrency);
    const fig: Figures = {
      byCategory: new Map(),
      byAnswer: new Map(),
      failures: new Map(),
      examples: [],
      noAnswer: 0,
      clientRefused: 0,
      runtimeAnswered: 0,
    };
    const fail = (c: Case, n: number, what: string, a: Answer) => {
      const kind = `${what} [${c.category}]`;
      bump(fig.failures, kind);
      // Two examples of each kind of failure, up to SHOW_FAILURES in all.
      if ((fig.failures.get(kind) ?? 0) <= 2 && fig.examples.length < SHOW_FAILURES) {
        fig.examples.push(
          `#${n} ${c.category}: ${what}: ${a.status} ${a.headers["content-type"] ?? ""} ${(a.error ?? a.body).slice(0, 200).replace(/\s+/g, " ")}`,
        );
      }
    };

    // Each tenant's spare key: used once (so it is cached wherever the relay caches), then revoked.
    // The revocation must hold from the very next request: the fuzz's "revoked key" cases check it.
    const allowed = new Map<string, number>();
    const acknowledged = new Set<string>();
    for (const t of rt.tenants) {
      const id = `warm-${t.id}`;
      const res = await fetch(`${rt.url}/v1/events`, {
        method: "POST",
        headers: { authorization: `Bearer ${t.spareKey.key}`, "content-type": "application/json" },
        body: JSON.stringify({
          Entries: [{ Source: t.source, DetailType: "warm", Detail: JSON.stringify({ fuzzId: id }) }],
        }),
      });
      await res.body?.cancel();
      if (res.status !== 200 && res.status !== 202)
        throw new Error(`warm-up with the spare key answered ${res.status}`);
      allowed.set(id, rt.tenants.indexOf(t));
      acknowledged.add(id);
    }
    await revokeSpareKeys(rt.adminOptions(), rt.tenants);
    log("each tenant's spare API key used once, then revoked through the admin API");

    const tenants: FuzzTenant[] = rt.tenants.map((t) => ({
      id: t.id,
      source: t.source,
      apiKey: t.apiKey.key,
      revokedKey: t.spareKey.key,
      sigv4: t.sigv4,
    }));
    const signers = CaseMaker.signers(tenants);
    const forbidden = new Map<string, string>();
    let next = 0;
    let doneCount = 0;
    const progressEvery = Math.max(1_000, Math.ceil(requests / 20 / 1_000) * 1_000);
    const worker = async () => {
      for (;;) {
        const n = next++;
        if (n >= requests) return;
        const c = await new CaseMaker(mulberry32((seed * 1_000_003 + n) >>> 0), tenants, signers, n + 1, rt.url).next();
        bump(fig.byCategory, c.category);
        for (const { id, tenant } of c.allowed) allowed.set(id, tenant);
        for (const id of c.forbidden) forbidden.set(id, c.category);
        const a = "raw" in c.wire ? await sendRaw(port, c.wire.raw, c.wire.halfClose) : await send(agent, port, c.wire);
        check(c, n, a);
        doneCount++;
        if (doneCount % progressEvery === 0) {
          log(`${doneCount}/${requests} requests, ${rt.memory.line()}, ${rt.heap.line()}`);
        }
      }
    };

    const check = (c: Case, n: number, a: Answer) => {
      if (a.status === -1) {
        fig.clientRefused++;
        return;
      }
      if (a.status === 0) {
        fig.noAnswer++;
        bump(fig.byAnswer, "no answer");
        fail(c, n, `no answer (${a.error})`, a);
        return;
      }
      const ct = (a.headers["content-type"] ?? "").toLowerCase();
      let code: string | undefined;
      let parsed: Record<string, unknown> | null = null;
      try {
        parsed = a.body ? (JSON.parse(a.body) as Record<string, unknown>) : null;
      } catch {
        // checked below
      }
      if (parsed && typeof parsed === "object") code = (parsed.code ?? parsed.__type) as string | undefined;
      bump(fig.byAnswer, `${a.status}${code ? ` ${code}` : ""}`);

      // Nothing secret echoed: the run's secrets, and what this caller sent.
      const all = a.body + "\n" + Object.values(a.headers).join("\n");
      if (rt.secrets.check("an answer", all) > 0) fail(c, n, "a secret of the run in the answer", a);
      for (const s of c.sent) if (s && all.includes(s)) fail(c, n, "the caller's own credential echoed", a);
      if (STACK.test(a.body)) fail(c, n, "a stack trace in the answer", a);
      if (a.status >= 500) fail(c, n, `5xx`, a);

      const wire = "raw" in c.wire ? null : c.wire;
      if (a.status >= 200 && a.status < 300) {
        if (c.door !== "other" && !(parsed && Array.isArray(parsed.Entries))) fail(c, n, "2xx without Entries", a);
        if (c.mustAccept && parsed && Array.isArray(parsed.Entries)) {
          (parsed.Entries as { EventId?: string; RelayEventId?: string }[]).forEach((e, i) => {
            const id = c.allowed[i]?.id;
            if (id && (e.EventId || e.RelayEventId)) acknowledged.add(id);
          });
        }
        return;
      }
      if (c.mustAccept && a.status !== 429) fail(c, n, "a valid request was refused", a);
      if (wire?.method === "HEAD" || a.status === 304) return;
      // Every error in its door's documented format, code and status.
      const aws = c.door === "aws";
      if (aws) {
        const t = parsed?.__type;
        if (
          !ct.startsWith("application/x-amz-json-1.1") ||
          typeof t !== "string" ||
          typeof parsed?.message !== "string"
        ) {
          if (FRAMING.test(c.category)) fig.runtimeAnswered++;
          else fail(c, n, "not AWS JSON", a);
        } else if (!documented.aws.get(t)?.has(a.status)) fail(c, n, `undocumented AWS error ${t} ${a.status}`, a);
        return;
      }
      const p = parsed as {
        type?: unknown;
        status?: unknown;
        code?: unknown;
        detail?: unknown;
        title?: unknown;
      } | null;
      if (!ct.startsWith("application/problem+json") || !p || typeof p.code !== "string") {
        if (FRAMING.test(c.category)) fig.runtimeAnswered++;
        else fail(c, n, "not problem+json", a);
        return;
      }
      if (
        p.status !== a.status ||
        p.type !== `urn:eventbridge-relay:problem:${p.code}` ||
        typeof p.detail !== "string" ||
        typeof p.title !== "string"
      ) {
        fail(c, n, "problem+json members wrong", a);
      }
      if (!documented.problem.get(p.code)?.has(a.status)) fail(c, n, `undocumented code ${p.code} ${a.status}`, a);
    };

    await Promise.all(Array.from({ length: concurrency }, worker));
    agent.destroy();
    log(`${requests} requests sent; waiting for the buffers to drain`);

    // Bounded wait for anything queued, then the upstream's view.
    const deadline = Date.now() + 120_000;
    for (;;) {
      let queued = 0;
      for (const t of rt.tenants) queued += (await rt.admin.status(t.id).catch(() => ({ queued: 1 }))).queued ?? 0;
      if (queued === 0 || Date.now() > deadline) break;
      await sleep(1_000);
    }
    let reachedInvalid = 0;
    let crossTenant = 0;
    const delivered = new Set<string>();
    const invalidExamples: string[] = [];
    for (const r of rt.fake.events) {
      let id: string | undefined;
      try {
        id = (JSON.parse(r.entry.Detail ?? "") as { fuzzId?: string }).fuzzId;
      } catch {
        // no id
      }
      const ti = id === undefined ? undefined : allowed.get(id);
      if (id === undefined || ti === undefined || forbidden.has(id)) {
        reachedInvalid++;
        if (invalidExamples.length < 5)
          invalidExamples.push(
            `${id ?? "(no id)"} [${(id && forbidden.get(id)) ?? "never sent as valid"}]: ${JSON.stringify(r.entry).slice(0, 120)}`,
          );
        continue;
      }
      if (r.accessKeyId !== rt.tenants[ti]!.aws.accessKeyId || r.entry.Source !== rt.tenants[ti]!.source) crossTenant++;
      delivered.add(id);
    }
    const missing = [...acknowledged].filter((id) => !delivered.has(id));

    const health = await fetch(`${rt.url}/healthz`).then(
      async (r) => ({ status: r.status, body: await r.text() }),
      (e: Error) => ({ status: 0, body: e.message }),
    );
    const healthy = health.status === 200 && /"ok":true/.test(health.body);
    rt.memory.stop();
    const retained = await rt.heap.retained();

    let failures = 0;
    for (const v of fig.failures.values()) failures += v;
    const ok =
      failures === 0 &&
      reachedInvalid === 0 &&
      crossTenant === 0 &&
      missing.length === 0 &&
      healthy &&
      rt.secrets.total === 0;
    const fmt = (m: Map<string, number>, max = 60) =>
      [...m]
        .sort((a, b) => b[1] - a[1])
        .slice(0, max)
        .map(([k, v]) => `    ${String(v).padStart(7)}  ${k}`)
        .join("\n") || "    none";
    const elapsed = (Date.now() - started) / 1000;
    console.log("");
    console.log("== fuzz figures");
    console.log(`seed                        ${seed}`);
    console.log(
      `requests                    ${requests} (${concurrency} in flight, ${tenantCount} tenants), ${(requests / elapsed).toFixed(0)} req/s overall`,
    );
    console.log(`categories\n${fmt(fig.byCategory)}`);
    console.log(`answers (status code)\n${fmt(fig.byAnswer, 80)}`);
    console.log(`failed checks               ${failures}\n${fmt(fig.failures)}`);
    for (const e of fig.examples) console.log(`    e.g. ${e}`);
    console.log(`no answer                   ${fig.noAnswer}`);
    console.log(
      `answered before the Worker  ${fig.runtimeAnswered} (the local HTTP layer refused broken framing itself)`,
    );
    console.log(`not sendable by node:http   ${fig.clientRefused}`);
    console.log(
      `upstream events             ${rt.fake.events.length}; invalid or unauthorized ${reachedInvalid}; cross-tenant ${crossTenant}`,
    );
    for (const e of invalidExamples) console.log(`    e.g. ${e}`);
    console.log(
      `acknowledged, not delivered ${missing.length}${missing.length ? ` e.g. ${missing.slice(0, 5).join(", ")}` : ""} (of ${acknowledged.size})`,
    );
    console.log(
      `secrets in answers/logs     ${rt.secrets.total}${rt.secrets.total ? `: ${[...rt.secrets.found].map(([k, v]) => `${k} ${v}`).join(", ")}` : ""} (${rt.logLines} log lines scanned)`,
    );
    console.log(`health check                ${health.status} ${health.body.slice(0, 60)}`);
    console.log(`memory                      ${rt.memory.line()}`);
    console.log(`                            ${rt.heap.line()}; retained after a full GC ${mib(retained)} MiB`);
    console.log(`duration                    ${elapsed.toFixed(0)} s`);
    console.log(
      `fuzz: ${ok ? "PASS" : "FAIL"} seed=${seed} requests=${requests} failed-checks=${failures} no-answer=${fig.noAnswer} upstream-invalid=${reachedInvalid} cross-tenant=${crossTenant} missing=${missing.length} secrets=${rt.secrets.total} healthz=${health.status} rss-mib=${mib(rt.memory.start ?? 0)}/${mib(rt.memory.peak)}/${mib(rt.memory.last)} heap-mib=${mib(rt.heap.firstUsed ?? 0)}/${mib(rt.heap.peakUsed)}/${mib(retained)}`,
    );
    return ok ? 0 : 1;
  } finally {
    await rt.stop();
  }
}

main().then(
  (code) => process.exit(code),
  (e: unknown) => {
    console.error(`fuzz: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}`);
    process.exit(1);
  },
);
