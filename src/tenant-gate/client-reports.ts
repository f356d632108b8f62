/**
 * The Worker side of the gate's `finish` RPC: direct-path outcomes for the tenant gate's counters,
 * coalesced per isolate: instead of one RPC per request, an isolate sends one aggregated report
 * per tenant shard every REPORT_FLUSH_MS. Counters are bookkeeping (GET /v1/status), so they may lag by
 * that much; an Idempotency-Key's stored response is never coalesced (a retry must find it), and
 * neither is anything events depend on.
 */
import { log } from "../log.ts";
import { shardName, shardOf } from "./client.ts";
import type { FinishInput } from "./protocol.ts";

/** The shard a request was admitted by: its report (counters, idempotency record) goes back there. */
export interface ShardTarget {
  id: string;
  region: string;
  shard: number;
}

/** How long an isolate gathers direct-path outcomes before reporting them, in ms. */
export const REPORT_FLUSH_MS = 100;

const pending = new Map<string, FinishInput>();

function merge(into: FinishInput, f: FinishInput): void {
  into.delivered += f.delivered;
  into.failed += f.failed;
  if (f.lastUpstreamError) into.lastUpstreamError = f.lastUpstreamError;
  into.upstreamThrottled ||= f.upstreamThrottled;
  if (f.duplicatesPossible) into.duplicatesPossible = (into.duplicatesPossible ?? 0) + f.duplicatesPossible;
}

/** Sends one report now (idempotent responses, releases) and waits for it. */
export async function reportNow(env: Env, target: ShardTarget, finish: FinishInput): Promise<void> {
  try {
    await shardOf(env, target, target.shard).finish(finish);
  } catch (e) {
    log.error("gate_finish_failed", {
      tenantId: target.id,
      shard: target.shard,
      error: (e as Error)?.message ?? String(e),
    });
  }
}

/** Adds a report to the isolate's pending one for the tenant; the first one schedules the flush. */
export function reportLater(
  env: Env,
  ctx: { waitUntil(p: Promise<unknown>): void },
  target: ShardTarget,
  finish: FinishInput,
): void {
  if (
    finish.delivered === 0 &&
    finish.failed === 0 &&
    !finish.lastUpstreamError &&
    !finish.upstreamThrottled &&
    !finish.duplicatesPossible
  )
    return;
  const key = shardName(target.id, target.shard);
  const existing = pending.get(key);
  if (existing) {
    merge(existing, finish);
    return;
  }
  pending.set(key, { ...finish, idempotency: null });
  ctx.waitUntil(
    new Promise((r) => setTimeout(r, finish.upstreamThrottled ? 0 : REPORT_FLUSH_MS)).then(() => {
      const report = pending.get(key);
      pending.delete(key);
      return report ? reportNow(env, target, report) : undefined;
    }),
  );
}
