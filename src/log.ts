/**
 * Structured logs: one JSON object per line (Workers Logs indexes the fields). Callers pass ids,
 * counts and codes only: never keys, secrets, signatures or event payloads. `info` (a line per
 * request) is off unless LOG_LEVEL=info: Workers' own invocation logs already record each request,
 * and a line per request is measurable CPU on the hot path.
 */
type Fields = Record<string, string | number | boolean | null | undefined>;
export type LogLevel = "info" | "warn" | "error";

const RANK: Record<LogLevel, number> = { info: 0, warn: 1, error: 2 };
let threshold = RANK.warn;

/** Sets the lowest level written (Worker var LOG_LEVEL; default "warn"). */
export function setLogLevel(level: LogLevel): void {
  threshold = RANK[level];
}

function emit(level: LogLevel, msg: string, fields?: Fields): void {
  if (RANK[level] < threshold) return;
  const line = JSON.stringify({ level, msg, ...fields });
  if (level === "error") console.error(line);
  else if (level === "warn") console.warn(line);
  else console.log(line);
}

export const log = {
  info: (msg: string, fields?: Fields) => emit("info", msg, fields),
  warn: (msg: string, fields?: Fields) => emit("warn", msg, fields),
  error: (msg: string, fields?: Fields) => emit("error", msg, fields),
};

/** Whether a level is written now: lets a caller skip building fields nobody will read. */
export function logEnabled(level: LogLevel): boolean {
  return RANK[level] >= threshold;
}
