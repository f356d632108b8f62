/**
 * `npm start` (scripts/dev.ts) run for real, as a child process: wrangler dev on a temporary state
 * directory (RELAY_STATE_DIR) with a temporary secrets file (RELAY_DEV_VARS), so the developer's
 * own .wrangler/state and .dev.vars are never touched, on free ports of 127.0.0.1.
 *
 * What it proves: the first start creates the secrets file and the demo tenant, the relay answers
 * /healthz, the printed curl command (run as printed, by sh) delivers an event that the local
 * EventBridge lists and logs, the printed AWS CLI pair works on the AWS front door, the documented
 * fault injection shows the relay queueing and then delivering; a second start on another emulator
 * port reuses the tenant and the key, moves the endpoint and keeps .dev.vars; SIGINT exits 0 with
 * both ports closed, also in the middle of start-up; a taken port is one clear message and exit 1.
 */
import { type ChildProcess, execFile, spawn, spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, statSync } from "node:fs";
import { connect, createServer, type Server } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseEnv } from "node:util";
import { EventBridgeClient, PutPartnerEventsCommand } from "@aws-sdk/client-eventbridge";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { type DemoResult, ensureDemoTenant, readDemoFile } from "../../scripts/dev/demo-tenant.ts";
import { nodeForWrangler } from "../../scripts/lib/local-relay.ts";
import type { KvEntry, TenantsKv } from "../../src/admin/store.ts";
import { hashApiKey } from "../../src/auth/api-key.ts";
import { KV, type StaticCredentials, type TenantRecord, tenantRecordSchema } from "../../src/tenants/record.ts";
import { importSealingKey, unseal } from "../../src/tenants/sealed.ts";
import { ROOT, runProcess } from "./helpers/tenant-cli.ts";

const DEV = join(ROOT, "scripts", "dev.ts");
const TENANT_CLI = join(ROOT, "scripts", "tenant.ts");
/** The line dev.ts prints last once everything is up. */
const READY_LINE = /^Ctrl-C stops everything\.$/m;
/** Cold start: bundle + workerd + the demo tenant's wrangler kv calls, on a busy machine. */
const START_TIMEOUT_MS = 90_000;
/** SIGINT to exit: the relay's own stop grace is 5 s. */
const STOP_TIMEOUT_MS = 30_000;
/** How long a printed shell command may run. */
const COMMAND_TIMEOUT_MS = 20_000;
/** The relay's first retry after a throttle: DRAIN_BACKOFF_BASE_MS (1 s) with jitter, plus slack. */
const DRAIN_TIMEOUT_MS = 20_000;
const DEMO_SOURCE = "aws.partner/example.com/demo/orders";

interface ReceivedEvent {
  eventId: string;
  entry: { Source?: string; DetailType?: string; Detail?: string };
  accessKeyId: string;
}

/** One `node scripts/dev.ts` child and everything it printed. */
class Dev {
  readonly child: ChildProcess;
  stdout = "";
  stderr = "";
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;

  constructor(env: Record<string, string>) {
    const childEnv: NodeJS.ProcessEnv = { ...process.env, ...env };
    // Nothing from the developer's shell may point the child elsewhere.
    for (const k of ["INIT_CWD", "RELAY_URL", "RELAY_ADMIN_TOKEN", "RELAY_SEALING_KEY", "CLOUDFLARE_API_TOKEN"])
      delete childEnv[k];
    this.child = spawn(nodeForWrangler(ROOT), [DEV], { cwd: ROOT, env: childEnv, stdio: ["ignore", "pipe", "pipe"] });
    this.child.stdout!.setEncoding("utf8").on("data", (s: string) => (this.stdout += s));
    this.child.stderr!.setEncoding("utf8").on("data", (s: string) => (this.stderr += s));
    this.exited = new Promise((resolve) => this.child.once("exit", (code, signal) => resolve({ code, signal })));
    running.add(this);
    void this.exited.then(() => running.delete(this));
  }

