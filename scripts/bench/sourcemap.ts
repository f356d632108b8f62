/**
 * Just enough of Source Map v3 to say which original file and line a position in the bundle
 * came from: decodes the base64 VLQ `mappings` once, then looks positions up per line.
 */

const B64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
const B64_INDEX = new Int8Array(128).fill(-1);
for (let i = 0; i < B64.length; i++) B64_INDEX[B64.charCodeAt(i)] = i;

interface RawMap {
  version: number;
  sources: string[];
  mappings: string;
}

/** One generated line's segments: [generated column, source index, original line], sorted. */
type Line = Int32Array;

export interface Original {
  source: string;
  /** 0-based line in the original source. */
  line: number;
}

export class SourceMap {
  readonly sources: string[];
  readonly #lines: Line[];

  constructor(json: string) {
    const raw = JSON.parse(json) as RawMap;
    if (raw.version !== 3) throw new Error(`source map version ${raw.version} is not supported`);
    this.sources = raw.sources.map(normaliseSource);
    this.#lines = decode(raw.mappings);
  }

  /** The original position of a 0-based generated line and column, or null when unmapped. */
  lookup(line: number, column: number): Original | null {
    const segs = this.#lines[line];
    if (!segs || segs.length === 0) return null;
    // Last segment whose generated column ≤ column (segments are triples).
    let lo = 0;
    let hi = segs.length / 3 - 1;
    let found = -1;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      if (segs[mid * 3]! <= column) {
        found = mid;
        lo = mid + 1;
      } else hi = mid - 1;
    }
    if (found < 0) found = 0;
    const src = segs[found * 3 + 1]!;
    if (src < 0) return null;
    return { source: this.sources[src]!, line: segs[found * 3 + 2]! };
  }
}

/** `../../src/x.ts` → `src/x.ts`; `../node_modules/.pnpm/zod@4/node_modules/zod/...` → `node_modules/zod/...`. */
function normaliseSource(s: string): string {
  const nm = s.lastIndexOf("node_modules/");
  if (nm >= 0) return s.slice(nm);
  const src = s.indexOf("src/");
  if (src >= 0) return s.slice(src);
  return s.replace(/^(\.\.\/)+/, "");
}

function decode(mappings: string): Line[] {
  const lines: Line[] = [];
  let source = 0;
  let origLine = 0;
  let _origCol = 0;
  let _name = 0;
  let current: number[] = [];
  let i = 0;
  const n = mappings.length;
  const fields: number[] = [];
  let genCol = 0;
  while (i <= n) {
    const c = i < n ? mappings.charCodeAt(i) : 59; // ';' ends the last line
    if (c === 59 /* ; */) {
      lines.push(Int32Array.from(current));
      current = [];
      genCol = 0;
      i++;
      continue;
    }
    if (c === 44 /* , */) {
      i++;
      continue;
    }
    fields.length = 0;
    while (i < n) {
      const ch = mappings.charCodeAt(i);
      if (ch === 44 || ch === 59) break;
      let value = 0;
      let shift = 0;
      for (;;) {
        const digit = B64_INDEX[mappings.charCodeAt(i++)]!;
        if (digit < 0) throw new Error("bad base64 VLQ in source map");
        value += (digit & 31) << shift;
        if ((digit & 32) === 0) break;
        shift += 5;
      }
      fields.push(value & 1 ? -(value >>> 1) : value >>> 1);
    }
    genCol += fields[0] ?? 0;
    if (fields.length >= 4) {
      source += fields[1]!;
      origLine += fields[2]!;
      _origCol += fields[3]!;
      if (fields.length >= 5) _name += fields[4]!;
      current.push(genCol, source, origLine);
    } else {
      current.push(genCol, -1, 0);
    }
  }
  return lines;
}
