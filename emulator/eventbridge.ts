/**
 * A fake Amazon EventBridge that answers PutPartnerEvents: the upstream of every test, of
 * `npm start` and of the benchmark.
 *
 * It is deliberately strict. It verifies each request's SigV4 signature with @smithy/signature-v4
 * (the AWS SDK's signer), independent of aws4fetch which the relay signs with, and it refuses on
 * the wire what real EventBridge would refuse, plus what the relay must never send (unknown
 * members, `Time` as a string). It keeps its own copy of the AWS limits on purpose: importing
 * src/limits.ts would let a wrong constant in the relay pass its own test.
 * Facts: /work/shared/reference/putpartnerevents.md.
 *
 * Runtime-neutral: runs inside workerd (vitest) and in plain Node 22 with type stripping, so only
 * erasable TypeScript, explicit `.ts` imports and no `node:` modules here.
 *
 * Order of checks for `POST /`, as a front end would: route → authentication (SigV4) → operation
 * (X-Amz-Target) → wire (Content-Type, JSON shape, counts, size) → faults → per-entry checks.
 * A fault is consumed only by a call that passed everything before it, so a bad signature or a
 * malformed body is never masked by a fault.
 *
 * Use inside workerd (the spy reaches Durable Objects too):
 *   const fake = new FakeEventBridge({ credentials: [{ accessKeyId, secretAccessKey }] });
 *   vi.spyOn(globalThis, "fetch").mockImplementation((input, init) => fake.fetch(new Request(input, init)));
 * Over HTTP: startFakeEventBridgeServer() in ./eventbridge-server.ts (same fake, same routes).
 */
import { Sha256 } from "@aws-crypto/sha256-js";
import { HttpRequest } from "@smithy/protocol-http";
import { SignatureV4 } from "@smithy/signature-v4";
import { z } from "zod";
import { PartnerSources, type UnknownSourceMode } from "./sources.ts";
import { FakeSts, type FakeStsOptions, isStsQuery, stsAuthError, stsError } from "./sts.ts";

// ---- Public types ------------------------------------------------------------------------------

export interface FakeCredential {
  accessKeyId: string;
  secretAccessKey: string;
  sessionToken?: string;
  /** The AWS account the key belongs to (partner or customer; default FAKE_DEFAULT_ACCOUNT): sources.ts. */
  account?: string;
  /** Epoch ms after which the credential is refused with ExpiredTokenException (STS-issued ones). */
  expiresAt?: number;
}

/** The account of a credential that names none. */
export const FAKE_DEFAULT_ACCOUNT = "111122223333";

/** The account in a role ARN (arn:aws:iam::<account>:role/...). */
const ROLE_ACCOUNT = /^arn:aws(?:-[a-z]+)*:iam::(\d{12}):role\//;

export type Fault =
  /** Whole call: HTTP 400 {"__type":"ThrottlingException","message":"Rate exceeded"}. */
  | { type: "throttle" }
  /** Whole call: e.g. 500 InternalException, 503 ServiceUnavailable; `code` may carry a `ns#` prefix. */
  | { type: "error"; status: number; code: string; message?: string }
  /** Per-entry failures at `indexes` (default "all"); the other entries succeed. */
  | { type: "entries"; code: string; message?: string; indexes?: number[] | "all" }
  /** Answer normally after `ms`. */
  | { type: "delay"; ms: number }
  /** Accept and record the events, then lose the response (throws LostResponseError). */
  | { type: "lost" };

/** Probabilities per call (their sum at most 1), drawn from a PRNG seeded with `opts.seed`. */
export interface FaultRates {
  throttle?: number;
  error5xx?: number;
  entryFailure?: number;
  lost?: number;
}

/** One entry exactly as it travels on the wire. */
export interface WireEntry {
  Time?: number;
  Source?: string;
  Resources?: string[];
  DetailType?: string;
  Detail?: string;
  TraceHeader?: string;
}

export interface ReceivedEvent {
  eventId: string;
  entry: WireEntry;
  region: string;
  accessKeyId: string;
  requestId: string;
  receivedAt: number;
}

export interface CallRecord {
  requestId: string;
  /** `now()` when the call arrived. */
  at: number;
  /** From the credential scope ("" when the Authorization header did not parse). */
  region: string;
  accessKeyId: string;
  signedHeaders: string[];
  entryCount: number;
  /**
   * "rejected": refused by authentication or wire checks; "fault": a throttle, error, entries or
   * lost fault decided the answer; "accepted": answered 200 normally (possibly after a delay
   * fault, possibly with per-entry validation failures).
   */
  outcome: "accepted" | "rejected" | "fault";
  /** HTTP status answered; 0 when the response was lost. */
  status: number;
  /** `__type` of a whole-call error. */
  errorType?: string;
  /** Why it was rejected or which fault applied (never holds secrets). */
  reason?: string;
  /** The fault this call consumed, if any (addition to the brief: makes fault tests exact). */
  fault?: Fault["type"];
  /** Entries answered with ErrorCode (200 responses and lost responses only). */
  failedEntryCount?: number;
}

