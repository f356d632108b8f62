/**
 * What the partner API (src/ingest/sources-api.ts) and the admin API (src/admin/sources.ts) share
 * about sources: the request body, the name check, and turning a gate answer into a response
 * or a RelayError (problem+json, written by app.onError).
 */
import { z } from "zod";
import { RelayError } from "../errors.ts";
import { MAX_SOURCE_CHARS, SOURCE_PATTERN } from "../limits.ts";
import type { SourceCall } from "../tenant-gate/protocol.ts";
import { ownsSource } from "../tenants/record.ts";

/** `POST .../sources` body: AWS's member names (Name, Account), as CreatePartnerEventSource takes them. */
export const createSourceSchema = z.strictObject({
  Name: z.string().max(MAX_SOURCE_CHARS).regex(SOURCE_PATTERN, {
    error: "a partner event source name is aws.partner/<partner>/<namespace>/<name> ([.-_A-Za-z0-9] between slashes)",
  }),
  Account: z.string().regex(/^\d{12}$/, { error: "Account is the customer's 12-digit AWS account id" }),
});

export async function readJson<T>(req: Request, schema: z.ZodType<T>): Promise<T> {
  let raw: unknown;
  try {
    raw = await req.json();
  } catch {
    throw new RelayError({ status: 400, code: "invalid_json", detail: "The request body is not valid JSON." });
  }
  const r = schema.safeParse(raw);
  if (!r.success) {
    const i = r.error.issues[0]!;
    throw new RelayError({
      status: 400,
      code: "invalid_request",
      detail: `${i.path.join(".") || "body"}: ${i.message}`,
    });
  }
  return r.data;
}

/** A source name from the path (percent-decoded by the router), checked against the tenant's rules. */
export function ownedName(raw: string, rules: readonly string[]): string {
  let name = raw;
  try {
    name = decodeURIComponent(raw);
  } catch {
    // already decoded
  }
  if (name.length > MAX_SOURCE_CHARS || !SOURCE_PATTERN.test(name) || !ownsSource(rules, name)) {
    throw notOwned(name);
  }
  return name;
}

export function notOwned(name: string): RelayError {
  return new RelayError({
    status: 404,
    code: "source_not_found",
    detail: `${name.slice(0, MAX_SOURCE_CHARS)} is not one of this tenant's partner event sources.`,
  });
}

/** The value of a gate answer, or the RelayError it stands for (`denied` is the caller's to map). */
export function unwrap<T>(out: SourceCall<T>, onDenied: (reason: "revoked" | "disabled") => RelayError): T {
  if (out.kind === "denied") throw onDenied(out.reason);
  if (out.kind === "error") {
    throw new RelayError({
      status: out.status,
      code: out.code,
      detail: out.detail,
      ...(out.retryAfterS !== undefined ? { headers: { "retry-after": String(out.retryAfterS) } } : {}),
    });
  }
  return out.value;
}
