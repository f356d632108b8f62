/**
 * What the partner API (src/ingest/sources-api.ts) and the admin API (src/admin/sources.ts) share
 * about sources: the request body, the name check, and turning a gate answer into a response
 * or its catalog error (src/errors.ts; problem+json, written by app.onError).
 */
import { z } from "zod";
import { errors, type RelayError } from "../errors.ts";
import { MAX_SOURCE_CHARS, SOURCE_PATTERN } from "../limits.ts";
import { controlFor, gateCall } from "../tenant-gate/client.ts";
import { GATE_PROTOCOL, type SourceCall } from "../tenant-gate/protocol.ts";
import { ownsSource, type TenantRecord } from "../tenants/record.ts";
import type { SourceOpError, SourceView } from "./view.ts";

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
    throw errors.invalidJson();
  }
  const r = schema.safeParse(raw);
  if (!r.success) {
    const i = r.error.issues[0]!;
    throw errors.invalidRequest(`${i.path.join(".") || "body"}: ${i.message}`);
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
    throw errors.sourceNotFound(
      `${name.slice(0, MAX_SOURCE_CHARS)} is not one of this tenant's partner event sources.`,
    );
  }
  return name;
}

/**
 * Source views with the entries held for each counted on every shard: on a tenant with more than
 * one shard each shard holds the entries it accepted, and shard 0 (which answers the source
 * calls) counts only its own. One call to the tenant's control object, which asks every shard.
 */
export async function heldOnEveryShard<T extends SourceView>(env: Env, t: TenantRecord, views: T[]): Promise<T[]> {
  if ((t.limits.shards ?? 1) <= 1 || views.length === 0) return views;
  const held = await gateCall(
    () => controlFor(env, t.id, t.region).heldBySource({ v: GATE_PROTOCOL, tenantId: t.id }),
    {
      retry: true,
    },
  );
  return views.map((v) => ({ ...v, held: held[v.name] ?? { entries: 0, bytes: 0 } }));
}

/** The value of a gate answer, or the error it stands for (`denied` is the caller's to map). */
export function unwrap<T>(out: SourceCall<T>, onDenied: (reason: "revoked" | "disabled") => RelayError): T {
  if (out.kind === "denied") throw onDenied(out.reason);
  if (out.kind === "error") throw fromGate(out);
  return out.value;
}

/** A refusal the gate made (src/sources/manager.ts), as its catalog error. */
function fromGate(e: SourceOpError): RelayError {
  switch (e.code) {
    case "source_not_found":
      return errors.sourceNotFound(e.detail);
    case "source_exists":
      return errors.sourceExists(e.detail);
    case "source_account_unknown":
      return errors.sourceAccountUnknown(e.detail);
    case "too_many_sources":
      return errors.tooManySources(e.detail);
    case "invalid_source":
      return errors.invalidSource(e.detail);
    case "control_plane_throttled":
      return errors.controlPlaneThrottled(e.detail, e.retryAfterS ?? 30);
    case "control_plane_denied":
      return errors.controlPlaneDenied(e.detail);
    case "control_plane_not_implemented":
      return errors.controlPlaneNotImplemented(e.detail);
    case "control_plane_unavailable":
      return errors.controlPlaneUnavailable(e.detail);
    case "tenant_not_found":
      return errors.tenantNotFound(e.detail);
    default:
      // tenant_misconfigured: the record or its credentials cannot be used (the reason is logged).
      return errors.tenantMisconfigured(e.detail);
  }
}
