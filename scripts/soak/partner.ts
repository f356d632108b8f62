/**
 * The soak's partners: concurrent senders that behave as a careful real partner does. Each event
 * carries a unique id in its Detail ({"soakId","tenant","seq"}). A sender takes 1-20 of a tenant's
 * unsent events, posts them (JSON API with the tenant's API key, or now and then the AWS front
 * door signed with its SigV4 pair), and then:
 *
 * - EventId / RelayEventId for an entry: acknowledged; never sent again.
 * - a retryable per-entry ErrorCode (ThrottlingException, InternalFailure, …): only those entries go
 *   back to be sent again;
 * - 429 / 503 (and AWS ThrottlingException): nothing was accepted; wait Retry-After (or back off)
 *   and send again;
 * - no answer (connection reset, the runtime crashed mid-request), 502 upstream_unavailable, 504,
 *   any other 5xx: the outcome is unknown (the relay or EventBridge may hold the entries); the
 *   entries are sent again and counted as unknown-outcome sends, where a duplicate is expected;
 * - connection refused (the runtime is restarting): nothing was sent; back off and send again;
 * - any other refusal: recorded by status and code; those events are not sent again.
 */
import { AwsClient } from "aws4fetch";
import type { SecretScanner } from "./runtime.ts";
import { sleep } from "./runtime.ts";
import type { ProvisionedTenant } from "./tenants.ts";

/** Per-entry codes a partner resends (EventBridge's retryable ones). */
const RETRYABLE_ENTRY_CODES = new Set([
  "ThrottlingException",
  "InternalFailure",
  "InternalException",
  "ServiceUnavailable",
]);
/** Backoff after a refused connection or an answer without Retry-After, in ms (doubled, capped). */
const BACKOFF_BASE_MS = 100;
const BACKOFF_CAP_MS = 2_000;
/** A partner gives an event up after this many sends (reported; never expected). */
const MAX_SENDS_PER_EVENT = 200;
/** Client-side timeout of one request, in ms (longer than the relay's upstream timeout). */
const REQUEST_TIMEOUT_MS = 30_000;

export interface SoakEvent {
  id: string;
  tenant: number;
  seq: number;
  sends: number;
  /** Sends of this event whose outcome the partner could not know. */
  unknownSends: number;
  acknowledged: boolean;
  /** EventId or RelayEventId of the acknowledgement. */
  ackId?: string;
  /** A final refusal, "status code" or a per-entry code. */
  refused?: string;
  gaveUp?: boolean;
}

export interface PartnerStats {
  requests: number;
  jsonRequests: number;
  awsRequests: number;
  /** Answers by "status code" (non-2xx) or "2xx", e.g. "429 buffer_full". */
  answers: Map<string, number>;
  /** Per-entry error codes seen in 200/202 answers. */
  entryCodes: Map<string, number>;
  connectionRefused: number;
  connectionLost: number;
  /** 5xx answers (any source), the fuzz's and soak's red flag when not 502/504 upstream_*. */
  serverErrors: number;
  /** 5xx answers that were not the relay's documented problem+json / AWS JSON. */
  undocumented5xx: number;
  /** Unknown-outcome sends, counted per request. */
  unknownRequests: number;
}

export function newStats(): PartnerStats {
  return {
    requests: 0,
    jsonRequests: 0,
    awsRequests: 0,
    answers: new Map(),
    entryCodes: new Map(),
    connectionRefused: 0,
    connectionLost: 0,
    serverErrors: 0,
    undocumented5xx: 0,
    unknownRequests: 0,
  };
}

export interface PartnerContext {
  url: () => string;
  tenants: ProvisionedTenant[];
  /** Unsent events per tenant (index). */
  pending: SoakEvent[][];
  random: () => number;
  stats: PartnerStats;
  secrets: SecretScanner;
  /** Share of requests sent to the AWS front door (0-1). */
  awsShare: number;
  /** True once every event is settled. */
  done: () => boolean;
  onAck: () => void;
}

function bump(m: Map<string, number>, k: string, by = 1): void {
  m.set(k, (m.get(k) ?? 0) + by);
}

export function detailOf(e: SoakEvent, t: ProvisionedTenant): string {
  return JSON.stringify({ soakId: e.id, tenant: t.id, seq: e.seq });
}

/** One partner: loops until every event is settled. */
export async function runPartner(ctx: PartnerContext): Promise<void> {
  let backoff = BACKOFF_BASE_MS;
  const awsClients = ctx.tenants.map(
    (t) =>
      new AwsClient({
        accessKeyId: t.sigv4.accessKeyId,
        secretAccessKey: t.sigv4.secretAccessKey,
        service: "events",
        region: "us-east-1",
        retries: 0,
      }),
  );
  while (!ctx.done()) {
    // A tenant with unsent events, picked at random.
    const open = ctx.pending.map((p, i) => (p.length > 0 ? i : -1)).filter((i) => i >= 0);
    if (open.length === 0) {
      await sleep(50); // others hold the last events in flight
      continue;
    }
    const ti = open[Math.floor(ctx.random() * open.length)]!;
    const t = ctx.tenants[ti]!;
    const size = 1 + Math.floor(ctx.random() * 20);
    const batch = ctx.pending[ti]!.splice(0, size);
    const aws = ctx.random() < ctx.awsShare;
    for (const e of batch) e.sends++;
    const outcome = await send(ctx, t, batch, aws ? awsClients[ti]! : null);
    const retry: SoakEvent[] = [];
    for (const e of batch) {
      if (e.acknowledged || e.refused) continue;
      if (e.sends >= MAX_SENDS_PER_EVENT) {
        e.gaveUp = true;
        continue;
      }
      retry.push(e);
    }
    // Back in front, so order within a tenant roughly holds.
    ctx.pending[ti]!.unshift(...retry);
    if (outcome.waitMs > 0) {
      await sleep(outcome.waitMs);
    } else if (outcome.backoff) {
      await sleep(backoff * (0.5 + ctx.random()));
      backoff = Math.min(BACKOFF_CAP_MS, backoff * 2);
    } else {
      backoff = BACKOFF_BASE_MS;
    }
  }
}