export interface FakeEventBridgeOptions {
  credentials?: FakeCredential[];
  /** When set, the credential scope's region must be this one. */
  region?: string;
  /** Clock in epoch milliseconds (default Date.now): X-Amz-Date skew and record timestamps. */
  now?: () => number;
  /** Accepted X-Amz-Date skew in ms (default 5 minutes, like AWS). */
  maxSkewMs?: number;
  /** Default true. When false, no authentication check at all (the header is still recorded). */
  verifySignatures?: boolean;
  /** Seed of the PRNG behind setFaultRates (default 1). */
  seed?: number;
  /** Cap on the batch size by AWS's formula, in bytes (default 262144). */
  maxBatchBytes?: number;
  /** How long a PENDING partner event source lives before it is DELETED, in ms (sources.ts; default 14 days). */
  sourceExpiryMs?: number;
  /** Events for a source the emulator never saw created: "deliver" (default, as before) or "drop". */
  unknownSources?: UnknownSourceMode;
  /** Roles the STS AssumeRole at the same origin knows (emulator/sts.ts). */
  sts?: FakeStsOptions;
}

/** Called after every PutPartnerEvents call is recorded, with the events it accepted. */
export type CallListener = (call: CallRecord, accepted: readonly ReceivedEvent[]) => void;

/**
 * What a `lost` fault throws after the events were recorded: to the caller it looks like a
 * dropped connection (a TypeError, as fetch throws). The HTTP wrapper destroys the socket instead.
 */
export class LostResponseError extends TypeError {
  constructor() {
    super("Network connection lost");
    this.name = "LostResponseError";
  }
}

/**
 * A well-known fake key pair for local runs (`npm start`, the benchmark, the server's CLI).
 * Not a secret: it only ever opens this fake.
 */
export const FAKE_DEFAULT_CREDENTIAL: FakeCredential = {
  accessKeyId: "AKIAFAKEEVENTBRIDGE0",
  secretAccessKey: "fakeEventBridgeSecretKey0000000000000000",
};

// ---- AWS facts (own copy, see the header comment) ----------------------------------------------

const TARGET = "AWSEvents.PutPartnerEvents";
const CONTENT_TYPE = "application/x-amz-json-1.1";
const SERVICE = "events";
/** Entries per request (AWS: 1 to 20). */
const MIN_ENTRIES = 1;
const MAX_ENTRIES = 20;
/** Source: 1 to 256 characters, anchored pattern (AWS service model). */
const MAX_SOURCE_CHARS = 256;
const SOURCE_PATTERN = /^aws\.partner(\/[.\-_A-Za-z0-9]+){2,}$/;
/** DetailType: at most 128 characters. */
const MAX_DETAIL_TYPE_CHARS = 128;
/** One Resource: at most 2048 characters. */
const MAX_RESOURCE_CHARS = 2048;
/** TraceHeader: at most 500 characters (AWS service model). */
const MAX_TRACE_HEADER_CHARS = 500;
/** What Time counts toward the size, in bytes, when present. */
const TIME_SIZE_BYTES = 14;
/** Default size cap by AWS's formula, in bytes (256 KiB). */
const DEFAULT_MAX_BATCH_BYTES = 262_144;
/** X-Amz-Date skew AWS accepts, in ms. */
const DEFAULT_MAX_SKEW_MS = 5 * 60_000;
/** Members an entry may carry on the wire (PutPartnerEventsRequestEntry). */
const ENTRY_MEMBERS = new Set(["Time", "Source", "Resources", "DetailType", "Detail", "TraceHeader"]);
/** Longest delay fault accepted, in ms. */
const MAX_DELAY_MS = 600_000;
/** Events listed on the HTML page. */
const PAGE_EVENTS = 200;

const SIGNATURE_MISMATCH =
  "The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method. Consult the service documentation for details.";
const INVALID_TOKEN = "The security token included in the request is invalid.";

// ---- Control-route schemas ---------------------------------------------------------------------

const faultSchema = z.discriminatedUnion("type", [
  z.strictObject({ type: z.literal("throttle") }),
  z.strictObject({
    type: z.literal("error"),
    status: z.number().int().min(400).max(599),
    code: z.string().min(1),
    message: z.string().optional(),
  }),
  z.strictObject({
    type: z.literal("entries"),
    code: z.string().min(1),
    message: z.string().optional(),
    indexes: z.union([z.array(z.number().int().min(0)), z.literal("all")]).optional(),
  }),
  z.strictObject({ type: z.literal("delay"), ms: z.number().int().min(0).max(MAX_DELAY_MS) }),
  z.strictObject({ type: z.literal("lost") }),
]);

const rate = z.number().min(0).max(1).optional();
const faultRatesSchema = z
  .strictObject({ throttle: rate, error5xx: rate, entryFailure: rate, lost: rate })
  .refine((r) => (r.throttle ?? 0) + (r.error5xx ?? 0) + (r.entryFailure ?? 0) + (r.lost ?? 0) <= 1, {
    error: "the fault rates must add up to at most 1",
  });

// Not strict: credential objects from SDKs carry extras ($source, expiration); they are dropped.
const credentialSchema = z.object({
  accessKeyId: z.string().min(1),
  secretAccessKey: z.string().min(1),
  sessionToken: z.string().min(1).optional(),
  account: z
    .string()
    .regex(/^\d{12}$/)
    .optional(),
  expiresAt: z.number().optional(),
});

// ---- The fake ----------------------------------------------------------------------------------

/** A refusal of the whole call, written as AWS JSON 1.1 does. */
class AwsError extends Error {
  readonly status: number;
  readonly type: string;
  readonly headers: Record<string, string>;
  constructor(status: number, type: string, message: string, headers: Record<string, string> = {}) {
    super(message);
    this.status = status;
    this.type = type;
    this.headers = headers;
  }
}

