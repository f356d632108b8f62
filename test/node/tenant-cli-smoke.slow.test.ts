/**
 * The admin CLI as people run it, as real processes: `npm start` (scripts/dev.ts) on a port other
 * than the default, and `npm run tenant` without PORT or RELAY_URL, which finds that relay through
 * the record npm start keeps in the state directory: a revoked key is refused on the very next
 * request. Plus `--remote` without a Cloudflare login (wrangler reads the process environment,
 * so this one needs its own process with an empty HOME). The in-process suite is tenant-cli.test.ts.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { readDemoFile } from "../../scripts/dev/demo-tenant.ts";
import { nodeForWrangler } from "../../scripts/lib/local-relay.ts";
import { RUNNING_RELAY_FILE } from "../../scripts/lib/running-relay.ts";
import { ROOT, runProcess } from "./helpers/tenant-cli.ts";

/** npm start's last line once everything is up. */
const READY_LINE = /^Ctrl-C stops everything\.$/m;
/** Cold start on a busy 2-core machine (bundle + workerd). A guard against hangs, not a timing check. */
const START_TIMEOUT_MS = 150_000;
const DEMO_SOURCE = "aws.partner/example.com/demo/orders";
/** Nothing from the developer's shell may point a child elsewhere. */
const SCRUB = ["INIT_CWD", "PORT", "RELAY_URL", "RELAY_ADMIN_TOKEN", "RELAY_SEALING_KEY", "CLOUDFLARE_API_TOKEN"];

function childEnv(extra: Record<string, string>): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env };
  for (const k of SCRUB) delete env[k];
  return { ...env, ...extra };
}

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const port = (server.address() as { port: number }).port;
  await new Promise<void>((r) => server.close(() => r()));
  return port;
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

describe("npm start on another port, then npm run tenant without PORT (real processes)", () => {
  let dir: string;
  let state: string;
  let dev: ChildProcess;
  let devOut = "";
  let exited: Promise<number | null>;
  let port: number;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), "tenant-cli-smoke-"));
    state = join(dir, "state");
    port = await freePort();
    let emulatorPort = await freePort();
    while (emulatorPort === port) emulatorPort = await freePort();
    dev = spawn(nodeForWrangler(ROOT), [join(ROOT, "scripts", "dev.ts")], {
      cwd: ROOT,
      env: childEnv({
        PORT: String(port),
        EMULATOR_PORT: String(emulatorPort),
        RELAY_STATE_DIR: state,
        RELAY_DEV_VARS: join(dir, "dev.vars"),
      }),
      stdio: ["ignore", "pipe", "pipe"],
    });
    dev.stdout!.setEncoding("utf8").on("data", (s: string) => (devOut += s));
    dev.stderr!.setEncoding("utf8").on("data", (s: string) => (devOut += s));
    exited = new Promise((r) => dev.once("exit", (code) => r(code)));
    const deadline = Date.now() + START_TIMEOUT_MS;
    let gone = false;
    void exited.then(() => (gone = true));
    while (!READY_LINE.test(devOut)) {
      if (gone || Date.now() > deadline) throw new Error(`npm start did not get ready:\n${devOut}`);
      await sleep(200);
    }
  }, START_TIMEOUT_MS + 10_000);

  afterAll(async () => {
    if (dev && dev.exitCode === null) {
      dev.kill("SIGTERM");
      const done = await Promise.race([exited.then(() => true), sleep(30_000).then(() => false)]);
      if (!done) dev.kill("SIGKILL");
    }
    rmSync(dir, { recursive: true, force: true });
  });

  const post = (url: string, key: string) =>
    fetch(`${url}/v1/events`, {
      method: "POST",
      headers: { authorization: `Bearer ${key}`, "content-type": "application/json" },
      body: JSON.stringify({ Entries: [{ Source: DEMO_SOURCE, DetailType: "smoke", Detail: "{}" }] }),
    });

  it("records its URL and pid in the state; `key revoke` (no PORT) reaches it: the key is refused next; the record goes on exit", async () => {
    const recorded = JSON.parse(readFileSync(join(state, RUNNING_RELAY_FILE), "utf8"));
    expect(recorded).toMatchObject({ url: `http://127.0.0.1:${port}`, pid: dev.pid });
    const demo = readDemoFile(join(state, "relay-demo.json"));
    expect(demo?.apiKey).not.toBeNull();
    const { keyId, key } = demo!.apiKey!;

    const ok = await post(recorded.url, key);
    expect(ok.status, await ok.text()).toBe(200);

    const env = childEnv({ RELAY_STATE_DIR: state, RELAY_DEV_VARS: join(dir, "dev.vars") });
    const revoke = await runProcess("npm", ["run", "--silent", "tenant", "--", "key", "revoke", "demo", keyId], env);
    expect(revoke.code, revoke.stderr).toBe(0);
    expect(revoke.stdout).toMatch(/revoked API key .* \(relay: applied\)/);
    expect(revoke.stderr).not.toMatch(/no relay running/);

    const refused = await post(recorded.url, key);
    expect(refused.status).toBe(401);
    expect(await refused.json()).toMatchObject({ code: "invalid_api_key" });

    dev.kill("SIGINT");
    expect(await exited).toBe(0);
    expect(existsSync(join(state, RUNNING_RELAY_FILE))).toBe(false);
  });
});

describe("--remote without a Cloudflare login (a real process: wrangler reads HOME)", () => {
  let dir: string;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), "tenant-cli-remote-"));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it("says exactly what to do without a wrangler login or CLOUDFLARE_API_TOKEN", async () => {
    const config = join(dir, "wrangler.admin-remote.toml");
    writeFileSync(
      config,
      'name = "relay-test"\n\n[[kv_namespaces]]\nbinding = "TENANTS"\nid = "0123456789abcdef0123456789abcdef"\nremote = true\n',
    );
    const home = join(dir, "home");
    const env = childEnv({ HOME: home, XDG_CONFIG_HOME: join(home, ".config") });
    delete env.CLOUDFLARE_ACCOUNT_ID;
    const r = await runProcess(
      nodeForWrangler(ROOT),
      [join(ROOT, "scripts", "tenant.ts"), "list", "--remote", "--config", config],
      env,
    );
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(
      /wrangler is not logged in to Cloudflare\. Run `npx wrangler login`.*or set CLOUDFLARE_API_TOKEN/,
    );
    expect(r.stderr).not.toMatch(/\[ERROR\]/);
    expect(r.stdout).toBe("");
  });
});
