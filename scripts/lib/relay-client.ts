/**
 * Client for the relay's admin API (/admin/v1), through which the CLI reaches each tenant's
 * Durable Object: the strongly consistent authority on revocation and disabling, the counters and
 * the dead letters. JSON in and out; errors are problem+json `{code, detail}`.
 */
import { CliError, EXIT } from "./errors.ts";

/** How long one admin call may take before the relay counts as unreachable, in ms. */
export const RELAY_TIMEOUT_MS = 10_000;

export interface AccessUpdate {
  revision: number;
  status: "active" | "disabled";
  revokeApiKeyIds: string[];
  revokeAccessKeyIds: string[];
}

export interface AccessState {
  revision: number;
  status: "active" | "disabled";
}

export interface TenantStatus {
  accepted?: number;
  delivered?: number;
  failed?: number;
  queued?: number;
  queuedBytes?: number;
  oldestQueuedAgeMs?: number | null;
  deadLetters?: number;
  duplicatesPossible?: number;
  lastUpstreamError?: unknown;
  [k: string]: unknown;
}

export interface DeadLetter {
  relayEventId: string;
  entry: Record<string, unknown>;
  errorCode: string;
  errorMessage: string;
  attempts: number;
  acceptedAt: string | number;
  failedAt: string | number;
}

export interface DeadLetterPage {
  items: DeadLetter[];
  next: string | null;
}

export interface ReplayResult {
  replayed: number;
  notFound: string[];
}

/** The relay did not answer at all (connection refused, DNS, timeout). */
export class RelayUnreachableError extends CliError {
  override name = "RelayUnreachableError";
  readonly url: string;
  constructor(url: string, reason: string) {
    super(`the relay at ${url} is unreachable (${reason})`, EXIT.failure);
    this.url = url;
  }
}

/** The relay answered with an error status. */
export class RelayHttpError extends CliError {
  override name = "RelayHttpError";
  readonly status: number;
  readonly code: string;
  readonly detail: string;
  constructor(status: number, code: string, detail: string, what: string) {
    super(`the relay refused ${what}: HTTP ${status} ${code}${detail ? `: ${detail}` : ""}`, exitFor(status));
    this.status = status;
    this.code = code;
    this.detail = detail;
  }
}

function exitFor(status: number) {
  if (status === 404) return EXIT.notFound;
  if (status === 409) return EXIT.conflict;
  return EXIT.failure;
}

export interface RelayClientOptions {
  baseUrl: string;
  token: string | undefined;
  trace?: (line: string) => void;
  timeoutMs?: number;
}

export class RelayClient {
  readonly baseUrl: string;
  readonly #token: string | undefined;
  readonly #trace: ((line: string) => void) | undefined;
  readonly #timeoutMs: number;

  constructor(opts: RelayClientOptions) {
    this.baseUrl = opts.baseUrl.replace(/\/+$/, "");
    this.#token = opts.token;
    this.#trace = opts.trace;
    this.#timeoutMs = opts.timeoutMs ?? RELAY_TIMEOUT_MS;
  }

  get hasToken(): boolean {
    return Boolean(this.#token);
  }

  /** True when /healthz answers at all (any status). */
  async reachable(): Promise<boolean> {
    try {
      await this.#fetch("GET", "/healthz", undefined, false);
      return true;
    } catch (e) {
      if (e instanceof RelayUnreachableError) return false;
      throw e;
    }
  }

  putAccess(tenantId: string, body: AccessUpdate): Promise<AccessState> {
    return this.#json("PUT", `/admin/v1/tenants/${enc(tenantId)}/access`, body, "the access update");
  }

  status(tenantId: string): Promise<TenantStatus> {
    return this.#json("GET", `/admin/v1/tenants/${enc(tenantId)}/status`, undefined, "the status request");
  }

  deadLetters(tenantId: string, limit: number, after?: string): Promise<DeadLetterPage> {
    const q = new URLSearchParams({ limit: String(limit) });
    if (after) q.set("after", after);
    return this.#json(
      "GET",
      `/admin/v1/tenants/${enc(tenantId)}/dead-letters?${q}`,
      undefined,
      "the dead-letter listing",
    );
  }

  replay(tenantId: string, body: { all: true } | { relayEventIds: string[] }): Promise<ReplayResult> {
    return this.#json("POST", `/admin/v1/tenants/${enc(tenantId)}/dead-letters/replay`, body, "the replay");
  }

  purge(tenantId: string, force: boolean): Promise<unknown> {
    return this.#json(
      "DELETE",
      `/admin/v1/tenants/${enc(tenantId)}${force ? "?force=true" : ""}`,
      undefined,
      "the purge",
    );
  }

  async #json<T>(method: string, path: string, body: unknown, what: string): Promise<T> {
    const res = await this.#fetch(method, path, body, true);
    const text = await res.text();
    let parsed: unknown;
    if (text) {
      try {
        parsed = JSON.parse(text);
      } catch {
        parsed = undefined;
      }
    }
    if (!res.ok) {
      const p = (parsed ?? {}) as { code?: unknown; detail?: unknown };
      const code = typeof p.code === "string" ? p.code : res.statusText || "error";
      let detail = typeof p.detail === "string" ? p.detail.slice(0, 500) : "";
      if (res.status === 401 && !this.#token) {
        detail =
          (detail ? detail + " " : "") + "(no admin token: set RELAY_ADMIN_TOKEN, or ADMIN_TOKEN in .dev.vars locally)";
      } else if (res.status === 401 || res.status === 403) {
        detail = (detail ? detail + " " : "") + "(check RELAY_ADMIN_TOKEN against the Worker's ADMIN_TOKEN secret)";
      } else if (res.status === 404 && code !== "tenant_not_found" && parsed === undefined) {
        detail = "no admin API at this URL (is the relay up to date, and RELAY_URL right?)";
      }
      throw new RelayHttpError(res.status, code, detail, what);
    }
    if (parsed === undefined && text) throw new CliError(`the relay answered ${what} with something other than JSON`);
    return parsed as T;
  }

  async #fetch(method: string, path: string, body: unknown, auth: boolean): Promise<Response> {
    const url = this.baseUrl + path;
    const headers: Record<string, string> = { accept: "application/json" };
    if (body !== undefined) headers["content-type"] = "application/json";
    if (auth && this.#token) headers.authorization = `Bearer ${this.#token}`;
    const started = Date.now();
    try {
      const res = await fetch(url, {
        method,
        headers,
        body: body === undefined ? undefined : JSON.stringify(body),
        signal: AbortSignal.timeout(this.#timeoutMs),
        redirect: "error",
      });
      this.#trace?.(`relay ${method} ${path.split("?")[0]} → ${res.status} (${Date.now() - started} ms)`);
      return res;
    } catch (e) {
      const err = e as { name?: string; cause?: { code?: string; message?: string }; message?: string };
      const reason =
        err.name === "TimeoutError"
          ? `no answer within ${this.#timeoutMs / 1000} s`
          : (err.cause?.code ?? err.cause?.message ?? err.message ?? "fetch failed");
      this.#trace?.(`relay ${method} ${path.split("?")[0]} → unreachable (${reason})`);
      throw new RelayUnreachableError(this.baseUrl, reason);
    }
  }
}

function enc(s: string): string {
  return encodeURIComponent(s);
}
