/**
 * Validation of a PutPartnerEvents request, exactly as EventBridge would and stricter where it
 * silently drops data (putpartnerevents.md "Constraints").
 *
 * EventBridge splits failures in two: a request whose shape is wrong fails whole (the caller gets
 * a RelayError: 400 or 413); an entry that is wrong on its own fails on its own with EventBridge's
 * per-entry code (InvalidArgument, MalformedDetail) while its valid siblings go through.
 */
import { z } from "zod";
import { errors } from "../errors.ts";
import {
  MAX_DETAIL_TYPE_CHARS,
  MAX_ENTRIES,
  MAX_RESOURCE_CHARS,
  MAX_SOURCE_CHARS,
  MIN_ENTRIES,
  SOURCE_PATTERN,
} from "../limits.ts";
import { entrySize } from "./size.ts";

/** An entry as it travels to EventBridge: Time in epoch seconds, Detail a JSON string. */
export interface WireEntry {
  Time?: number;
  Source: string;
  Resources?: string[];
  DetailType: string;
  Detail: string;
}

export type EntryErrorCode = "InvalidArgument" | "MalformedDetail" | "NotAuthorizedForSourceException";

export type Slot = { ok: true; entry: WireEntry; bytes: number } | { ok: false; code: EntryErrorCode; message: string };

/** Latest instant a Time may name: 9999-12-31T23:59:59Z, in epoch seconds. */
const MAX_EPOCH_SECONDS = 253_402_300_799;
/** ISO-8601 / RFC 3339 date-times as the AWS CLI takes them; no zone means UTC. */
const ISO_8601 = /^\d{4}-\d{2}-\d{2}(?:[Tt ]\d{2}:\d{2}(?::\d{2}(?:\.\d{1,9})?)?(?:[Zz]|[+-]\d{2}(?::?\d{2})?)?)?$/;
const NUMERIC = /^\d+(?:\.\d+)?$/;

function epochFromString(s: string): number | undefined {
  const t = s.trim();
  if (NUMERIC.test(t)) return Number(t);
  if (!ISO_8601.test(t)) return undefined;
  // Date.parse rolls impossible days over (2024-02-30 becomes March 1st): refuse them instead.
  const [y, m, d] = t.slice(0, 10).split("-").map(Number) as [number, number, number];
  const day = new Date(Date.UTC(y, m - 1, d));
  if (day.getUTCFullYear() !== y || day.getUTCMonth() !== m - 1 || day.getUTCDate() !== d) return undefined;
  const hasZone = /(?:[Zz]|[+-]\d{2}(?::?\d{2})?)$/.test(t) && /[Tt ]/.test(t);
  const iso = t.replace(" ", "T") + (hasZone ? "" : /[Tt ]/.test(t) ? "Z" : "T00:00:00Z");
  const ms = Date.parse(iso);
  return Number.isNaN(ms) ? undefined : ms / 1000;
}

const timeSchema = z
  .union([z.number(), z.string()], {
    error: "Time must be an ISO-8601 date-time string or epoch seconds (a number)",
  })
  .transform((t, ctx) => {
    const secs = typeof t === "number" ? t : epochFromString(t);
    if (secs === undefined || !Number.isFinite(secs) || secs < 0 || Math.floor(secs) > MAX_EPOCH_SECONDS) {
      ctx.addIssue({
        code: "custom",
        message: `Time ${JSON.stringify(t)} is not an ISO-8601 date-time or epoch seconds between 1970 and 9999`,
      });
      return z.NEVER;
    }
    // Whole seconds, as the AWS CLI sends them.
    return Math.floor(secs);
  });

const detailSchema = z
  // z.custom, not z.record: a record schema copies the object key by key, and assigning a
  // "__proto__" key sets the copy's prototype instead, so that member silently vanished upstream.
  .union(
    [z.string(), z.custom<Record<string, unknown>>((v) => typeof v === "object" && v !== null && !Array.isArray(v))],
    {
      error: (iss) =>
        iss.input === undefined
          ? "Detail is required (EventBridge drops entries without it)"
          : "Detail must be a string holding a JSON object, or a JSON object",
    },
  )
  .transform((d, ctx) => {
    if (typeof d !== "string") return JSON.stringify(d);
    let parsed: unknown;
    try {
      parsed = JSON.parse(d);
    } catch {
      ctx.addIssue({ code: "custom", message: "Detail is not valid JSON" });
      return z.NEVER;
    }
    if (parsed === null || typeof parsed !== "object" || Array.isArray(parsed)) {
      ctx.addIssue({ code: "custom", message: "Detail must be a JSON object at its top level" });
      return z.NEVER;
    }
    return d;
  });

