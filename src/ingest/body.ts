/**
 * Reads a request body with a hard byte cap, counting bytes as they arrive: Content-Length may
 * lie or be absent, and a Worker receives bodies up to 100 MB (platform.md), so the relay never
 * buffers more than the cap. A body that ends early (the client closed its half of the connection
 * before Content-Length was reached, or the chunked framing broke: the runtime's stream errors,
 * "Network connection lost") is the client's fault and a 400 `body_incomplete`, never a 500.
 */
import { errors, RelayError } from "../errors.ts";

export interface ReadBodyOptions {
  /**
   * Read a refused (over-cap) body to its end, discarding it, before answering 413, instead of
   * cancelling it. Local runs only (LOCAL_DRAIN_REFUSED_BODIES, set by scripts/lib/local-relay.ts
   * for npm start, soak and fuzz): in front of the Worker, miniflare's entry Worker pumps the
   * request body into the Worker and turns a body the Worker cancelled into a 500 with a stack
   * trace or a reset, so an early 413 did not reach the client every time (issue 11). In
   * production the platform handles an early answer and cancelling is cheaper. Bounded by
   * MAX_DRAINED_BODY_BYTES: past that the stream is cancelled after all.
   */
  drainRefused?: boolean;
}

/** The most a refused body is read and discarded in local runs: the platform's request cap, 100 MB. */
export const MAX_DRAINED_BODY_BYTES = 100 * 1024 * 1024;

type BodyReader =
  | { byob: ReadableStreamBYOBReader; plain?: undefined }
  | { byob?: undefined; plain: ReadableStreamDefaultReader<Uint8Array> };

/** Ends a refused body: cancels it, or (drainRefused) reads and discards it, up to MAX_DRAINED_BODY_BYTES. */
async function refuse(reader: BodyReader | null, opts: ReadBodyOptions): Promise<void> {
  if (!reader) return;
  try {
    if (opts.drainRefused) {
      let seen = 0;
      let view = new Uint8Array(65_536);
      for (;;) {
        const r = reader.byob ? await reader.byob.read(view) : await reader.plain!.read();
        if (r.done) return;
        seen += r.value.byteLength;
        if (reader.byob) view = new Uint8Array(r.value.buffer as ArrayBuffer);
        if (seen > MAX_DRAINED_BODY_BYTES) break;
      }
    }
    await (reader.byob ?? reader.plain!).cancel();
  } catch {
    // the stream already failed: nothing to end
  }
}

export async function readBodyCapped(request: Request, limit: number, opts: ReadBodyOptions = {}): Promise<Uint8Array> {
  try {
    return await readCapped(request, limit, opts);
  } catch (e) {
    if (e instanceof RelayError) throw e;
    // The stream itself failed: whatever arrived is not the request the client meant to send.
    throw errors.bodyIncomplete(e instanceof Error ? `${e.name}: ${e.message}` : String(e));
  }
}

async function readCapped(request: Request, limit: number, opts: ReadBodyOptions): Promise<Uint8Array> {
  const declared = request.headers.get("content-length");
  if (declared !== null && /^\d+$/.test(declared) && Number(declared) > limit) {
    // Refuse before keeping a byte; cancel the stream (local runs: drain it) so the runtime stops receiving it.
    await refuse(request.body ? { plain: request.body.getReader() } : null, opts);
    throw errors.payloadTooLarge(limit);
  }
  if (!request.body) return new Uint8Array(0);
  if (declared !== null && /^\d+$/.test(declared)) return readDeclared(request.body, Number(declared), limit, opts);
  return readChunks(request.body, limit, null, opts);
}

/** Reads chunk by chunk, counting; `declared` (if any) must be met exactly. */
async function readChunks(
  body: ReadableStream<Uint8Array>,
  limit: number,
  declared: number | null,
  opts: ReadBodyOptions,
): Promise<Uint8Array> {
  const reader = body.getReader();
  const chunks: Uint8Array[] = [];
  let total = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    total += value.byteLength;
    if (total > limit) {
      await refuse({ plain: reader }, opts);
      throw errors.payloadTooLarge(limit);
    }
    chunks.push(value);
  }
  if (declared !== null && total < declared)
    throw errors.bodyIncomplete(`${total} of ${declared} declared bytes arrived`);
  if (declared !== null && total > declared)
    throw errors.invalidRequest(`The body is ${total} bytes but Content-Length says ${declared}.`);
  if (chunks.length === 1) return chunks[0]!;
  const out = new Uint8Array(total);
  let off = 0;
  for (const c of chunks) {
    out.set(c, off);
    off += c.byteLength;
  }
  return out;
}

/**
 * A body with a declared length: read straight into one buffer of that size plus a spare byte
 * (a BYOB reader: no chunk list, no copy), so the cost stays a fraction of a chunked read while
 * memory stays bounded by the declaration even if the body were longer than it says.
 */
async function readDeclared(
  body: ReadableStream<Uint8Array>,
  declared: number,
  limit: number,
  opts: ReadBodyOptions,
): Promise<Uint8Array> {
  let reader: ReadableStreamBYOBReader;
  try {
    reader = body.getReader({ mode: "byob" });
  } catch {
    // A stream built in-process without byte support: count it chunk by chunk instead.
    return readChunks(body, limit, declared, opts);
  }
  let buffer = new ArrayBuffer(declared + 1);
  let filled = 0;
  let done = false;
  while (!done && filled < buffer.byteLength) {
    const r = await reader.read(new Uint8Array(buffer, filled));
    if (r.value) {
      buffer = r.value.buffer as ArrayBuffer;
      filled += r.value.byteLength;
    }
    done = r.done;
  }
  if (filled <= declared) {
    reader.releaseLock();
    if (filled < declared) throw errors.bodyIncomplete(`${filled} of ${declared} declared bytes arrived`);
    return new Uint8Array(buffer, 0, filled);
  }
  // More bytes than declared (only a body built in-process can do this: HTTP frames by length).
  // Count the rest without keeping it: over the cap is 413, otherwise the length was simply wrong.
  let total = filled;
  const scratch = new ArrayBuffer(65_536);
  let view = new Uint8Array(scratch);
  for (;;) {
    const r = await reader.read(view);
    if (r.done) break;
    total += r.value.byteLength;
    view = new Uint8Array(r.value.buffer);
    if (total > limit) {
      await refuse({ byob: reader }, opts);
      throw errors.payloadTooLarge(limit);
    }
  }
  throw errors.invalidRequest(`The body is ${total} bytes but Content-Length says ${declared}.`);
}

const decoder = new TextDecoder("utf-8", { fatal: true, ignoreBOM: false });

/** Decodes UTF-8 strictly and parses JSON; any failure is a 400 invalid_json. */
export function parseJsonBody(bytes: Uint8Array): unknown {
  try {
    return JSON.parse(decoder.decode(bytes));
  } catch {
    throw errors.invalidJson();
  }
}
