/**
 * Partner event sources as AWS models them, for the emulator (eventbridge.ts routes to it).
 *
 * The partner's calls: CreatePartnerEventSource {Name, Account} makes a PENDING source for the
 * customer's account; DescribePartnerEventSource, ListPartnerEventSources,
 * ListPartnerEventSourceAccounts (the only call that tells the state) and
 * DeletePartnerEventSource answer in AWS's shapes and errors. The customer's calls, signed with a
 * credential of the customer's account: CreateEventBus {Name, EventSourceName} makes it ACTIVE,
 * DeleteEventBus and DeactivateEventSource put it back to PENDING (with a fresh ExpirationTime),
 * ActivateEventSource makes it ACTIVE again. A PENDING source past its ExpirationTime is DELETED.
 *
 * PutPartnerEvents asks `dropReason(source)` per entry: a source that is known and has no ACTIVE
 * account answers an EventId and drops the event (AWS's partner FAQ), recorded in `dropped`.
 * A source the emulator has never seen is delivered as before (mode `unknownSources: "deliver"`,
 * the default, so `npm start`'s demo and tests that never create a source keep working; its
 * ListPartnerEventSourceAccounts then reads ACTIVE for the caller's account, so a relay that
 * verifies sources agrees) or dropped (`"drop"`: ResourceNotFound, as AWS would).
 *
 * Facts and what is UNVERIFIED: /work/shared/reference/partner-sources.md. Runtime-neutral like
 * eventbridge.ts: erasable TypeScript, no `node:` modules.
 */
import { z } from "zod";

// ---- AWS facts (own copy: the emulator imports nothing from src/) ------------------------------

const CONTENT_TYPE = "application/x-amz-json-1.1";
/** Source names: 1-256 characters, AWS's pattern. */
const NAME_PATTERN = /^aws\.partner(\/[.\-_A-Za-z0-9]+){2,}$/;
const MAX_NAME_CHARS = 256;
/** Event bus names a customer may create (AWS: 1-256, `[/\.\-_A-Za-z0-9]+`). */
const BUS_PATTERN = /^[/.\-_A-Za-z0-9]{1,256}$/;
const ACCOUNT_PATTERN = /^\d{12}$/;
/** List calls: Limit 1-100 (AWS service model); the emulator's default page size. */
const MAX_LIMIT = 100;
const DEFAULT_LIMIT = 100;
/**
 * How long a PENDING source lives before AWS deletes it: two weeks after a deactivation (AWS's
 * docs); "an extended period" for a never-associated one (UNVERIFIED: the same value here).
 */
export const DEFAULT_SOURCE_EXPIRY_MS = 14 * 24 * 3600_000;
/** Dropped events listed on the page. */
const PAGE_DROPPED = 50;

/** The operations this module serves, by X-Amz-Target. */
const OPERATIONS = new Set([
  "CreatePartnerEventSource",
  "DeletePartnerEventSource",
  "DescribePartnerEventSource",
  "ListPartnerEventSources",
  "ListPartnerEventSourceAccounts",
  "CreateEventBus",
  "DeleteEventBus",
  "ActivateEventSource",
  "DeactivateEventSource",
]);

// ---- Public types ------------------------------------------------------------------------------

export type SourceState = "PENDING" | "ACTIVE" | "DELETED";

export interface SourceAccount {
  account: string;
  state: SourceState;
  /** Epoch ms. */
  creationTime: number;
  /** Epoch ms while PENDING; null while ACTIVE or DELETED (UNVERIFIED: AWS's value once ACTIVE). */
  expirationTime: number | null;
  /** The customer's bus matched to the source, if any. */
  bus: string | null;
}

export interface PartnerSource {
  name: string;
  arn: string;
  region: string;
  /** The partner account that created it (from the caller's credential). */
  partnerAccount: string;
  accounts: SourceAccount[];
}

export interface DroppedEvent {
  eventId: string;
  source: string;
  detailType: string | undefined;
  reason: string;
  requestId: string;
  droppedAt: number;
}

/** One control-plane call (the partner's and the customer's), kept apart from PutPartnerEvents' calls. */
export interface ControlCall {
  requestId: string;
  at: number;
  operation: string;
  account: string;
  /** The access key id that signed the call (an STS session's ASIA… id for a role tenant). */
  accessKeyId: string;
  status: number;
  errorType?: string;
}

