/**
 * The drain: run by the gate's alarm, it sends the buffer's due entries in packed batches at
 * the tenant's rate, several calls in flight, and records each batch's outcome set-based.
 *
 * Owns: no table (it claims and settles through the buffer, records outcomes through events)
 * and one piece of memory: the pause after EventBridge throttled the tenant. What to do with an
 * upstream answer is decided by policy.ts (pure); this is the I/O around it.
 */
import type { AwsClient } from "aws4fetch";
import { relayConfig } from "../config.ts";
import { AssumeRoleError, credentialsFor, forgetCredentials } from "../credentials/resolve.ts";
import { type PutResult, putPartnerEvents } from "../eventbridge/client.ts";
import { DRAIN_CONCURRENCY, DRAIN_GATHER_MS, DRAIN_RUN_BUDGET_MS } from "../limits.ts";
import { log } from "../log.ts";
import { recordDrainCall } from "../metrics.ts";
import { type TenantRecord, upstreamEndpoint } from "../tenants/record.ts";
import { getTenant, invalidateTenant } from "../tenants/store.ts";
import type { Admission } from "./admission.ts";
import type { ClaimedBatch, EntryBuffer } from "./buffer.ts";
import type { Counters } from "./counters.ts";
import type { Events } from "./events.ts";
import { backoffMs, gatherCalls, planBatchOutcome, type RowAction } from "./policy.ts";

/** The longest the drain sleeps inside one run waiting for a token, in ms; longer waits re-arm. */
const MAX_INLINE_WAIT_MS = 1_000;
/** How long the drain waits before retrying when the tenant's record or credentials are unusable, in ms. */
export const CONFIG_RETRY_MS = 30_000;

export interface DrainParts {
  env: Env;
  storage: DurableObjectStorage;
  tenantId: () => string | null;
  admission: Admission;
  buffer: EntryBuffer;
  events: Events;
  counters: Counters;
}

interface Upstream {
  client: AwsClient;
  endpoint: string;
  region: string;
  timeoutMs: number;
  tenantId: string;
}

export class Drain {
  readonly #p: DrainParts;
  #pausedUntil = 0;

  constructor(parts: DrainParts) {
    this.#p = parts;
  }

  /** EventBridge throttled the tenant: the drain waits one backoff step before its next batch. */
  pauseAfterThrottle(now: number): void {
    this.#pausedUntil = now + backoffMs(relayConfig(this.#p.env).retry, 1, Math.random());
  }

  /**
   * Sends due batches for up to DRAIN_RUN_BUDGET_MS. Returns when to run next: a time, or null
   * when nothing is due (the gate then asks the modules for their next expiry).
   */
  async run(): Promise<number | null> {
    const { env, buffer, counters } = this.#p;
    const started = Date.now();
    const tenantId = this.#p.tenantId();
    if (buffer.queuedEntries === 0 || !tenantId) return null;
    let record: TenantRecord | null;
    try {
      record = await getTenant(env.TENANTS, tenantId);
    } catch (e) {
      counters.setLastError("TenantRecordUnreadable", (e as Error).message, started);
      return started + CONFIG_RETRY_MS;
    }
    if (!record) {
      counters.setLastError("TenantRecordMissing", `no tenant record for ${tenantId}`, started);
      return started + CONFIG_RETRY_MS;
    }
    const cfg = relayConfig(env);
    let client: AwsClient;
    try {
      client = await credentialsFor(record, env);
    } catch (e) {
      invalidateTenant(record.id);
      if (e instanceof AssumeRoleError) {
        // The role cannot be assumed: nothing is sent and no entry spends an attempt; the drain
        // waits, backing off by the failures in a row, and the entries go once it is fixed.
        counters.setLastError(e.failure.code, `STS AssumeRole: ${e.failure.message}`, started);
        log.warn("assume_role_failed", {
          tenantId,
          code: e.failure.code,
          status: e.failure.status,
          upstreamRequestId: e.failure.requestId,
          queued: buffer.queuedEntries,
        });
        return started + backoffMs(cfg.retry, e.consecutive, Math.random());
      }
      counters.setLastError("TenantCredentialsUnusable", (e as Error).message, started);
      return started + CONFIG_RETRY_MS;
    }
    const bucket = this.#p.admission.bucket(record.limits, started);
    const up: Upstream = {
      client,
      endpoint: upstreamEndpoint(record, cfg.allowEndpointOverride),
      region: record.region,
      timeoutMs: cfg.upstreamTimeoutMs,
      tenantId: record.id,
    };
    const gather = gatherCalls(bucket.rate, DRAIN_GATHER_MS, DRAIN_CONCURRENCY);
    const inflight = new Set<Promise<void>>();
    let wake: number | null = null;
    for (;;) {
      const now = Date.now();
      if (now - started >= DRAIN_RUN_BUDGET_MS) {
        wake = now;
        break;
      }
      if (this.#pausedUntil > now) {
        wake = this.#pausedUntil;
        break;
      }
      // Out of tokens: sleep until a few calls' worth have come back and send them on one wake
      // (DRAIN_GATHER_MS): a wake costs about what a call does.
      const wait = bucket.remaining(now) >= 1 ? 0 : bucket.waitMs(now, gather);
      if (wait > 0) {
        if (wait > MAX_INLINE_WAIT_MS) {
          wake = now + wait;
          break;
        }
        await new Promise((r) => setTimeout(r, wait));
        continue;
      }
      const batch = this.#claim(now, cfg.maxBatchBytes);
      if (!batch) {
        if (inflight.size > 0) {
          await Promise.race(inflight);
          continue;
        }
        break;
      }
      bucket.tryTake(now);
      const p: Promise<void> = this.#send(batch, up).finally(() => inflight.delete(p));
      inflight.add(p);
      if (inflight.size >= DRAIN_CONCURRENCY) await Promise.race(inflight);
    }
    await Promise.allSettled(inflight);
    return wake;
  }

