/**
 * The one answer to "what does the relay sign this tenant's PutPartnerEvents with", for the
 * Worker's direct path (src/ingest/pipeline.ts) and the tenant's drain (src/tenant-gate/drain.ts):
 *
 * - static keys: the sealed pair in the record, opened with SEALING_KEY (src/tenants/store.ts);
 * - a role: STS AssumeRole with the relay's own identity (Worker secrets RELAY_AWS_ACCESS_KEY_ID /
 *   RELAY_AWS_SECRET_ACCESS_KEY) and the tenant's external id, cached (role-cache.ts).
 *
 * Throws TenantRecordError when the configuration is unusable (no credentials, a secret that does
 * not open, the relay's identity not set) and AssumeRoleError when STS refused or failed.
 * docs/credentials.md is the operator's and the partner's side of it.
 */
import type { AwsClient } from "aws4fetch";
import { relayConfig } from "../config.ts";
import { STS_DEFAULT_DURATION_S } from "../limits.ts";
import { isRoleCredentials, type TenantRecord } from "../tenants/record.ts";
import { awsClientFor, TenantRecordError } from "../tenants/store.ts";
import { clearRoleCredentials, forgetRoleCredentials, roleClientFor } from "./role-cache.ts";
import { assumeRole, type RelayIdentity, sessionNameFor, stsEndpoint } from "./sts.ts";

export { AssumeRoleError } from "./role-cache.ts";

/** An AWS access key id: what a real identity's RELAY_AWS_ACCESS_KEY_ID looks like (not a placeholder). */
const ACCESS_KEY_ID = /^\w{16,128}$/;
/** Slack a caller gives another caller's AssumeRole beyond the call's own timeout, in ms. */
const WAIT_SLACK_MS = 1_000;

const signingCache = new Map<string, ArrayBuffer>();

export function credentialsFor(record: TenantRecord, env: Env): Promise<AwsClient> {
  const c = record.credentials;
  if (!isRoleCredentials(c)) return awsClientFor(record, env.SEALING_KEY);
  const identity = relayIdentity(env);
  const cfg = relayConfig(env);
  const endpoint =
    record.endpoint && cfg.allowEndpointOverride ? record.endpoint.replace(/\/$/, "") : stsEndpoint(record.region);
  const durationSeconds = c.durationSeconds ?? STS_DEFAULT_DURATION_S;
  return roleClientFor({
    tenantId: record.id,
    key: JSON.stringify([c.roleArn, c.externalId, durationSeconds, endpoint, record.region, identity.accessKeyId]),
    region: record.region,
    waitMs: cfg.upstreamTimeoutMs + WAIT_SLACK_MS,
    assume: () =>
      assumeRole({
        identity,
        endpoint,
        region: record.region,
        roleArn: c.roleArn,
        externalId: c.externalId,
        sessionName: sessionNameFor(record.id),
        durationSeconds,
        timeoutMs: cfg.upstreamTimeoutMs,
        signingCache,
      }),
  });
}

/**
 * The relay's own AWS identity, or TenantRecordError when it is not configured. Both secrets are
 * declared required (wrangler.toml); an operator without role tenants sets them to `none`.
 */
export function relayIdentity(env: Env): RelayIdentity {
  const accessKeyId = (env.RELAY_AWS_ACCESS_KEY_ID ?? "").trim();
  const secretAccessKey = (env.RELAY_AWS_SECRET_ACCESS_KEY ?? "").trim();
  if (!ACCESS_KEY_ID.test(accessKeyId) || !secretAccessKey || secretAccessKey === "none") {
    throw new TenantRecordError(
      "the tenant signs with a role, but the relay's AWS identity (secrets RELAY_AWS_ACCESS_KEY_ID and RELAY_AWS_SECRET_ACCESS_KEY) is not set: see docs/credentials.md",
    );
  }
  return { accessKeyId, secretAccessKey };
}

/**
 * After EventBridge refused a call with a credentials code: drop a role session it will not take
 * (expired, or unknown to it). True when one was dropped: the refusal was the session's, not the
 * tenant's, and a retry with a fresh session can succeed.
 */
export function forgetCredentials(tenantId: string, code: string): boolean {
  return forgetRoleCredentials(tenantId, code);
}

/** Test hook: forget every assumed role in this isolate. */
export function clearCredentialCaches(): void {
  clearRoleCredentials();
  signingCache.clear();
}
