/**
 * Watching for secrets where they must never appear: every console line the Worker (and its
 * Durable Objects, which share the test isolate) writes, and every response body.
 */
import { expect, vi } from "vitest";
import { STACK_TRACE } from "./http.ts";

/** Captures console output (silently) until vi.restoreAllMocks(); returns the live list of lines. */
export function captureLogs(): string[] {
  const lines: string[] = [];
  for (const level of ["log", "info", "warn", "error", "debug"] as const) {
    vi.spyOn(console, level).mockImplementation((...args: unknown[]) => {
      lines.push(
        args
          .map((a) =>
            typeof a === "string" ? a : a instanceof Error ? `${a.name}: ${a.message}\n${a.stack}` : JSON.stringify(a),
          )
          .join(" "),
      );
    });
  }
  return lines;
}

/** No text holds any of the secrets, nor a stack trace. */
export function expectNoLeaks(texts: readonly string[], secrets: readonly string[]): void {
  const live = secrets.filter((s) => s.length >= 8);
  for (const text of texts) {
    for (const s of live)
      expect(text.includes(s), `a secret (${s.slice(0, 6)}...) leaked into: ${text.slice(0, 300)}`).toBe(false);
    expect(text).not.toMatch(STACK_TRACE);
  }
}