/** A fault for the next control-plane call (optionally only for one operation). */
export type ControlFault =
  | { type: "throttle"; operation?: string }
  | { type: "error"; status: number; code: string; message?: string; operation?: string };

export type UnknownSourceMode = "deliver" | "drop";

export interface PartnerSourcesOptions {
  now: () => number;
  expiryMs?: number;
  unknownSources?: UnknownSourceMode;
}

/** Who is calling, as eventbridge.ts authenticated it. */
export interface CallerContext {
  account: string;
  accessKeyId: string;
  region: string;
  requestId: string;
}

const controlFaultSchema = z.discriminatedUnion("type", [
  z.strictObject({ type: z.literal("throttle"), operation: z.string().min(1).optional() }),
  z.strictObject({
    type: z.literal("error"),
    status: z.number().int().min(400).max(599),
    code: z.string().min(1),
    message: z.string().optional(),
    operation: z.string().min(1).optional(),
  }),
]);
const modeSchema = z.strictObject({ unknownSources: z.enum(["deliver", "drop"]) });
const expireSchema = z.strictObject({ Name: z.string().min(1), Account: z.string().regex(ACCOUNT_PATTERN).optional() });

class SourceError extends Error {
  readonly status: number;
  readonly type: string;
  constructor(status: number, type: string, message: string) {
    super(message);
    this.status = status;
    this.type = type;
  }
}

const validation = (message: string) => new SourceError(400, "ValidationException", message);
const notFound = (message: string) => new SourceError(400, "ResourceNotFoundException", message);

export class PartnerSources {
  readonly dropped: DroppedEvent[] = [];
  readonly calls: ControlCall[] = [];
  readonly #sources = new Map<string, PartnerSource>();
  /** Buses by account: name → the source it is matched to (null: a custom bus). */
  readonly #buses = new Map<string, Map<string, string | null>>();
  #faults: ControlFault[] = [];
  readonly #now: () => number;
  readonly #expiryMs: number;
  #unknown: UnknownSourceMode;

  constructor(opts: PartnerSourcesOptions) {
    this.#now = opts.now;
    this.#expiryMs = opts.expiryMs ?? DEFAULT_SOURCE_EXPIRY_MS;
    this.#unknown = opts.unknownSources ?? "deliver";
  }

  /** True for the X-Amz-Target operations served here (`AWSEvents.<Op>`). */
  static handles(target: string | null): boolean {
    return !!target?.startsWith("AWSEvents.") && OPERATIONS.has(target.slice("AWSEvents.".length));
  }

  get unknownSources(): UnknownSourceMode {
    return this.#unknown;
  }
  set unknownSources(mode: UnknownSourceMode) {
    this.#unknown = mode;
  }

  /** Queues faults for the next control-plane calls (FIFO; one with `operation` waits for that operation). */
  inject(...faults: ControlFault[]): void {
    for (const f of faults) this.#faults.push(controlFaultSchema.parse(f) as ControlFault);
  }

  /** Forgets sources, buses, dropped events, calls and faults; keeps the mode. */
  reset(): void {
    this.#sources.clear();
    this.#buses.clear();
    this.dropped.length = 0;
    this.calls.length = 0;
    this.#faults = [];
  }

