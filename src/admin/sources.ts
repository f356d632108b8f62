/**
 * The library behind `npm run tenant -- source create|list|show|refresh|delete|import`: each
 * function calls one admin API route (src/admin/sources-routes.ts) and returns its JSON, or
 * throws AdminApiError with the problem's code and detail. Runs in Node (the CLI) and in
 * workerd alike: it imports nothing of the Worker. docs/sources.md.
 */
import type { SourceView } from "../sources/view.ts";

export interface AdminTarget {
  /** The relay's origin, e.g. http://127.0.0.1:8787 */
  url: string;
  token: string;
  fetch?: typeof fetch;
}

export class AdminApiError extends Error {
  readonly status: number;
  readonly code: string;
  constructor(status: number, code: string, detail: string) {
    super(detail);
    this.name = "AdminApiError";
    this.status = status;
    this.code = code;
  }
}

async function call<T>(t: AdminTarget, method: string, path: string, body?: unknown): Promise<T> {
  const res = await (t.fetch ?? fetch)(`${t.url.replace(/\/$/, "")}${path}`, {
    method,
    headers: {
      authorization: `Bearer ${t.token}`,
      ...(body !== undefined ? { "content-type": "application/json" } : {}),
    },
    ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
  });
  const text = await res.text();
  let json: unknown = null;
  try {
    json = text ? JSON.parse(text) : null;
  } catch {
    // not JSON: reported below
  }
  if (!res.ok) {
    const p = (json ?? {}) as { code?: string; detail?: string };
    throw new AdminApiError(
      res.status,
      p.code ?? `http_${res.status}`,
      p.detail ?? (text.slice(0, 300) || res.statusText),
    );
  }
  return json as T;
}

const sourcesPath = (tenantId: string) => `/admin/v1/tenants/${encodeURIComponent(tenantId)}/sources`;

export function createSource(
  t: AdminTarget,
  tenantId: string,
  name: string,
  account: string,
): Promise<{ source: SourceView; created: boolean }> {
  return call(t, "POST", sourcesPath(tenantId), { Name: name, Account: account });
}

export async function listSources(t: AdminTarget, tenantId: string): Promise<SourceView[]> {
  return (await call<{ sources: SourceView[] }>(t, "GET", sourcesPath(tenantId))).sources;
}

export function showSource(t: AdminTarget, tenantId: string, name: string): Promise<SourceView> {
  return call(t, "GET", `${sourcesPath(tenantId)}/${encodeURIComponent(name)}`);
}

export async function refreshSources(t: AdminTarget, tenantId: string, name: string | null): Promise<SourceView[]> {
  return (
    await call<{ sources: SourceView[] }>(t, "POST", `${sourcesPath(tenantId)}/refresh`, name ? { Name: name } : {})
  ).sources;
}

export function deleteSource(t: AdminTarget, tenantId: string, name: string): Promise<SourceView> {
  return call(t, "DELETE", `${sourcesPath(tenantId)}/${encodeURIComponent(name)}`);
}

export function importSources(
  t: AdminTarget,
  tenantId: string,
): Promise<{ imported: string[]; skipped: string[]; complete: boolean }> {
  return call(t, "POST", `${sourcesPath(tenantId)}/import`, {});
}

/** One line per source, for the CLI's table output. */
export function formatSource(s: SourceView): string {
  const held = s.held.entries > 0 ? `  held ${s.held.entries}` : "";
  const warn = s.warning ? `  (unverifiable: ${s.warning.split(":")[0]})` : "";
  return `${s.state.padEnd(8)} ${s.name}  account ${s.account ?? "?"}${s.managed ? "" : "  (looked up)"}  checked ${s.checkedAt ?? "never"}${held}${warn}`;
}
