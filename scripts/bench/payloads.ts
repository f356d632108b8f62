/**
 * Request bodies for the benchmark, sized by AWS's PutPartnerEvents formula (src/entries/size.ts,
 * the relay's own implementation): Time counts 14 bytes; Source, DetailType, Detail and each
 * Resource their UTF-8 bytes.
 *
 * - small: 20 entries (no Resources), about 2.5 KB on the wire;
 * - max: 20 entries whose formula size is just under MAX_BATCH_BYTES (262,144);
 * - invalid: a batch with an unknown top-level field (the whole body is parsed, then 400);
 * - oversize: 20 entries just over MAX_BATCH_BYTES by the formula (parsed, sized, then 413).
 *
 * Details are realistic nested JSON (an order with line items), sent as JSON strings as the AWS
 * CLI and SDKs send them, so the relay parses them as it would in production.
 */
import { entrySize } from "../../src/entries/size.ts";
import { DEFAULT_MAX_BATCH_BYTES, MAX_ENTRIES } from "../../src/limits.ts";

export type Size = "small" | "max";

export interface Payload {
  body: Buffer;
  entries: number;
  /** Total size by AWS's formula, in bytes. */
  formulaBytes: number;
}

/** A fixed instant (2026-01-01T00:00:00Z) so runs send identical bytes. */
const TIME = 1_767_225_600;

function source(tenantId: string): string {
  return `aws.partner/example.com/${tenantId}/orders`;
}

/** An order with `items` line items, as a JSON string. */
function orderDetail(i: number, items: number, note = ""): string {
  return JSON.stringify({
    orderId: `o-${String(i).padStart(8, "0")}`,
    status: "created",
    customer: { id: `c-${(i * 7919) % 100_000}`, tier: "gold", country: "DE" },
    total: { amount: 1234.5 + i, currency: "EUR" },
    items: Array.from({ length: items }, (_, k) => ({
      sku: `SKU-${String(k).padStart(5, "0")}`,
      name: `Widget model ${k} "deluxe"`,
      qty: (k % 5) + 1,
      price: 9.99 + k,
      tags: ["blue", "large"],
    })),
    ...(note ? { note } : {}),
  });
}

interface Entry {
  Time: number;
  Source: string;
  Resources?: string[];
  DetailType: string;
  Detail: string;
}

function entry(tenantId: string, i: number, detail: string): Entry {
  return {
    Time: TIME,
    Source: source(tenantId),
    Resources: [`arn:aws:example:eu-west-1:123456789012:order/o-${i}`],
    DetailType: "Order Created",
    Detail: detail,
  };
}

/** 20 entries whose summed formula size is exactly `target` bytes (or ~2 KB for "small"). */
function batch(tenantId: string, target: number | null): Entry[] {
  const entries: Entry[] = [];
  for (let i = 0; i < MAX_ENTRIES; i++) {
    if (target === null) {
      const { Resources: _, ...small } = entry(tenantId, i, JSON.stringify({ orderId: `o-${i}`, total: 12.5 }));
      entries.push(small as Entry);
      continue;
    }
    // Each entry gets an even share of the target; the last one takes the remainder.
    const share =
      i < MAX_ENTRIES - 1 ? Math.floor(target / MAX_ENTRIES) : target - entries.reduce((n, e) => n + entrySize(e), 0);
    const skeleton = entry(tenantId, i, "");
    const room = share - entrySize(skeleton);
    let items = 0;
    while (orderDetail(i, items + 1).length + 20 < room) items++;
    const base = orderDetail(i, items);
    // Pad with a note so the entry hits its share exactly (`,"note":""` adds 10 bytes).
    const pad = room - base.length - 10;
    const detail = pad >= 0 ? orderDetail(i, items, "x".repeat(pad)) : base;
    entries.push(entry(tenantId, i, detail));
  }
  return entries;
}

function payload(body: object, entries: Entry[]): Payload {
  return {
    body: Buffer.from(JSON.stringify(body)),
    entries: entries.length,
    formulaBytes: entries.reduce((n, e) => n + entrySize(e), 0),
  };
}

/** A valid batch of 20 entries for `tenantId`. */
export function validBatch(tenantId: string, size: Size): Payload {
  const entries = batch(tenantId, size === "small" ? null : DEFAULT_MAX_BATCH_BYTES - 44);
  return payload({ Entries: entries }, entries);
}

/** A batch the relay refuses whole with 400: an unknown top-level field next to valid entries. */
export function invalidBatch(tenantId: string, size: Size): Payload {
  const entries = batch(tenantId, size === "small" ? null : DEFAULT_MAX_BATCH_BYTES - 44);
  return payload({ Entries: entries, DryRun: true }, entries);
}

/** A batch just over the size cap by AWS's formula: parsed and sized, then refused with 413. */
export function oversizeBatch(tenantId: string): Payload {
  const entries = batch(tenantId, DEFAULT_MAX_BATCH_BYTES + 4_096);
  return payload({ Entries: entries }, entries);
}