  #claim(now: number, maxBytes: number): ClaimedBatch | null {
    const batch = this.#p.buffer.claim(now, maxBytes);
    if (batch && batch.resentUnknown > 0) {
      this.#p.counters.add("duplicatesPossible", batch.resentUnknown);
      this.#p.counters.flush();
    }
    return batch;
  }

  async #send(batch: ClaimedBatch, up: Upstream): Promise<void> {
    let result: PutResult;
    const sentAt = Date.now();
    try {
      result = await putPartnerEvents({
        client: up.client,
        endpoint: up.endpoint,
        region: up.region,
        entries: { json: batch.json },
        timeoutMs: up.timeoutMs,
      });
    } catch (e) {
      result = {
        kind: "error",
        errorClass: "network",
        code: "NetworkError",
        message: (e as Error)?.message ?? "send failed",
        status: 0,
        requestId: null,
        outcomeUnknown: true,
      };
    }
    const now = Date.now();
    if (result.kind === "error") {
      this.#p.counters.setLastError(result.code, result.message, now);
      if (result.errorClass === "throttled") this.pauseAfterThrottle(now);
      if (result.errorClass === "credentials") {
        invalidateTenant(up.tenantId);
        forgetCredentials(up.tenantId, result.code);
      }
      log.warn("drain_batch_failed", {
        tenantId: up.tenantId,
        entries: batch.rows.length,
        code: result.code,
        status: result.status,
        upstreamRequestId: result.requestId,
      });
    }
    const actions = planBatchOutcome(relayConfig(this.#p.env).retry, batch.rows, result, now, Math.random);
    recordDrainCall(this.#p.env, up.tenantId, batch.json, result, actions, now - sentAt);
    this.#apply(actions, batch, now, result.kind === "error" && result.outcomeUnknown);
  }

  /**
   * Records one batch's outcome in one transaction: a few set-based statements, not a round of
   * them per entry (buffer.settle: one UPDATE per touched request row; events: one INSERT for the
   * delivered). `batch.slots[i]` is where `actions[i]` lives (both in the claimed order).
   */
  #apply(actions: RowAction[], batch: ClaimedBatch, now: number, unknown: boolean): void {
    const { buffer, events, counters } = this.#p;
    this.#p.storage.transactionSync(() => {
      counters.add("upstreamCalls", 1);
      if (unknown) counters.add("duplicatesPossible", actions.filter((a) => a.action === "retry").length);
      // Entries purged meanwhile are simply absent from what settle returns.
      const finished = buffer.settle(batch, actions);
      const delivered: Extract<RowAction, { action: "delivered" }>[] = [];
      for (const f of finished) {
        if (f.action.action === "delivered") {
          delivered.push(f.action);
        } else {
          counters.add("failed", 1);
          counters.add("deadLettered", 1);
          events.deadLettered(f.action, { entry: f.entry, bytes: f.bytes, acceptedAt: f.acceptedAt }, now);
        }
      }
      counters.add("delivered", delivered.length);
      events.deliveredMany(delivered, now);
      counters.flush();
    });
  }
}
