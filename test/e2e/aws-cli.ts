/**
 * End-to-end (issue 5): the installed AWS CLI, unmodified, v1 and v2, posts through a locally
 * running relay to an upstream that verifies the relay's own signature.
 *
 *   relay:    wrangler dev on a fresh state dir (scripts/lib/local-relay.ts)
 *   tenant:   created and credentialed with the admin CLI (`node scripts/tenant.ts ...`), as an admin would
 *   upstream: the fake EventBridge over HTTP (emulator/server.ts), which checks the
 *             relay's SigV4 with the AWS SDK's signer and records what it accepted
 *   client:   `aws events put-partner-events --endpoint-url http://127.0.0.1:<port> --region us-east-1 ...`
 *             with a pair from `sigv4 create --json` in AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY
 *
 * Run: `npm run e2e -- aws-cli` (or `node test/e2e/aws-cli.ts` with Node 22). Parts "aws-cli v1"
 * (the `aws` on PATH reporting aws-cli/1.x) and "aws-cli v2" (/usr/bin/aws, Debian's awscli
 * package) skip, each with its reason, when that CLI is absent.
 */
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import type { ReceivedEvent, WireEntry } from "../../emulator/eventbridge.ts";
import { startFakeEventBridgeServer } from "../../emulator/server.ts";
import { type AwsCli, cliEnv, DEBIAN_AWS, findAwsClis, putPartnerEvents } from "./lib/aws-cli.ts";
import { runSuite, type Suite, show } from "./lib/harness.ts";
import { type E2eRelay, startRelay } from "./lib/relay.ts";

const TENANT = "clitenant";
const SOURCE = `aws.partner/example.com/${TENANT}/orders`;
const FOREIGN_SOURCE = "aws.partner/example.org/someone-else/orders";
/** 2024-01-02T03:04:05Z */
const T = 1_704_164_645;

const clis: Partial<Record<string, AwsCli>> = {};