  /** Resolves when stdout matches `re`; fails early when the process exits first. */
  async waitFor(re: RegExp, timeoutMs = START_TIMEOUT_MS): Promise<RegExpMatchArray> {
    const deadline = Date.now() + timeoutMs;
    let exited = false;
    void this.exited.then(() => (exited = true));
    while (Date.now() < deadline) {
      const m = re.exec(this.stdout);
      if (m) return m;
      if (exited) throw new Error(`dev.ts exited before printing ${re}:\n${this.transcript()}`);
      await sleep(100);
    }
    throw new Error(`dev.ts did not print ${re} within ${timeoutMs / 1000} s:\n${this.transcript()}`);
  }

  async stop(signal: NodeJS.Signals = "SIGINT"): Promise<number | null> {
    this.child.kill(signal);
    const r = await withTimeout(
      this.exited,
      STOP_TIMEOUT_MS,
      `dev.ts did not exit within ${STOP_TIMEOUT_MS / 1000} s of ${signal}`,
    );
    return r.code;
  }

  transcript(): string {
    return `--- stdout\n${this.stdout}\n--- stderr\n${this.stderr}`;
  }
}

/** Children still running, ended after each test whatever happened. */
const running = new Set<Dev>();

afterEach(async () => {
  for (const dev of [...running]) {
    dev.child.kill("SIGTERM");
    const done = await Promise.race([dev.exited.then(() => true), sleep(STOP_TIMEOUT_MS).then(() => false)]);
    if (!done) dev.child.kill("SIGKILL");
  }
});

