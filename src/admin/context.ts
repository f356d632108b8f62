/**
 * What every tenant-administration function runs with: the TENANTS KV namespace, the relay's
 * admin API, the sealing key, the clock, and where notes go. The CLI builds one from its flags
 * (scripts/lib/context.ts); `npm start`'s demo tenant and the tests build their own.
 */
import type { AdminClient } from "./client.ts";
import type { TenantsKv } from "./store.ts";

export type AdminMode = "local" | "remote";

/** One-line messages for people; never a secret. */
export interface AdminNotices {
  note(line: string): void;
  warn(line: string): void;
  trace?(line: string): void;
}

/** The relay `npm start` recorded as running on this local state (its process is alive). */
export interface RunningRelay {
  url: string;
  pid: number;
  /** Where the record lives, for messages. */
  file: string;
}

export interface Admin {
  kv: TenantsKv;
  mode: AdminMode;
  now(): Date;
  notices: AdminNotices;
  /** The admin API client; throws an AdminError when it cannot be configured (no URL, no token). */
  relay(): AdminClient;
  /** Locally: the relay `npm start` runs on this state, if any (null remotely or when none). */
  runningRelay(): RunningRelay | null;
  /** The AES-GCM sealing key; throws an AdminError explaining how to get one. */
  sealingKey(): Promise<CryptoKey>;
}

/** Notes dropped on the floor (for callers that report results themselves). */
export const SILENT: AdminNotices = { note() {}, warn() {} };
