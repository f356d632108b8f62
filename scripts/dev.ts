/**
 * `npm start`: the relay under the local Workers runtime plus a local EventBridge, ready to try.
 *
 *   1. .dev.vars: created with fresh random SEALING_KEY and ADMIN_TOKEN if absent (never overwritten).
 *   2. Ports checked: a taken one is one sentence and exit 1.
 *   3. The local EventBridge (emulator/server.ts) on 127.0.0.1:$EMULATOR_PORT (4010):
 *      verifies the relay's SigV4 signatures, logs each event, lists them at /_fake/ and
 *      /_fake/events, injects faults on POST /_fake/faults.
 *   4. At the same time: the relay (wrangler dev via scripts/lib/local-relay.ts) on
 *      127.0.0.1:$PORT (8787) with ALLOW_ENDPOINT_OVERRIDE=true on the state `npm run tenant`
 *      uses, and the demo tenant checked or created there (scripts/dev/demo-tenant.ts).
 *   5. The URLs, the local demo key and ready-to-paste curl / AWS CLI commands.
 * Ctrl-C (SIGINT), SIGTERM, SIGHUP or the end of the parent (npm) stops the relay's process
 * group and the emulator, exit 0.
 *
 * Environment: PORT, EMULATOR_PORT, RELAY_STATE_DIR, RELAY_DEV_VARS (scripts/dev/settings.ts).
 * Docs: docs/local-development.md.
 */
import { relative } from "node:path";
import { type FakeEventBridgeServer, startFakeEventBridgeServer } from "../emulator/server.ts";
import { demoRole, FAKE_DEMO_EXTERNAL_ID, FAKE_DEMO_ROLE_ARN } from "../emulator/sts.ts";
import { type DemoResult, ensureDemoTenant } from "./dev/demo-tenant.ts";
import { ensureDevVars, relayVars } from "./dev/dev-vars.ts";
import { awsCliCommand, curlCommand, faultCommand } from "./dev/examples.ts";
import { assertPortFree, isAddressInUse, LOOPBACK, portError } from "./dev/ports.ts";
import { DevError, type DevSettings, readSettings } from "./dev/settings.ts";
import { type LocalRelay, startLocalRelay } from "./lib/local-relay.ts";
import { recordRunningRelay } from "./lib/running-relay.ts";

/** How long a stop waits for start-up work in flight (wrangler dev, a wrangler kv call) to settle, in ms. */
const SETTLE_ON_STOP_MS = 15_000;
/** How often to check that whoever started us (npm) is still there, in ms. */
const PARENT_CHECK_MS = 1_000;
/** Column prefixes for the two processes' log lines. */
const RELAY_TAG = "relay       │";
const EMULATOR_TAG = "eventbridge │";

const HELP = `usage: npm start

Runs the relay locally (wrangler dev) with an embedded local EventBridge and a demo tenant.

environment:
  PORT             relay port on 127.0.0.1 (default 8787)
  EMULATOR_PORT    local EventBridge port on 127.0.0.1 (default 4010)
  RELAY_STATE_DIR  local state directory (default .wrangler/state, shared with npm run tenant)
  RELAY_DEV_VARS   local secrets file (default .dev.vars; created if absent)

Docs: docs/local-development.md`;

const out = (line = "") => void process.stdout.write(line + "\n");
const err = (line: string) => void process.stderr.write(line + "\n");

// ---- lifecycle ---------------------------------------------------------------------------------

let relay: LocalRelay | undefined;
let emulator: FakeEventBridgeServer | undefined;
/** Start-up work in flight; a stop waits for it so nothing is left half-started. */
const inFlight = new Set<Promise<unknown>>();
let stopping: Promise<void> | undefined;
/** Removes the state directory's record of the running relay (scripts/lib/running-relay.ts). */
let forgetRunningRelay: (() => void) | undefined;

function track<T>(p: Promise<T>): Promise<T> {
  inFlight.add(p);
  const done = () => void inFlight.delete(p);
  p.then(done, done);
  return p;
}

function stopAll(): Promise<void> {
  stopping ??= (async () => {
    forgetRunningRelay?.();
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      Promise.allSettled([...inFlight]),
      new Promise((r) => (timer = setTimeout(r, SETTLE_ON_STOP_MS))),
    ]);
    clearTimeout(timer);
    await Promise.allSettled([relay?.stop(), emulator?.close()]);
  })();
  return stopping;
}

