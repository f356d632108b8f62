/**
 * The soak's ledger, from the emulator's own records (what EventBridge received, under which
 * credential, in which call) and the partners' records (what the relay acknowledged, and which
 * sends had an unknown outcome). Pure: a test can feed it records.
 */
import type { CallRecord, ReceivedEvent } from "../../emulator/eventbridge.ts";
import type { SoakEvent } from "./partner.ts";
import type { ProvisionedTenant } from "./tenants.ts";

export interface LedgerInput {
  events: readonly SoakEvent[];
  tenants: readonly ProvisionedTenant[];
  received: readonly ReceivedEvent[];
  calls: readonly CallRecord[];
  /** When each hard crash happened, epoch ms. */
  crashes: readonly number[];
  /** The relay's upstream timeout, in ms (a delay longer than that is an unknown outcome). */
  upstreamTimeoutMs: number;
  /** How long before a crash an upstream acceptance counts as in flight at the crash, in ms. */
  crashWindowMs: number;
}

export interface Ledger {
  sent: number;
  acknowledged: number;
  /** Distinct events EventBridge received. */
  delivered: number;
  /** Every copy EventBridge received. */
  deliveries: number;
  /** Deliveries of ids the run never sent (should be 0). */
  foreign: number;
  missing: string[];
  /** Extra copies: deliveries beyond the first, over all ids. */
  duplicates: number;
  /** Extra copies where no send had an unknown outcome (must be 0). */
  unexplainedDuplicates: string[];
  /** Partner sends with an unknown outcome (per event). */
  unknownOutcomeSends: number;
  /** Upstream calls whose answer the relay did not get: lost, or slower than its timeout, or in flight at a crash. */
  unknownUpstreamCalls: number;
  /** Deliveries signed with another tenant's AWS credential, or under a source not the sender's. */
  crossTenant: number;
  /** Refused for good (by status and code, or per-entry code). */
  refused: Map<string, number>;
  /** Refused for good but delivered anyway. */
  refusedButDelivered: number;
  gaveUp: number;
  /** Delivered but never acknowledged (only after an unknown-outcome send). */
  deliveredUnacknowledged: number;
}

export function computeLedger(input: LedgerInput): Ledger {
  const byId = new Map(input.events.map((e) => [e.id, e]));
  const callById = new Map(input.calls.map((c) => [c.requestId, c]));
  const unknownCalls = new Set<string>();
  for (const c of input.calls) {
    const delayed = /^delayed (\d+) ms$/.exec(c.reason ?? "");
    if (c.fault === "lost" || (delayed && Number(delayed[1]) >= input.upstreamTimeoutMs)) unknownCalls.add(c.requestId);
  }
  const inCrashWindow = (at: number) => input.crashes.some((t) => at >= t - input.crashWindowMs && at <= t + 1_000);

  const copies = new Map<string, number>();
  const upstreamUnknown = new Set<string>();
  let foreign = 0;
  let crossTenant = 0;
  for (const r of input.received) {
    let id: string | undefined;
    let tenantId: string | undefined;
    try {
      const d = JSON.parse(r.entry.Detail ?? "") as { soakId?: unknown; tenant?: unknown };
      if (typeof d.soakId === "string") id = d.soakId;
      if (typeof d.tenant === "string") tenantId = d.tenant;
    } catch {
      // not ours
    }
    const e = id ? byId.get(id) : undefined;
    if (!e || !id) {
      foreign++;
      continue;
    }
    const t = input.tenants[e.tenant]!;
    if (tenantId !== t.id || r.accessKeyId !== t.aws.accessKeyId || r.entry.Source !== t.source) crossTenant++;
    copies.set(id, (copies.get(id) ?? 0) + 1);
    const call = callById.get(r.requestId);
    if (unknownCalls.has(r.requestId) || inCrashWindow(r.receivedAt) || (call && inCrashWindow(call.at))) {
      upstreamUnknown.add(id);
    }
  }

  const missing: string[] = [];
  const unexplained: string[] = [];
  const refused = new Map<string, number>();
  let duplicates = 0;
  let acknowledged = 0;
  let unknownOutcomeSends = 0;
  let refusedButDelivered = 0;
  let gaveUp = 0;
  let deliveredUnacknowledged = 0;
  for (const e of input.events) {
    const n = copies.get(e.id) ?? 0;
    unknownOutcomeSends += e.unknownSends;
    if (e.acknowledged) {
      acknowledged++;
      if (n === 0) missing.push(e.id);
    } else if (n > 0) deliveredUnacknowledged++;
    if (e.refused) {
      refused.set(e.refused, (refused.get(e.refused) ?? 0) + 1);
      if (n > 0) refusedButDelivered++;
    }
    if (e.gaveUp) gaveUp++;
    if (n > 1) {
      duplicates += n - 1;
      if (e.unknownSends === 0 && !upstreamUnknown.has(e.id)) unexplained.push(e.id);
    }
  }
  let deliveries = 0;
  for (const n of copies.values()) deliveries += n;
  return {
    sent: input.events.filter((e) => e.sends > 0).length,
    acknowledged,
    delivered: copies.size,
    deliveries,
    foreign,
    missing,
    duplicates,
    unexplainedDuplicates: unexplained,
    unknownOutcomeSends,
    unknownUpstreamCalls: unknownCalls.size,
    crossTenant,
    refused,
    refusedButDelivered,
    gaveUp,
    deliveredUnacknowledged,
  };
}

/** The run passes only when nothing acknowledged is missing, nothing crossed tenants, and every duplicate is explained. */
export function balanced(l: Ledger): boolean {
  return l.missing.length === 0 && l.crossTenant === 0 && l.unexplainedDuplicates.length === 0 && l.foreign === 0;
}
