/**
 * The admin CLI, run in-process (scripts/lib/cli.ts `main`, what `npm run tenant` calls) against
 * real local state (Miniflare's KV on a temporary state directory, as the CLI opens it; no mock).
 * First at the KV level with no relay running, then through the Worker (wrangler dev on the same
 * state, with the local EventBridge upstream): created keys work, revoked keys and disabled tenants
 * are refused on the very next request, rotated keys overlap. The real-process runs (npm start on
 * another port, `npm run tenant`, --remote without a login) are in tenant-cli-smoke.slow.test.ts (npm run test:slow).
 */
import { existsSync, mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { AwsClient } from "aws4fetch";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type FakeEventBridgeServer, startFakeEventBridgeServer } from "../../emulator/server.ts";
import { type LocalRelay, startLocalRelay } from "../../scripts/lib/local-relay.ts";
import { recordRunningRelay, runningRelayFile } from "../../scripts/lib/running-relay.ts";
import { planRelay } from "../../src/admin/access.ts";
import { AdminClient } from "../../src/admin/client.ts";
import { getMany } from "../../src/admin/store.ts";
import { hashApiKey, isWellFormedApiKey } from "../../src/auth/api-key.ts";
import { MAX_API_KEYS_PER_TENANT, TENANT_CACHE_TTL_MS } from "../../src/limits.ts";
import {
  apiKeyIndexSchema,
  KV,
  type StaticCredentials,
  sigv4IndexSchema,
  type TenantRecord,
  tenantRecordSchema,
} from "../../src/tenants/record.ts";
import { importSealingKey, unseal } from "../../src/tenants/sealed.ts";
import {
  CliHarness,
  TEST_ADMIN_TOKEN,
  TEST_SEALING_KEY,
  type TranscriptEntry,
  unusedLocalUrl,
} from "./helpers/tenant-cli.ts";

const AWS_ACCESS_KEY_ID = "AKIAIOSFODNN7EXAMPLE";
const AWS_SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";
const AWS_SESSION_TOKEN = "FwoGZXIvYXdzEXAMPLESESSIONTOKENabcdefghijklmnopqrstuvwxyz0123456789";
const SEALED = /v1\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}/;

async function readRecord(h: CliHarness, id: string): Promise<TenantRecord | null> {
  const raw = await (await h.kv()).get(KV.tenant(id));
  return raw === null ? null : tenantRecordSchema.parse(JSON.parse(raw));
}

/** Every printed byte, except where a secret was minted, is free of every secret. */
function expectNoSecretPrinted(transcript: readonly TranscriptEntry[], secrets: readonly string[]): void {
  expect(transcript.length).toBeGreaterThan(5);
  for (const entry of transcript) {
    const printed = entry.stdout + entry.stderr;
    for (const s of secrets) {
      if (entry.minted.includes(s)) continue;
      if (printed.includes(s)) throw new Error(`\`tenant ${entry.args.join(" ")}\` printed a secret it did not mint`);
    }
    expect(printed, `tenant ${entry.args.join(" ")}`).not.toMatch(SEALED);
  }
}

// ---- KV level: no relay running ----------------------------------------------------------------

