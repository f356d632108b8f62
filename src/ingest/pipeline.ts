/**
 * The one path every batch takes after authentication, whichever front door it came through:
 * validate → scope to the tenant's sources → admit (tenant gate) → forward or buffer → results.
 * The front doors differ only in how they read credentials and how they write the answer
 * (`render`) and errors.
 */

import type { AwsClient } from "aws4fetch";
import { SigV4Errors } from "../auth/sigv4.ts";
import { relayConfig } from "../config.ts";
import type { Caller } from "../context.ts";
import { AssumeRoleError, credentialsFor, forgetCredentials } from "../credentials/resolve.ts";
import { type Slot, validateBatch, type WireEntry } from "../entries/schema.ts";
import { errors, type RelayError } from "../errors.ts";
import { type PutResult, putPartnerEvents } from "../eventbridge/client.ts";
import { type CallErrorClass, isRetryableEntryCode } from "../eventbridge/codes.ts";
import { BUFFERING_MS, TENANT_CACHE_MAX_ENTRIES } from "../limits.ts";
import { log } from "../log.ts";
import { type IngestStats, recordIngestRequest } from "../metrics.ts";
import { applySourceVerdicts, sourceCounts } from "../sources/ingest.ts";
import { gateCall, shardFor, shardOf } from "../tenant-gate/client.ts";
import { reportLater, reportNow, type ShardTarget } from "../tenant-gate/client-reports.ts";
import {
  type AdmitOutput,
  type FinishInput,
  GATE_PROTOCOL,
  type QueuedEntryInput,
  type RateInfo,
} from "../tenant-gate/protocol.ts";
import { ownsSource, upstreamEndpoint } from "../tenants/record.ts";
import { invalidateTenant, TenantRecordError } from "../tenants/store.ts";

export type EntryOutcome =
  | { kind: "delivered"; eventId: string | null }
  | { kind: "queued"; relayEventId: string }
  | { kind: "failed"; code: string; message: string };

export interface IngestResult {
  entries: EntryOutcome[];
  failed: number;
  queued: number;
  rate: RateInfo | null;
}

/** A front door's rendering of a result: what goes on the wire and is stored for replay. */
export interface Rendered {
  status: number;
  body: string;
  contentType: string;
  headers?: Record<string, string>;
}

export interface IngestArgs {
  env: Env;
  ctx: { waitUntil(promise: Promise<unknown>): void };
  caller: Caller;
  body: unknown;
  idempotency: { key: string; bodyHash: string } | null;
  requestId: string;
  render: (r: IngestResult) => Rendered;
}

export function rateLimitHeaders(rate: RateInfo | null): Record<string, string> {
  if (!rate || rate.limit === 0) return {};
  // draft-ietf-httpapi-ratelimit-headers: the tenant's bucket toward EventBridge.
  return {
    "ratelimit-policy": `"eventbridge";q=${rate.limit};w=${rate.windowS}`,
    ratelimit: `"eventbridge";r=${rate.remaining};t=${rate.resetS}`,
  };
}

function toResponse(r: Rendered, extra: Record<string, string> = {}): Response {
  return new Response(r.body, {
    status: r.status,
    headers: { "content-type": r.contentType, "cache-control": "no-store", ...r.headers, ...extra },
  });
}

export async function ingest(args: IngestArgs): Promise<Response> {
  const started = Date.now();
  const stats: IngestStats = { entries: 0, bytes: 0, result: null, status: 0, replayed: false, throttled: false };
  let error: unknown = null;
  try {
    return await ingestOnce(args, stats);
  } catch (e) {
    error = e;
    throw e;
  } finally {
    recordIngestRequest(args.env, args.caller, stats, error, Date.now() - started);
  }
}

