/**
 * Output: results on stdout (a table for people, exactly one JSON document with --json), notes
 * and warnings on stderr so `--json` output can be piped. Nothing here prints a secret unless the
 * caller hands it one on purpose (the one-time key or key pair).
 */

export class Output {
  readonly json: boolean;
  readonly #stdout: (s: string) => void;
  readonly #stderr: (s: string) => void;

  constructor(
    json: boolean,
    stdout: (s: string) => void = (s) => void process.stdout.write(s),
    stderr: (s: string) => void = (s) => void process.stderr.write(s),
  ) {
    this.json = json;
    this.#stdout = stdout;
    this.#stderr = stderr;
  }

  /** The command's result: `data` as JSON with --json, else the human text. */
  result(data: unknown, human: () => string): void {
    if (this.json) this.#stdout(JSON.stringify(data, null, 2) + "\n");
    else {
      const text = human();
      if (text) this.#stdout(text.endsWith("\n") ? text : text + "\n");
    }
  }

  /** A one-line note for people (stderr, also with --json). */
  note(line: string): void {
    this.#stderr(`note: ${line}\n`);
  }

  warn(line: string): void {
    this.#stderr(`warning: ${line}\n`);
  }

  trace(line: string): void {
    this.#stderr(`· ${line}\n`);
  }
}

/** A plain text table: a header row, then rows, columns padded to their widest cell. */
export function table(headers: readonly string[], rows: readonly (readonly string[])[]): string {
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? "").length)));
  const line = (cells: readonly string[]) =>
    cells
      .map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i]!)))
      .join("  ")
      .trimEnd();
  return [line(headers), ...rows.map(line)].join("\n");
}

/** "label: value" lines with the labels aligned. */
export function fields(pairs: readonly (readonly [string, string])[]): string {
  const width = Math.max(...pairs.map(([k]) => k.length)) + 2;
  return pairs.map(([k, v]) => `${(k + ":").padEnd(width)}${v}`).join("\n");
}

export function dash(v: string | null | undefined): string {
  return v === null || v === undefined || v === "" ? "-" : v;
}

/** A duration in ms as "1.2 s", "3 min", "2.5 h". */
export function humanMs(ms: number | null | undefined): string {
  if (ms === null || ms === undefined || !Number.isFinite(ms)) return "-";
  if (ms < 1000) return `${Math.round(ms)} ms`;
  if (ms < 60_000) return `${(ms / 1000).toFixed(1)} s`;
  if (ms < 3_600_000) return `${(ms / 60_000).toFixed(1)} min`;
  return `${(ms / 3_600_000).toFixed(1)} h`;
}
