/**
 * Assumed-role credentials per tenant, in this isolate's memory: the Worker's direct path and the
 * tenant's Durable Object (its drain) each keep theirs here, as the module state of the isolate
 * they run in. Never in KV or the object's storage: a temporary secret written down is one more
 * copy to leak, and a new isolate simply assumes the role again.
 *
 * - Fresh credentials are used until their refresh time: 5 minutes before they expire
 *   (STS_REFRESH_BEFORE_EXPIRY_MS, as the AWS SDKs do), or at half their life when that is sooner.
 * - One refresh at a time per tenant (single flight): the caller that finds them due refreshes;
 *   others keep signing with the current ones while they are still good, or wait for it.
 * - A failed AssumeRole is remembered for STS_FAILURE_CACHE_MS, so a flood of requests for a
 *   tenant whose role is broken is not a flood of STS calls; a refresh that fails while the
 *   current credentials are still good keeps using them.
 * - An entry is keyed by what was assumed (role, external id, duration, endpoint, relay key id):
 *   a fixed record (a corrected external id) is assumed at once, not after the failure expires.
 */
import { AwsClient } from "aws4fetch";
import {
  STS_CACHE_MAX_ENTRIES,
  STS_EXPIRY_MARGIN_MS,
  STS_FAILURE_CACHE_MS,
  STS_REFRESH_BEFORE_EXPIRY_MS,
} from "../limits.ts";
import type { AssumeRoleResult } from "./sts.ts";

type Failure = Extract<AssumeRoleResult, { kind: "error" }>;

/** AssumeRole failed (now, or within STS_FAILURE_CACHE_MS): what STS said, never a secret. */
export class AssumeRoleError extends Error {
  override name = "AssumeRoleError";
  readonly failure: Failure;
  /** Failures in a row for this tenant's role (1 for the first); callers back off by it. */
  readonly consecutive: number;

  constructor(failure: Failure, consecutive: number) {
    super(`STS AssumeRole failed: ${failure.code}: ${failure.message}`);
    this.failure = failure;
    this.consecutive = consecutive;
  }
}

interface Current {
  client: AwsClient;
  expiresAt: number;
  refreshAt: number;
}

interface Entry {
  key: string;
  current: Current | null;
  inflight: Promise<AwsClient> | null;
  failure: { error: AssumeRoleError; until: number } | null;
  consecutive: number;
}

const entries = new Map<string, Entry>();

export interface RoleClientArgs {
  tenantId: string;
  /** What is assumed (role, external id, duration, endpoint, relay key id): a change starts afresh. */
  key: string;
  /** The EventBridge region the returned client signs for. */
  region: string;
  /** How long a caller waits for another caller's refresh before giving up, in ms. */
  waitMs: number;
  assume: () => Promise<AssumeRoleResult>;
}

/** An aws4fetch client signing with the tenant's assumed-role credentials (and session token). */
export async function roleClientFor(args: RoleClientArgs): Promise<AwsClient> {
  let e = entries.get(args.tenantId);
  if (!e || e.key !== args.key) {
    e = { key: args.key, current: null, inflight: null, failure: null, consecutive: 0 };
    entries.delete(args.tenantId);
    entries.set(args.tenantId, e);
    if (entries.size > STS_CACHE_MAX_ENTRIES) {
      const oldest = entries.keys().next().value;
      if (oldest !== undefined) entries.delete(oldest);
    }
  }
  const now = Date.now();
  const usable = e.current && now < e.current.expiresAt - STS_EXPIRY_MARGIN_MS ? e.current : null;
  if (usable && now < usable.refreshAt) return usable.client;
  if (e.failure && now < e.failure.until) {
    if (usable) return usable.client;
    throw e.failure.error;
  }
  if (e.inflight !== null) {
    if (usable) return usable.client;
    return withDeadline(e.inflight, args.waitMs);
  }
  const entry = e;
  const p = refresh(entry, args);
  entry.inflight = p;
  try {
    return await p;
  } catch (err) {
    if (usable) return usable.client;
    throw err;
  } finally {
    if (entry.inflight === p) entry.inflight = null;
  }
}

async function refresh(e: Entry, args: RoleClientArgs): Promise<AwsClient> {
  let result = await args.assume();
  const now = Date.now();
  if (result.kind === "ok" && result.credentials.expiresAt <= now + STS_EXPIRY_MARGIN_MS) {
    result = {
      kind: "error",
      errorClass: "server",
      code: "InvalidResponse",
      message: "STS issued credentials that expire at once (is a clock wrong?)",
      status: 200,
      requestId: result.requestId,
    };
  }
  if (result.kind === "error") {
    e.consecutive++;
    const error = new AssumeRoleError(result, e.consecutive);
    e.failure = { error, until: now + STS_FAILURE_CACHE_MS };
    throw error;
  }
  const c = result.credentials;
  const life = c.expiresAt - now;
  const client = new AwsClient({
    accessKeyId: c.accessKeyId,
    secretAccessKey: c.secretAccessKey,
    sessionToken: c.sessionToken,
    service: "events",
    region: args.region,
    retries: 0,
  });
  e.current = {
    client,
    expiresAt: c.expiresAt,
    refreshAt: c.expiresAt - Math.min(STS_REFRESH_BEFORE_EXPIRY_MS, life / 2),
  };
  e.failure = null;
  e.consecutive = 0;
  return client;
}

/** Another caller's refresh, or a timeout error if it does not settle in time (its request may have gone). */
function withDeadline(p: Promise<AwsClient>, ms: number): Promise<AwsClient> {
  let timer: ReturnType<typeof setTimeout> | null = null;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () =>
        reject(
          new AssumeRoleError(
            {
              kind: "error",
              errorClass: "timeout",
              code: "RequestTimeout",
              message: `STS did not answer within ${ms} ms`,
              status: 0,
              requestId: null,
            },
            1,
          ),
        ),
      ms,
    );
  });
  return Promise.race([p, deadline]).finally(() => clearTimeout(timer));
}

/** EventBridge codes meaning the session itself is no good: drop it so the next call assumes anew. */
const SESSION_REFUSED = new Set([
  "ExpiredTokenException",
  "ExpiredToken",
  "UnrecognizedClientException",
  "InvalidClientTokenId",
]);

/**
 * After EventBridge refused a tenant's call with `code`: forget its credentials when the session
 * was the problem. True when a role session was dropped (the next call assumes the role anew).
 */
export function forgetRoleCredentials(tenantId: string, code: string): boolean {
  if (!SESSION_REFUSED.has(code) || !entries.get(tenantId)?.current) return false;
  return entries.delete(tenantId);
}

/** Test hook: forget every tenant's credentials in this isolate. */
export function clearRoleCredentials(): void {
  entries.clear();
}
