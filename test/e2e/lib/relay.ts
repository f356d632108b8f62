/**
 * The relay as an admin runs it locally: `wrangler dev` on a private state directory
 * (scripts/lib/local-relay.ts), and the admin CLI (`node scripts/tenant.ts ...`) on the same state,
 * configured through its environment variables exactly as docs/admin.md tells an admin to.
 */
import { randomBytes } from "node:crypto";
import { join } from "node:path";
import { nodeForWrangler, startLocalRelay } from "../../../scripts/lib/local-relay.ts";
import { type ProcResult, ROOT, run, type Suite, show } from "./harness.ts";

export interface E2eRelay {
  url: string;
  stateDir: string;
  /** wrangler dev's output so far (for failure messages and secret checks). */
  log: string[];
  /** `node scripts/tenant.ts <args>`; never throws for a non-zero exit. */
  tenant(args: readonly string[], opts?: { stdin?: string }): Promise<ProcResult>;
  /** Same, expecting exit 0 and `--json` output; returns the parsed document. */
  // biome-ignore lint/suspicious/noExplicitAny: parsed JSON; the tests assert the fields they use
  tenantJson<T = any>(args: readonly string[], opts?: { stdin?: string }): Promise<T>;
}

/** Starts wrangler dev on a fresh state directory; stopped at the suite's clean-up. */
export async function startRelay(s: Suite, vars: Record<string, string> = {}): Promise<E2eRelay> {
  const dir = s.tempDir("relay");
  const stateDir = join(dir, "state");
  const sealingKey = randomBytes(32).toString("base64");
  const adminToken = randomBytes(24).toString("hex");
  const log: string[] = [];
  const relay = await startLocalRelay({
    port: 0,
    persistTo: stateDir,
    vars: { SEALING_KEY: sealingKey, ADMIN_TOKEN: adminToken, ALLOW_ENDPOINT_OVERRIDE: "true", ...vars },
    log: (l) => {
      log.push(l);
      if (log.length > 2000) log.splice(0, 1000);
    },
  });
  s.defer("stop wrangler dev", () => relay.stop());

  const env: NodeJS.ProcessEnv = { ...process.env };
  for (const k of [
    "INIT_CWD",
    "PORT",
    "CLOUDFLARE_API_TOKEN",
    "CLOUDFLARE_ACCOUNT_ID",
    "RELAY_URL",
    "RELAY_SEALING_KEY",
    "RELAY_ADMIN_TOKEN",
  ]) {
    delete env[k];
  }
  Object.assign(env, {
    RELAY_STATE_DIR: stateDir,
    // No .dev.vars: the secrets come from the environment even if the checkout has a .dev.vars.
    RELAY_DEV_VARS: join(dir, "no-dev-vars"),
    RELAY_SEALING_KEY: sealingKey,
    RELAY_ADMIN_TOKEN: adminToken,
    RELAY_URL: relay.url,
  });
  const node = nodeForWrangler(ROOT);
  const cli = join(ROOT, "scripts", "tenant.ts");
  const tenant = (args: readonly string[], opts: { stdin?: string } = {}) =>
    run(node, [cli, ...args], { env, ...(opts.stdin !== undefined ? { stdin: opts.stdin } : {}), timeoutMs: 60_000 });
  return {
    url: relay.url,
    stateDir,
    log,
    tenant,
    async tenantJson(args, opts) {
      const r = await tenant([...args, "--json"], opts);
      if (r.code !== 0) throw new Error(`npm run tenant -- ${args.join(" ")} --json failed: ${show(r)}`);
      try {
        return JSON.parse(r.stdout);
      } catch {
        throw new Error(`npm run tenant -- ${args.join(" ")} --json printed no JSON: ${show(r)}`);
      }
    },
  };
}