describe("npm start (scripts/dev.ts)", () => {
  let dir: string;
  let env: Record<string, string>;
  let relayPort: number;
  let firstKey: string;
  let devVarsAfterFirstRun: string;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), "relay-dev-test-"));
    relayPort = await freePort();
    env = {
      RELAY_STATE_DIR: join(dir, "state"),
      RELAY_DEV_VARS: join(dir, "dev.vars"),
      PORT: String(relayPort),
    };
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it("first start: .dev.vars, demo tenant, a curl command that delivers, the AWS CLI pair, faults; SIGINT exits 0", async () => {
    const emulatorPort = await freePort([relayPort]);
    const dev = new Dev({ ...env, EMULATOR_PORT: String(emulatorPort) });
    await dev.waitFor(READY_LINE);
    const relayUrl = `http://127.0.0.1:${relayPort}`;
    const emulatorUrl = `http://127.0.0.1:${emulatorPort}`;

    // The secrets file: created, private, fresh random values, endpoint overrides on; never printed.
    expect(dev.stdout).toMatch(/created .*dev\.vars with a fresh random SEALING_KEY and ADMIN_TOKEN/);
    devVarsAfterFirstRun = readFileSync(env.RELAY_DEV_VARS!, "utf8");
    const vars = parseEnv(devVarsAfterFirstRun);
    expect(statSync(env.RELAY_DEV_VARS!).mode & 0o777).toBe(0o600);
    expect(Buffer.from(vars.SEALING_KEY!, "base64")).toHaveLength(32);
    expect(vars.ADMIN_TOKEN!.length).toBeGreaterThanOrEqual(32);
    expect(vars.ALLOW_ENDPOINT_OVERRIDE).toBe("true");
    expect(dev.stdout + dev.stderr).not.toContain(vars.SEALING_KEY!);
    expect(dev.stdout + dev.stderr).not.toContain(vars.ADMIN_TOKEN!);

    // The relay and the local EventBridge answer where the banner says.
    expect(dev.stdout).toContain(`Relay              ${relayUrl}`);
    expect(dev.stdout).toContain(`Local EventBridge  ${emulatorUrl}/_fake/`);
    expect(dev.stdout).toMatch(
      /Demo tenant +demo: aws\.partner\/example\.com\/demo\/\*, us-east-1, endpoint http:\/\/127\.0\.0\.1:\d+ +\[created tenant demo; minted an API key; minted a SigV4 pair\]/,
    );
    expect(dev.stdout).toMatch(/LOCAL DEMO KEY/);
    const health = await fetch(`${relayUrl}/healthz`);
    expect(health.status).toBe(200);

    // The curl command, run exactly as printed.
    const curl = printedCommand(dev.stdout, /^ {2}curl /);
    firstKey = /Bearer (ebr_\w+)/.exec(curl)![1]!;
    expect(dev.stdout).toContain(`Demo API key       ${firstKey}`);
    const sent = JSON.parse(await sh(curl));
    expect(sent).toMatchObject({ FailedEntryCount: 0, Entries: [{ EventId: expect.any(String) }] });
    const eventId: string = sent.Entries[0].EventId;
    const received = await waitForEvent(emulatorUrl, (e) => e.eventId === eventId);
    expect(received.entry.Source).toBe(DEMO_SOURCE);
    expect(JSON.parse(received.entry.Detail!)).toMatchObject({ orderId: "1001" });
    expect(received.accessKeyId).toBe("AKIAFAKEEVENTBRIDGE0"); // signed with the emulator's pair, verified by it
    await dev.waitFor(
      new RegExp(`eventbridge │ [\\d:.]+ event ${escapeRegExp(DEMO_SOURCE)} "Order Placed" ${eventId}`),
      10_000,
    );
    const page = await fetch(`${emulatorUrl}/_fake/`);
    expect(page.headers.get("content-type")).toMatch(/^text\/html/);
    expect(await page.text()).toContain(eventId);

    // The SigV4 pair printed for the AWS CLI works on the AWS front door (POST /).
    const aws = printedCommand(dev.stdout, /^ {2}AWS_ACCESS_KEY_ID=/);
    const accessKeyId = /AWS_ACCESS_KEY_ID=(\S+)/.exec(aws)![1]!;
    const secretAccessKey = /AWS_SECRET_ACCESS_KEY=(\S+)/.exec(aws)![1]!;
    expect(aws).toContain(`--endpoint-url ${relayUrl} --region us-east-1`);
    const client = new EventBridgeClient({
      region: "us-east-1",
      endpoint: relayUrl,
      credentials: { accessKeyId, secretAccessKey },
      maxAttempts: 1,
    });
    const viaSdk = await client.send(
      new PutPartnerEventsCommand({
        Entries: [{ Source: DEMO_SOURCE, DetailType: "Order Placed", Detail: JSON.stringify({ orderId: "sdk" }) }],
      }),
    );
    client.destroy();
    expect(viaSdk.FailedEntryCount).toBe(0);
    const sdkEventId = viaSdk.Entries![0]!.EventId!;
    await waitForEvent(emulatorUrl, (e) => e.eventId === sdkEventId);
    if (hasAwsCli()) {
      // And the printed command itself, with nothing from this machine's AWS configuration.
      const out = JSON.parse(await sh(aws, awsCliEnv()));
      expect(out.FailedEntryCount).toBe(0);
      const cliEventId: string = out.Entries[0].EventId;
      await waitForEvent(emulatorUrl, (e) => e.eventId === cliEventId);
    }

    // The printed fault injection: the next upstream call is throttled, the relay queues (202)
    // and delivers on its first retry.
    const fault = /Inject a fault into the next call: +(curl .*)$/m.exec(dev.stdout)![1]!;
    expect(fault).toBe(`curl -X POST ${emulatorUrl}/_fake/faults -d '{"type":"throttle"}'`);
    await sh(fault);
    const queued = JSON.parse(await sh(curl));
    expect(queued).toMatchObject({
      FailedEntryCount: 0,
      QueuedEntryCount: 1,
      Entries: [{ RelayEventId: expect.stringMatching(/^relay-/) }],
    });
    await dev.waitFor(/eventbridge │ [\d:.]+ fault throttle 400 ThrottlingException/, 10_000);
    const relayEventId: string = queued.Entries[0].RelayEventId;
    const delivered = await waitForDelivery(relayUrl, firstKey, relayEventId);
    await waitForEvent(emulatorUrl, (e) => e.eventId === delivered);

    expect(await dev.stop("SIGINT")).toBe(0);
    expect(dev.stdout).toMatch(/stopped\.\n$/);
    expect(await portOpen(relayPort)).toBe(false);
    expect(await portOpen(emulatorPort)).toBe(false);
  });

  it("second start, emulator on another port: same tenant and key, endpoint moved, .dev.vars kept; npm run tenant sees it", async () => {
    expect(firstKey, "the first test must have run").toBeDefined();
    const emulatorPort = await freePort([relayPort]);
    const dev = new Dev({ ...env, EMULATOR_PORT: String(emulatorPort) });
    await dev.waitFor(READY_LINE);
    const emulatorUrl = `http://127.0.0.1:${emulatorPort}`;

    expect(dev.stdout).not.toMatch(/created .*dev\.vars/);
    expect(readFileSync(env.RELAY_DEV_VARS!, "utf8")).toBe(devVarsAfterFirstRun);
    expect(dev.stdout).toMatch(new RegExp(`\\[endpoint http://127\\.0\\.0\\.1:\\d+ → ${escapeRegExp(emulatorUrl)}\\]`));
    const curl = printedCommand(dev.stdout, /^ {2}curl /);
    expect(curl).toContain(`Bearer ${firstKey}`);

    const sent = JSON.parse(await sh(curl));
    expect(sent.FailedEntryCount).toBe(0);
    await waitForEvent(emulatorUrl, (e) => e.eventId === sent.Entries[0].EventId);

    // The admin CLI on the same state (and the same .dev.vars) sees one tenant, one key, one pair.
    const show = await runProcess(nodeForWrangler(ROOT), [TENANT_CLI, "show", "demo", "--json"], cliEnv(env), "");
    expect(show.code, show.stderr).toBe(0);
    const record = JSON.parse(show.stdout);
    expect(record).toMatchObject({
      id: "demo",
      status: "active",
      region: "us-east-1",
      endpoint: emulatorUrl,
      sources: ["aws.partner/example.com/demo/*"],
    });
    expect(record.apiKeys).toHaveLength(1);
    expect(record.sigv4Keys).toHaveLength(1);
    expect(record.credentials).toMatchObject({ accessKeyId: "AKIAFAKEEVENTBRIDGE0", secretAccessKey: "sealed" });

    expect(await dev.stop("SIGINT")).toBe(0);
    expect(await portOpen(relayPort)).toBe(false);
    expect(await portOpen(emulatorPort)).toBe(false);
  });

  it("SIGINT in the middle of start-up still exits 0 and leaves no port open", async () => {
    const emulatorPort = await freePort([relayPort]);
    const dev = new Dev({ ...env, EMULATOR_PORT: String(emulatorPort) });
    await dev.waitFor(/starting wrangler dev/);
    expect(await dev.stop("SIGINT")).toBe(0);
    expect(dev.stdout).not.toMatch(READY_LINE);
    expect(await portOpen(relayPort)).toBe(false);
    expect(await portOpen(emulatorPort)).toBe(false);
  });

  it.each(["PORT", "EMULATOR_PORT"] as const)("a taken %s is one clear message and exit 1", async (name) => {
    const otherPort = await freePort([relayPort]);
    const blocker = await listen();
    try {
      const ports =
        name === "PORT"
          ? { PORT: String(blocker.port), EMULATOR_PORT: String(otherPort) }
          : { PORT: String(relayPort), EMULATOR_PORT: String(blocker.port) };
      const dev = new Dev({ ...env, ...ports });
      const { code } = await withTimeout(dev.exited, 20_000, "dev.ts did not give up on a taken port");
      expect(code).toBe(1);
      expect(dev.stderr).toMatch(
        new RegExp(
          `port ${blocker.port} on 127\\.0\\.0\\.1 is already in use.*choose another port: ${name}=\\d+ npm start`,
        ),
      );
      expect(dev.stdout).not.toMatch(READY_LINE);
      expect(await portOpen(name === "PORT" ? otherPort : relayPort)).toBe(false);
    } finally {
      await new Promise((r) => blocker.server.close(r));
    }
  });
});