interface ParsedAuthorization {
  accessKeyId: string;
  scopeDate: string;
  region: string;
  service: string;
  signedHeaders: string[];
  signature: string;
}

interface EntryOutcome {
  eventId?: string;
  errorCode?: string;
  errorMessage?: string;
}

export class FakeEventBridge {
  /** Every event accepted (given an EventId), in order. Cleared in place by reset(). */
  readonly events: ReceivedEvent[] = [];
  /** Every PutPartnerEvents call, including rejected ones. Cleared in place by reset(). */
  readonly calls: CallRecord[] = [];
  /** Partner event sources and the customer's buses (sources.ts), and the events they dropped. */
  readonly sources: PartnerSources;
  /** STS AssumeRole at the same origin: roles, issued credentials, its calls (emulator/sts.ts). */
  readonly sts: FakeSts;

  #credentials = new Map<string, FakeCredential>();
  #faults: Fault[] = [];
  #rates: FaultRates | null = null;
  #seed: number;
  #random: () => number;
  #listeners = new Set<CallListener>();
  #now: () => number;
  #region: string | undefined;
  #maxSkewMs: number;
  #verify: boolean;
  #maxBatchBytes: number;

  constructor(opts: FakeEventBridgeOptions = {}) {
    for (const c of opts.credentials ?? []) this.addCredential(c);
    this.#region = opts.region;
    this.#now = opts.now ?? Date.now;
    this.#maxSkewMs = opts.maxSkewMs ?? DEFAULT_MAX_SKEW_MS;
    this.#verify = opts.verifySignatures ?? true;
    this.#maxBatchBytes = opts.maxBatchBytes ?? DEFAULT_MAX_BATCH_BYTES;
    this.#seed = opts.seed ?? 1;
    this.#random = mulberry32(this.#seed);
    this.sources = new PartnerSources({
      now: this.#now,
      ...(opts.sourceExpiryMs !== undefined ? { expiryMs: opts.sourceExpiryMs } : {}),
      ...(opts.unknownSources !== undefined ? { unknownSources: opts.unknownSources } : {}),
    });
    // An issued session belongs to the role's account (its control-plane calls act for that account).
    this.sts = new FakeSts(opts.sts ?? {}, this.#now, (c) =>
      this.addCredential({
        accessKeyId: c.accessKeyId,
        secretAccessKey: c.secretAccessKey,
        sessionToken: c.sessionToken,
        expiresAt: c.expiresAt,
        ...(ROLE_ACCOUNT.exec(c.roleArn)?.[1] ? { account: ROLE_ACCOUNT.exec(c.roleArn)![1]! } : {}),
      }),
    );
  }

  addCredential(c: FakeCredential): void {
    const parsed = credentialSchema.parse(c);
    this.#credentials.set(parsed.accessKeyId, { ...parsed });
  }

  /** FIFO: each fault is consumed by the next call that passes authentication and wire checks. */
  inject(...faults: Fault[]): void {
    for (const f of faults) this.#faults.push(faultSchema.parse(f) as Fault);
  }

  /** Random faults per call (after any injected ones); re-seeds the PRNG so runs reproduce. */
  setFaultRates(r: FaultRates | null): void {
    this.#rates = r === null ? null : (faultRatesSchema.parse(r) as FaultRates);
    this.#random = mulberry32(this.#seed);
  }

