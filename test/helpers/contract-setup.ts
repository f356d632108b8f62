/**
 * Holds every answer the Worker gives in the workers tests to the OpenAPI document: wraps
 * `exports.default.fetch` (what the integration tests and helpers call) so an answer that drifts
 * from the document for its route and status fails the test that provoked it. The admin API
 * (/admin/v1, not a public route: docs/admin.md) is not in the document and is not checked.
 */
import { exports } from "cloudflare:workers";
import { relayContract } from "./contract.ts";

export class ContractViolation extends Error {
  override name = "ContractViolation";
}

type Fetch = (input: RequestInfo | URL, init?: RequestInit) => Promise<Response>;
const target = exports.default as unknown as { fetch: Fetch };
const original: Fetch = target.fetch.bind(target);

/** Fetches through the Worker and checks the answer against the document. */
export async function checkedFetch(input: RequestInfo | URL, init?: RequestInit): Promise<Response> {
  const req = new Request(input, init);
  const method = req.method;
  const url = req.url;
  const res = await original(req);
  if (new URL(url).pathname.startsWith("/admin/")) return res;
  const errors = await relayContract().checkResponse(method, url, res);
  if (errors.length > 0) throw new ContractViolation(`the answer drifts from /openapi.json:\n${errors.join("\n")}`);
  return res;
}

Object.defineProperty(target, "fetch", { value: checkedFetch, configurable: true, writable: true });