// ---- the demo tenant's repair logic, on an in-memory KV ---------------------------------------

/**
 * The KV calls ensureDemoTenant makes, on a Map. `puts` groups the writes of one pass (the puts
 * after the last read); `locked` fails that many calls as a busy local state does.
 */
class MemoryKv implements TenantsKv {
  readonly data = new Map<string, string>();
  readonly puts: KvEntry[][] = [];
  locked = 0;
  #readSincePut = true;
  async get(key: string): Promise<string | null> {
    this.#maybeLocked();
    this.#readSincePut = true;
    return this.data.get(key) ?? null;
  }
  async put(key: string, value: string): Promise<void> {
    this.#maybeLocked();
    if (this.#readSincePut) this.puts.push([]);
    this.#readSincePut = false;
    this.puts.at(-1)!.push({ key, value });
    this.data.set(key, value);
  }
  async delete(key: string): Promise<void> {
    this.data.delete(key);
  }
  async list(): Promise<{ keys: { name: string }[]; list_complete: boolean }> {
    return { keys: [...this.data.keys()].sort().map((name) => ({ name })), list_complete: true };
  }
  record(): TenantRecord {
    return tenantRecordSchema.parse(JSON.parse(this.data.get(KV.tenant("demo"))!));
  }
  #maybeLocked(): void {
    if (this.locked > 0) {
      this.locked--;
      throw new Error("kv get: the local state is locked by another process; try again.");
    }
  }
}