  /** Injected faults not yet consumed. */
  get pendingFaults(): readonly Fault[] {
    return [...this.#faults];
  }

  /** Subscribes to call records (used by the HTTP wrapper's log); returns the unsubscribe. */
  onCall(listener: CallListener): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /** Clears events, calls, injected faults and fault rates; keeps credentials and listeners. */
  reset(): void {
    this.events.length = 0;
    this.calls.length = 0;
    this.#faults = [];
    this.#rates = null;
    this.#random = mulberry32(this.#seed);
    this.sources.reset();
    this.sts.reset();
  }

  /** PutPartnerEvents at `POST /`; control routes under `/_fake/`. */
  async fetch(request: Request): Promise<Response> {
    const url = new URL(request.url);
    if (url.pathname === "/_fake" || url.pathname.startsWith("/_fake/")) {
      return this.#control(request, url);
    }
    if (isStsQuery(request, url)) return this.#sts(request, url);
    return this.#putPartnerEvents(request, url);
  }

  // ---- PutPartnerEvents ------------------------------------------------------------------------

  async #putPartnerEvents(request: Request, url: URL): Promise<Response> {
    const requestId = crypto.randomUUID();
    const call: CallRecord = {
      requestId,
      at: this.#now(),
      region: "",
      accessKeyId: "",
      signedHeaders: [],
      entryCount: 0,
      outcome: "rejected",
      status: 0,
    };
    let entries: WireEntry[];
    try {
      if (url.pathname !== "/") {
        throw new AwsError(404, "UnknownOperationException", `There is no operation at ${url.pathname}.`);
      }
      if (request.method !== "POST") {
        throw new AwsError(405, "UnknownOperationException", "PutPartnerEvents is POST /.", { allow: "POST" });
      }
      const body = new Uint8Array(await request.arrayBuffer());
      await this.#authenticate(request, url, body, call);
      const target = request.headers.get("x-amz-target");
      if (target !== TARGET && PartnerSources.handles(target)) {
        const account = this.#credentials.get(call.accessKeyId)?.account ?? FAKE_DEFAULT_ACCOUNT;
        const ctx = { account, accessKeyId: call.accessKeyId, region: call.region, requestId };
        return this.sources.handle(target!, request.headers.get("content-type") ?? "", body, ctx);
      }
      if (target !== TARGET) {
        throw new AwsError(
          400,
          "UnknownOperationException",
          target ? `Unknown operation ${target}; this endpoint serves ${TARGET}.` : "X-Amz-Target is missing.",
        );
      }
      const contentType = request.headers.get("content-type") ?? "";
      if (contentType.split(";")[0]!.trim().toLowerCase() !== CONTENT_TYPE) {
        throw new AwsError(400, "SerializationException", `Content-Type must be ${CONTENT_TYPE}.`);
      }
      entries = parseBody(body);
      call.entryCount = entries.length;
      const size = batchSize(entries);
      if (size > this.#maxBatchBytes) {
        throw new AwsError(
          400,
          "ValidationException",
          `Total size of the entries in the request is over the limit (${size} > ${this.#maxBatchBytes} bytes).`,
        );
      }
    } catch (err) {
      if (!(err instanceof AwsError)) throw err;
      call.status = err.status;
      call.errorType = err.type;
      call.reason = err.message;
      this.#record(call, []);
      return awsError(err, requestId);
    }

    const fault = this.#faults.shift() ?? this.#randomFault(entries.length);
    if (fault) call.fault = fault.type;
    if (fault?.type === "throttle" || fault?.type === "error") {
      const err =
        fault.type === "throttle"
          ? new AwsError(400, "ThrottlingException", "Rate exceeded")
          : new AwsError(fault.status, fault.code, fault.message ?? defaultErrorMessage(fault.code));
      call.outcome = "fault";
      call.status = err.status;
      call.errorType = err.type;
      call.reason = `${fault.type} fault`;
      this.#record(call, []);
      return awsError(err, requestId);
    }
    if (fault?.type === "delay") {
      await new Promise((resolve) => setTimeout(resolve, fault.ms));
      call.reason = `delayed ${fault.ms} ms`;
    }

    const failAt =
      fault?.type === "entries"
        ? new Set(fault.indexes === undefined || fault.indexes === "all" ? entries.keys() : fault.indexes)
        : new Set<number>();
    const receivedAt = this.#now();
    const accepted: ReceivedEvent[] = [];
    const outcomes: EntryOutcome[] = entries.map((entry, i) => {
      const invalid = validateEntry(entry);
      if (invalid) return invalid;
      if (fault?.type === "entries" && failAt.has(i)) {
        return { errorCode: fault.code, errorMessage: fault.message ?? defaultErrorMessage(fault.code) };
      }
      const eventId = crypto.randomUUID();
      const dropped = this.sources.dropReason(entry.Source);
      if (dropped !== null) {
        // AWS answers success and drops it (sources.ts).
        this.sources.recordDrop({
          eventId,
          source: entry.Source!,
          detailType: entry.DetailType,
          reason: dropped,
          requestId,
        });
        return { eventId };
      }
      accepted.push({
        eventId,
        entry: structuredClone(entry),
        region: call.region,
        accessKeyId: call.accessKeyId,
        requestId,
        receivedAt,
      });
      return { eventId };
    });
    const failed = outcomes.filter((o) => o.errorCode !== undefined).length;
    this.events.push(...accepted);
    call.failedEntryCount = failed;

    if (fault?.type === "lost") {
      call.outcome = "fault";
      call.status = 0;
      call.reason = `lost fault: ${accepted.length} event(s) accepted, response dropped`;
      this.#record(call, accepted);
      throw new LostResponseError();
    }
    call.outcome = fault?.type === "entries" ? "fault" : "accepted";
    call.status = 200;
    if (fault?.type === "entries") call.reason = `entries fault ${fault.code}`;
    this.#record(call, accepted);
    const responseBody = {
      FailedEntryCount: failed,
      Entries: outcomes.map((o) =>
        o.eventId !== undefined ? { EventId: o.eventId } : { ErrorCode: o.errorCode, ErrorMessage: o.errorMessage },
      ),
    };
    return awsJson(200, responseBody, requestId);
  }

