/**
 * What the relay answers about partner event sources (admin API, partner API, status, CLI), as
 * plain data: no Worker types here, so the CLI (Node) can import it too.
 */
import type { SourceState } from "./policy.ts";

/** A source as the admin API, the partner API and the status show it. */
export interface SourceView {
  name: string;
  account: string | null;
  managed: boolean;
  state: SourceState;
  /** Set when the state cannot be read (events are forwarded as before): why. */
  warning: string | null;
  arn: string | null;
  creationTime: string | null;
  expirationTime: string | null;
  checkedAt: string | null;
  nextCheckAt: string | null;
  lastError: string | null;
  held: { entries: number; bytes: number };
}

/** A refused admin or partner operation, as the API layer turns it into problem+json. */
export interface SourceOpError {
  kind: "error";
  status: number;
  code: string;
  detail: string;
  retryAfterS?: number;
}

export type SourceOp<T> = { kind: "ok"; value: T } | SourceOpError;

export interface SourceCounts {
  tracked: number;
  managed: number;
  pending: number;
  active: number;
  deleted: number;
  unknown: number;
  unverifiable: number;
  heldEntries: number;
  heldBytes: number;
}
