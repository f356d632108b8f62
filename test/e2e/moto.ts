/**
 * End-to-end (issue 6) against moto_server, an EventBridge emulator nobody here wrote:
 *
 *   partner ──POST /v1/events (API key) or POST / (SigV4, JS SDK v3)──▶ relay (wrangler dev)
 *     ──PutPartnerEvents signed with the partner's moto IAM key──▶ moto (signature checking on)
 *     ──partner event source──▶ customer account's default bus ──rule──▶ SQS queue ──▶ this test
 *
 * Set-up: moto starts with INITIAL_NO_AUTH_ACTION_COUNT=6, spent on an IAM user + inline policy +
 * access key in each account (x-moto-account-id picks the account); every later call is signed
 * with those keys, and moto takes the account from the key's owner. The relay tenants are created
 * with the admin CLI (`node scripts/tenant.ts`), endpoint = moto's URL.
 *
 * Also: an unknown Source (moto: HTML 500) is queued by the relay and delivered once the partner
 * event source exists; a tenant whose secret is wrong is refused by moto (403
 * SignatureDoesNotMatch, XML), the relay answers 502 upstream_auth_failed, and what it accepted
 * while the credentials were wrong stays queued (status, GET /v1/events/{id}) until the admin
 * fixes them, then arrives.
 *
 * Role credentials (issue 14): tenant motorole is set with `credentials set --role-arn`; the relay
 * assumes that role in the partner account with its own identity (a moto IAM user in a third
 * account, sts:AssumeRole only; moto checks its signature) and signs PutPartnerEvents with the
 * session credentials and token (moto checks the token and the role's policy). moto does not
 * evaluate trust policies, so a wrong external id is tested against the emulator (workerd tests).
 *
 * Run: `npm run e2e -- moto` (or `node test/e2e/moto.ts` with Node 22). Skips when moto_server is
 * not on PATH.
 */
import assert from "node:assert/strict";
import { EventBridgeClient, PutPartnerEventsCommand } from "@aws-sdk/client-eventbridge";
import { eventually, runSuite, show, sleep } from "./lib/harness.ts";
import {
  type AwsKey,
  createIamKey,
  createRole,
  IAM_SETUP_CALLS,
  MotoClient,
  motoMissing,
  ROLE_SETUP_CALLS,
  startMoto,
} from "./lib/moto.ts";
import { type E2eRelay, startRelay } from "./lib/relay.ts";

const PARTNER_ACCOUNT = "111111111111";
const CUSTOMER_ACCOUNT = "222222222222";
const GOOD = "motoco";
const BAD = "motobad";
/** A tenant on a role in the partner account, assumed by the relay's own identity (issue 14). */
const ROLE = "motorole";
const RELAY_ACCOUNT = "333333333333";
const EXTERNAL_ID = "e2e-external-id-7d1c";
const src = (tenant: string, name: string) => `aws.partner/example.com/${tenant}/${name}`;
/** 2024-01-02T03:04:05Z */
const T = 1_704_164_645;

interface SqsEvent {
  id: string;
  source: string;
  "detail-type": string;
  detail: unknown;
  time: string;
  region: string;
  resources: string[];
  account?: string;
}