  #record(call: CallRecord, accepted: readonly ReceivedEvent[]): void {
    this.calls.push(call);
    for (const listener of this.#listeners) {
      try {
        listener(call, accepted);
      } catch {
        // A listener (a logger) must not change the fake's answer.
      }
    }
  }

  #randomFault(entryCount: number): Fault | undefined {
    const r = this.#rates;
    if (!r) return undefined;
    let x = this.#random();
    if ((x -= r.throttle ?? 0) < 0) return { type: "throttle" };
    if ((x -= r.error5xx ?? 0) < 0) {
      return this.#random() < 0.5
        ? { type: "error", status: 500, code: "InternalException", message: "Internal service error." }
        : { type: "error", status: 503, code: "ServiceUnavailable", message: "Service is unavailable." };
    }
    if ((x -= r.entryFailure ?? 0) < 0) {
      // Retryable codes only: a relay that retries right delivers every event in the end.
      const indexes: number[] = [];
      for (let i = 0; i < entryCount; i++) if (this.#random() < 0.5) indexes.push(i);
      if (indexes.length === 0) indexes.push(Math.floor(this.#random() * entryCount));
      const code = this.#random() < 0.5 ? "InternalFailure" : "ThrottlingException";
      return { type: "entries", code, indexes };
    }
    if ((x -= r.lost ?? 0) < 0) return { type: "lost" };
    return undefined;
  }

  // ---- STS (emulator/sts.ts): the caller's SigV4 for service sts, then the Query API ------------

  async #sts(request: Request, url: URL): Promise<Response> {
    const requestId = crypto.randomUUID();
    const body = new Uint8Array(await request.arrayBuffer());
    const call: CallRecord = {
      requestId,
      at: this.#now(),
      region: "",
      accessKeyId: "",
      signedHeaders: [],
      entryCount: 0,
      outcome: "rejected",
      status: 0,
    };
    try {
      await this.#authenticate(request, url, body, call, "sts");
    } catch (err) {
      if (!(err instanceof AwsError)) throw err;
      const { status, code } = stsAuthError(err.type);
      return stsError(status, code, err.message, requestId);
    }
    return this.sts.handle(body, call.accessKeyId, requestId);
  }

  // ---- SigV4 -----------------------------------------------------------------------------------

  async #authenticate(
    request: Request,
    url: URL,
    body: Uint8Array,
    call: CallRecord,
    service = SERVICE,
  ): Promise<void> {
    const header = request.headers.get("authorization");
    if (!this.#verify) {
      const parsed = header ? tryParseAuthorization(header) : undefined;
      if (parsed && typeof parsed !== "string") {
        call.accessKeyId = parsed.accessKeyId;
        call.region = parsed.region;
        call.signedHeaders = parsed.signedHeaders;
      }
      return;
    }
    if (!header) throw new AwsError(403, "MissingAuthenticationTokenException", "Missing Authentication Token");
    const auth = tryParseAuthorization(header);
    if (typeof auth === "string") throw new AwsError(400, "IncompleteSignatureException", auth);
    call.accessKeyId = auth.accessKeyId;
    call.region = auth.region;
    call.signedHeaders = auth.signedHeaders;

    const credential = this.#credentials.get(auth.accessKeyId);
    if (!credential) throw new AwsError(400, "UnrecognizedClientException", INVALID_TOKEN);
    if (auth.service !== service) {
      throw new AwsError(
        400,
        "InvalidSignatureException",
        `Credential should be scoped to correct service: '${service}'.`,
      );
    }
    if (this.#region !== undefined && auth.region !== this.#region) {
      throw new AwsError(
        400,
        "InvalidSignatureException",
        `Credential should be scoped to a valid region, not '${auth.region}'.`,
      );
    }
    const signed = new Set(auth.signedHeaders);
    for (const required of ["host", "x-amz-date"]) {
      if (!signed.has(required)) {
        throw new AwsError(
          400,
          "IncompleteSignatureException",
          `'${required}' must be a 'SignedHeader' in the AWS Authorization.`,
        );
      }
    }
    const amzDate = request.headers.get("x-amz-date");
    const signingDate = amzDate ? parseAmzDate(amzDate) : undefined;
    if (!amzDate || !signingDate) {
      throw new AwsError(
        400,
        "IncompleteSignatureException",
        "X-Amz-Date must be present, in the ISO-8601 basic format yyyyMMdd'T'HHmmss'Z'.",
      );
    }
    if (auth.scopeDate !== amzDate.slice(0, 8)) {
      throw new AwsError(
        400,
        "InvalidSignatureException",
        `Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP: '${auth.scopeDate}' != '${amzDate.slice(0, 8)}', from '${amzDate}'.`,
      );
    }
    const now = this.#now();
    const skewMinutes = `${Math.round(this.#maxSkewMs / 60_000)} min.`;
    if (signingDate.getTime() < now - this.#maxSkewMs) {
      throw new AwsError(
        400,
        "InvalidSignatureException",
        `Signature expired: ${amzDate} is now earlier than ${formatAmzDate(now - this.#maxSkewMs)} (${formatAmzDate(now)} - ${skewMinutes})`,
      );
    }
    if (signingDate.getTime() > now + this.#maxSkewMs) {
      throw new AwsError(
        400,
        "InvalidSignatureException",
        `Signature not yet current: ${amzDate} is still later than ${formatAmzDate(now + this.#maxSkewMs)} (${formatAmzDate(now)} + ${skewMinutes})`,
      );
    }

    const token = request.headers.get("x-amz-security-token");
    if (credential.sessionToken !== undefined) {
      if (token === null || !timingSafeEqual(token, credential.sessionToken)) {
        throw new AwsError(400, "UnrecognizedClientException", INVALID_TOKEN);
      }
      if (!signed.has("x-amz-security-token")) {
        throw new AwsError(
          400,
          "IncompleteSignatureException",
          "'x-amz-security-token' must be a 'SignedHeader' in the AWS Authorization.",
        );
      }
    } else if (token !== null) {
      // A token for a long-term key is a mix-up the relay must not make.
      throw new AwsError(400, "UnrecognizedClientException", INVALID_TOKEN);
    }
    if (credential.expiresAt !== undefined && now >= credential.expiresAt) {
      throw new AwsError(400, "ExpiredTokenException", "The security token included in the request is expired");
    }

    // Trap: a signed x-amz-content-sha256 replaces the body in the signature. Check it is the body.
    const contentSha = request.headers.get("x-amz-content-sha256");
    if (contentSha !== null && contentSha !== (await sha256Hex(body))) {
      throw new AwsError(
        400,
        "InvalidSignatureException",
        contentSha === "UNSIGNED-PAYLOAD"
          ? "UNSIGNED-PAYLOAD is not accepted: sign the body."
          : "x-amz-content-sha256 does not match the SHA-256 of the body.",
      );
    }

    const headers: Record<string, string> = {};
    for (const name of auth.signedHeaders) {
      let value = request.headers.get(name);
      // fetch implementations keep these out of Headers; on the wire they are the URL's host and
      // the body's length, which is what the client signed.
      if (value === null && name === "host") value = url.host;
      if (value === null && name === "content-length") value = String(body.byteLength);
      if (value === null) {
        throw new AwsError(
          400,
          "IncompleteSignatureException",
          `Signed header '${name}' is not present in the request.`,
        );
      }
      headers[name] = value;
    }
    const query: Record<string, string | string[]> = {};
    for (const [k, v] of url.searchParams) {
      const prev = query[k];
      query[k] = prev === undefined ? v : Array.isArray(prev) ? [...prev, v] : [prev, v];
    }
    const signer = new SignatureV4({
      service: auth.service,
      region: auth.region,
      credentials: {
        accessKeyId: credential.accessKeyId,
        secretAccessKey: credential.secretAccessKey,
        ...(credential.sessionToken !== undefined ? { sessionToken: credential.sessionToken } : {}),
      },
      sha256: Sha256,
      // Never add x-amz-content-sha256 to what we recompute: only what the client signed counts.
      applyChecksum: false,
    });
    // Note: @smithy's signer regenerates x-amz-date (from signingDate, the same value) and drops a
    // signed `date` header; AWS clients sign X-Amz-Date, not Date.
    const resigned = await signer.sign(
      new HttpRequest({
        method: request.method,
        protocol: url.protocol,
        hostname: url.hostname,
        ...(url.port ? { port: Number(url.port) } : {}),
        path: url.pathname,
        query,
        headers,
        body,
      }),
      { signingDate, signableHeaders: signed },
    );
    const expected = /Signature=([0-9a-f]{64})$/.exec(String(resigned.headers["authorization"] ?? ""))?.[1] ?? "";
    if (!timingSafeEqual(expected, auth.signature)) {
      throw new AwsError(400, "InvalidSignatureException", SIGNATURE_MISMATCH);
    }
  }

  // ---- Control routes --------------------------------------------------------------------------

  async #control(request: Request, url: URL): Promise<Response> {
    const route = `${request.method} ${url.pathname.replace(/\/+$/, "") || "/"}`;
    const sourcesAnswer = await this.sources.control(route, request);
    if (sourcesAnswer) return sourcesAnswer;
    try {
      switch (route) {
        case "GET /_fake": {
          return new Response(this.#page(), {
            headers: {
              "content-type": "text/html; charset=utf-8",
              "cache-control": "no-store",
              "content-security-policy": "default-src 'none'; style-src 'unsafe-inline'",
            },
          });
        }
        case "GET /_fake/events": {
          const since = Number(url.searchParams.get("since") ?? 0);
          if (!Number.isInteger(since) || since < 0) return controlError(400, "since must be an index >= 0");
          return controlJson(200, { events: this.events.slice(since), total: this.events.length });
        }
        case "GET /_fake/calls":
          return controlJson(200, { calls: this.calls });
        case "POST /_fake/faults": {
          const body = await request.json();
          const faults = z.union([faultSchema, z.array(faultSchema)]).parse(body);
          this.inject(...((Array.isArray(faults) ? faults : [faults]) as Fault[]));
          return new Response(null, { status: 204 });
        }
        case "DELETE /_fake/faults":
          // No more faults of any kind: the queue and the random rates.
          this.#faults = [];
          this.#rates = null;
          return new Response(null, { status: 204 });
        case "PUT /_fake/fault-rates": {
          const body: unknown = await request.json();
          this.setFaultRates(body === null ? null : faultRatesSchema.parse(body));
          return new Response(null, { status: 204 });
        }
        case "POST /_fake/credentials": {
          this.addCredential(credentialSchema.parse(await request.json()));
          return new Response(null, { status: 204 });
        }
        case "POST /_fake/reset":
          this.reset();
          return new Response(null, { status: 204 });
        default:
          return (await this.sts.control(request, route)) ?? controlError(404, `no control route ${route}`);
      }
    } catch (err) {
      if (err instanceof z.ZodError) return controlError(400, z.prettifyError(err));
      if (err instanceof SyntaxError) return controlError(400, "the body is not valid JSON");
      throw err;
    }
  }

  #page(): string {
    const recent = this.events.slice(-PAGE_EVENTS).reverse();
    const rejected = this.calls.filter((c) => c.outcome === "rejected").length;
    const faulted = this.calls.filter((c) => c.outcome === "fault").length;
    const rows = recent
      .map((e, i) => {
        const detail = e.entry.Detail ?? "";
        return `<tr><td>${this.events.length - i}</td><td>${esc(new Date(e.receivedAt).toISOString())}</td><td>${esc(e.region)}</td><td>${esc(e.entry.Source ?? "")}</td><td>${esc(e.entry.DetailType ?? "")}</td><td><code>${esc(e.eventId)}</code></td><td><code>${esc(detail.length > 200 ? `${detail.slice(0, 200)}…` : detail)}</code></td></tr>`;
      })
      .join("\n");
    return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta http-equiv="refresh" content="2">