function onSignal(reason: string): void {
  // One stop: a second Ctrl-C changes nothing (the stop is bounded: SETTLE_ON_STOP_MS, then the relay's grace).
  if (stopping !== undefined) return;
  out(`\n${reason}: stopping the relay and the local EventBridge…`);
  stopAll().then(
    () => {
      out("stopped.");
      process.exit(0);
    },
    () => process.exit(1),
  );
}

// ---- start -------------------------------------------------------------------------------------

async function main(): Promise<void> {
  if (process.argv.slice(2).some((a) => a === "--help" || a === "-h")) {
    out(HELP);
    return;
  }
  const started = Date.now();
  const s = readSettings();

  const { created } = ensureDevVars(s.devVarsPath);
  const vars = await relayVars(s.devVarsPath);
  out(`state:    ${show(s, s.stateDir)}  (shared with \`npm run tenant\`)`);
  out(
    created
      ? `secrets:  created ${show(s, s.devVarsPath)} with a fresh random SEALING_KEY and ADMIN_TOKEN (local only${ignored(s, s.devVarsPath) ? ", git-ignored" : ""})`
      : `secrets:  ${show(s, s.devVarsPath)}`,
  );

  await assertPortFree(s.relayPort, "the relay", "PORT");
  await assertPortFree(s.emulatorPort, "the local EventBridge", "EMULATOR_PORT");

  try {
    emulator = await track(
      startFakeEventBridgeServer({
        host: LOOPBACK,
        port: s.emulatorPort,
        log: (line) => out(`${EMULATOR_TAG} ${clock()} ${line}`),
      }),
    );
  } catch (e) {
    if (isAddressInUse(e)) throw portError(s.emulatorPort, "the local EventBridge", "EMULATOR_PORT", e);
    throw e;
  }
  out(`${EMULATOR_TAG} local EventBridge on ${emulator.url} (verifies SigV4; events at ${emulator.url}/_fake/)`);
  // STS at the same origin: the demo role trusts the relay's local identity (docs/credentials.md, "Locally").
  if (vars.RELAY_AWS_ACCESS_KEY_ID && vars.RELAY_AWS_SECRET_ACCESS_KEY && vars.RELAY_AWS_ACCESS_KEY_ID !== "none") {
    emulator.fake.addCredential({
      accessKeyId: vars.RELAY_AWS_ACCESS_KEY_ID,
      secretAccessKey: vars.RELAY_AWS_SECRET_ACCESS_KEY,
    });
    emulator.fake.sts.addRole(demoRole(vars.RELAY_AWS_ACCESS_KEY_ID));
    out(
      `${EMULATOR_TAG} STS AssumeRole too: role ${FAKE_DEMO_ROLE_ARN} (external id ${FAKE_DEMO_EXTERNAL_ID}) trusts the relay's identity ${vars.RELAY_AWS_ACCESS_KEY_ID}`,
    );
  }
  out(`${RELAY_TAG} starting wrangler dev on http://${LOOPBACK}:${s.relayPort || "<any port>"} …`);
  if (stopping !== undefined) return;

  // wrangler dev and the demo tenant's KV check run side by side (both take a few seconds).
  let relayReady = false;
  let probeLogged = false;
  const relayStart = track(
    startLocalRelay({
      root: s.root,
      port: s.relayPort,
      persistTo: s.stateDir,
      vars,
      // wrangler's start-up banner and offline warnings are noise; from Ready on, pass it through.
      // Its request log for startLocalRelay's own /healthz probe can come after Ready: dropped too.
      log: (line) => {
        if (!probeLogged && /\bGET \/healthz\b/.test(line)) probeLogged = true;
        else if (relayReady) out(`${RELAY_TAG} ${line}`);
      },
    }).then((r) => (relay = r)),
  );
  const ctx = s.context();
  const demoStart = track(
    ctx
      .sealingKey()
      .then((sealingKey) =>
        ensureDemoTenant({ kv: ctx.admin.kv, sealingKey, endpoint: emulator!.url, file: s.demoFile }),
      )
      .finally(() => ctx.close()),
  );
  const [relayResult, demoResult] = await Promise.allSettled([relayStart, demoStart]);
  if (stopping !== undefined) return;
  if (relayResult.status === "rejected") {
    const e = relayResult.reason as Error;
    if (isAddressInUse(e)) throw portError(s.relayPort, "the relay", "PORT", e);
    throw new DevError(`the relay did not start: ${e.message}`);
  }
  if (demoResult.status === "rejected") {
    throw new DevError(
      `could not set up the demo tenant in ${show(s, s.stateDir)}: ${(demoResult.reason as Error).message}`,
    );
  }
  relayReady = true;
  // `npm run tenant` finds the relay through this record, on whatever port it got.
  forgetRunningRelay = recordRunningRelay(s.stateDir, { url: relayResult.value.url, pid: process.pid });
  printReady(s, relayResult.value, emulator, demoResult.value, Date.now() - started);
}

