/**
 * The relay's admin API (/admin/v1, src/admin/routes.ts) as a typed client: Hono's `hc` over the
 * routes' own type, so a changed route or body shape is a type error here. Through it tenant
 * administration reaches each tenant's Durable Object: the strongly consistent authority on
 * revocation and disabling, the counters and the dead letters. Errors are problem+json
 * `{code, detail}`, turned into AdminErrors that never echo the token.
 */
import { type ClientResponse, hc } from "hono/client";
import type { AccessInput, GateStatus } from "../tenant-gate/protocol.ts";
import { AdminError, type AdminErrorKind } from "./errors.ts";
import type { AdminApi } from "./routes.ts";

/** How long one admin call may take before the relay counts as unreachable, in ms. */
export const RELAY_TIMEOUT_MS = 10_000;

export type AccessUpdate = Omit<AccessInput, "v" | "tenantId">;

export interface AccessState {
  revision: number;
  status: "active" | "disabled";
}

/** `GET …/status`: the gate's counters, with times as ISO strings. */
export type TenantStatus = Omit<GateStatus, "lastUpstreamError" | "nextDrainAt"> & {
  lastUpstreamError: { code: string; message: string; at: string } | null;
  nextDrainAt: string | null;
};

export interface DeadLetterPage {
  items: {
    relayEventId: string;
    entry: Record<string, unknown>;
    errorCode: string;
    errorMessage: string;
    attempts: number;
    acceptedAt: string;
    failedAt: string;
  }[];
  next: string | null;
}

export interface ReplayResult {
  replayed: number;
  notFound: string[];
}

/** The relay did not answer at all (connection refused, DNS, timeout). */
export class RelayUnreachableError extends AdminError {
  override name = "RelayUnreachableError";
  readonly url: string;
  readonly reason: string;
  constructor(url: string, reason: string) {
    super(`the relay at ${url} is unreachable (${reason})`, "failure");
    this.url = url;
    this.reason = reason;
  }
}

/** The relay answered with an error status. */
export class RelayHttpError extends AdminError {
  override name = "RelayHttpError";
  readonly status: number;
  readonly code: string;
  readonly detail: string;
  constructor(status: number, code: string, detail: string, what: string) {
    super(`the relay refused ${what}: HTTP ${status} ${code}${detail ? `: ${detail}` : ""}`, kindFor(status));
    this.status = status;
    this.code = code;
    this.detail = detail;
  }
}

function kindFor(status: number): AdminErrorKind {
  if (status === 404) return "not_found";
  if (status === 409) return "conflict";
  return "failure";
}

export interface AdminClientOptions {
  baseUrl: string;
  token: string | undefined;
  trace?: (line: string) => void;
  timeoutMs?: number;
  /** The fetch to use (default: the global one). */
  fetch?: typeof fetch;
}

export class AdminClient {
  readonly baseUrl: string;
  readonly #token: string | undefined;
  readonly #trace: ((line: string) => void) | undefined;
  readonly #timeoutMs: number;
  readonly #fetchImpl: typeof fetch;
  readonly #api;