<title>Fake EventBridge</title>
<style>body{font:14px system-ui,sans-serif;margin:1.5em}table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:.25em .5em;text-align:left;vertical-align:top}code{font-size:12px}</style>
</head><body>
<h1>Fake EventBridge</h1>
<p>${this.events.length} event(s) received; ${this.calls.length} call(s), ${rejected} rejected, ${faulted} with a fault. Refreshes every 2 s; newest first (last ${PAGE_EVENTS}).</p>
<table><thead><tr><th>#</th><th>received</th><th>region</th><th>source</th><th>detail-type</th><th>event id</th><th>detail</th></tr></thead>
<tbody>
${rows}
</tbody></table>
${this.sources.pageSection()}</body></html>
`;
  }
}

// ---- Wire parsing ------------------------------------------------------------------------------

function parseBody(bytes: Uint8Array): WireEntry[] {
  let text: string;
  try {
    text = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true }).decode(bytes);
  } catch {
    throw new AwsError(400, "SerializationException", "The request body is not valid UTF-8.");
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    throw new AwsError(400, "SerializationException", "The request body is not valid JSON.");
  }
  if (!isPlainObject(json)) {
    throw new AwsError(400, "SerializationException", "The request body must be a JSON object.");
  }
  for (const key of Object.keys(json)) {
    if (key !== "Entries") throw new AwsError(400, "SerializationException", `Unknown member '${key}' in the request.`);
  }
  const list = json["Entries"];
  if (list === undefined) {
    throw new AwsError(
      400,
      "ValidationException",
      "1 validation error detected: Value null at 'entries' failed to satisfy constraint: Member must not be null",
    );
  }
  if (!Array.isArray(list)) throw new AwsError(400, "SerializationException", "Entries must be a JSON array.");
  if (list.length < MIN_ENTRIES || list.length > MAX_ENTRIES) {
    throw new AwsError(
      400,
      "ValidationException",
      `1 validation error detected: Value at 'entries' failed to satisfy constraint: Member must have length ${list.length < MIN_ENTRIES ? `greater than or equal to ${MIN_ENTRIES}` : `less than or equal to ${MAX_ENTRIES}`} (got ${list.length})`,
    );
  }
  return list.map((raw: unknown, i) => parseEntry(raw, i));
}

function parseEntry(raw: unknown, i: number): WireEntry {
  const where = `Entries[${i}]`;
  const bad = (message: string) => new AwsError(400, "SerializationException", `${where}: ${message}`);
  if (!isPlainObject(raw)) throw bad("an entry must be a JSON object");
  const entry: WireEntry = {};
  for (const [key, value] of Object.entries(raw)) {
    if (!ENTRY_MEMBERS.has(key)) throw bad(`unknown member '${key}'`);
    if (value === null) throw bad(`${key} is null; omit absent members`);
    if (key === "Time") {
      if (typeof value !== "number" || !Number.isFinite(value)) {
        throw bad(
          `Time must be a JSON number of epoch seconds, not ${typeof value === "string" ? "a string" : typeof value}`,
        );
      }
      entry.Time = value;
    } else if (key === "Resources") {
      if (!Array.isArray(value) || !value.every((r) => typeof r === "string")) {
        throw bad("Resources must be a JSON array of strings");
      }
      entry.Resources = [...(value as string[])];
    } else {
      if (typeof value !== "string") throw bad(`${key} must be a JSON string`);
      entry[key as "Source" | "DetailType" | "Detail" | "TraceHeader"] = value;
    }
  }
  return entry;
}

/** AWS's size formula: Time 14 bytes when present; UTF-8 bytes of Source, DetailType, Detail, each Resource. */
export function batchSize(entries: readonly WireEntry[]): number {
  const utf8 = new TextEncoder();
  let size = 0;
  for (const e of entries) {
    if (e.Time !== undefined) size += TIME_SIZE_BYTES;
    for (const s of [e.Source, e.DetailType, e.Detail, ...(e.Resources ?? [])]) {
      if (s !== undefined) size += utf8.encode(s).byteLength;
    }
  }
  return size;
}

/** Per-entry checks EventBridge makes; lengths in UTF-16 units, as AWS's Java front end counts. */
function validateEntry(e: WireEntry): EntryOutcome | undefined {
  const missing = (["Source", "DetailType", "Detail"] as const).filter((k) => !e[k]);
  if (missing.length > 0) {
    return {
      errorCode: "InvalidArgument",
      errorMessage: `Parameter(s) ${missing.join(",")} could not be found for the event.`,
    };
  }
  const source = e.Source!;
  if (source.length > MAX_SOURCE_CHARS || !SOURCE_PATTERN.test(source)) {
    return {
      errorCode: "InvalidArgument",
      errorMessage: "Parameter Source is not valid. Reason: not a partner event source name.",
    };
  }
  if (e.DetailType!.length > MAX_DETAIL_TYPE_CHARS) {
    return {
      errorCode: "InvalidArgument",
      errorMessage: `Parameter DetailType is not valid. Reason: longer than ${MAX_DETAIL_TYPE_CHARS} characters.`,
    };
  }
  if ((e.Resources ?? []).some((r) => r.length > MAX_RESOURCE_CHARS)) {
    return {
      errorCode: "InvalidArgument",
      errorMessage: `Parameter Resources is not valid. Reason: a resource is longer than ${MAX_RESOURCE_CHARS} characters.`,
    };
  }
  if (e.TraceHeader !== undefined && e.TraceHeader.length > MAX_TRACE_HEADER_CHARS) {
    return {
      errorCode: "InvalidArgument",
      errorMessage: `Parameter TraceHeader is not valid. Reason: longer than ${MAX_TRACE_HEADER_CHARS} characters.`,
    };
  }
  let detail: unknown;
  try {
    detail = JSON.parse(e.Detail!);
  } catch {
    return { errorCode: "MalformedDetail", errorMessage: "Detail is malformed." };
  }
  if (!isPlainObject(detail)) return { errorCode: "MalformedDetail", errorMessage: "Detail is malformed." };
  return undefined;
}

// ---- Authorization parsing ---------------------------------------------------------------------

const TOKEN_CHARS = /^[a-z0-9!#$%&'*+.^_`|~-]+$/;