await runSuite({
  name: "aws-cli",
  parts: ["aws-cli v1", "aws-cli v2"],
  async prerequisites() {
    const found = await findAwsClis();
    if (found.v1) clis["aws-cli v1"] = found.v1;
    if (found.v2) clis["aws-cli v2"] = found.v2;
    const seen = found.seen.length
      ? ` (found only: ${found.seen.map((l) => l.replace(/^(\S+: aws-cli\/\S+).*/, "$1")).join(", ")})`
      : "";
    return {
      "aws-cli v1": found.v1 ? null : `no AWS CLI v1 on PATH${seen}`,
      "aws-cli v2": found.v2 ? null : `no AWS CLI v2 at ${DEBIAN_AWS} or on PATH (apt-get install awscli)${seen}`,
    };
  },
  async body(s, enabled) {
    for (const part of enabled) s.log(`${part}: ${clis[part]!.path} → ${clis[part]!.version}`);

    // The tenant's own AWS key, known to the fake upstream only.
    const awsKey = {
      accessKeyId: "AKIA" + randomBytes(8).toString("hex").toUpperCase(),
      secretAccessKey: randomBytes(30).toString("base64"),
    };
    const upstream = await startFakeEventBridgeServer({ port: 0 });
    s.defer("close the fake EventBridge", () => upstream.close());
    upstream.fake.addCredential(awsKey);

    const relay = await startRelay(s);
    s.log(`relay ${relay.url}, fake EventBridge ${upstream.url}`);

    // The pair is minted before the first request: the Worker caches a tenant's record for up to
    // TENANT_CACHE_TTL_MS, and a pair minted after that is unknown to it until the entry expires.
    let pair = { accessKeyId: "", secretAccessKey: "" };
    await s.check(
      "admin CLI: create the tenant, set its AWS credentials, mint a SigV4 pair (sigv4 create --json)",
      async () => {
        const created = await relay.tenantJson([
          "create",
          TENANT,
          "--name",
          "AWS CLI e2e",
          "--source",
          `aws.partner/example.com/${TENANT}/*`,
          "--region",
          "us-east-1",
          "--endpoint",
          upstream.url,
        ]);
        assert.equal(created.id, TENANT);
        const set = await relay.tenant(
          ["credentials", "set", TENANT, "--access-key-id", awsKey.accessKeyId, "--secret-access-key-stdin"],
          {
            stdin: awsKey.secretAccessKey + "\n",
          },
        );
        assert.equal(set.code, 0, show(set));
        const minted = await relay.tenantJson(["sigv4", "create", TENANT]);
        assert.match(minted.accessKeyId, /^RLY[A-Z2-7]{17}$/);
        assert.equal(typeof minted.secretAccessKey, "string");
        pair = { accessKeyId: minted.accessKeyId, secretAccessKey: minted.secretAccessKey };
      },
    );
    if (s.failures > 0) throw new Error("set-up failed; nothing else can run");

    const envs = new Map<string, NodeJS.ProcessEnv>();
    for (const part of enabled)
      envs.set(part, await cliChecks(s, part, clis[part]!, relay, upstream, pair, awsKey.accessKeyId));

    let revoked = false;
    await s.check("admin CLI: sigv4 revoke (the relay applies it at once)", async () => {
      const out = await relay.tenantJson(["sigv4", "revoke", TENANT, pair.accessKeyId]);
      assert.equal(out.relay, "applied", JSON.stringify(out));
      revoked = true;
    });
    for (const part of enabled) {
      await s.check(
        `${part}: the revoked pair: UnrecognizedClientException on the next call, nothing reaches the upstream`,
        async () => {
          assert.ok(revoked, "the pair was not revoked");
          const calls0 = upstream.fake.calls.length;
          const r = await putPartnerEvents(clis[part]!, relay.url, envs.get(part)!, [
            "--entries",
            JSON.stringify([{ Source: SOURCE, DetailType: "After revoke", Detail: "{}" }]),
          ]);
          assert.notEqual(r.code, 0, show(r));
          assert.match(r.stderr, cliError("UnrecognizedClientException"), show(r));
          assert.equal(upstream.fake.calls.length, calls0, "no upstream call");
        },
        part,
      );
    }

    await s.check("the relay's log holds no secret", () => {
      const log = relay.log.join("\n");
      for (const secret of [awsKey.secretAccessKey, pair.secretAccessKey]) {
        assert.ok(!log.includes(secret), "a secret appears in wrangler dev's output");
      }
    });
  },
});

