/**
 * The local secrets file (.dev.vars, git-ignored): created on the first `npm start` with fresh
 * random values, never overwritten. `npm run tenant` seals with its SEALING_KEY and calls the
 * admin API with its ADMIN_TOKEN, so both must be the values the local relay runs with.
 */
import { randomBytes } from "node:crypto";
import { mkdirSync, writeFileSync } from "node:fs";
import { dirname } from "node:path";
import { FAKE_RELAY_IDENTITY } from "../../emulator/sts.ts";
import { importSealingKey } from "../../src/tenants/sealed.ts";
import { readDevVars } from "../lib/context.ts";
import { DevError } from "./settings.ts";

/** AES-256: the sealing key is 32 random bytes (src/tenants/sealed.ts). */
const SEALING_KEY_BYTES = 32;
/** Random bytes behind the admin token (256 bits, base64url: 43 characters). */
const ADMIN_TOKEN_BYTES = 32;
/** Vars `npm start` always runs the relay with, whatever the file says. */
export const FORCED_LOCAL_VARS = { ALLOW_ENDPOINT_OVERRIDE: "true" } as const;

/** Creates the file if it does not exist (atomically: an existing file is never touched). */
export function ensureDevVars(path: string, now = new Date()): { created: boolean } {
  const content = [
    `# Local secrets for \`npm start\` (wrangler dev) and \`npm run tenant\`, created by npm start on ${now.toISOString()}.`,
    "# Local only and git-ignored: never commit it, never reuse these values in production.",
    "# Deleting it makes npm start create new values; secrets already sealed in the local state",
    "# (tenant credentials, SigV4 pairs) then no longer open: re-set them, or wipe the state too.",
    `SEALING_KEY=${randomBytes(SEALING_KEY_BYTES).toString("base64")}`,
    `ADMIN_TOKEN=${randomBytes(ADMIN_TOKEN_BYTES).toString("base64url")}`,
    "# Lets tenants point at a non-AWS endpoint, such as npm start's local EventBridge.",
    "ALLOW_ENDPOINT_OVERRIDE=true",
    "",
  ].join("\n");
  mkdirSync(dirname(path), { recursive: true });
  try {
    writeFileSync(path, content, { flag: "wx", mode: 0o600 });
    return { created: true };
  } catch (e) {
    if ((e as { code?: string }).code === "EEXIST") return { created: false };
    throw new DevError(`could not create ${path}: ${(e as Error).message}`);
  }
}

/**
 * The vars the local relay runs with: the file's, plus ALLOW_ENDPOINT_OVERRIDE=true. Checks the
 * two secrets first, so a placeholder copied from .dev.vars.example fails here, in one sentence.
 */
export async function relayVars(path: string): Promise<Record<string, string>> {
  let vars: Record<string, string>;
  try {
    vars = readDevVars(path);
  } catch (e) {
    throw new DevError((e as Error).message);
  }
  const fix = `fix ${path} (see .dev.vars.example), or move it away so npm start creates a fresh one`;
  if (!vars.SEALING_KEY) throw new DevError(`${path} has no SEALING_KEY: ${fix}`);
  try {
    await importSealingKey(vars.SEALING_KEY);
  } catch (e) {
    throw new DevError(
      `SEALING_KEY in ${path} is unusable (${(e as Error).message}; it must be base64 of 32 random bytes): ${fix}`,
    );
  }
  if (!vars.ADMIN_TOKEN || /^REPLACE_/.test(vars.ADMIN_TOKEN)) throw new DevError(`${path} has no ADMIN_TOKEN: ${fix}`);
  for (const [k, v] of Object.entries(vars)) {
    if (/[\r\n']/.test(v))
      throw new DevError(`${k} in ${path} holds a newline or a single quote, which the local relay cannot pass on`);
  }
  // The relay's AWS identity for role tenants: the emulator's, unless the file sets one.
  return {
    RELAY_AWS_ACCESS_KEY_ID: FAKE_RELAY_IDENTITY.accessKeyId,
    RELAY_AWS_SECRET_ACCESS_KEY: FAKE_RELAY_IDENTITY.secretAccessKey,
    ...vars,
    ...FORCED_LOCAL_VARS,
  };
}