/** The parsed header, or why it is malformed. */
function tryParseAuthorization(header: string): ParsedAuthorization | string {
  const prefix = "AWS4-HMAC-SHA256 ";
  if (!header.startsWith(prefix)) return "Authorization header must use the AWS4-HMAC-SHA256 algorithm.";
  const params = new Map<string, string>();
  for (const part of header.slice(prefix.length).split(",")) {
    const eq = part.indexOf("=");
    const key = part.slice(0, eq).trim();
    if (eq < 0 || !key) return `Authorization header parameter '${part.trim()}' is not key=value.`;
    if (params.has(key)) return `Authorization header repeats '${key}'.`;
    params.set(key, part.slice(eq + 1).trim());
  }
  const missing = ["Credential", "SignedHeaders", "Signature"].filter((k) => !params.get(k));
  if (missing.length > 0) {
    return missing.map((k) => `Authorization header requires '${k}' parameter.`).join(" ");
  }
  const credential = params.get("Credential")!.split("/");
  const [accessKeyId, scopeDate, region, service, terminator] = credential;
  if (credential.length !== 5 || !accessKeyId || !region || !service) {
    return "Credential must be <access key id>/<yyyyMMdd>/<region>/<service>/aws4_request.";
  }
  if (!/^\d{8}$/.test(scopeDate ?? "")) return `Credential scope date '${scopeDate}' is not yyyyMMdd.`;
  if (terminator !== "aws4_request") {
    return `Credential should be scoped with a valid terminator: 'aws4_request', not '${terminator}'.`;
  }
  const signedHeaders = params.get("SignedHeaders")!.split(";");
  if (!signedHeaders.every((h) => TOKEN_CHARS.test(h))) {
    return "SignedHeaders must be lower-case header names separated by ';'.";
  }
  for (let i = 1; i < signedHeaders.length; i++) {
    if (signedHeaders[i - 1]! >= signedHeaders[i]!) return "SignedHeaders must be sorted and unique.";
  }
  const signature = params.get("Signature")!;
  if (!/^[0-9a-f]{64}$/.test(signature)) return "Signature must be 64 lower-case hex digits.";
  return { accessKeyId, scopeDate: scopeDate!, region, service, signedHeaders, signature };
}