async function cliChecks(
  s: Suite,
  part: string,
  cli: AwsCli,
  relay: E2eRelay,
  upstream: Awaited<ReturnType<typeof startFakeEventBridgeServer>>,
  pair: { accessKeyId: string; secretAccessKey: string },
  tenantAwsKeyId: string,
): Promise<NodeJS.ProcessEnv> {
  const dir = s.tempDir(`cli-${cli.major}`);
  const env = cliEnv(dir, pair);
  const tag = cli.major; // keeps each CLI's events apart
  const fake = upstream.fake;
  const check = (name: string, fn: () => Promise<void>) => s.check(`${part}: ${name}`, fn, part);

  /** Runs the CLI and returns the events and calls that reached the upstream meanwhile. */
  async function send(args: readonly string[], e = env) {
    const events0 = fake.events.length;
    const calls0 = fake.calls.length;
    const r = await putPartnerEvents(cli, relay.url, e, args);
    return { r, events: fake.events.slice(events0), calls: fake.calls.slice(calls0) };
  }

  /** What the fake accepted: the exact wire entries, signed by the tenant's AWS key in us-east-1. */
  function assertUpstream(
    events: ReceivedEvent[],
    calls: { outcome: string; accessKeyId: string }[],
    expected: WireEntry[],
    stdout: string,
  ) {
    assert.deepEqual(
      events.map((e) => e.entry),
      expected,
      "entries as they reached the upstream",
    );
    for (const e of events) {
      assert.equal(e.accessKeyId, tenantAwsKeyId, "signed with the tenant's AWS key");
      assert.equal(e.region, "us-east-1");
    }
    assert.ok(
      calls.length >= 1 && calls.every((c) => c.outcome === "accepted" && c.accessKeyId === tenantAwsKeyId),
      `upstream calls: ${JSON.stringify(calls)}`,
    );
    const out = JSON.parse(stdout);
    assert.deepEqual(
      out,
      { FailedEntryCount: 0, Entries: events.map((e) => ({ EventId: e.eventId })) },
      "the CLI prints the upstream's EventIds",
    );
  }

  await check(
    "JSON --entries: two entries (ISO and epoch Time, Resources, UTF-8 Detail) reach the upstream exactly",
    async () => {
      const entries = [
        {
          Time: "2024-01-02T03:04:05Z",
          Source: SOURCE,
          Resources: ["arn:aws:example:us-east-1:123456789012:order/1"],
          DetailType: `Order Created ${tag}`,
          Detail: JSON.stringify({ id: 1, name: "Zoë ✓", tag }),
        },
        {
          Time: String(T + 60),
          Source: SOURCE,
          DetailType: `Order Paid ${tag}`,
          Detail: JSON.stringify({ id: 1, paid: true }),
        },
      ];
      const { r, events, calls } = await send(["--entries", JSON.stringify(entries)]);
      assert.equal(r.code, 0, show(r));
      assertUpstream(
        events,
        calls,
        [
          {
            Time: T,
            Source: SOURCE,
            Resources: ["arn:aws:example:us-east-1:123456789012:order/1"],
            DetailType: `Order Created ${tag}`,
            Detail: entries[0]!.Detail,
          },
          { Time: T + 60, Source: SOURCE, DetailType: `Order Paid ${tag}`, Detail: entries[1]!.Detail },
        ],
        r.stdout,
      );
    },
  );

  await check("shorthand --entries Source=...,DetailType=...,Detail=... (two entries)", async () => {
    const { r, events, calls } = await send([
      "--entries",
      `Source=${SOURCE},DetailType=Order Shipped ${tag},Detail='{"id":2,"carrier":"a,b"}',Time=2024-01-02T03:04:05Z,Resources=[arn:aws:example:::a,arn:aws:example:::b]`,
      `Source=${SOURCE},DetailType=Order Delivered ${tag},Detail='{"id":2}'`,
    ]);
    assert.equal(r.code, 0, show(r));
    assertUpstream(
      events,
      calls,
      [
        {
          Time: T,
          Source: SOURCE,
          Resources: ["arn:aws:example:::a", "arn:aws:example:::b"],
          DetailType: `Order Shipped ${tag}`,
          Detail: '{"id":2,"carrier":"a,b"}',
        },
        { Source: SOURCE, DetailType: `Order Delivered ${tag}`, Detail: '{"id":2}' },
      ],
      r.stdout,
    );
  });

  await check("--cli-input-json file://... with a fractional Time (sent as whole epoch seconds)", async () => {
    const file = join(dir, "input.json");
    const input = {
      Entries: [
        {
          Time: "2024-01-02T03:04:05.678Z",
          Source: SOURCE,
          DetailType: `Order Refunded ${tag}`,
          Detail: '{"id":3,"amount":12.5}',
        },
      ],
    };
    writeFileSync(file, JSON.stringify(input));
    const { r, events, calls } = await send(["--cli-input-json", `file://${file}`]);
    assert.equal(r.code, 0, show(r));
    assertUpstream(
      events,
      calls,
      [{ Time: T, Source: SOURCE, DetailType: `Order Refunded ${tag}`, Detail: '{"id":3,"amount":12.5}' }],
      r.stdout,
    );
  });

  await check("--output text --query FailedEntryCount prints 0", async () => {
    const { r, events } = await send([
      "--entries",
      JSON.stringify([{ Source: SOURCE, DetailType: `Order Archived ${tag}`, Detail: '{"id":4}' }]),
      "--output",
      "text",
      "--query",
      "FailedEntryCount",
    ]);
    assert.equal(r.code, 0, show(r));
    assert.equal(r.stdout, "0\n");
    assert.deepEqual(
      events.map((e) => e.entry),
      [{ Source: SOURCE, DetailType: `Order Archived ${tag}`, Detail: '{"id":4}' }],
    );
  });

  await check("a wrong secret: InvalidSignatureException, non-zero exit, nothing reaches the upstream", async () => {
    const wrong = cliEnv(dir, { accessKeyId: pair.accessKeyId, secretAccessKey: flip(pair.secretAccessKey) });
    const { r, calls } = await send(
      ["--entries", JSON.stringify([{ Source: SOURCE, DetailType: "Never", Detail: "{}" }])],
      wrong,
    );
    assert.notEqual(r.code, 0, show(r));
    assert.match(r.stderr, cliError("InvalidSignatureException"), show(r));
    assert.equal(r.stdout, "");
    assert.equal(calls.length, 0, "no upstream call");
  });

  await check("no signature (--no-sign-request): MissingAuthenticationTokenException", async () => {
    const { r, calls } = await send([
      "--no-sign-request",
      "--entries",
      JSON.stringify([{ Source: SOURCE, DetailType: "Never", Detail: "{}" }]),
    ]);
    assert.notEqual(r.code, 0, show(r));
    assert.match(r.stderr, cliError("MissingAuthenticationTokenException"), show(r));
    assert.equal(calls.length, 0, "no upstream call");
  });

  await check("21 entries: ValidationException, non-zero exit, nothing reaches the upstream", async () => {
    const entries = Array.from({ length: 21 }, (_, i) => ({
      Source: SOURCE,
      DetailType: "Too many",
      Detail: JSON.stringify({ i }),
    }));
    const { r, calls } = await send(["--entries", JSON.stringify(entries)]);
    assert.notEqual(r.code, 0, show(r));
    assert.match(r.stderr, cliError("ValidationException"), show(r));
    assert.equal(calls.length, 0, "no upstream call");
  });

  await check(
    "a foreign Source: per-entry NotAuthorizedForSourceException; the valid entry beside it still goes through",
    async () => {
      const { r, events } = await send([
        "--entries",
        JSON.stringify([
          { Source: FOREIGN_SOURCE, DetailType: "Foreign", Detail: '{"x":1}' },
          { Source: SOURCE, DetailType: `Order Kept ${tag}`, Detail: '{"id":5}' },
        ]),
      ]);
      assert.equal(r.code, 0, show(r));
      const out = JSON.parse(r.stdout);
      assert.equal(out.FailedEntryCount, 1, r.stdout);
      assert.equal(out.Entries.length, 2, r.stdout);
      assert.equal(out.Entries[0].ErrorCode, "NotAuthorizedForSourceException", r.stdout);
      assert.equal(typeof out.Entries[0].ErrorMessage, "string");
      assert.equal(out.Entries[0].EventId, undefined);
      assert.deepEqual(
        events.map((e) => e.entry),
        [{ Source: SOURCE, DetailType: `Order Kept ${tag}`, Detail: '{"id":5}' }],
      );
      assert.deepEqual(out.Entries[1], { EventId: events[0]!.eventId });
    },
  );

  return env;
}

/**
 * How the CLI prints a service error on stderr. v2 (retry mode "standard") inserts
 * "(reached max retries: N)" before the colon; v1 (mode "legacy") does not.
 */
function cliError(code: string): RegExp {
  return new RegExp(
    `An error occurred \\(${code}\\) when calling the PutPartnerEvents operation(?: \\(reached max retries: \\d+\\))?: \\S`,
  );
}

/** The same secret with its last character changed. */
function flip(secret: string): string {
  const last = secret.at(-1);
  return secret.slice(0, -1) + (last === "A" ? "B" : "A");
}