describe("ensureDemoTenant (scripts/dev/demo-tenant.ts)", () => {
  const KEY_A = "ZGVtby10ZW5hbnQtdGVzdC1zZWFsaW5nLWtleS0wMDE=";
  const KEY_B = "ZGVtby10ZW5hbnQtdGVzdC1zZWFsaW5nLWtleS0wMDI=";
  const EMULATOR = "http://127.0.0.1:4010";
  let dir: string;
  let file: string;
  let kv: MemoryKv;

  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), "relay-demo-tenant-test-"));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  const ensure = async (opts: { key?: string; endpoint?: string } = {}): Promise<DemoResult> =>
    ensureDemoTenant({
      kv,
      sealingKey: await importSealingKey(opts.key ?? KEY_A),
      endpoint: opts.endpoint ?? EMULATOR,
      file,
    });

  it("creates the tenant, its credentials, a key and a pair in one write (record first); a second run changes nothing", async () => {
    kv = new MemoryKv();
    file = join(dir, "a", "relay-demo.json");
    const first = await ensure();
    expect(first.actions).toEqual(["created tenant demo", "minted an API key", "minted a SigV4 pair"]);
    expect(first.warnings).toEqual([]);
    expect(kv.puts).toHaveLength(1);
    expect(kv.puts[0]!.map((e) => e.key.split(":")[0])).toEqual(["tenant", "apikey", "sigv4"]);
    const record = kv.record();
    expect(record).toMatchObject({
      id: "demo",
      status: "active",
      region: "us-east-1",
      endpoint: EMULATOR,
      sources: ["aws.partner/example.com/demo/*"],
    });
    const key = await importSealingKey(KEY_A);
    expect(
      await unseal(key, "demo", "secretAccessKey", (record.credentials as StaticCredentials).secretAccessKey),
    ).toBe("fakeEventBridgeSecretKey0000000000000000");
    const { apiKey, sigv4 } = first.credentials;
    expect(record.apiKeys).toEqual([
      expect.objectContaining({ id: apiKey!.keyId, hash: await hashApiKey(apiKey!.key), expiresAt: null }),
    ]);
    expect(JSON.parse(kv.data.get(KV.apiKey(record.apiKeys[0]!.hash))!)).toEqual({
      tenantId: "demo",
      keyId: apiKey!.keyId,
    });
    expect(await unseal(key, "demo", `sigv4:${sigv4!.accessKeyId}`, record.sigv4Keys[0]!.secret)).toBe(
      sigv4!.secretAccessKey,
    );
    expect(JSON.parse(kv.data.get(KV.sigv4(sigv4!.accessKeyId))!)).toEqual({ tenantId: "demo" });
    expect(statSync(file).mode & 0o777).toBe(0o600);
    expect(readDemoFile(file)).toEqual({ tenantId: "demo", apiKey, sigv4 });

    const again = await ensure();
    expect(again.actions).toEqual([]);
    expect(again.credentials).toEqual(first.credentials);
    expect(kv.puts).toHaveLength(1);
  });

  it("a moved emulator moves the endpoint (one revision), keeping key and pair", async () => {
    const before = kv.record();
    const moved = await ensure({ endpoint: "http://127.0.0.1:4999" });
    expect(moved.actions).toEqual([`endpoint ${EMULATOR} → http://127.0.0.1:4999`]);
    expect(kv.record()).toMatchObject({
      endpoint: "http://127.0.0.1:4999",
      revision: before.revision + 1,
      apiKeys: before.apiKeys,
      sigv4Keys: before.sigv4Keys,
    });
    await ensure(); // back to the default port for the next tests
  });

  it("a revoked key is replaced by a new one; the pair is kept", async () => {
    const before = kv.record();
    const old = readDemoFile(file)!;
    // What `key revoke` leaves: the record without the key, its index entry deleted.
    kv.data.set(KV.tenant("demo"), JSON.stringify({ ...before, apiKeys: [] }));
    kv.data.delete(KV.apiKey(before.apiKeys[0]!.hash));
    const r = await ensure();
    expect(r.actions).toEqual(["minted a new API key (the saved one was revoked, expired or lost)"]);
    expect(r.credentials.apiKey!.key).not.toBe(old.apiKey!.key);
    expect(r.credentials.sigv4).toEqual(old.sigv4);
    expect(kv.record().apiKeys).toHaveLength(1);
    expect(kv.record().revision).toBe(before.revision + 1);
  });

  it("a new SEALING_KEY: credentials sealed again and a new pair (the old secret no longer opens); the API key is kept", async () => {
    const old = readDemoFile(file)!;
    const r = await ensure({ key: KEY_B });
    expect(r.actions).toEqual([
      "credentials reset to the local EventBridge's key pair",
      "minted a new SigV4 pair (the saved one was revoked or no longer opens)",
    ]);
    expect(r.credentials.apiKey).toEqual(old.apiKey);
    expect(r.credentials.sigv4!.accessKeyId).not.toBe(old.sigv4!.accessKeyId);
    const record = kv.record();
    expect(
      await unseal(
        await importSealingKey(KEY_B),
        "demo",
        "secretAccessKey",
        (record.credentials as StaticCredentials).secretAccessKey,
      ),
    ).toBe("fakeEventBridgeSecretKey0000000000000000");
  });

  it("what an admin changed on purpose is kept, with a warning when it stops the demo", async () => {
    const before = kv.record();
    kv.data.set(
      KV.tenant("demo"),
      JSON.stringify({ ...before, status: "disabled", sources: ["aws.partner/example.com/other"] }),
    );
    const r = await ensure({ key: KEY_B });
    expect(r.actions).toEqual([]);
    expect(r.warnings).toEqual([
      "tenant demo is disabled: `npm run tenant -- enable demo` to send with it",
      expect.stringMatching(/^tenant demo no longer owns aws\.partner\/example\.com\/demo\/orders/),
    ]);
    expect(kv.record()).toMatchObject({ status: "disabled", sources: ["aws.partner/example.com/other"] });
    kv.data.set(KV.tenant("demo"), JSON.stringify(before));
  });

  it("an unreadable record is left alone with a warning; a locked local state is retried", async () => {
    kv.data.set(KV.tenant("demo"), "{not json");
    const puts = kv.puts.length;
    const r = await ensure({ key: KEY_B });
    expect(r.credentials).toMatchObject({ apiKey: null, sigv4: null });
    expect(r.warnings[0]).toMatch(/tenant:demo is not JSON.*npm run tenant -- delete demo --force/);
    expect(kv.puts).toHaveLength(puts);

    kv = new MemoryKv();
    kv.locked = 2;
    file = join(dir, "b", "relay-demo.json");
    const created = await ensure();
    expect(created.actions[0]).toBe("created tenant demo");
  });
});