function parseAmzDate(s: string): Date | undefined {
  const m = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/.exec(s);
  if (!m) return undefined;
  const [y, mo, d, h, mi, se] = m.slice(1).map(Number) as [number, number, number, number, number, number];
  const date = new Date(Date.UTC(y, mo - 1, d, h, mi, se));
  // Reject dates that roll over (20240231T...).
  return formatAmzDate(date.getTime()) === s ? date : undefined;
}

function formatAmzDate(ms: number): string {
  return new Date(ms).toISOString().replace(/[:-]|\.\d{3}/g, "");
}

// ---- Small helpers -----------------------------------------------------------------------------

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

/** Compares two strings without an early exit on the first difference. */
function timingSafeEqual(a: string, b: string): boolean {
  const utf8 = new TextEncoder();
  const x = utf8.encode(a);
  const y = utf8.encode(b);
  let diff = x.length ^ y.length;
  for (let i = 0; i < Math.max(x.length, y.length); i++) diff |= (x[i] ?? 0) ^ (y[i] ?? 0);
  return diff === 0;
}

async function sha256Hex(bytes: Uint8Array): Promise<string> {
  const hash = new Sha256();
  hash.update(bytes);
  const digest = await hash.digest();
  return Array.from(digest, (b) => b.toString(16).padStart(2, "0")).join("");
}

/** Deterministic PRNG (mulberry32): the same seed gives the same fault sequence. */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function defaultErrorMessage(code: string): string {
  return `Injected fault: ${code}.`;
}

function esc(s: string): string {
  return s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

function awsJson(status: number, body: unknown, requestId: string, headers: Record<string, string> = {}): Response {
  return new Response(JSON.stringify(body), {
    status,
    headers: { ...headers, "content-type": CONTENT_TYPE, "x-amzn-RequestId": requestId },
  });
}

function awsError(err: AwsError, requestId: string): Response {
  return awsJson(err.status, { __type: err.type, message: err.message }, requestId, {
    ...err.headers,
    "x-amzn-ErrorType": err.type,
  });
}

function controlJson(status: number, body: unknown): Response {
  return new Response(JSON.stringify(body), {
    status,
    headers: { "content-type": "application/json", "cache-control": "no-store" },
  });
}

function controlError(status: number, message: string): Response {
  return controlJson(status, { error: message });
}
