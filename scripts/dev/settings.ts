/**
 * What `npm start` runs with, from the environment: ports, and the same state directory and
 * secrets file `npm run tenant` resolves (scripts/lib/context.ts), so both see one local relay.
 *
 *   PORT            the relay's port on 127.0.0.1 (default 8787, wrangler dev's own default)
 *   EMULATOR_PORT   the local EventBridge's port on 127.0.0.1 (default 4010)
 *   RELAY_STATE_DIR local state (default .wrangler/state); RELAY_DEV_VARS secrets (default .dev.vars)
 */
import { join } from "node:path";
import { type Context, createContext, DEFAULT_LOCAL_PORT, PROJECT_ROOT } from "../lib/context.ts";

/** The local EventBridge's default port. */
export const DEFAULT_EMULATOR_PORT = 4010;
/** Highest TCP port number. */
const MAX_PORT = 65_535;

/** A start-up failure with a message for people; dev.ts prints it and exits 1. */
export class DevError extends Error {
  override name = "DevError";
}

export interface DevSettings {
  root: string;
  /** Requested relay port (0: any free one). */
  relayPort: number;
  /** Requested local EventBridge port (0: any free one). */
  emulatorPort: number;
  /** Absolute local state directory (wrangler --persist-to). */
  stateDir: string;
  /** Absolute path of the secrets file (.dev.vars). */
  devVarsPath: string;
  /** Where the demo tenant's local credentials are kept between runs: inside the state they belong to. */
  demoFile: string;
  /** The admin CLI's context on the same state: its KV access and sealing key. */
  context(): Context;
}

/** Name of the demo-credentials file inside the state directory. */
export const DEMO_FILE_NAME = "relay-demo.json";

export function readSettings(env: NodeJS.ProcessEnv = process.env, root = PROJECT_ROOT): DevSettings {
  const relayPort = parsePort("PORT", env.PORT, DEFAULT_LOCAL_PORT);
  const emulatorPort = parsePort("EMULATOR_PORT", env.EMULATOR_PORT, DEFAULT_EMULATOR_PORT);
  if (relayPort !== 0 && relayPort === emulatorPort) {
    throw new DevError(
      `PORT and EMULATOR_PORT are both ${relayPort}: give the relay and the local EventBridge different ports`,
    );
  }
  // One resolution of RELAY_STATE_DIR / RELAY_DEV_VARS (relative to where the user typed the
  // command, as `npm run tenant` does): the CLI's own.
  const probe = createContext({}, env, root);
  const stateDir = probe.persistTo!;
  const devVarsPath = probe.devVarsPath;
  return {
    root,
    relayPort,
    emulatorPort,
    stateDir,
    devVarsPath,
    demoFile: join(stateDir, DEMO_FILE_NAME),
    // Built after .dev.vars exists: the context reads the sealing key from it lazily.
    context: () => createContext({}, env, root),
  };
}

export function parsePort(name: string, raw: string | undefined, fallback: number): number {
  if (raw === undefined || raw.trim() === "") return fallback;
  const n = Number(raw);
  if (!/^\d+$/.test(raw.trim()) || !Number.isInteger(n) || n > MAX_PORT) {
    throw new DevError(`${name}=${JSON.stringify(raw.slice(0, 20))} is not a port number (0-${MAX_PORT})`);
  }
  return n;
}
