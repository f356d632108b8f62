/**
 * EventBridge's entry size formula (putpartnerevents.md "total size"): Time counts 14 bytes when
 * present; Source, DetailType, Detail and each Resource count their UTF-8 bytes; nothing else.
 */
import { TIME_SIZE_BYTES } from "../limits.ts";

/** UTF-8 byte length of a JS string without encoding it (lone surrogates count as U+FFFD: 3). */
export function utf8Length(s: string): number {
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