interface SendOutcome {
  waitMs: number;
  backoff: boolean;
}

async function send(
  ctx: PartnerContext,
  t: ProvisionedTenant,
  batch: SoakEvent[],
  signer: AwsClient | null,
): Promise<SendOutcome> {
  const entries = batch.map((e) => ({ Source: t.source, DetailType: "Soak Event", Detail: detailOf(e, t) }));
  const body = JSON.stringify({ Entries: entries });
  ctx.stats.requests++;
  let res: Response;
  try {
    if (signer) {
      ctx.stats.awsRequests++;
      const req = await signer.sign(ctx.url() + "/", {
        method: "POST",
        headers: { "content-type": "application/x-amz-json-1.1", "x-amz-target": "AWSEvents.PutPartnerEvents" },
        body,
      });
      res = await fetch(req, { signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS) });
    } else {
      ctx.stats.jsonRequests++;
      res = await fetch(ctx.url() + "/v1/events", {
        method: "POST",
        headers: { authorization: `Bearer ${t.apiKey.key}`, "content-type": "application/json" },
        body,
        signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
      });
    }
  } catch (err) {
    if (connectionRefused(err)) {
      ctx.stats.connectionRefused++;
      for (const e of batch) e.sends--; // nothing left this machine
      return { waitMs: 0, backoff: true };
    }
    ctx.stats.connectionLost++;
    unknown(ctx, batch);
    return { waitMs: 0, backoff: true };
  }
  let text: string;
  try {
    text = await res.text();
  } catch {
    ctx.stats.connectionLost++;
    unknown(ctx, batch);
    return { waitMs: 0, backoff: true };
  }
  ctx.secrets.check("an answer", text);
  res.headers.forEach((v) => void ctx.secrets.check("an answer's headers", v));
  const retryAfterMs = retryAfter(res.headers);

  if (res.status === 200 || res.status === 202) {
    type Answer = { Entries?: { EventId?: string; RelayEventId?: string; ErrorCode?: string }[] };
    let parsed: Answer | null = null;
    try {
      parsed = JSON.parse(text) as Answer;
    } catch {
      // fall through
    }
    if (!parsed?.Entries || parsed.Entries.length !== batch.length) {
      bump(ctx.stats.answers, `${res.status} unparseable`);
      unknown(ctx, batch);
      return { waitMs: 0, backoff: true };
    }
    bump(ctx.stats.answers, String(res.status));
    let retryable = false;
    parsed.Entries.forEach((a, i) => {
      const e = batch[i]!;
      const id = a.EventId ?? a.RelayEventId;
      if (id) {
        e.acknowledged = true;
        e.ackId = id;
        ctx.onAck();
      } else if (a.ErrorCode) {
        bump(ctx.stats.entryCodes, a.ErrorCode);
        if (RETRYABLE_ENTRY_CODES.has(a.ErrorCode)) retryable = true;
        else e.refused = a.ErrorCode;
      }
    });
    return { waitMs: 0, backoff: retryable };
  }

  const code = errorCode(text, res.headers.get("content-type") ?? "");
  bump(ctx.stats.answers, `${res.status} ${code ?? "(not a documented error body)"}`);
  if (res.status >= 500) {
    ctx.stats.serverErrors++;
    if (code === null) ctx.stats.undocumented5xx++;
    unknown(ctx, batch);
    return { waitMs: retryAfterMs, backoff: retryAfterMs === 0 };
  }
  // The AWS front door answers throttling as 400 ThrottlingException.
  if (res.status === 429 || code === "ThrottlingException")
    return { waitMs: retryAfterMs, backoff: retryAfterMs === 0 };
  for (const e of batch) e.refused = `${res.status} ${code ?? "?"}`;
  return { waitMs: 0, backoff: false };
}

function unknown(ctx: PartnerContext, batch: SoakEvent[]): void {
  ctx.stats.unknownRequests++;
  for (const e of batch) e.unknownSends++;
}

/** The relay's documented error code: problem+json `code` or AWS JSON `__type`; null otherwise. */
export function errorCode(text: string, contentType: string): string | null {
  try {
    const j = JSON.parse(text) as { code?: unknown; __type?: unknown };
    if (contentType.startsWith("application/problem+json") && typeof j.code === "string") return j.code;
    if (contentType.startsWith("application/x-amz-json-1.1") && typeof j.__type === "string") return j.__type;
  } catch {
    // not JSON
  }
  return null;
}

function retryAfter(h: Headers): number {
  const v = h.get("retry-after");
  if (!v) return 0;
  const s = Number(v);
  return Number.isFinite(s) && s >= 0 ? Math.min(s, 30) * 1000 : 0;
}

function connectionRefused(err: unknown): boolean {
  let e: unknown = err;
  for (let i = 0; i < 4 && e; i++) {
    const code = (e as { code?: unknown }).code;
    if (code === "ECONNREFUSED") return true;
    e = (e as { cause?: unknown }).cause;
  }
  return false;
}
