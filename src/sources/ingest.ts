/**
 * Ingest's side of partner event sources (the pipeline calls these two): the distinct sources a
 * request names, for admit(); then, with admit's verdicts, entries for a source that is not
 * ACTIVE are held in the gate (202 with a RelayEventId) or refused per entry, and only the rest
 * go on to be sent. Both front doors pass through here.
 */
import type { Slot } from "../entries/schema.ts";
import type { EntryOutcome } from "../ingest/pipeline.ts";
import { log } from "../log.ts";
import { gateCall } from "../tenant-gate/client.ts";
import { GATE_PROTOCOL, type GateRpc, type SourceVerdicts } from "../tenant-gate/protocol.ts";
import type { TenantRecord } from "../tenants/record.ts";

type Ok = Extract<Slot, { ok: true }>;

/** The distinct sources of the valid entries, with their entries and bytes. */
export function sourceCounts(valid: readonly number[], scoped: readonly Slot[]) {
  const by = new Map<string, { source: string; entries: number; bytes: number }>();
  for (const i of valid) {
    const s = scoped[i] as Ok;
    const c = by.get(s.entry.Source) ?? { source: s.entry.Source, entries: 0, bytes: 0 };
    c.entries++;
    c.bytes += s.bytes;
    by.set(s.entry.Source, c);
  }
  return [...by.values()];
}

/**
 * Carries out admit's verdicts: refused entries fail with the relay code, held ones are handed to
 * the hold of the shard that gave the verdicts. Returns the indices still to send (all of them when there are no verdicts).
 */
export async function applySourceVerdicts(args: {
  env: Env;
  /** The shard that gave the verdicts (admit): it holds the entries and tracks their sources. */
  gate: GateRpc;
  tenant: TenantRecord;
  verdicts: SourceVerdicts | undefined;
  valid: readonly number[];
  scoped: readonly Slot[];
  outcomes: (EntryOutcome | null)[];
  requestId: string;
}): Promise<number[]> {
  const { verdicts, valid, scoped, outcomes, tenant } = args;
  if (!verdicts) return [...valid];
  const send: number[] = [];
  const hold: number[] = [];
  for (const i of valid) {
    const v = verdicts[(scoped[i] as Ok).entry.Source];
    if (!v || v.action === "send") send.push(i);
    else if (v.action === "hold") hold.push(i);
    else outcomes[i] = { kind: "failed", code: v.code, message: `Entries[${i}]: ${v.message}` };
  }
  const warned = Object.entries(verdicts).filter(([, v]) => v.action === "send" && v.warning);
  if (warned.length > 0) {
    log.info("source_unverifiable", {
      requestId: args.requestId,
      tenantId: tenant.id,
      sources: warned.map(([s]) => s).join(","),
    });
  }
  if (hold.length === 0) return send;
  // Not retried: a second hold of the same entries would hold them twice.
  const out = await gateCall(() =>
    args.gate.hold({
      v: GATE_PROTOCOL,
      tenantId: tenant.id,
      limits: tenant.limits,
      unmanagedSources: tenant.unmanagedSources,
      entries: hold.map((i) => {
        const s = scoped[i] as Ok;
        return { source: s.entry.Source, entry: s.entry, bytes: s.bytes };
      }),
    }),
  );
  hold.forEach((i, k) => {
    const r = out.results[k]!;
    outcomes[i] =
      "relayEventId" in r
        ? { kind: "queued", relayEventId: r.relayEventId }
        : { kind: "failed", code: r.code, message: `Entries[${i}]: ${r.message}` };
  });
  return send;
}