async function ingestOnce(args: IngestArgs, stats: IngestStats): Promise<Response> {
  const { env, caller, requestId } = args;
  const cfg = relayConfig(env);
  const tenant = caller.tenant;
  const { slots } = validateBatch(args.body, cfg.maxBatchBytes);

  // Scope: a tenant only posts to its own partner event sources; others never leave the relay.
  const scoped: Slot[] = slots.map((s, i) =>
    s.ok && !ownsSource(tenant.sources, s.entry.Source)
      ? {
          ok: false,
          code: "NotAuthorizedForSourceException",
          message: `Entries[${i}].Source: ${s.entry.Source} is not one of this tenant's partner event sources`,
        }
      : s,
  );
  let valid: number[] = [];
  let validBytes = 0;
  scoped.forEach((s, i) => {
    if (s.ok) {
      valid.push(i);
      validBytes += s.bytes;
    }
  });
  stats.entries = slots.length;
  stats.bytes = validBytes;

  // One shard of the tenant takes the whole request (docs/scaling.md); never the control object.
  const { shard, gate } = shardFor(env, tenant, args.idempotency?.key ?? null);
  const target: ShardTarget = { id: tenant.id, region: tenant.region, shard };
  // A shard that queued its last request is buffering: the entries go along with the admission,
  // so a queued request is one call, not two. Such an admit is not retried (it may have committed).
  const queue = valid.length > 0 && buffering.expects(target) ? queuedEntries(valid, scoped) : undefined;
  const admit: AdmitOutput = await gateCall(
    () =>
      gate.admit({
        v: GATE_PROTOCOL,
        tenantId: tenant.id,
        principal: caller.principal,
        revision: tenant.revision,
        status: tenant.status,
        limits: tenant.limits,
        entries: valid.length,
        bytes: validBytes,
        idempotency: args.idempotency,
        sources: sourceCounts(valid, scoped),
        unmanagedSources: tenant.unmanagedSources,
        shard,
        ...(queue ? { queue } : {}),
      }),
    { retry: !queue },
  );
  if ("revision" in admit && admit.revision > tenant.revision) invalidateTenant(tenant.id);
  if (admit.kind === "queue" || admit.kind === "queued") buffering.saw(target);
  else if (admit.kind === "direct") buffering.forget(target);

  switch (admit.kind) {
    case "denied":
      throw deniedError(caller, admit.reason);
    case "replay":
      stats.replayed = true;
      stats.status = admit.status;
      return toResponse(
        { status: admit.status, body: admit.body, contentType: admit.contentType },
        { "idempotent-replayed": "true" },
      );
    case "idempotency-mismatch":
      throw errors.idempotencyKeyReused();
    case "idempotency-in-progress":
      throw errors.idempotencyInProgress(admit.retryAfterS);
    default:
      break;
  }

  const outcomes: (EntryOutcome | null)[] = scoped.map((s) =>
    s.ok ? null : { kind: "failed", code: s.code, message: s.message },
  );
  const finish: FinishInput = {
    v: GATE_PROTOCOL,
    delivered: 0,
    failed: 0,
    lastUpstreamError: null,
    upstreamThrottled: false,
    idempotency: args.idempotency ? { key: args.idempotency.key, response: null } : null,
  };
  let rate: RateInfo | null = admit.rate;

  try {
    if (admit.kind === "full") throw errors.bufferFull(admit.retryAfterS, admit.rate);
    // Sources not ACTIVE: held or refused, not sent (src/sources/ingest.ts).
    if (admit.kind !== "queued")
      valid = await applySourceVerdicts({
        env,
        gate,
        tenant,
        verdicts: admit.sources,
        valid,
        scoped,
        outcomes,
        requestId,
      });
    if (admit.kind === "queued") {
      valid.forEach((i, k) => (outcomes[i] = { kind: "queued", relayEventId: admit.relayEventIds[k]! }));
    } else if (valid.length > 0 && admit.kind === "queue") {
      const queued = await enqueue(
        env,
        target,
        tenant.limits,
        valid.map((i) => ({ i, slot: scoped[i]! as Extract<Slot, { ok: true }> })),
        null,
      );
      if (queued.kind === "full") throw errors.bufferFull(queued.retryAfterS, queued.rate);
      valid.forEach((i, k) => (outcomes[i] = { kind: "queued", relayEventId: queued.ids[k]! }));
    } else if (valid.length > 0) {
      rate = admit.rate;
      await forward(args, target, valid, scoped, outcomes, finish);
    }
  } catch (e) {
    // The relay accepted nothing: let a retry with the same Idempotency-Key run again. Entries
    // whose send had an unknown outcome are counted now: the partner's resend may duplicate them.
    if (finish.idempotency || finish.duplicatesPossible) args.ctx.waitUntil(reportNow(env, target, finish));
    throw e;
  }

  const entries = outcomes as EntryOutcome[];
  const result: IngestResult = {
    entries,
    failed: entries.filter((o) => o.kind === "failed").length,
    queued: entries.filter((o) => o.kind === "queued").length,
    rate,
  };
  stats.result = result;
  stats.throttled = finish.upstreamThrottled;
  const rendered = args.render(result);
  stats.status = rendered.status;
  if (finish.idempotency && rendered.status < 500) {
    finish.idempotency.response = { status: rendered.status, body: rendered.body, contentType: rendered.contentType };
    // The stored response must exist before a retry can arrive: wait for it.
    await reportNow(env, target, finish);
  } else {
    reportLater(env, args.ctx, target, finish);
  }
  log.info("ingest", {
    requestId,
    tenantId: tenant.id,
    shard,
    entries: entries.length,
    delivered: entries.filter((o) => o.kind === "delivered").length,
    queued: result.queued,
    failed: result.failed,
  });
  return toResponse(rendered, rateLimitHeaders(rate));
}