function printReady(s: DevSettings, r: LocalRelay, em: FakeEventBridgeServer, demo: DemoResult, ms: number): void {
  const { credentials: c, record } = demo;
  out();
  out(`Ready in ${(ms / 1000).toFixed(1)} s.`);
  out();
  out(`  Relay              ${r.url}   (GET /healthz, POST /v1/events, POST / for AWS SDKs and the AWS CLI)`);
  out(`  Local EventBridge  ${em.url}/_fake/   (events as JSON: ${em.url}/_fake/events)`);
  if (record) {
    out(
      `  Demo tenant        ${c.tenantId}: ${record.sources.join(", ")}, ${record.region}, endpoint ${record.endpoint ?? "(AWS)"}` +
        (demo.actions.length ? `  [${demo.actions.join("; ")}]` : "  [unchanged]"),
    );
  }
  if (c.apiKey) {
    out(`  Demo API key       ${c.apiKey.key}`);
    out(
      `                     a LOCAL DEMO KEY: it opens only this local relay; kept in ${show(s, s.demoFile)}${ignored(s, s.demoFile) ? " (git-ignored)" : ""}`,
    );
  }
  for (const w of demo.warnings) out(`  warning: ${w}`);
  if (c.apiKey) {
    out();
    out("Send an event (then watch it arrive below and at the local EventBridge's page):");
    out();
    out(indent(curlCommand(r.url, c.apiKey.key)));
  }
  if (c.sigv4) {
    out();
    out("The same with the AWS CLI, signed with the demo tenant's local SigV4 pair (local demo credentials too):");
    out();
    out(indent(awsCliCommand(r.url, c.sigv4, c.region)));
  }
  out();
  out(`Inject a fault into the next call:  ${faultCommand(em.url, { type: "throttle" })}`);
  out(`                   (more: docs/local-development.md; clear: curl -X DELETE ${em.url}/_fake/faults)`);
  out(`Admin CLI on the same state:        npm run tenant -- show ${c.tenantId}   (finds this relay by itself)`);
  out("Ctrl-C stops everything.");
  out();
}

// ---- helpers -----------------------------------------------------------------------------------

/** A path relative to the project root when it is inside it. */
function show(s: DevSettings, path: string): string {
  const rel = relative(s.root, path);
  return rel && !rel.startsWith("..") && !rel.startsWith("/") ? rel : path;
}

/** True for the paths the project's .gitignore covers (.dev.vars, .wrangler/, .relay-local/). */
function ignored(s: DevSettings, path: string): boolean {
  return /^(\.wrangler\/|\.relay-local\/|\.dev\.vars$)/.test(relative(s.root, path));
}

function indent(text: string): string {
  return text
    .split("\n")
    .map((l) => "  " + l)
    .join("\n");
}

function clock(): string {
  return new Date().toISOString().slice(11, 23);
}

process.on("exit", () => forgetRunningRelay?.());
process.on("SIGINT", onSignal);
process.on("SIGTERM", onSignal);
process.on("SIGHUP", onSignal);
// `kill <npm pid>` ends npm and its `sh -c` but not us (npm forwards the signal to the shell
// only): when our parent is gone, stop as for SIGTERM rather than keep the ports taken.
const parentPid = process.ppid;
setInterval(() => {
  if (process.ppid !== parentPid) onSignal("the parent process exited");
}, PARENT_CHECK_MS).unref();

main().catch(async (e: unknown) => {
  if (stopping !== undefined) return; // a stop is under way: whatever start-up step it cut short is expected to fail
  err(`npm start: ${e instanceof DevError ? e.message : e instanceof Error ? `${e.name}: ${e.message}` : String(e)}`);
  await stopAll();
  process.exit(1);
});