export const entrySchema = z.strictObject(
  {
    Time: timeSchema.optional(),
    Source: z
      .string({ error: (iss) => (iss.input === undefined ? "Source is required" : "Source must be a string") })
      .min(1, { error: "Source must not be empty" })
      .max(MAX_SOURCE_CHARS, { error: `Source must be at most ${MAX_SOURCE_CHARS} characters` })
      .regex(SOURCE_PATTERN, {
        error: "Source must be a partner event source name: aws.partner/<domain>/<name> (letters, digits, . - _)",
      }),
    DetailType: z
      .string({
        error: (iss) =>
          iss.input === undefined
            ? "DetailType is required (EventBridge drops entries without it)"
            : "DetailType must be a string",
      })
      .min(1, { error: "DetailType must not be empty" })
      .max(MAX_DETAIL_TYPE_CHARS, {
        error: `DetailType must be at most ${MAX_DETAIL_TYPE_CHARS} characters (EventBridge drops longer ones silently)`,
      }),
    Detail: detailSchema,
    Resources: z
      .array(
        z
          .string({ error: "each Resource must be a string" })
          .max(MAX_RESOURCE_CHARS, { error: `each Resource must be at most ${MAX_RESOURCE_CHARS} characters` }),
        { error: "Resources must be a list of strings" },
      )
      .optional(),
  },
  {
    error: (iss) =>
      iss.code === "unrecognized_keys"
        ? `unknown field(s) ${iss.keys.map((k) => JSON.stringify(k)).join(", ")}; an entry has Time, Source, Resources, DetailType and Detail`
        : "an entry must be a JSON object",
  },
);

export const requestSchema = z.strictObject(
  {
    Entries: z
      .array(z.unknown(), {
        error: (iss) => (iss.input === undefined ? "Entries is required" : "Entries must be a list"),
      })
      .min(MIN_ENTRIES, { error: `Entries must hold at least ${MIN_ENTRIES} entry` })
      .max(MAX_ENTRIES, { error: `Entries must hold at most ${MAX_ENTRIES} entries` }),
  },
  {
    error: (iss) =>
      iss.code === "unrecognized_keys"
        ? `unknown field(s) ${iss.keys.map((k) => JSON.stringify(k)).join(", ")}; the body is {"Entries": [...]}`
        : 'the body must be a JSON object: {"Entries": [...]}',
  },
);

function describe(issue: z.core.$ZodIssue, index: number): string {
  const path = issue.path.length ? `.${issue.path.map(String).join(".")}` : "";
  return `Entries[${index}]${path}: ${issue.message}`;
}

/** Validates one entry; `bytes` is its size by AWS's formula when the caller has it already. */
export function validateEntry(raw: unknown, index: number, bytes?: number): Slot {
  const r = entrySchema.safeParse(raw);
  if (r.success) {
    const e = r.data;
    const entry: WireEntry = { Source: e.Source, DetailType: e.DetailType, Detail: e.Detail };
    if (e.Time !== undefined) entry.Time = e.Time;
    if (e.Resources !== undefined) entry.Resources = e.Resources;
    // Key order as AWS's own clients send it.
    const ordered: WireEntry =
      entry.Time === undefined
        ? {
            Source: entry.Source,
            ...(entry.Resources ? { Resources: entry.Resources } : {}),
            DetailType: entry.DetailType,
            Detail: entry.Detail,
          }
        : {
            Time: entry.Time,
            Source: entry.Source,
            ...(entry.Resources ? { Resources: entry.Resources } : {}),
            DetailType: entry.DetailType,
            Detail: entry.Detail,
          };
    return { ok: true, entry: ordered, bytes: bytes ?? entrySize(ordered) };
  }
  const issue = r.error.issues[0]!;
  // A Detail that is present but wrong (not JSON, not an object at its top level, neither a string
  // nor an object) is MalformedDetail; a missing one is InvalidArgument. Decided from the input:
  // zod 4 drops `params` from a union's type error, so a flag on the issue never arrives.
  const detailGiven = typeof raw === "object" && raw !== null && (raw as { Detail?: unknown }).Detail !== undefined;
  const code: EntryErrorCode = issue.path[0] === "Detail" && detailGiven ? "MalformedDetail" : "InvalidArgument";
  return { ok: false, code, message: describe(issue, index) };
}

export interface ValidatedBatch {
  slots: Slot[];
  /** Size of the whole request by AWS's formula, in bytes. */
  totalBytes: number;
}

/**
 * Validates a parsed request body. Throws a RelayError for request-level problems; returns one
 * slot per entry otherwise.
 */
export function validateBatch(body: unknown, maxBatchBytes: number): ValidatedBatch {
  const r = requestSchema.safeParse(body);
  if (!r.success) {
    const issue = r.error.issues[0]!;
    const path = issue.path.length ? `${issue.path.map(String).join(".")}: ` : "";
    throw errors.invalidRequest(`${path}${issue.message}`);
  }
  const raw = r.data.Entries;
  let totalBytes = 0;
  const sizes: number[] = [];
  for (let i = 0; i < raw.length; i++) {
    const e = raw[i];
    if (e === null || typeof e !== "object" || Array.isArray(e)) {
      throw errors.invalidRequest(`Entries[${i}]: an entry must be a JSON object`);
    }
    const size = entrySize(e);
    sizes.push(size);
    totalBytes += size;
  }
  if (totalBytes > maxBatchBytes) throw errors.batchTooLarge(totalBytes, maxBatchBytes);
  // A valid entry's wire form counts the same bytes as its input (Time 14 either way, Detail the
  // same string or the same serialisation): size each entry once.
  return { slots: raw.map((e, i) => validateEntry(e, i, sizes[i])), totalBytes };
}