describe("tenant CLI on local KV (no relay running)", () => {
  let h: CliHarness;
  const secrets: string[] = [TEST_SEALING_KEY, TEST_ADMIN_TOKEN, AWS_SECRET, AWS_SESSION_TOKEN];
  const hashes: string[] = [];
  let created: { revision: number };

  beforeAll(async () => {
    h = new CliHarness(await unusedLocalUrl());
  });
  afterAll(() => h.cleanup());

  it("create, list, show, update (every write bumps the revision)", async () => {
    const { data } = await h.json([
      "create",
      "acme",
      "--name",
      "Acme Corp",
      "--source",
      "aws.partner/acme.com/*",
      "--source",
      "aws.partner/acme.io/orders",
      "--region",
      "us-east-1",
      "--rate",
      "5",
      "--burst",
      "10",
    ]);
    created = data;
    expect(data).toMatchObject({
      id: "acme",
      name: "Acme Corp",
      status: "active",
      region: "us-east-1",
      endpoint: null,
      sources: ["aws.partner/acme.com/*", "aws.partner/acme.io/orders"],
      limits: { ratePerSecond: 5, burst: 10 },
      credentials: null,
      apiKeys: [],
      sigv4Keys: [],
    });

    const listed = await h.json(["list"]);
    expect(listed.data.tenants.map((t: { id: string }) => t.id)).toEqual(["acme"]);
    const table = await h.ok(["list"]);
    expect(table.stdout).toMatch(/^ID\s+NAME\s+STATUS/m);
    expect(table.stdout).toMatch(/acme\s+Acme Corp\s+active\s+us-east-1/);

    const shown = await h.json(["show", "acme"]);
    expect(shown.data.revision).toBe(created.revision);

    const updated = await h.json([
      "update",
      "acme",
      "--name",
      "Acme Inc",
      "--region",
      "eu-west-1",
      "--endpoint",
      "https://events.example.test",
      "--max-queued-entries",
      "500",
    ]);
    expect(updated.data).toMatchObject({
      name: "Acme Inc",
      region: "eu-west-1",
      endpoint: "https://events.example.test",
      revision: created.revision + 1,
    });
    expect(updated.data.limits).toMatchObject({ ratePerSecond: 5, burst: 10, maxQueuedEntries: 500 });
    const cleared = await h.json(["update", "acme", "--clear-endpoint"]);
    expect(cleared.data).toMatchObject({ endpoint: null, revision: created.revision + 2 });

    const stored = await readRecord(h, "acme");
    expect(stored).toMatchObject({ schemaVersion: 1, name: "Acme Inc", revision: created.revision + 2 });
    expect(Date.parse(stored!.updatedAt)).toBeGreaterThan(Date.parse(stored!.createdAt));
  });

  it("key create prints the key once; key list shows ids only; key revoke removes record entry and index", async () => {
    const k1 = await h.json(["key", "create", "acme"]);
    k1.entry.minted.push(k1.data.key);
    secrets.push(k1.data.key);
    expect(Object.keys(k1.data).sort()).toEqual(["expiresAt", "key", "keyId", "tenantId"]);
    expect(k1.data).toMatchObject({ tenantId: "acme", expiresAt: null });
    expect(isWellFormedApiKey(k1.data.key)).toBe(true);

    const k2 = await h.ok(["key", "create", "acme", "--expires", "90d"]);
    const key2 = /\b(ebr_[0-9A-Za-z]{46})\b/.exec(k2.stdout)?.[1];
    expect(key2).toBeDefined();
    k2.minted.push(key2!);
    secrets.push(key2!);
    expect(k2.stdout).toMatch(/shown this once/);

    const listed = await h.json(["key", "list", "acme"]);
    expect(listed.data.keys).toHaveLength(2);
    expect(listed.data.keys.every((k: { state: string }) => k.state === "live")).toBe(true);
    const expires = Date.parse(listed.data.keys[1].expiresAt);
    expect(Math.abs(expires - (Date.now() + 90 * 86_400_000))).toBeLessThan(10 * 60_000);

    const h1 = await hashApiKey(k1.data.key);
    hashes.push(h1, await hashApiKey(key2!));
    const kv = await h.kv();
    const index = await getMany(kv, [KV.apiKey(h1), KV.apiKey(hashes[1]!)]);
    expect(apiKeyIndexSchema.parse(JSON.parse(index.get(KV.apiKey(h1))!))).toEqual({
      tenantId: "acme",
      keyId: k1.data.keyId,
    });
    expect(index.get(KV.apiKey(hashes[1]!))).not.toBeNull();
    const before = (await readRecord(h, "acme"))!;
    expect(before.apiKeys.map((k) => k.hash)).toEqual(hashes);

    const revoked = await h.ok(["key", "revoke", "acme", k1.data.keyId]);
    expect(revoked.stdout).toMatch(/revoked API key/);
    expect(revoked.stderr).toMatch(/no relay running/);
    const after = (await readRecord(h, "acme"))!;
    expect(after.revision).toBe(before.revision + 1);
    expect(after.apiKeys.map((k) => k.id)).toEqual([listed.data.keys[1].keyId]);
    expect(await kv.get(KV.apiKey(h1))).toBeNull();
    expect(await kv.get(KV.apiKey(hashes[1]!))).not.toBeNull();
  });

  it("credentials set seals the secret (stdin, or a flag with a warning); show never prints it", async () => {
    const set = await h.ok(
      ["credentials", "set", "acme", "--access-key-id", AWS_ACCESS_KEY_ID, "--secret-access-key-stdin"],
      {
        stdin: AWS_SECRET + "\n",
      },
    );
    expect(set.stdout).toMatch(/secret sealed/);
    expect(set.stderr).not.toMatch(/shell history/);
    const shown = await h.json(["show", "acme"]);
    expect(shown.data.credentials).toEqual({
      accessKeyId: AWS_ACCESS_KEY_ID,
      secretAccessKey: "sealed",
      sessionToken: null,
    });

    const key = await importSealingKey(TEST_SEALING_KEY);
    const stored = (await readRecord(h, "acme"))!;
    expect((stored.credentials as StaticCredentials).secretAccessKey).toMatch(/^v1\./);
    expect(
      await unseal(key, "acme", "secretAccessKey", (stored.credentials as StaticCredentials).secretAccessKey),
    ).toBe(AWS_SECRET);
    await expect(
      unseal(key, "other", "secretAccessKey", (stored.credentials as StaticCredentials).secretAccessKey),
    ).rejects.toThrow(/failed to decrypt/);

    const flagged = await h.ok(
      [
        "credentials",
        "set",
        "acme",
        "--access-key-id",
        AWS_ACCESS_KEY_ID,
        "--secret-access-key",
        AWS_SECRET,
        "--session-token-stdin",
      ],
      { stdin: AWS_SESSION_TOKEN + "\n" },
    );
    expect(flagged.stderr).toMatch(/shell history/);
    const withToken = (await readRecord(h, "acme"))!;
    expect(await unseal(key, "acme", "sessionToken", (withToken.credentials as StaticCredentials).sessionToken!)).toBe(
      AWS_SESSION_TOKEN,
    );
    const human = await h.ok(["show", "acme"]);
    expect(human.stdout).toMatch(/access key id AKIAIOSFODNN7EXAMPLE, secret sealed, session token sealed/);

    await h.ok(["credentials", "clear", "acme"]);
    expect((await readRecord(h, "acme"))!.credentials).toBeNull();
    await h.ok(["credentials", "set", "acme", "--access-key-id", AWS_ACCESS_KEY_ID, "--secret-access-key-stdin"], {
      stdin: AWS_SECRET,
    });
  });

  it("sigv4 create prints the pair once, seals the secret under sigv4:<id>; list and revoke", async () => {
    const created = await h.json(["sigv4", "create", "acme"]);
    const { accessKeyId, secretAccessKey } = created.data;
    created.entry.minted.push(secretAccessKey);
    secrets.push(secretAccessKey);
    expect(accessKeyId).toMatch(/^RLY[A-Z2-7]{17}$/);
    expect(secretAccessKey).toHaveLength(40);

    const kv = await h.kv();
    expect(sigv4IndexSchema.parse(JSON.parse((await kv.get(KV.sigv4(accessKeyId)))!))).toEqual({ tenantId: "acme" });
    const stored = (await readRecord(h, "acme"))!;
    const key = await importSealingKey(TEST_SEALING_KEY);
    expect(await unseal(key, "acme", `sigv4:${accessKeyId}`, stored.sigv4Keys[0]!.secret)).toBe(secretAccessKey);

    const listed = await h.json(["sigv4", "list", "acme"]);
    expect(listed.data.sigv4Keys).toEqual([{ accessKeyId, createdAt: stored.sigv4Keys[0]!.createdAt }]);

    await h.ok(["sigv4", "revoke", "acme", accessKeyId]);
    expect(await kv.get(KV.sigv4(accessKeyId))).toBeNull();
    expect((await readRecord(h, "acme"))!.sigv4Keys).toEqual([]);
    const again = await h.run(["sigv4", "revoke", "acme", accessKeyId]);
    expect(again.code).toBe(3);
    expect(again.stderr).toMatch(/has no SigV4 key pair/);
  });

  it("disable and enable flip the status at a new revision", async () => {
    const r0 = (await readRecord(h, "acme"))!.revision;
    const off = await h.json(["disable", "acme"]);
    expect(off.data).toEqual({ tenantId: "acme", status: "disabled", revision: r0 + 1, relay: "unreachable" });
    expect((await h.json(["show", "acme"])).data.status).toBe("disabled");
    const on = await h.json(["enable", "acme"]);
    expect(on.data).toMatchObject({ status: "active", revision: r0 + 2 });
    expect((await readRecord(h, "acme"))!.status).toBe("active");
  });

  it("delete removes the record and every index entry", async () => {
    await h.ok([
      "create",
      "doomed",
      "--name",
      "Doomed",
      "--source",
      "aws.partner/doomed.example/*",
      "--region",
      "us-west-2",
    ]);
    const k = await h.json(["key", "create", "doomed"]);
    k.entry.minted.push(k.data.key);
    secrets.push(k.data.key);
    const p = await h.json(["sigv4", "create", "doomed"]);
    p.entry.minted.push(p.data.secretAccessKey);
    secrets.push(p.data.secretAccessKey);
    const kv = await h.kv();
    const hash = await hashApiKey(k.data.key);

    const del = await h.json(["delete", "doomed"]);
    expect(del.data).toMatchObject({ tenantId: "doomed", deleted: true, indexEntriesDeleted: 2 });
    const left = await getMany(kv, [KV.tenant("doomed"), KV.apiKey(hash), KV.sigv4(p.data.accessKeyId)]);
    expect([...left.values()]).toEqual([null, null, null]);
    const gone = await h.run(["show", "doomed"]);
    expect(gone.code).toBe(3);
    expect(gone.stderr).toMatch(/unknown tenant "doomed"/);
    // acme's entries are untouched
    expect(await kv.get(KV.apiKey(hashes[1]!))).not.toBeNull();
  });

  describe("bad input: a clear message and a non-zero exit, before anything is written", () => {
    const valid = ["--name", "X", "--source", "aws.partner/x.example/*", "--region", "us-east-1"];
    const cases: [string, string[], number, RegExp][] = [
      ["invalid id", ["create", "Bad_Id", ...valid], 2, /invalid tenant id "Bad_Id"/],
      ["id too long", ["create", "a".repeat(64), ...valid], 2, /invalid tenant id/],
      [
        "invalid source",
        ["create", "x1", "--name", "X", "--source", "aws.partner/x", "--region", "us-east-1"],
        2,
        /invalid --source "aws\.partner\/x"/,
      ],
      [
        "foreign source",
        ["create", "x1", "--name", "X", "--source", "com.example.orders", "--region", "us-east-1"],
        2,
        /invalid --source/,
      ],
      [
        "invalid region",
        ["create", "x1", "--name", "X", "--source", "aws.partner/x.example/a", "--region", "mars-1"],
        2,
        /invalid --region "mars-1"/,
      ],
      [
        "endpoint not http(s)",
        ["create", "x1", ...valid, "--endpoint", "ftp://events.example.test"],
        2,
        /invalid --endpoint/,
      ],
      [
        "endpoint with a path",
        ["create", "x1", ...valid, "--endpoint", "https://events.example.test/v1"],
        2,
        /invalid --endpoint/,
      ],
      ["endpoint not a URL", ["create", "x1", ...valid, "--endpoint", "events"], 2, /invalid --endpoint/],
      ["rate zero", ["create", "x1", ...valid, "--rate", "0"], 2, /--rate must be greater than 0/],
      ["rate not a number", ["create", "x1", ...valid, "--rate", "fast"], 2, /--rate must be a positive number/],
      ["rate above the AWS quota", ["create", "x1", ...valid, "--rate", "5000"], 2, /--rate must be .* at most 1400/],
      ["burst fraction", ["create", "x1", ...valid, "--burst", "1.5"], 2, /--burst must be a whole number/],
      ["burst zero", ["create", "x1", ...valid, "--burst", "0"], 2, /--burst must be between 1 and/],
      ["missing required flags", ["create", "x1", "--name", "X"], 2, /create needs --source, --region/],
      ["invalid date", ["key", "create", "acme", "--expires", "someday"], 2, /--expires must be an ISO date/],
      ["impossible date", ["key", "create", "acme", "--expires", "2030-02-30"], 2, /--expires must be an ISO date/],
      ["past date", ["key", "create", "acme", "--expires", "2020-01-01"], 2, /--expires must be in the future/],
      ["unknown command", ["frobnicate"], 2, /unknown command: frobnicate[\s\S]*usage: npm run tenant -- <command>/],
      ["unknown subcommand", ["key", "rotate", "acme"], 2, /unknown command: key rotate/],
      ["group without subcommand", ["key"], 2, /key needs a subcommand: create, list, revoke/],
      [
        "unknown flag (usage shown)",
        ["create", "x1", ...valid, "--nmae", "Y"],
        2,
        /unknown flag for `create`: --nmae[\s\S]*usage: npm run tenant -- create <id>/,
      ],
      ["flag of another command", ["list", "--force"], 2, /unknown flag for `list`: --force/],
      ["flag without its value", ["show", "acme", "--persist-to"], 2, /argument missing/],
      ["missing argument", ["show"], 2, /show: missing argument/],
      ["extra argument", ["show", "acme", "extra"], 2, /unexpected argument "extra"/],
      ["--local and --remote", ["list", "--local", "--remote"], 2, /exclude each other/],
      [
        "credentials without a secret",
        ["credentials", "set", "acme", "--access-key-id", AWS_ACCESS_KEY_ID],
        2,
        /needs --secret-access-key-stdin/,
      ],
      [
        "credentials without an access key id",
        ["credentials", "set", "acme", "--secret-access-key-stdin"],
        2,
        /needs --access-key-id/,
      ],
      [
        "credentials with both secret flags",
        [
          "credentials",
          "set",
          "acme",
          "--access-key-id",
          AWS_ACCESS_KEY_ID,
          "--secret-access-key",
          "x",
          "--secret-access-key-stdin",
        ],
        2,
        /either --secret-access-key or --secret-access-key-stdin/,
      ],
      [
        "invalid access key id",
        ["credentials", "set", "acme", "--access-key-id", "short", "--secret-access-key-stdin"],
        2,
        /--access-key-id must be/,
      ],
      ["not a key id", ["key", "revoke", "acme", "my-key"], 2, /"my-key" is not a key id/],
      ["update with nothing to change", ["update", "acme"], 2, /nothing to change/],
      [
        "endpoint and clear-endpoint",
        ["update", "acme", "--endpoint", "https://a.example", "--clear-endpoint"],
        2,
        /exclude each other/,
      ],
      [
        "dlq replay with neither --all nor ids",
        ["dlq", "replay", "acme"],
        2,
        /needs --all or at least one relay event id/,
      ],
    ];
    it.each(cases)("%s", async (_name, args, code, message) => {
      const r = await h.run(args);
      expect(r.code).toBe(code);
      expect(r.stderr).toMatch(/^error: /);
      expect(r.stderr).toMatch(message);
      expect(r.stdout).toBe("");
    });

    it("an empty secret on stdin is refused", async () => {
      const r = await h.run(
        ["credentials", "set", "acme", "--access-key-id", AWS_ACCESS_KEY_ID, "--secret-access-key-stdin"],
        { stdin: "\n" },
      );
      expect(r.code).toBe(2);
      expect(r.stderr).toMatch(/secret access key is empty/);
    });

    it("unknown tenant, duplicate id, overlapping source, unknown key ids (exit 3 / 4)", async () => {
      for (const args of [
        ["show", "ghost"],
        ["key", "create", "ghost"],
        ["disable", "ghost"],
        ["delete", "ghost"],
        ["update", "ghost", "--name", "G"],
      ]) {
        const r = await h.run(args);
        expect(r.code, args.join(" ")).toBe(3);
        expect(r.stderr).toMatch(/unknown tenant "ghost"/);
      }
      const dup = await h.run([
        "create",
        "acme",
        "--name",
        "Again",
        "--source",
        "aws.partner/again.example/*",
        "--region",
        "us-east-1",
      ]);
      expect(dup.code).toBe(4);
      expect(dup.stderr).toMatch(/tenant "acme" already exists/);
      const overlap = await h.run([
        "create",
        "copycat",
        "--name",
        "C",
        "--source",
        "aws.partner/acme.com/orders",
        "--region",
        "us-east-1",
      ]);
      expect(overlap.code).toBe(4);
      expect(overlap.stderr).toMatch(/overlaps tenant acme's "aws\.partner\/acme\.com\/\*"/);
      const noKey = await h.run(["key", "revoke", "acme", "key_doesNotExist1"]);
      expect(noKey.code).toBe(3);
      expect(noKey.stderr).toMatch(/has no API key key_doesNotExist1/);
      expect(await readRecord(h, "copycat")).toBeNull();
    });

    it(`too many keys: at most ${MAX_API_KEYS_PER_TENANT} live API keys`, async () => {
      // Seed a record at the limit (through the record schema, as the CLI writes) instead of minting 10 keys.
      const now = new Date().toISOString();
      const record = tenantRecordSchema.parse({
        schemaVersion: 1,
        id: "full",
        name: "Full",
        status: "active",
        revision: 1,
        sources: ["aws.partner/full.example/*"],
        region: "us-east-1",
        createdAt: now,
        updatedAt: now,
        apiKeys: Array.from({ length: MAX_API_KEYS_PER_TENANT }, (_, i) => ({
          id: `key_seed${i}`,
          hash: String(i).padStart(64, "0"),
          createdAt: now,
        })),
      });
      await (await h.kv()).put(KV.tenant("full"), JSON.stringify(record));
      const r = await h.run(["key", "create", "full"]);
      expect(r.code).toBe(4);
      expect(r.stderr).toMatch(new RegExp(`already has ${MAX_API_KEYS_PER_TENANT} live API keys`));
      expect(r.stdout).not.toMatch(/ebr_/);
    });
  });

  it("--help per command, and the command list", async () => {
    const help = await h.ok(["key", "create", "--help"]);
    expect(help.stdout).toMatch(/^usage: npm run tenant -- key create <id> \[flags\]/);
    expect(help.stdout).toMatch(/--expires <when>/);
    expect(help.stdout).toMatch(/--remote/);
    const all = await h.ok(["--help"]);
    for (const c of [
      "create",
      "list",
      "show",
      "update",
      "disable",
      "enable",
      "delete",
      "key create",
      "key list",
      "key revoke",
      "credentials set",
      "sigv4 create",
      "sigv4 revoke",
      "status",
      "dlq list",
      "dlq replay",
    ]) {
      expect(all.stdout).toContain(`  ${c} `);
    }
    const none = await h.run([]);
    expect(none.code).toBe(2);
    expect(none.stderr).toMatch(/usage:/);
  });

  describe("--remote (the not-logged-in message: tenant-cli-smoke.slow.test.ts, a real process)", () => {
    let config: string;
    beforeAll(() => {
      config = join(h.dir, "wrangler.admin-remote.toml");
      writeFileSync(
        config,
        'name = "relay-test"\n\n[[kv_namespaces]]\nbinding = "TENANTS"\nid = "0123456789abcdef0123456789abcdef"\nremote = true\n',
      );
    });

    it("refuses the placeholder namespace id in wrangler.admin-remote.toml, before reaching Cloudflare", async () => {
      const r = await h.run(["list", "--remote"]);
      expect(r.code).toBe(1);
      expect(r.stderr).toMatch(
        /no real id for the TENANTS KV namespace: run `npx wrangler kv namespace create TENANTS`/,
      );
    });

    it("refuses a --remote configuration whose TENANTS binding is not remote (it would write local state)", async () => {
      const local = join(h.dir, "not-remote.toml");
      writeFileSync(
        local,
        'name = "relay-test"\n\n[[kv_namespaces]]\nbinding = "TENANTS"\nid = "0123456789abcdef0123456789abcdef"\n',
      );
      const r = await h.run(["list", "--remote", "--config", local]);
      expect(r.code).toBe(1);
      expect(r.stderr).toMatch(/the TENANTS binding needs `remote = true` for --remote/);
      const none = join(h.dir, "no-kv.toml");
      writeFileSync(none, 'name = "relay-test"\n');
      const r2 = await h.run(["list", "--remote", "--config", none]);
      expect(r2.code).toBe(1);
      expect(r2.stderr).toMatch(/has no TENANTS KV namespace binding/);
    });

    it("needs RELAY_SEALING_KEY, RELAY_URL and RELAY_ADMIN_TOKEN, and says so before touching KV", async () => {
      const noKey = await h.run(
        [
          "credentials",
          "set",
          "acme",
          "--remote",
          "--config",
          config,
          "--access-key-id",
          AWS_ACCESS_KEY_ID,
          "--secret-access-key-stdin",
        ],
        {
          env: { RELAY_SEALING_KEY: undefined },
          stdin: AWS_SECRET,
        },
      );
      expect(noKey.code).toBe(1);
      expect(noKey.stderr).toMatch(
        /--remote needs the sealing key: set RELAY_SEALING_KEY.*wrangler secret put SEALING_KEY/,
      );
      const noUrl = await h.run(["disable", "acme", "--remote", "--config", config], {
        env: { RELAY_URL: undefined },
      });
      expect(noUrl.code).toBe(1);
      expect(noUrl.stderr).toMatch(/--url https:\/\/<relay host> or set RELAY_URL/);
      const noToken = await h.run(
        ["key", "revoke", "acme", "key_abc", "--remote", "--config", config, "--url", "https://relay.example.test"],
        {
          env: { RELAY_ADMIN_TOKEN: undefined },
        },
      );
      expect(noToken.code).toBe(1);
      expect(noToken.stderr).toMatch(/set RELAY_ADMIN_TOKEN/);
    });

    it("an unreachable relay aborts a remote access change before any KV write (unless --skip-relay)", async () => {
      const url = await unusedLocalUrl();
      const warnings: string[] = [];
      const admin = {
        mode: "remote" as const,
        notices: { note() {}, warn: (l: string) => void warnings.push(l) },
        relay: () => new AdminClient({ baseUrl: url, token: "t" }),
      };
      await expect(planRelay(admin, false)).rejects.toThrow(/unreachable, so nothing was written.*--skip-relay/);
      await expect(planRelay(admin, true)).resolves.toEqual({ client: null, outcome: "skipped" });
      expect(warnings.join("")).toMatch(/~60 s/);
    });
  });

  describe("the relay npm start recorded in the state directory", () => {
    it("a recorded relay that does not answer: an access change fails (exit 1) and writes nothing", async () => {
      mkdirSync(h.stateDir, { recursive: true });
      const url = await unusedLocalUrl();
      // This test process stands in for npm start: its pid is alive, nothing listens at the URL.
      const forget = recordRunningRelay(h.stateDir, { url, pid: process.pid });
      try {
        const before = (await readRecord(h, "acme"))!;
        const keyId = before.apiKeys[0]!.id;
        // Without RELAY_URL the CLI goes to the recorded relay.
        const r = await h.run(["key", "revoke", "acme", keyId], { env: { RELAY_URL: undefined } });
        expect(r.code).toBe(1);
        expect(r.stderr).toMatch(
          new RegExp(
            `the local relay \`npm start\` runs on this state \\(pid ${process.pid}, ${url}\\) did not answer, so nothing was written`,
          ),
        );
        expect(r.stdout).toBe("");
        expect((await readRecord(h, "acme"))!).toEqual(before);
        // The same with an explicit URL that does not answer either: still refused.
        const r2 = await h.run(["disable", "acme"]);
        expect(r2.code).toBe(1);
        expect(r2.stderr).toMatch(/did not answer, so nothing was written/);
        expect((await readRecord(h, "acme"))!.status).toBe("active");
      } finally {
        forget();
      }
      expect(existsSync(runningRelayFile(h.stateDir))).toBe(false);
    });

    it("a stale record (its process is gone) is ignored and removed", async () => {
      const url = await unusedLocalUrl();
      writeFileSync(
        runningRelayFile(h.stateDir),
        JSON.stringify({ url, pid: 2 ** 22 + 12345, startedAt: new Date().toISOString() }),
      );
      const r = await h.run(["disable", "acme"], { env: { RELAY_URL: undefined, PORT: new URL(url).port } });
      expect(r.code, r.stderr).toBe(0);
      expect(r.stderr).toMatch(/no relay running at http:\/\/127\.0\.0\.1:\d+; local KV only/);
      expect(existsSync(runningRelayFile(h.stateDir))).toBe(false);
      await h.ok(["enable", "acme"]);
    });
  });

  it("never printed a secret, except the one-time key or pair where it was minted", () => {
    expectNoSecretPrinted(h.transcript, [...secrets, ...hashes]);
  });
});

// ---- Through the Worker: wrangler dev on the same state, fake EventBridge upstream -----------------

describe("tenant CLI through the Worker (wrangler dev on the same local state)", () => {
  let h: CliHarness;
  let relay: LocalRelay;
  let upstream: FakeEventBridgeServer;
  const relayLog: string[] = [];
  const SOURCE = "aws.partner/relay-cli.example/orders";
  let keyA: { keyId: string; key: string };
  let keyB: { keyId: string; key: string };
  let sent = 0;
  const minted: string[] = [];

  /** `key create` with the key marked as minted by that invocation. */
  async function mintKey(): Promise<{ keyId: string; key: string }> {
    const r = await h.json(["key", "create", "live"]);
    r.entry.minted.push(r.data.key);
    minted.push(r.data.key);
    return r.data;
  }

  async function post(key: string): Promise<Response> {
    const n = ++sent;
    return fetch(`${relay.url}/v1/events`, {
      method: "POST",
      headers: { authorization: `Bearer ${key}`, "content-type": "application/json" },
      body: JSON.stringify({ Entries: [{ Source: SOURCE, DetailType: "cli-test", Detail: JSON.stringify({ n }) }] }),
    });
  }

  /** Entries the relay answered 200 for (status counters are checked against it). */
  let accepted = 0;

  async function expectAccepted(key: string): Promise<void> {
    const res = await post(key);
    const body = await res.text();
    expect(res.status, body).toBe(200);
    expect(JSON.parse(body)).toMatchObject({ FailedEntryCount: 0 });
    accepted++;
  }

  beforeAll(async () => {
    upstream = await startFakeEventBridgeServer({ port: 0 });
    upstream.fake.addCredential({ accessKeyId: AWS_ACCESS_KEY_ID, secretAccessKey: AWS_SECRET });
    h = new CliHarness("http://127.0.0.1:9");
    relay = await startLocalRelay({
      port: 0,
      persistTo: h.stateDir,
      vars: { SEALING_KEY: TEST_SEALING_KEY, ADMIN_TOKEN: TEST_ADMIN_TOKEN, ALLOW_ENDPOINT_OVERRIDE: "true" },
      log: (l) => relayLog.push(l),
    });
    h.env.RELAY_URL = relay.url;
    await h.ok([
      "create",
      "live",
      "--name",
      "Live",
      "--source",
      "aws.partner/relay-cli.example/*",
      "--region",
      "us-east-1",
      "--endpoint",
      upstream.url,
    ]);
    await h.ok(["credentials", "set", "live", "--access-key-id", AWS_ACCESS_KEY_ID, "--secret-access-key-stdin"], {
      stdin: AWS_SECRET,
    });
  });
  afterAll(async () => {
    await relay?.stop();
    await upstream?.close();
    await h?.cleanup();
  });

  it("a created key works: the event reaches the upstream", async () => {
    keyA = await mintKey();
    await expectAccepted(keyA.key);
    expect(upstream.fake.events.map((e) => e.entry.Source)).toContain(SOURCE);
  });

  it("two rotated keys both work until the old one is revoked; the revoked one is refused on the very next request", async () => {
    // The Worker holds the tenant's record in its isolate cache (keyA was just used), and the
    // new key still works on the very next request.
    keyB = await mintKey();
    await expectAccepted(keyB.key);
    await expectAccepted(keyA.key);

    const revoked = await h.json(["key", "revoke", "live", keyA.keyId]);
    expect(revoked.data.relay).toBe("applied");
    const refused = await post(keyA.key);
    expect(refused.status).toBe(401);
    expect(await refused.json()).toMatchObject({ code: "invalid_api_key" });
    await expectAccepted(keyB.key);
  });

  it("a disabled tenant is refused on the very next request (403), and accepted again once enabled", async () => {
    const off = await h.json(["disable", "live"]);
    expect(off.data.relay).toBe("applied");
    const refused = await post(keyB.key);
    expect(refused.status).toBe(403);
    expect(await refused.json()).toMatchObject({ code: "tenant_disabled" });

    const on = await h.json(["enable", "live"]);
    expect(on.data.relay).toBe("applied");
    // Enabling is not urgent: the Worker may hold the disabled record in its isolate cache
    // (TENANT_CACHE_TTL_MS) before it asks the Durable Object again.
    const deadline = Date.now() + TENANT_CACHE_TTL_MS + 15_000;
    let status = 0;
    while (Date.now() < deadline) {
      status = (await post(keyB.key)).status;
      if (status === 200) {
        accepted++;
        break;
      }
      await new Promise((r) => setTimeout(r, 1_000));
    }
    expect(status).toBe(200);
  });

  it("a SigV4 pair works at the AWS front door at once, until revoked", async () => {
    await expectAccepted(keyB.key);
    const created = await h.json(["sigv4", "create", "live"]);
    const pair = created.data;
    created.entry.minted.push(pair.secretAccessKey);
    minted.push(pair.secretAccessKey);
    const aws = new AwsClient({
      accessKeyId: pair.accessKeyId,
      secretAccessKey: pair.secretAccessKey,
      service: "events",
      region: "us-east-1",
      retries: 0,
    });
    const send = () =>
      aws.fetch(`${relay.url}/`, {
        method: "POST",
        headers: { "content-type": "application/x-amz-json-1.1", "x-amz-target": "AWSEvents.PutPartnerEvents" },
        body: JSON.stringify({ Entries: [{ Source: SOURCE, DetailType: "cli-test-sigv4", Detail: "{}" }] }),
      });
    const ok = await send(); // the record is cached (keyB was just used): still accepted at once
    const okBody = await ok.text();
    expect(ok.status, okBody).toBe(200);
    expect(JSON.parse(okBody)).toMatchObject({ FailedEntryCount: 0 });
    accepted++;

    await h.ok(["sigv4", "revoke", "live", pair.accessKeyId]);
    const refused = await send();
    expect(refused.status).toBe(400);
    expect(await refused.json()).toMatchObject({ __type: "UnrecognizedClientException" });
  });

  it("without RELAY_URL or PORT, an access change goes to the relay npm start recorded on this state (any port)", async () => {
    const key = await mintKey();
    await expectAccepted(key.key);
    // What npm start writes once its relay answers (scripts/dev.ts); this process stands in for it.
    const forget = recordRunningRelay(h.stateDir, { url: relay.url, pid: process.pid });
    try {
      const revoked = await h.json(["key", "revoke", "live", key.keyId], { env: { RELAY_URL: undefined } });
      expect(revoked.data.relay).toBe("applied");
      expect(revoked.entry.stderr).not.toMatch(/no relay running/);
    } finally {
      forget();
    }
    const refused = await post(key.key);
    expect(refused.status).toBe(401);
    expect(await refused.json()).toMatchObject({ code: "invalid_api_key" });
  });

  it("status and dlq read the tenant's Durable Object through the admin API", async () => {
    // The Worker reports a direct send's counters to the gate after answering (waitUntil), so
    // the last request's report may still be on its way: read until it has landed (bounded).
    let { data } = await h.json(["status", "live"]);
    for (let i = 0; i < 50 && data.accepted !== accepted; i++) {
      await new Promise((r) => setTimeout(r, 100));
      ({ data } = await h.json(["status", "live"]));
    }
    expect(data.tenantId).toBe("live");
    expect(data.accepted).toBe(accepted);
    expect(data.delivered).toBe(accepted);
    expect(data.queued).toBe(0);
    const human = await h.ok(["status", "live"]);
    expect(human.stdout).toMatch(/^delivered:\s+\d+/m);
    const dlq = await h.json(["dlq", "list", "live", "--limit", "10"]);
    expect(dlq.data).toEqual({ tenantId: "live", items: [], next: null });
    const replay = await h.run(["dlq", "replay", "live", "relay-00000000-0000-4000-8000-000000000000"]);
    expect(replay.code).toBe(3);
    expect(replay.stderr).toMatch(/not dead letters of tenant live/);
  });

  it("update --shards: the relay's control object is told first (new shards seeded), then the record; show suggests N", async () => {
    const updated = await h.json(["update", "live", "--shards", "3"]);
    expect(updated.data.limits.shards).toBe(3);
    const { data } = await h.json(["status", "live"]);
    expect(data.shards.map((s: { shard: number; routed: boolean }) => [s.shard, s.routed])).toEqual([
      [0, true],
      [1, true],
      [2, true],
    ]);
    const shown = await h.ok(["show", "live"]);
    expect(shown.stdout).toMatch(/^shards:\s+3 \(suggested for 10 requests\/s: 1;/m);
    const bad = await h.run(["update", "live", "--shards", "0"]);
    expect(bad.code).toBe(2);
    const back = await h.json(["update", "live", "--shards", "1"]);
    expect(back.data.limits.shards).toBe(1);
    const after = await h.json(["status", "live"]);
    // Shards 1 and 2 are retired: still listed (they drain what they hold), no longer routed.
    expect(after.data.shards.map((s: { routed: boolean }) => s.routed)).toEqual([true, false, false]);
  });

  it("delete refuses the tenant's keys on the very next request, even where the Worker still caches its record", async () => {
    const key = (keyB ?? keyA).key; // keyB unless this test runs alone
    await expectAccepted(key); // the Worker now holds the record and the key's index in its isolate cache
    const del = await h.json(["delete", "live"]);
    expect(del.data).toMatchObject({ deleted: true, relay: "applied", relayState: "purged" });
    const res = await post(key);
    expect([401, 403], await res.text()).toContain(res.status);
  });

  it("delete refuses while the relay holds queued events (exit 4, nothing changed); --force drops them", async () => {
    await h.ok([
      "create",
      "busy",
      "--name",
      "Busy",
      "--source",
      "aws.partner/busy.example/*",
      "--region",
      "us-east-1",
      "--endpoint",
      upstream.url,
    ]);
    await h.ok(["credentials", "set", "busy", "--access-key-id", AWS_ACCESS_KEY_ID, "--secret-access-key-stdin"], {
      stdin: AWS_SECRET,
    });
    const k = await h.json(["key", "create", "busy"]);
    k.entry.minted.push(k.data.key);
    minted.push(k.data.key);
    upstream.fake.setFaultRates({ error5xx: 1 }); // every upstream call fails: the entry stays queued
    try {
      const res = await fetch(`${relay.url}/v1/events`, {
        method: "POST",
        headers: { authorization: `Bearer ${k.data.key}`, "content-type": "application/json" },
        body: JSON.stringify({ Entries: [{ Source: "aws.partner/busy.example/x", DetailType: "t", Detail: "{}" }] }),
      });
      expect(res.status, await res.text()).toBe(202);
      const refused = await h.run(["delete", "busy"]);
      expect(refused.code).toBe(4);
      expect(refused.stderr).toMatch(/still has 1 queued event\(s\).*--force.*Nothing was changed/);
      expect(await readRecord(h, "busy")).not.toBeNull();
      const forced = await h.json(["delete", "busy", "--force"]);
      expect(forced.data).toMatchObject({ deleted: true, relay: "applied", relayState: "purged" });
      const after = await fetch(`${relay.url}/admin/v1/tenants/busy/status`, {
        headers: { authorization: `Bearer ${TEST_ADMIN_TOKEN}` },
      });
      expect(await after.json()).toMatchObject({ queued: 0, accepted: 0, status: "disabled" });
    } finally {
      upstream.fake.setFaultRates(null);
    }
    // A delete that stopped after KV can be finished: --force purges the relay state of a missing record.
    const again = await h.json(["delete", "busy", "--force"]);
    expect(again.entry.stderr).toMatch(/no record tenant:busy in KV; purging the relay state only/);
    expect(again.data).toMatchObject({ deleted: false, relayState: "purged" });
  });

  it("status and dlq need the relay: a clear error when none answers", async () => {
    await h.ok(["create", "quiet", "--name", "Q", "--source", "aws.partner/quiet.example/*", "--region", "us-east-1"]);
    const r = await h.run(["status", "quiet"], { env: { RELAY_URL: await unusedLocalUrl() } });
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(
      /needs the relay, and none answers at http:\/\/127\.0\.0\.1:\d+: start it with `npm start`/,
    );
  });

  it("never printed a secret outside the one-time outputs (relay log included)", () => {
    expectNoSecretPrinted(h.transcript, [TEST_SEALING_KEY, TEST_ADMIN_TOKEN, AWS_SECRET, ...minted]);
    const log = relayLog.join("\n");
    for (const s of [TEST_SEALING_KEY, TEST_ADMIN_TOKEN, AWS_SECRET, ...minted]) expect(log.includes(s)).toBe(false);
  });
});
