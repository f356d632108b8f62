/**
 * Where `npm start` says its relay runs: a small JSON file in the local state directory
 * (`<state>/relay-running.json`: url, pid, startedAt), written once the relay answers and removed
 * on a clean exit. `npm run tenant` reads it to find the relay on whatever port `npm start` chose,
 * and treats an entry whose process is gone as stale (ignored and removed). A stale entry whose
 * pid was reused by another process is caught by the connection check (docs/admin.md).
 */
import { readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { z } from "zod";
import type { RunningRelay } from "../../src/admin/context.ts";

export const RUNNING_RELAY_FILE = "relay-running.json";

const entrySchema = z.object({
  url: z.string().url(),
  pid: z.number().int().positive(),
  startedAt: z.string(),
});

export function runningRelayFile(stateDir: string): string {
  return join(stateDir, RUNNING_RELAY_FILE);
}

/** Records the relay (atomically); returns the function that removes the record again. */
export function recordRunningRelay(stateDir: string, entry: { url: string; pid: number }): () => void {
  const file = runningRelayFile(stateDir);
  const tmp = `${file}.${process.pid}.tmp`;
  writeFileSync(tmp, JSON.stringify({ ...entry, startedAt: new Date().toISOString() }, null, 2) + "\n", {
    mode: 0o600,
  });
  renameSync(tmp, file);
  return () => {
    // Only our own record: another npm start may have taken the state over since.
    if (readEntry(file)?.pid === entry.pid) rmSync(file, { force: true });
  };
}

/** The relay `npm start` runs on this state, or null (no record, unreadable, or its process is gone). */
export function readRunningRelay(stateDir: string): RunningRelay | null {
  const file = runningRelayFile(stateDir);
  const entry = readEntry(file);
  if (!entry) return null;
  if (!processAlive(entry.pid)) {
    rmSync(file, { force: true }); // stale: npm start was killed outright
    return null;
  }
  return { url: entry.url.replace(/\/+$/, ""), pid: entry.pid, file };
}

function readEntry(file: string): z.infer<typeof entrySchema> | null {
  try {
    const r = entrySchema.safeParse(JSON.parse(readFileSync(file, "utf8")));
    return r.success ? r.data : null;
  } catch {
    return null;
  }
}

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as { code?: string }).code === "EPERM";
  }
}