/** Sends the valid entries now; retryable failures go to the buffer instead of back to the partner. */
async function forward(
  args: IngestArgs,
  target: ShardTarget,
  valid: number[],
  scoped: Slot[],
  outcomes: (EntryOutcome | null)[],
  finish: FinishInput,
): Promise<void> {
  const { env, caller, requestId } = args;
  const tenant = caller.tenant;
  const cfg = relayConfig(env);
  let client: AwsClient | PutResult;
  try {
    client = await credentialsFor(tenant, env);
  } catch (e) {
    if (e instanceof TenantRecordError) {
      log.error("tenant_credentials_unusable", { requestId, tenantId: tenant.id, reason: e.message });
      throw errors.tenantMisconfigured(e.message);
    }
    if (!(e instanceof AssumeRoleError)) throw e;
    // Nothing was sent: the entries are queued (throttled, 5xx, no answer) or refused (denied).
    client = { ...e.failure, outcomeUnknown: false, via: "sts" };
  }
  const entries: WireEntry[] = valid.map((i) => (scoped[i] as Extract<Slot, { ok: true }>).entry);
  const result: PutResult =
    "kind" in client
      ? client
      : await putPartnerEvents({
          client,
          endpoint: upstreamEndpoint(tenant, cfg.allowEndpointOverride),
          region: tenant.region,
          entries,
          timeoutMs: cfg.upstreamTimeoutMs,
        });

  const retry: { i: number; slot: Extract<Slot, { ok: true }>; code: string; message: string; unknown: boolean }[] = [];
  if (result.kind === "ok") {
    result.entries.forEach((r, k) => {
      const i = valid[k]!;
      if ("eventId" in r) {
        outcomes[i] = { kind: "delivered", eventId: r.eventId };
        finish.delivered++;
      } else if (isRetryableEntryCode(r.code)) {
        retry.push({
          i,
          slot: scoped[i] as Extract<Slot, { ok: true }>,
          code: r.code,
          message: r.message,
          unknown: false,
        });
        finish.lastUpstreamError = { code: r.code, message: r.message };
      } else {
        outcomes[i] = { kind: "failed", code: r.code, message: r.message };
        finish.failed++;
        finish.lastUpstreamError = { code: r.code, message: r.message };
      }
    });
  } else {
    finish.lastUpstreamError = { code: result.code, message: result.message };
    finish.upstreamThrottled = result.errorClass === "throttled";
    log.warn(result.via === "sts" ? "assume_role_failed" : "upstream_call_failed", {
      requestId,
      tenantId: tenant.id,
      code: result.code,
      status: result.status,
      upstreamRequestId: result.requestId,
    });
    // A role session EventBridge no longer takes (expired early, revoked) is dropped: the entries
    // are queued and the drain sends them with a fresh session.
    let sessionDropped = false;
    if (result.errorClass === "credentials") {
      invalidateTenant(tenant.id);
      sessionDropped = result.via !== "sts" && forgetCredentials(tenant.id, result.code);
    }
    if (!QUEUEABLE.has(result.errorClass) && !sessionDropped) throw upstreamError(result);
    for (const i of valid) {
      retry.push({
        i,
        slot: scoped[i] as Extract<Slot, { ok: true }>,
        code: result.code,
        message: result.message,
        unknown: result.outcomeUnknown,
      });
    }
  }
  if (retry.length === 0) return;

  const queued = await enqueue(env, target, tenant.limits, retry, retry);
  if (queued.kind === "queued") {
    retry.forEach((r, k) => (outcomes[r.i] = { kind: "queued", relayEventId: queued.ids[k]! }));
    return;
  }
  // No room to hold them: say so per entry, or for the whole call when that is what failed.
  if (result.kind === "error") {
    if (result.outcomeUnknown) finish.duplicatesPossible = valid.length;
    throw upstreamError(result);
  }
  for (const r of retry) {
    outcomes[r.i] = {
      kind: "failed",
      code: r.code,
      message: `${r.message} (the relay's buffer is full; resend this entry)`,
    };
    finish.failed++;
  }
}