  /** Every source with its accounts, states refreshed (expired PENDING ones are DELETED). */
  list(): PartnerSource[] {
    const now = this.#now();
    return [...this.#sources.values()].map((s) => {
      for (const a of s.accounts) this.#expire(a, now);
      return structuredClone(s);
    });
  }

  /** Ends a source's PENDING period now, as AWS does when ExpirationTime passes (a test hook). */
  expire(name: string, account?: string): number {
    const s = this.#sources.get(name);
    let n = 0;
    for (const a of s?.accounts ?? []) {
      if ((account === undefined || a.account === account) && a.state === "PENDING") {
        a.expirationTime = this.#now();
        n++;
      }
    }
    return n;
  }

  /**
   * Why PutPartnerEvents drops an entry for `source` (null: deliver). Known source: delivered
   * only while some account is ACTIVE. Unknown source: by the mode.
   */
  dropReason(source: string | undefined): string | null {
    if (source === undefined) return null;
    const s = this.#sources.get(source);
    if (!s) return this.#unknown === "drop" ? "the event source does not exist" : null;
    const now = this.#now();
    for (const a of s.accounts) this.#expire(a, now);
    if (s.accounts.some((a) => a.state === "ACTIVE")) return null;
    if (s.accounts.some((a) => a.state === "PENDING")) return "the event source is PENDING (no matching event bus)";
    return "the event source is DELETED";
  }

  recordDrop(e: Omit<DroppedEvent, "droppedAt">): void {
    this.dropped.push({ ...e, droppedAt: this.#now() });
  }

  /** Serves one control-plane call; the caller has authenticated it and checked the target. */
  handle(target: string, contentType: string, body: Uint8Array, caller: CallerContext): Response {
    const operation = target.slice("AWSEvents.".length);
    const call: ControlCall = {
      requestId: caller.requestId,
      at: this.#now(),
      operation,
      account: caller.account,
      accessKeyId: caller.accessKeyId,
      status: 200,
    };
    this.calls.push(call);
    try {
      if (contentType.split(";")[0]!.trim().toLowerCase() !== CONTENT_TYPE) {
        throw new SourceError(400, "SerializationException", `Content-Type must be ${CONTENT_TYPE}.`);
      }
      const input = parseInput(body);
      const faultAt = this.#faults.findIndex((f) => f.operation === undefined || f.operation === operation);
      if (faultAt >= 0) {
        const [f] = this.#faults.splice(faultAt, 1);
        if (f!.type === "throttle") throw new SourceError(400, "ThrottlingException", "Rate exceeded");
        throw new SourceError(f!.status, f!.code, f!.message ?? `Injected fault: ${f!.code}.`);
      }
      const out = this.#dispatch(operation, input, caller);
      return json(200, out, caller.requestId);
    } catch (err) {
      if (!(err instanceof SourceError)) throw err;
      call.status = err.status;
      call.errorType = err.type;
      return json(err.status, { __type: err.type, message: err.message }, caller.requestId, {
        "x-amzn-ErrorType": err.type,
      });
    }
  }

  #dispatch(operation: string, input: Record<string, unknown>, caller: CallerContext): unknown {
    const now = this.#now();
    switch (operation) {
      case "CreatePartnerEventSource": {
        const name = sourceName(input, "Name", "name");
        const account = accountId(input);
        let s = this.#sources.get(name);
        if (s && s.partnerAccount !== caller.account) {
          // Names are unique across all partners and customers.
          throw new SourceError(400, "ResourceAlreadyExistsException", `Event source ${name} already exists.`);
        }
        if (!s) {
          s = {
            name,
            arn: `arn:aws:events:${caller.region}::event-source/${name}`,
            region: caller.region,
            partnerAccount: caller.account,
            accounts: [],
          };
          this.#sources.set(name, s);
        }
        const existing = s.accounts.find((a) => a.account === account);
        if (existing) this.#expire(existing, now);
        if (existing && existing.state !== "DELETED") {
          throw new SourceError(400, "ResourceAlreadyExistsException", `Event source ${name} already exists.`);
        }
        const fresh: SourceAccount = {
          account,
          state: "PENDING",
          creationTime: now,
          expirationTime: now + this.#expiryMs,
          bus: null,
        };
        if (existing) Object.assign(existing, fresh);
        else s.accounts.push(fresh);
        return { EventSourceArn: s.arn };
      }
      case "DeletePartnerEventSource": {
        const name = sourceName(input, "Name", "name");
        const account = accountId(input);
        const s = this.#partnerSource(name, caller);
        const a = s.accounts.find((x) => x.account === account);
        if (!a) throw notFound(`Event source ${name} does not exist for account ${account}.`);
        a.state = "DELETED";
        a.expirationTime = null;
        return {};
      }
      case "DescribePartnerEventSource": {
        const s = this.#partnerSource(sourceName(input, "Name", "name"), caller);
        return { Arn: s.arn, Name: s.name };
      }
      case "ListPartnerEventSources": {
        const prefix = input["NamePrefix"];
        if (prefix === undefined) {
          throw validation(
            "1 validation error detected: Value null at 'namePrefix' failed to satisfy constraint: Member must not be null",
          );
        }
        if (typeof prefix !== "string" || prefix.length < 1 || prefix.length > MAX_NAME_CHARS) {
          throw validation("NamePrefix must be a string of 1-256 characters.");
        }
        const names = [...this.#sources.values()]
          .filter((s) => s.partnerAccount === caller.account && s.name.startsWith(prefix))
          .filter((s) => s.accounts.some((a) => (this.#expire(a, now), a.state !== "DELETED")))
          .map((s) => s.name)
          .sort();
        const page = paginate(names, input);
        return {
          PartnerEventSources: page.items.map((n) => ({ Arn: this.#sources.get(n)!.arn, Name: n })),
          ...(page.next ? { NextToken: page.next } : {}),
        };
      }
      case "ListPartnerEventSourceAccounts": {
        const name = sourceName(input, "EventSourceName", "eventSourceName");
        if (!this.#sources.has(name) && this.#unknown === "deliver") {
          // Mode deliver: a source never created here is delivered, so say it is ACTIVE (for
          // the caller's own account) rather than contradict PutPartnerEvents.
          paginate([], input);
          return {
            PartnerEventSourceAccounts: [{ Account: caller.account, CreationTime: now / 1000, State: "ACTIVE" }],
          };
        }
        const s = this.#partnerSource(name, caller);
        for (const a of s.accounts) this.#expire(a, now);
        const page = paginate(
          s.accounts.map((a) => a.account),
          input,
        );
        return {
          PartnerEventSourceAccounts: page.items.map((acct) => {
            const a = s.accounts.find((x) => x.account === acct)!;
            return {
              Account: a.account,
              CreationTime: a.creationTime / 1000,
              ...(a.expirationTime !== null ? { ExpirationTime: a.expirationTime / 1000 } : {}),
              State: a.state,
            };
          }),
          ...(page.next ? { NextToken: page.next } : {}),
        };
      }
      case "CreateEventBus": {
        const name = input["Name"];
        if (typeof name !== "string" || !BUS_PATTERN.test(name)) {
          throw validation("Name must be 1-256 characters of [/.-_A-Za-z0-9].");
        }
        const buses = this.#busesOf(caller.account);
        if (buses.has(name))
          throw new SourceError(400, "ResourceAlreadyExistsException", `Event bus ${name} already exists.`);
        const sourceNameIn = input["EventSourceName"];
        if (sourceNameIn === undefined) {
          if (name.startsWith("aws."))
            throw validation("Event bus names starting with aws. are reserved for event sources.");
          buses.set(name, null);
          return { EventBusArn: busArn(caller, name) };
        }
        if (typeof sourceNameIn !== "string") throw validation("EventSourceName must be a string.");
        if (sourceNameIn !== name) throw validation("Event bus name must match the event source name.");
        const a = this.#customerSource(name, caller);
        if (a.state === "DELETED") throw notFound(`Event source ${name} does not exist.`);
        a.state = "ACTIVE";
        a.expirationTime = null;
        a.bus = name;
        buses.set(name, name);
        return { EventBusArn: busArn(caller, name) };
      }
      case "DeleteEventBus": {
        const name = input["Name"];
        if (typeof name !== "string" || !BUS_PATTERN.test(name)) {
          throw validation("Name must be 1-256 characters of [/.-_A-Za-z0-9].");
        }
        if (name === "default") throw validation("Cannot delete event bus default.");
        const buses = this.#busesOf(caller.account);
        const matched = buses.get(name);
        buses.delete(name);
        if (matched) this.#toPending(this.#sources.get(matched)?.accounts.find((a) => a.account === caller.account));
        // AWS answers success for a bus that does not exist.
        return {};
      }
      case "ActivateEventSource":
      case "DeactivateEventSource": {
        const name = sourceName(input, "Name", "name");
        const a = this.#customerSource(name, caller);
        if (a.state === "DELETED") throw notFound(`Event source ${name} does not exist.`);
        if (operation === "ActivateEventSource") {
          a.state = "ACTIVE";
          a.expirationTime = null;
        } else if (a.state === "ACTIVE") {
          this.#toPending(a);
        }
        return {};
      }
      default:
        throw new SourceError(400, "UnknownOperationException", `Unknown operation ${operation}.`);
    }
  }

  /** A source the calling partner created, or ResourceNotFound (another partner's is not visible). */
  #partnerSource(name: string, caller: CallerContext): PartnerSource {
    const s = this.#sources.get(name);
    if (!s || s.partnerAccount !== caller.account) throw notFound(`Event source ${name} does not exist.`);
    return s;
  }

  /** The calling customer's account on a source, or ResourceNotFound. */
  #customerSource(name: string, caller: CallerContext): SourceAccount {
    const a = this.#sources.get(name)?.accounts.find((x) => x.account === caller.account);
    if (!a) throw notFound(`Event source ${name} does not exist.`);
    this.#expire(a, this.#now());
    return a;
  }

  #busesOf(account: string): Map<string, string | null> {
    let m = this.#buses.get(account);
    if (!m) this.#buses.set(account, (m = new Map()));
    return m;
  }

  #toPending(a: SourceAccount | undefined): void {
    if (a?.state !== "ACTIVE") return;
    a.state = "PENDING";
    a.expirationTime = this.#now() + this.#expiryMs;
  }

  /** A PENDING account past its ExpirationTime is DELETED (AWS deletes it). */
  #expire(a: SourceAccount, now: number): void {
    if (a.state === "PENDING" && a.expirationTime !== null && a.expirationTime <= now) {
      a.state = "DELETED";
      a.expirationTime = null;
    }
  }

  // ---- Control routes and page -------------------------------------------------------------------

  /** `/_fake/sources*` and `/_fake/dropped`; null when the route is not one of these. */
  async control(route: string, request: Request): Promise<Response | null> {
    try {
      switch (route) {
        case "GET /_fake/sources":
          return controlJson(200, { unknownSources: this.#unknown, sources: this.list() });
        case "GET /_fake/dropped":
          return controlJson(200, { dropped: this.dropped, total: this.dropped.length });
        case "GET /_fake/sources/calls":
          return controlJson(200, { calls: this.calls });
        case "POST /_fake/sources/faults": {
          const body: unknown = await request.json();
          const faults = z.union([controlFaultSchema, z.array(controlFaultSchema)]).parse(body);
          this.inject(...((Array.isArray(faults) ? faults : [faults]) as ControlFault[]));
          return new Response(null, { status: 204 });
        }
        case "PUT /_fake/sources/mode":
          this.#unknown = modeSchema.parse(await request.json()).unknownSources;
          return new Response(null, { status: 204 });
        case "POST /_fake/sources/expire": {
          const body = expireSchema.parse(await request.json());
          return controlJson(200, { expired: this.expire(body.Name, body.Account) });
        }
        default:
          return null;
      }
    } catch (err) {
      if (err instanceof z.ZodError) return controlJson(400, { error: z.prettifyError(err) });
      if (err instanceof SyntaxError) return controlJson(400, { error: "the body is not valid JSON" });
      throw err;
    }
  }

  /** The page's sources and dropped-events sections (HTML, escaped). */
  pageSection(): string {
    const sources = this.list();
    const rows = sources
      .flatMap((s) =>
        s.accounts.map(
          (a) =>
            `<tr><td>${esc(s.name)}</td><td>${esc(a.account)}</td><td>${esc(a.state)}</td><td>${esc(a.bus ?? "")}</td><td>${a.expirationTime === null ? "" : esc(new Date(a.expirationTime).toISOString())}</td></tr>`,
        ),
      )
      .join("\n");
    const drops = this.dropped
      .slice(-PAGE_DROPPED)
      .reverse()
      .map(
        (d) =>
          `<tr><td>${esc(new Date(d.droppedAt).toISOString())}</td><td>${esc(d.source)}</td><td>${esc(d.detailType ?? "")}</td><td><code>${esc(d.eventId)}</code></td><td>${esc(d.reason)}</td></tr>`,
      )
      .join("\n");
    return `<h2>Partner event sources</h2>
<p>${sources.length} source(s); events for a source the emulator does not know are ${this.#unknown === "deliver" ? "delivered" : "dropped"}.</p>
<table><thead><tr><th>source</th><th>account</th><th>state</th><th>bus</th><th>expires</th></tr></thead>
<tbody>
${rows}
</tbody></table>
<h2>Dropped events</h2>
<p>${this.dropped.length} event(s) answered with an EventId and dropped (source not ACTIVE); newest first (last ${PAGE_DROPPED}).</p>
<table><thead><tr><th>dropped</th><th>source</th><th>detail-type</th><th>event id</th><th>why</th></tr></thead>
<tbody>
${drops}
</tbody></table>
`;
  }
}

// ---- Helpers -----------------------------------------------------------------------------------

function parseInput(body: Uint8Array): Record<string, unknown> {
  let json: unknown;
  try {
    json = JSON.parse(new TextDecoder("utf-8", { fatal: true, ignoreBOM: true }).decode(body));
  } catch {
    throw new SourceError(400, "SerializationException", "The request body is not valid JSON.");
  }
  if (typeof json !== "object" || json === null || Array.isArray(json)) {
    throw new SourceError(400, "SerializationException", "The request body must be a JSON object.");
  }
  return json as Record<string, unknown>;
}

function sourceName(input: Record<string, unknown>, member: string, wire: string): string {
  const v = input[member];
  if (v === undefined) {
    throw validation(
      `1 validation error detected: Value null at '${wire}' failed to satisfy constraint: Member must not be null`,
    );
  }
  if (typeof v !== "string") throw new SourceError(400, "SerializationException", `${member} must be a string.`);
  if (v.length > MAX_NAME_CHARS || !NAME_PATTERN.test(v)) {
    throw validation(
      `1 validation error detected: Value '${v}' at '${wire}' failed to satisfy constraint: Member must satisfy regular expression pattern: aws\\.partner(/[\\.\\-_A-Za-z0-9]+){2,}`,
    );
  }
  return v;
}

function accountId(input: Record<string, unknown>): string {
  const v = input["Account"];
  if (v === undefined) {
    throw validation(
      "1 validation error detected: Value null at 'account' failed to satisfy constraint: Member must not be null",
    );
  }
  if (typeof v !== "string" || !ACCOUNT_PATTERN.test(v)) {
    throw validation(
      `1 validation error detected: Value '${String(v)}' at 'account' failed to satisfy constraint: Member must satisfy regular expression pattern: \\d{12}`,
    );
  }
  return v;
}

/** Limit 1-100 and an opaque NextToken (the emulator's: the offset, base64). */
function paginate<T>(items: T[], input: Record<string, unknown>): { items: T[]; next: string | null } {
  const limit = input["Limit"] ?? DEFAULT_LIMIT;
  if (typeof limit !== "number" || !Number.isInteger(limit) || limit < 1 || limit > MAX_LIMIT) {
    throw validation(`Limit must be an integer from 1 to ${MAX_LIMIT}.`);
  }
  let offset = 0;
  const token = input["NextToken"];
  if (token !== undefined) {
    let decoded = "";
    try {
      decoded = typeof token === "string" ? atob(token) : "";
    } catch {
      // not base64: refused below
    }
    const n = decoded.startsWith("off:") ? Number(decoded.slice(4)) : Number.NaN;
    if (!Number.isInteger(n) || n < 0) throw validation("The NextToken is not valid.");
    offset = n;
  }
  const page = items.slice(offset, offset + limit);
  const nextOffset = offset + page.length;
  return { items: page, next: nextOffset < items.length ? btoa(`off:${nextOffset}`) : null };
}

function busArn(caller: CallerContext, name: string): string {
  return `arn:aws:events:${caller.region}:${caller.account}:event-bus/${name}`;
}

function json(status: number, body: unknown, requestId: string, headers: Record<string, string> = {}): Response {
  return new Response(JSON.stringify(body), {
    status,
    headers: { ...headers, "content-type": CONTENT_TYPE, "x-amzn-RequestId": requestId },
  });
}

function controlJson(status: number, body: unknown): Response {
  return new Response(JSON.stringify(body), {
    status,
    headers: { "content-type": "application/json", "cache-control": "no-store" },
  });
}

function esc(s: string): string {
  return s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}