// ---- helpers -----------------------------------------------------------------------------------

/** A printed multi-line shell command: the line matching `first` and its `\` continuations. */
function printedCommand(stdout: string, first: RegExp): string {
  const lines = stdout.split("\n");
  const start = lines.findIndex((l) => first.test(l));
  if (start < 0) throw new Error(`no line matching ${first} in:\n${stdout}`);
  const out: string[] = [];
  for (let i = start; i < lines.length; i++) {
    out.push(lines[i]!);
    if (!lines[i]!.endsWith("\\")) break;
  }
  return out.join("\n").trim();
}

/** Runs a command line with sh, as a developer pasting it would; resolves with its stdout. */
function sh(command: string, env: NodeJS.ProcessEnv = process.env): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile("sh", ["-c", command], { env, timeout: COMMAND_TIMEOUT_MS }, (error, stdout, stderr) => {
      if (error) reject(new Error(`\`${command}\` failed: ${error.message}\n${stderr}`));
      else resolve(stdout);
    });
  });
}

function hasAwsCli(): boolean {
  return spawnSync("sh", ["-c", "aws --version"], { env: awsCliEnv(), timeout: COMMAND_TIMEOUT_MS }).status === 0;
}

/** The AWS CLI with no profile, config file, session token or instance metadata of this machine. */
function awsCliEnv(): NodeJS.ProcessEnv {
  const e: NodeJS.ProcessEnv = {
    ...process.env,
    AWS_CONFIG_FILE: "/dev/null",
    AWS_SHARED_CREDENTIALS_FILE: "/dev/null",
    AWS_EC2_METADATA_DISABLED: "true",
    AWS_PAGER: "",
  };
  for (const k of [
    "AWS_PROFILE",
    "AWS_DEFAULT_PROFILE",
    "AWS_SESSION_TOKEN",
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
  ])
    delete e[k];
  return e;
}