await runSuite({
  name: "moto",
  prerequisites: () => motoMissing(),
  async body(s) {
    // ---- moto: two accounts, a partner event source, a rule on the customer's default bus → SQS
    // Free calls: an IAM key in the partner and customer accounts, the relay's identity, the role.
    const moto = await startMoto(s, 3 * IAM_SETUP_CALLS + ROLE_SETUP_CALLS);
    s.log(`moto_server ${moto.url}`);
    let partnerKey: AwsKey = { accessKeyId: "", secretAccessKey: "" };
    let customer!: MotoClient;
    let partner!: MotoClient;
    let queueUrl = "";
    let relayKey: AwsKey = { accessKeyId: "", secretAccessKey: "" };
    let roleArn = "";

    await s.check(
      "moto set-up: IAM keys in the partner and customer accounts, partner event sources, customer rule → SQS",
      async () => {
        partnerKey = await createIamKey(moto.url, PARTNER_ACCOUNT, "relay-partner", [
          "events:PutPartnerEvents",
          "events:CreatePartnerEventSource",
        ]);
        const customerKey = await createIamKey(moto.url, CUSTOMER_ACCOUNT, "customer", ["events:*", "sqs:*"]);
        // The relay's own identity (its account, sts:AssumeRole only) and the partner's role trusting it.
        relayKey = await createIamKey(moto.url, RELAY_ACCOUNT, "relay", ["sts:AssumeRole"]);
        roleArn = await createRole(
          moto.url,
          PARTNER_ACCOUNT,
          "eventbridge-relay",
          `arn:aws:iam::${RELAY_ACCOUNT}:user/relay`,
          EXTERNAL_ID,
          ["events:PutPartnerEvents"],
        );
        // From here on moto checks every signature; no x-moto-account-id: the key's owner is the account.
        partner = new MotoClient(moto.url, partnerKey);
        customer = new MotoClient(moto.url, customerKey);
        for (const name of [src(GOOD, "orders"), src(BAD, "orders"), src(ROLE, "orders")]) {
          assert.deepEqual(
            await partner.events("CreatePartnerEventSource", { Name: name, Account: CUSTOMER_ACCOUNT }),
            {},
          );
        }
        const q = await customer.sqs<{ QueueUrl: string }>("CreateQueue", { QueueName: "partner-events" });
        queueUrl = q.QueueUrl;
        assert.match(queueUrl, new RegExp(`/${CUSTOMER_ACCOUNT}/partner-events$`));
        const attrs = await customer.sqs<{ Attributes: { QueueArn: string } }>("GetQueueAttributes", {
          QueueUrl: queueUrl,
          AttributeNames: ["QueueArn"],
        });
        const rule = await customer.events<{ RuleArn: string }>("PutRule", {
          Name: "partner-events",
          EventPattern: JSON.stringify({ source: [{ prefix: "aws.partner/example.com" }] }),
        });
        assert.match(
          rule.RuleArn,
          new RegExp(`:${CUSTOMER_ACCOUNT}:rule/partner-events$`),
          "the rule is on the customer's default bus",
        );
        const targets = await customer.events("PutTargets", {
          Rule: "partner-events",
          Targets: [{ Id: "queue", Arn: attrs.Attributes.QueueArn }],
        });
        assert.equal(targets.FailedEntryCount, 0, JSON.stringify(targets));
      },
    );
    if (s.failures > 0) throw new Error("moto set-up failed; nothing else can run");

    await s.check(
      "moto checks signatures now: a wrong secret is 403 SignatureDoesNotMatch (XML), an unknown key InvalidClientTokenId",
      async () => {
        const entry = { Source: src(GOOD, "orders"), DetailType: "never", Detail: "{}" };
        const wrong = new MotoClient(moto.url, {
          accessKeyId: partnerKey.accessKeyId,
          secretAccessKey: flip(partnerKey.secretAccessKey),
        });
        const r1 = await wrong.eventsRaw("PutPartnerEvents", { Entries: [entry] });
        const t1 = await r1.text();
        assert.equal(r1.status, 403, t1);
        assert.match(t1, /<Code>SignatureDoesNotMatch<\/Code>/);
        const unknown = new MotoClient(moto.url, {
          accessKeyId: "AKIAUNKNOWNKEY000000",
          secretAccessKey: partnerKey.secretAccessKey,
        });
        const r2 = await unknown.eventsRaw("PutPartnerEvents", { Entries: [entry] });
        const t2 = await r2.text();
        assert.equal(r2.status, 403, t2);
        assert.match(t2, /<Code>InvalidClientTokenId<\/Code>/);
      },
    );

    /** Everything read from the customer's queue so far (messages are deleted once read). */
    const received: SqsEvent[] = [];
    async function readQueue(): Promise<void> {
      const out = await customer.sqs<{ Messages?: { Body: string; ReceiptHandle: string }[] }>("ReceiveMessage", {
        QueueUrl: queueUrl,
        MaxNumberOfMessages: 10,
        WaitTimeSeconds: 1,
      });
      const msgs = out.Messages ?? [];
      for (const m of msgs) received.push(JSON.parse(m.Body) as SqsEvent);
      if (msgs.length) {
        await customer.sqs("DeleteMessageBatch", {
          QueueUrl: queueUrl,
          Entries: msgs.map((m, i) => ({ Id: String(i), ReceiptHandle: m.ReceiptHandle })),
        });
      }
    }
    /** Waits until events with these detail-types arrived; returns them in the given order. */
    async function arrived(detailTypes: string[], timeoutMs = 20_000): Promise<SqsEvent[]> {
      return eventually(
        `events ${detailTypes.join(", ")} in SQS`,
        async () => {
          await readQueue();
          const found = detailTypes.map((d) => received.filter((e) => e["detail-type"] === d));
          if (found.some((f) => f.length > 1)) throw new Error(`duplicates in SQS: ${JSON.stringify(found)}`);
          return found.every((f) => f.length === 1) ? found.map((f) => f[0]!) : undefined;
        },
        timeoutMs,
        100,
      );
    }

    // ---- the relay, its tenants (admin CLI), then events through it
    const relay = await startRelay(s, {
      // Fast retries so queued entries move within seconds; no dead-lettering during the test.
      DRAIN_BACKOFF_BASE_MS: "200",
      DRAIN_BACKOFF_CAP_MS: "1000",
      DRAIN_MAX_ATTEMPTS: "1000",
      RELAY_AWS_ACCESS_KEY_ID: relayKey.accessKeyId,
      RELAY_AWS_SECRET_ACCESS_KEY: relayKey.secretAccessKey,
    });
    s.log(`relay ${relay.url}`);
    let goodKey = "";
    let badKey = "";
    let roleKey = "";
    let pair = { accessKeyId: "", secretAccessKey: "" };

    // Keys and pairs are minted before the first request (the Worker caches tenant records).
    await s.check(
      `admin CLI: tenant ${GOOD} (moto endpoint, partner IAM key), tenant ${BAD} (wrong secret), API keys, a SigV4 pair`,
      async () => {
        await relay.tenantJson([
          "create",
          GOOD,
          "--name",
          "moto good",
          "--source",
          `aws.partner/example.com/${GOOD}/*`,
          "--region",
          "us-east-1",
          "--endpoint",
          moto.url,
        ]);
        await setCredentials(relay, GOOD, partnerKey);
        goodKey = (await relay.tenantJson(["key", "create", GOOD])).key;
        const minted = await relay.tenantJson(["sigv4", "create", GOOD]);
        pair = { accessKeyId: minted.accessKeyId, secretAccessKey: minted.secretAccessKey };
        // One request per 5 s toward AWS, burst 1: a second request right after the first is buffered.
        await relay.tenantJson([
          "create",
          BAD,
          "--name",
          "moto bad",
          "--source",
          `aws.partner/example.com/${BAD}/*`,
          "--region",
          "us-east-1",
          "--endpoint",
          moto.url,
          "--rate",
          "0.2",
          "--burst",
          "1",
        ]);
        await setCredentials(relay, BAD, {
          accessKeyId: partnerKey.accessKeyId,
          secretAccessKey: flip(partnerKey.secretAccessKey),
        });
        badKey = (await relay.tenantJson(["key", "create", BAD])).key;
        await relay.tenantJson([
          "create",
          ROLE,
          "--name",
          "moto role",
          "--source",
          `aws.partner/example.com/${ROLE}/*`,
          "--region",
          "us-east-1",
          "--endpoint",
          moto.url,
        ]);
        const set = await relay.tenantJson([
          "credentials",
          "set",
          ROLE,
          "--role-arn",
          roleArn,
          "--external-id",
          EXTERNAL_ID,
          "--relay-principal",
          `arn:aws:iam::${RELAY_ACCOUNT}:user/relay`,
        ]);
        assert.equal(set.externalId, EXTERNAL_ID, JSON.stringify(set));
        assert.deepEqual(set.trustPolicy.Statement[0].Condition, { StringEquals: { "sts:ExternalId": EXTERNAL_ID } });
        roleKey = (await relay.tenantJson(["key", "create", ROLE])).key;
      },
    );
    if (s.failures > 0) throw new Error("relay set-up failed; nothing else can run");

    const post = (key: string, entries: unknown[]) =>
      fetch(`${relay.url}/v1/events`, {
        method: "POST",
        headers: { authorization: `Bearer ${key}`, "content-type": "application/json" },
        body: JSON.stringify({ Entries: entries }),
        signal: AbortSignal.timeout(30_000),
      });

    await s.check(
      "POST /v1/events: three entries reach the customer's SQS queue exactly; the relay answers 200 with EventId null (moto returns no ids)",
      async () => {
        const entries = [
          {
            Source: src(GOOD, "orders"),
            DetailType: "Order Created",
            Detail: JSON.stringify({ id: 1, items: [{ sku: "A-1", qty: 2 }] }),
            Time: "2024-01-02T03:04:05Z",
            Resources: ["arn:aws:example:us-east-1:111111111111:order/1"],
          },
          {
            Source: src(GOOD, "orders"),
            DetailType: "Order Paid",
            Detail: JSON.stringify({ id: 1, note: "Zoë paid ✓" }),
            Time: T + 60,
          },
          {
            Source: src(GOOD, "orders"),
            DetailType: "Order Shipped",
            Detail: JSON.stringify({ id: 1, nested: { deep: [1, 2, 3] } }),
          },
        ];
        const before = Date.now();
        const res = await post(goodKey, entries);
        const text = await res.text();
        assert.equal(res.status, 200, text);
        // moto answers {"Entries":[],"FailedEntryCount":0}: all accepted, no EventIds.
        assert.deepEqual(JSON.parse(text), {
          FailedEntryCount: 0,
          Entries: [{ EventId: null }, { EventId: null }, { EventId: null }],
        });
        const [a, b, c] = await arrived(["Order Created", "Order Paid", "Order Shipped"]);
        assertEvent(a!, entries[0]!, "2024-01-02T03:04:05Z");
        assertEvent(b!, entries[1]!, "2024-01-02T03:05:05Z");
        assertEvent(c!, entries[2]!);
        // No Time: stamped at the call (moto's clock, whole seconds).
        const stamped = Date.parse(c!.time);
        assert.ok(
          stamped >= Math.floor(before / 1000) * 1000 - 5_000 && stamped <= Date.now() + 5_000,
          `time ${c!.time}`,
        );
      },
    );

    await s.check(
      "POST / (AWS front door) with the real JS SDK v3 and the relay-issued pair: the event reaches SQS",
      async () => {
        const client = new EventBridgeClient({
          region: "us-east-1",
          endpoint: relay.url,
          credentials: pair,
          maxAttempts: 1,
        });
        try {
          const entry = {
            Source: src(GOOD, "orders"),
            DetailType: "Order Cancelled",
            Detail: JSON.stringify({ id: 2, reason: "sdk" }),
            Time: new Date(T * 1000),
          };
          const out = await client.send(new PutPartnerEventsCommand({ Entries: [entry] }));
          assert.equal(out.FailedEntryCount, 0);
          assert.equal(out.Entries?.length, 1);
          assert.equal(out.Entries?.[0]?.ErrorCode, undefined);
          const [e] = await arrived(["Order Cancelled"]);
          assertEvent(e!, { ...entry, Time: T }, "2024-01-02T03:04:05Z");
        } finally {
          client.destroy();
        }
      },
    );

    await s.check(
      "an unknown Source (moto: HTML 500) is queued (202, RelayEventId), and delivered once the partner event source exists",
      async () => {
        const entry = { Source: src(GOOD, "returns"), DetailType: "Return Opened", Detail: JSON.stringify({ id: 3 }) };
        const res = await post(goodKey, [entry]);
        const text = await res.text();
        assert.equal(res.status, 202, text);
        const body = JSON.parse(text);
        assert.equal(body.FailedEntryCount, 0, text);
        assert.equal(body.QueuedEntryCount, 1, text);
        const id: string = body.Entries[0].RelayEventId;
        assert.match(id, /^relay-[0-9a-f-]{36}$/);
        const queued = await eventStatus(relay, goodKey, id);
        assert.equal(queued.state, "queued", JSON.stringify(queued));
        assert.equal(queued.lastErrorCode, "InternalFailure", JSON.stringify(queued));
        await readQueue();
        assert.equal(
          received.filter((e) => e["detail-type"] === "Return Opened").length,
          0,
          "not delivered while moto has no such source",
        );

        assert.deepEqual(
          await partner.events("CreatePartnerEventSource", { Name: entry.Source, Account: CUSTOMER_ACCOUNT }),
          {},
        );
        const [e] = await arrived(["Return Opened"], 30_000);
        assertEvent(e!, entry);
        const delivered = await eventually(
          "GET /v1/events/{id} delivered",
          async () => {
            const st = await eventStatus(relay, goodKey, id);
            return st.state === "delivered" ? st : undefined;
          },
          10_000,
        );
        assert.ok(delivered.attempts >= 2, JSON.stringify(delivered));
      },
    );

    await s.check(
      `tenant ${ROLE} (a role): the relay assumes it with STS (moto checks the relay identity's signature), signs PutPartnerEvents with the session credentials, and the events reach SQS`,
      async () => {
        const entries = [1, 2, 3].map((n) => ({
          Source: src(ROLE, "orders"),
          DetailType: `Role Order ${n}`,
          Detail: JSON.stringify({ n, via: "assumed role" }),
        }));
        // Two requests: the second reuses the assumed credentials.
        for (const batch of [entries.slice(0, 2), entries.slice(2)]) {
          const res = await post(roleKey, batch);
          const text = await res.text();
          assert.equal(res.status, 200, text);
          assert.equal(JSON.parse(text).FailedEntryCount, 0, text);
        }
        const got = await arrived(entries.map((e) => e.DetailType));
        got.forEach((e, i) => assertEvent(e, entries[i]!));
        const status = await relay.tenantJson(["status", ROLE]);
        assert.equal(status.delivered, 3, JSON.stringify(status));
        const show = await relay.tenantJson(["show", ROLE]);
        assert.deepEqual(show.credentials, { kind: "role", roleArn, externalId: EXTERNAL_ID, durationSeconds: null });
      },
    );

    await s.check(
      `tenant ${GOOD}: status counts every accepted entry as delivered; nothing queued or dead-lettered`,
      async () => {
        const st = await relay.tenantJson(["status", GOOD]);
        assert.equal(st.accepted, 5, JSON.stringify(st));
        assert.equal(st.delivered, 5, JSON.stringify(st));
        assert.equal(st.queued, 0, JSON.stringify(st));
        assert.equal(st.deadLetters, 0, JSON.stringify(st));
      },
    );

    // ---- the negative: moto refuses the tenant's credentials
    let heldId = "";
    const held = { Source: src(BAD, "orders"), DetailType: "Held While Refused", Detail: JSON.stringify({ id: 9 }) };
    await s.check(
      `tenant ${BAD} (wrong secret): POST /v1/events answers 502 upstream_auth_failed, upstreamCode SignatureDoesNotMatch; nothing accepted`,
      async () => {
        const res = await post(badKey, [{ Source: src(BAD, "orders"), DetailType: "Refused", Detail: "{}" }]);
        const text = await res.text();
        assert.equal(res.status, 502, text);
        assert.match(res.headers.get("content-type") ?? "", /^application\/problem\+json/);
        const body = JSON.parse(text);
        assert.equal(body.code, "upstream_auth_failed", text);
        assert.equal(body.upstreamCode, "SignatureDoesNotMatch", text);
        assert.ok(
          !text.includes(partnerKey.secretAccessKey) && !text.includes(flip(partnerKey.secretAccessKey)),
          "no secret in the answer",
        );
      },
    );

    await s.check(
      `tenant ${BAD}: an entry the relay accepts while moto refuses the credentials (rate-limited → buffered) stays queued, visible in status and GET /v1/events/{id}`,
      async () => {
        // The first request used the burst token; this one is buffered (202) and sent by the drain.
        const res = await post(badKey, [held]);
        const text = await res.text();
        assert.equal(res.status, 202, text);
        heldId = JSON.parse(text).Entries[0].RelayEventId;
        assert.match(heldId, /^relay-/);
        const st = await eventually(
          "the drain tried and moto refused",
          async () => {
            const e = await eventStatus(relay, badKey, heldId);
            return e.state === "queued" && e.attempts >= 1 ? e : undefined;
          },
          20_000,
        );
        assert.equal(st.lastErrorCode, "SignatureDoesNotMatch", JSON.stringify(st));
        const status = await relay.tenantJson(["status", BAD]);
        assert.equal(status.queued, 1, JSON.stringify(status));
        assert.equal(status.deadLetters, 0, JSON.stringify(status));
        assert.match(JSON.stringify(status.lastUpstreamError), /SignatureDoesNotMatch/, JSON.stringify(status));
        const dlq = await relay.tenantJson(["dlq", "list", BAD]);
        assert.deepEqual(dlq.items, [], JSON.stringify(dlq));
        await readQueue();
        assert.equal(
          received.filter((e) => e.source.includes(`/${BAD}/`)).length,
          0,
          "nothing of the refused tenant reached SQS",
        );
      },
    );

    await s.check(
      `tenant ${BAD}: after \`credentials set\` with the right secret, the held entry arrives in SQS (nothing lost)`,
      async () => {
        assert.ok(heldId, "no held entry");
        await setCredentials(relay, BAD, partnerKey);
        const [e] = await arrived([held.DetailType], 45_000);
        assertEvent(e!, held);
        const st = await eventStatus(relay, badKey, heldId);
        assert.equal(st.state, "delivered", JSON.stringify(st));
        const status = await relay.tenantJson(["status", BAD]);
        assert.equal(status.queued, 0, JSON.stringify(status));
        assert.equal(status.deadLetters, 0, JSON.stringify(status));
        assert.equal(status.delivered, 1, JSON.stringify(status));
        assert.equal(
          status.accepted,
          1,
          `only the held entry was ever accepted (the refused request was not): ${JSON.stringify(status)}`,
        );
      },
    );

    await s.check(
      `partner event sources: POST /v1/sources creates one for the customer account in moto (state unverifiable there: moto lacks ListPartnerEventSourceAccounts), and events for it arrive`,
      async () => {
        const name = src(GOOD, "signups");
        const res = await fetch(`${relay.url}/v1/sources`, {
          method: "POST",
          headers: { authorization: `Bearer ${goodKey}`, "content-type": "application/json" },
          body: JSON.stringify({ Name: name, Account: CUSTOMER_ACCOUNT }),
          signal: AbortSignal.timeout(20_000),
        });
        const text = await res.text();
        assert.equal(res.status, 201, text);
        const created = JSON.parse(text);
        assert.equal(created.name, name);
        assert.equal(created.account, CUSTOMER_ACCOUNT);
        // moto cannot tell the state: the relay says so and forwards as before (docs/sources.md).
        assert.match(String(created.warning), /ListPartnerEventSourceAccounts/, text);
        const sent = { Source: name, DetailType: "Signed Up", Detail: JSON.stringify({ user: "u-1" }) };
        const put = await fetch(`${relay.url}/v1/events`, {
          method: "POST",
          headers: { authorization: `Bearer ${goodKey}`, "content-type": "application/json" },
          body: JSON.stringify({ Entries: [sent] }),
          signal: AbortSignal.timeout(20_000),
        });
        const putText = await put.text();
        assert.ok(put.status === 200 || put.status === 202, putText);
        const [e] = await arrived([sent.DetailType], 45_000);
        assertEvent(e!, sent);
        const listed = await fetch(`${relay.url}/v1/sources`, { headers: { authorization: `Bearer ${goodKey}` } });
        const list = JSON.parse(await listed.text());
        assert.ok(
          list.sources.some((x: { name: string; managed: boolean }) => x.name === name && x.managed),
          JSON.stringify(list),
        );
        // The admin CLI sees and reads the same source.
        const cliList = await relay.tenantJson(["source", "list", GOOD]);
        assert.ok(
          cliList.sources.some((x: { name: string }) => x.name === name),
          JSON.stringify(cliList),
        );
        const shown = await relay.tenantJson(["source", "show", GOOD, name]);
        assert.equal(shown.source.account, CUSTOMER_ACCOUNT, JSON.stringify(shown));
        const refreshed = await relay.tenantJson(["source", "refresh", GOOD, name]);
        assert.match(String(refreshed.sources[0].warning), /ListPartnerEventSourceAccounts/, JSON.stringify(refreshed));
      },
    );

    await s.check("SQS holds nothing else (no duplicates, nothing unexpected)", async () => {
      await sleep(500);
      await readQueue();
      const types = received.map((e) => e["detail-type"]).sort();
      assert.deepEqual(types, [
        "Held While Refused",
        "Order Cancelled",
        "Order Created",
        "Order Paid",
        "Order Shipped",
        "Return Opened",
        "Role Order 1",
        "Role Order 2",
        "Role Order 3",
        "Signed Up",
      ]);
    });

    await s.check("no secret in the relay's log", () => {
      const log = relay.log.join("\n");
      for (const secret of [
        partnerKey.secretAccessKey,
        pair.secretAccessKey,
        goodKey,
        badKey,
        roleKey,
        relayKey.secretAccessKey,
      ])
        assert.ok(!log.includes(secret), "a secret appears in wrangler dev's output");
    });
  },
});

