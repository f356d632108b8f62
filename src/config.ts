/** The Worker's variables, parsed once per env object with their defaults and bounds. */
import {
  DEFAULT_MAX_BATCH_BYTES,
  DEFAULT_UPSTREAM_TIMEOUT_MS,
  DRAIN_BACKOFF_BASE_MS,
  DRAIN_BACKOFF_CAP_MS,
  DRAIN_MAX_AGE_MS,
  DRAIN_MAX_ATTEMPTS,
  MAX_BATCH_BYTES_CEILING,
  maxBodyBytes,
} from "./limits.ts";
import { type LogLevel, log, setLogLevel } from "./log.ts";

export interface RelayConfig {
  allowEndpointOverride: boolean;
  maxBatchBytes: number;
  maxBodyBytes: number;
  upstreamTimeoutMs: number;
  retry: RetryPolicy;
  /** Read refused bodies to their end before answering 413 (local runs: src/ingest/body.ts). */
  drainRefusedBodies: boolean;
}

/** How the drain retries an entry before dead-lettering it. */
export interface RetryPolicy {
  backoffBaseMs: number;
  backoffCapMs: number;
  maxAttempts: number;
  maxAgeMs: number;
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
    const level = env.LOG_LEVEL;
    if (level === "info" || level === "warn" || level === "error") setLogLevel(level as LogLevel);
    else if (level) log.error("config_invalid", { name: "LOG_LEVEL", using: "warn" });
    const maxBatchBytes = intVar(
      "MAX_BATCH_BYTES",
      env.MAX_BATCH_BYTES,
      DEFAULT_MAX_BATCH_BYTES,
      1024,
      MAX_BATCH_BYTES_CEILING,
    );
    c = {
      allowEndpointOverride: env.ALLOW_ENDPOINT_OVERRIDE === "true",
      maxBatchBytes,
      maxBodyBytes: maxBodyBytes(maxBatchBytes),
      upstreamTimeoutMs: intVar(
        "UPSTREAM_TIMEOUT_MS",
        env.UPSTREAM_TIMEOUT_MS,
        DEFAULT_UPSTREAM_TIMEOUT_MS,
        100,
        120_000,
      ),
      retry: {
        backoffBaseMs: intVar("DRAIN_BACKOFF_BASE_MS", env.DRAIN_BACKOFF_BASE_MS, DRAIN_BACKOFF_BASE_MS, 1, 3_600_000),
        backoffCapMs: intVar("DRAIN_BACKOFF_CAP_MS", env.DRAIN_BACKOFF_CAP_MS, DRAIN_BACKOFF_CAP_MS, 1, 86_400_000),
        maxAttempts: intVar("DRAIN_MAX_ATTEMPTS", env.DRAIN_MAX_ATTEMPTS, DRAIN_MAX_ATTEMPTS, 1, 1000),
        maxAgeMs: intVar("DRAIN_MAX_AGE_MS", env.DRAIN_MAX_AGE_MS, DRAIN_MAX_AGE_MS, 1000, 30 * 86_400_000),
      },
      drainRefusedBodies: env.LOCAL_DRAIN_REFUSED_BODIES === "true",
    };
    cache.set(env, c);
  }
  return c;
}