function cliEnv(env: Record<string, string>): NodeJS.ProcessEnv {
  const e: NodeJS.ProcessEnv = { ...process.env, ...env };
  for (const k of ["INIT_CWD", "RELAY_URL", "RELAY_ADMIN_TOKEN", "RELAY_SEALING_KEY", "CLOUDFLARE_API_TOKEN"])
    delete e[k];
  return e;
}

async function emulatorEvents(url: string): Promise<ReceivedEvent[]> {
  const res = await fetch(`${url}/_fake/events`);
  expect(res.status).toBe(200);
  return ((await res.json()) as { events: ReceivedEvent[] }).events;
}

async function waitForEvent(
  url: string,
  match: (e: ReceivedEvent) => boolean,
  timeoutMs = 10_000,
): Promise<ReceivedEvent> {
  const deadline = Date.now() + timeoutMs;
  let events: ReceivedEvent[] = [];
  while (Date.now() < deadline) {
    events = await emulatorEvents(url);
    const found = events.find(match);
    if (found) return found;
    await sleep(200);
  }
  throw new Error(
    `the local EventBridge did not receive the event within ${timeoutMs / 1000} s; it has ${JSON.stringify(events)}`,
  );
}

/** Polls the relay's GET /v1/events/{relayEventId} until the queued event is delivered; its EventId. */
async function waitForDelivery(relayUrl: string, apiKey: string, relayEventId: string): Promise<string> {
  const deadline = Date.now() + DRAIN_TIMEOUT_MS;
  let last: unknown;
  while (Date.now() < deadline) {
    const res = await fetch(`${relayUrl}/v1/events/${relayEventId}`, {
      headers: { authorization: `Bearer ${apiKey}` },
    });
    last = await res.json();
    const status = last as { state?: string; eventId?: string };
    if (status.state === "delivered" && status.eventId) return status.eventId;
    await sleep(250);
  }
  throw new Error(`${relayEventId} was not delivered within ${DRAIN_TIMEOUT_MS / 1000} s: ${JSON.stringify(last)}`);
}

/** A port the OS just handed out and took back, other than those in `avoid`. */
async function freePort(avoid: number[] = []): Promise<number> {
  for (;;) {
    const { server, port } = await listen();
    await new Promise((r) => server.close(r));
    if (!avoid.includes(port)) return port;
  }
}

async function listen(): Promise<{ server: Server; port: number }> {
  const server = createServer();
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  return { server, port: (server.address() as { port: number }).port };
}

/** True when something accepts connections on 127.0.0.1:port. */
function portOpen(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ port, host: "127.0.0.1" });
    socket.setTimeout(2_000);
    socket.once("connect", () => {
      socket.destroy();
      resolve(true);
    });
    socket.once("timeout", () => {
      socket.destroy();
      resolve(false);
    });
    socket.once("error", () => resolve(false));
  });
}

function escapeRegExp(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\/]/g, "\\$&");
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

async function withTimeout<T>(p: Promise<T>, ms: number, message: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      p,
      new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(message)), ms))),
    ]);
  } finally {
    clearTimeout(timer);
  }
}