/** Whole-call failures worth holding in the buffer rather than answering with an error. */
const QUEUEABLE = new Set<CallErrorClass>(["throttled", "server", "timeout", "network"]);

/**
 * Which shards this isolate saw queueing, and until when it expects them to go on (BUFFERING_MS
 * after the last queue answer; a direct answer ends it). Bounded like the record cache. A wrong
 * guess costs only the entries' bytes in the admit call: the shard sends or refuses as before.
 */
export const buffering = {
  byShard: new Map<string, number>(),
  key: (t: ShardTarget) => `${t.id}#${t.shard}`,
  expects(t: ShardTarget): boolean {
    const until = this.byShard.get(this.key(t));
    return until !== undefined && until > Date.now();
  },
  saw(t: ShardTarget): void {
    if (this.byShard.size >= TENANT_CACHE_MAX_ENTRIES) this.byShard.clear();
    this.byShard.set(this.key(t), Date.now() + BUFFERING_MS);
  },
  forget(t: ShardTarget): void {
    this.byShard.delete(this.key(t));
  },
};

function queuedEntries(valid: number[], scoped: Slot[]): QueuedEntryInput[] {
  return valid.map((i) => {
    const slot = scoped[i] as Extract<Slot, { ok: true }>;
    return {
      entry: slot.entry,
      bytes: slot.bytes,
      attempts: 0,
      lastCode: null,
      lastMessage: null,
      outcomeUnknown: false,
    };
  });
}

async function enqueue(
  env: Env,
  target: ShardTarget,
  limits: Caller["tenant"]["limits"],
  items: { slot: Extract<Slot, { ok: true }> }[],
  failures: { code: string; message: string; unknown: boolean }[] | null,
): Promise<{ kind: "queued"; ids: string[] } | { kind: "full"; retryAfterS: number; rate: RateInfo }> {
  const entries: QueuedEntryInput[] = items.map((it, k) => ({
    entry: it.slot.entry,
    bytes: it.slot.bytes,
    attempts: failures ? 1 : 0,
    lastCode: failures?.[k]?.code ?? null,
    lastMessage: failures?.[k]?.message ?? null,
    outcomeUnknown: failures?.[k]?.unknown ?? false,
  }));
  const out = await gateCall(() =>
    shardOf(env, target, target.shard).enqueue({
      v: GATE_PROTOCOL,
      tenantId: target.id,
      limits,
      entries,
      shard: target.shard,
    }),
  );
  return out.kind === "queued" ? { kind: "queued", ids: out.relayEventIds } : out;
}

/** The refusal for a credential the tenant's gate says is revoked, or a disabled tenant. */
export function deniedError(caller: Caller, reason: "revoked" | "disabled"): RelayError {
  if (reason === "disabled") return errors.tenantDisabled();
  return caller.principal.kind === "sigv4"
    ? SigV4Errors.unknownAccessKey(caller.principal.id)
    : errors.invalidApiKey('Bearer realm="eventbridge-relay"');
}

/** A whole-call upstream failure the relay could not absorb, as the partner sees it. */
export function upstreamError(r: Extract<PutResult, { kind: "error" }>): RelayError {
  switch (r.errorClass) {
    case "throttled":
      return errors.upstreamThrottled(r);
    case "timeout":
      return errors.upstreamTimeout(r);
    case "server":
    case "network":
      return errors.upstreamUnavailable(r);
    case "credentials":
      return errors.upstreamAuthFailed(r);
    case "rejected":
      return errors.upstreamRejected(r);
  }
}