  constructor(opts: AdminClientOptions) {
    this.baseUrl = opts.baseUrl.replace(/\/+$/, "");
    this.#token = opts.token;
    this.#trace = opts.trace;
    this.#timeoutMs = opts.timeoutMs ?? RELAY_TIMEOUT_MS;
    this.#fetchImpl = opts.fetch ?? ((input, init) => fetch(input, init));
    this.#api = hc<AdminApi>(this.baseUrl, {
      fetch: (input: RequestInfo | URL, init?: RequestInit) => this.#fetch(input, init),
      headers: (): Record<string, string> => ({
        accept: "application/json",
        ...(this.#token ? { authorization: `Bearer ${this.#token}` } : {}),
      }),
    });
  }

  get hasToken(): boolean {
    return Boolean(this.#token);
  }

  /** True when /healthz answers at all (any status). */
  async reachable(): Promise<boolean> {
    try {
      const res = await this.#fetch(`${this.baseUrl}/healthz`, { method: "GET" });
      await res.body?.cancel();
      return true;
    } catch (e) {
      if (e instanceof RelayUnreachableError) return false;
      throw e;
    }
  }

  async putAccess(tenantId: string, body: AccessUpdate): Promise<AccessState> {
    const res = await this.#api.admin.v1.tenants[":id"].access.$put({ param: { id: tenantId }, json: body });
    return this.#json<AccessState>(res, "the access update");
  }

  /** Sets the tenant's shard count (before the record with it is written: docs/scaling.md). */
  async putShards(
    tenantId: string,
    body: { shards: number; region?: string },
  ): Promise<{ shards: number; senders: number; known: number }> {
    const res = await this.#api.admin.v1.tenants[":id"].shards.$put({ param: { id: tenantId }, json: body });
    return this.#json<{ shards: number; senders: number; known: number }>(res, "the shard change");
  }

  async status(tenantId: string): Promise<TenantStatus> {
    const res = await this.#api.admin.v1.tenants[":id"].status.$get({ param: { id: tenantId } });
    return this.#json<TenantStatus>(res, "the status request");
  }

  async deadLetters(tenantId: string, limit: number, after?: string): Promise<DeadLetterPage> {
    const res = await this.#api.admin.v1.tenants[":id"]["dead-letters"].$get({
      param: { id: tenantId },
      // Optional in the route (its validator); hc types every query member as required.
      query: { limit: String(limit), ...(after ? { after } : {}) } as { limit: string; after: string },
    });
    return this.#json<DeadLetterPage>(res, "the dead-letter listing");
  }

  async replay(tenantId: string, body: { all: true } | { relayEventIds: string[] }): Promise<ReplayResult> {
    const res = await this.#api.admin.v1.tenants[":id"]["dead-letters"].replay.$post({
      param: { id: tenantId },
      json: body,
    });
    return this.#json<ReplayResult>(res, "the replay");
  }

  async purge(tenantId: string, force: boolean): Promise<{ purged: boolean; queued: number }> {
    const res = await this.#api.admin.v1.tenants[":id"].$delete({
      param: { id: tenantId },
      query: (force ? { force: "true" } : {}) as { force: string },
    });
    return this.#json<{ purged: boolean; queued: number }>(res, "the purge");
  }

  /**
   * A call to an admin route outside the typed client (partner event sources,
   * src/admin/sources.ts): same headers, timeout, redirect rule and error mapping as the others.
   */
  async call<T>(method: string, path: string, body: unknown, what: string): Promise<T> {
    const res = await this.#fetch(`${this.baseUrl}${path}`, {
      method,
      headers: {
        accept: "application/json",
        ...(body !== undefined ? { "content-type": "application/json" } : {}),
        ...(this.#token ? { authorization: `Bearer ${this.#token}` } : {}),
      },
      ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
    });
    return this.#json<T>(res as unknown as ClientResponse<unknown>, what);
  }

  async #json<T>(res: ClientResponse<unknown>, what: string): Promise<T> {
    const text = await res.text();
    const parsed = parseJson(text);
    if (!res.ok) {
      const p = (parsed ?? {}) as { code?: unknown; detail?: unknown };
      const code = typeof p.code === "string" ? p.code : res.statusText || "error";
      let detail = typeof p.detail === "string" ? p.detail.slice(0, 500) : "";
      if (res.status === 401 && !this.#token) {
        detail =
          (detail ? detail + " " : "") + "(no admin token: set RELAY_ADMIN_TOKEN, or ADMIN_TOKEN in .dev.vars locally)";
      } else if (res.status === 401 || res.status === 403) {
        detail = (detail ? detail + " " : "") + "(check RELAY_ADMIN_TOKEN against the Worker's ADMIN_TOKEN secret)";
      } else if (res.status === 404 && parsed === undefined) {
        // Every admin API answer is JSON: a bare 404 is some other server, or an old relay.
        detail = "no admin API at this URL (is the relay up to date, and RELAY_URL right?)";
      }
      throw new RelayHttpError(res.status, code, detail, what);
    }
    if (text !== "" && parsed === undefined) {
      throw new AdminError(`the relay answered ${what} with something other than JSON`);
    }
    return parsed as T;
  }

  async #fetch(input: RequestInfo | URL, init: RequestInit = {}): Promise<Response> {
    const url = new URL(input instanceof Request ? input.url : String(input));
    const path = url.pathname;
    const method = init.method ?? "GET";
    const started = Date.now();
    try {
      const res = await this.#fetchImpl(url.toString(), {
        ...init,
        signal: AbortSignal.timeout(this.#timeoutMs),
        // Never follow a redirect with the token on it; a 3xx is refused below like any non-2xx.
        // ("manual", not "error": the Workers runtime supports only follow and manual.)
        redirect: "manual",
      });
      this.#trace?.(`relay ${method} ${path} → ${res.status} (${Date.now() - started} ms)`);
      return res;
    } catch (e) {
      const err = e as { name?: string; cause?: { code?: string; message?: string }; message?: string };
      const reason =
        err.name === "TimeoutError"
          ? `no answer within ${this.#timeoutMs / 1000} s`
          : (err.cause?.code ?? err.cause?.message ?? err.message ?? "fetch failed");
      this.#trace?.(`relay ${method} ${path} → unreachable (${reason})`);
      throw new RelayUnreachableError(this.baseUrl, reason);
    }
  }
}

/** The JSON value of a body, or undefined when it is empty or not JSON. */
function parseJson(text: string): unknown {
  if (!text) return undefined;
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return undefined;
  }
}
