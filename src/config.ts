/** The Worker's variables, parsed once per env object with their defaults and bounds. */
import {
  DEFAULT_MAX_BATCH_BYTES,
  DEFAULT_UPSTREAM_TIMEOUT_MS,
  MAX_BATCH_BYTES_CEILING,
  maxBodyBytes,
} from "./limits.ts";
import { log } from "./log.ts";

export interface RelayConfig {
  allowEndpointOverride: boolean;
  maxBatchBytes: number;
  maxBodyBytes: number;
  upstreamTimeoutMs: number;
}

const cache = new WeakMap<object, RelayConfig>();

function intVar(name: string, raw: string | undefined, def: number, min: number, max: number): number {
  if (raw === undefined || raw === "") return def;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < min || n > max) {
    log.error("config_invalid", { name, min, max, using: def });
    return def;
  }
  return n;
}

export function relayConfig(env: Env): RelayConfig {
  let c = cache.get(env);
  if (!c) {
    const maxBatchBytes = intVar("MAX_BATCH_BYTES", env.MAX_BATCH_BYTES, DEFAULT_MAX_BATCH_BYTES, 1024, MAX_BATCH_BYTES_CEILING);
    c = {
      allowEndpointOverride: env.ALLOW_ENDPOINT_OVERRIDE === "true",
      maxBatchBytes,
      maxBodyBytes: maxBodyBytes(maxBatchBytes),
      upstreamTimeoutMs: intVar("UPSTREAM_TIMEOUT_MS", env.UPSTREAM_TIMEOUT_MS, DEFAULT_UPSTREAM_TIMEOUT_MS, 100, 120_000),
    };
    cache.set(env, c);
  }
  return c;
}