async function setCredentials(relay: E2eRelay, tenant: string, key: AwsKey): Promise<void> {
  const r = await relay.tenant(
    ["credentials", "set", tenant, "--access-key-id", key.accessKeyId, "--secret-access-key-stdin"],
    { stdin: key.secretAccessKey + "\n" },
  );
  assert.equal(r.code, 0, show(r));
}

// biome-ignore lint/suspicious/noExplicitAny: parsed JSON; the tests assert the fields they use
async function eventStatus(relay: E2eRelay, key: string, id: string): Promise<any> {
  const res = await fetch(`${relay.url}/v1/events/${id}`, {
    headers: { authorization: `Bearer ${key}` },
    signal: AbortSignal.timeout(10_000),
  });
  const text = await res.text();
  assert.equal(res.status, 200, text);
  return JSON.parse(text);
}

/** The event moto put on the customer's bus, as the SQS target received it. */
function assertEvent(
  e: SqsEvent,
  sent: { Source: string; DetailType: string; Detail: string; Resources?: string[]; Time?: unknown },
  time?: string,
): void {
  assert.equal(e.source, sent.Source);
  assert.equal(e["detail-type"], sent.DetailType);
  assert.deepEqual(e.detail, JSON.parse(sent.Detail));
  assert.deepEqual(e.resources, sent.Resources ?? []);
  assert.equal(e.region, "us-east-1");
  if (time) assert.equal(e.time, time);
  assert.match(e.id, /^[0-9a-f-]{36}$/);
}

/** The same secret with its last character changed. */
function flip(secret: string): string {
  const last = secret.at(-1);
  return secret.slice(0, -1) + (last === "A" ? "B" : "A");
}
