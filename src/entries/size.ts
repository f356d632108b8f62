/**
 * EventBridge's entry size formula (putpartnerevents.md "total size"): Time counts 14 bytes when
 * present; Source, DetailType, Detail and each Resource count their UTF-8 bytes; nothing else.
 */
import { TIME_SIZE_BYTES } from "../limits.ts";

const encoder = new TextEncoder();
let scratch = new Uint8Array(16_384);
/** Below this many UTF-16 units a JS loop beats a call into the runtime's encoder. */
const NATIVE_FROM = 256;

/** UTF-8 byte length of a JS string (lone surrogates count as U+FFFD: 3), without allocating. */
export function utf8Length(s: string): number {
  if (s.length >= NATIVE_FROM) {
    if (scratch.length < s.length * 3) scratch = new Uint8Array(s.length * 3);
    return encoder.encodeInto(s, scratch).written;
  }
  let n = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x80) n += 1;
    else if (c < 0x800) n += 2;
    else if (c >= 0xd800 && c <= 0xdbff && i + 1 < s.length) {
      const d = s.charCodeAt(i + 1);
      if (d >= 0xdc00 && d <= 0xdfff) {
        n += 4;
        i++;
      } else n += 3;
    } else n += 3;
  }
  return n;
}

export interface SizedFields {
  Time?: unknown;
  Source?: unknown;
  DetailType?: unknown;
  Detail?: unknown;
  Resources?: unknown;
}

/** One entry's size by AWS's formula; fields of the wrong type count what they would serialise to. */
export function entrySize(e: SizedFields): number {
  let n = e.Time === undefined || e.Time === null ? 0 : TIME_SIZE_BYTES;
  if (typeof e.Source === "string") n += utf8Length(e.Source);
  if (typeof e.DetailType === "string") n += utf8Length(e.DetailType);
  if (typeof e.Detail === "string") n += utf8Length(e.Detail);
  else if (e.Detail !== undefined && e.Detail !== null) n += utf8Length(JSON.stringify(e.Detail) ?? "");
  if (Array.isArray(e.Resources)) {
    for (const r of e.Resources) if (typeof r === "string") n += utf8Length(r);
  }
  return n;
}
