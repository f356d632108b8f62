/**
 * Reads a request body with a hard byte cap, counting bytes as they arrive: Content-Length may
 * lie or be absent, and a Worker receives bodies up to 100 MB (platform.md), so the relay never
 * buffers more than the cap.
 */
import { Errors } from "../errors.ts";

export async function readBodyCapped(request: Request, limit: number): Promise<Uint8Array> {
  const declared = request.headers.get("content-length");
  if (declared !== null && /^\d+$/.test(declared) && Number(declared) > limit) {
    // Refuse before reading a byte; cancel the stream so the runtime stops receiving it.
    await request.body?.cancel().catch(() => {});
    throw Errors.bodyTooLarge(limit);
  }
  if (!request.body) return new Uint8Array(0);
  const reader = request.body.getReader();
  const chunks: Uint8Array[] = [];
  let total = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    total += value.byteLength;
    if (total > limit) {
      await reader.cancel().catch(() => {});
      throw Errors.bodyTooLarge(limit);
    }
    chunks.push(value);
  }
  if (chunks.length === 1) return chunks[0]!;
  const out = new Uint8Array(total);
  let off = 0;
  for (const c of chunks) {
    out.set(c, off);
    off += c.byteLength;
  }
  return out;
}

const decoder = new TextDecoder("utf-8", { fatal: true, ignoreBOM: false });

/** Decodes UTF-8 strictly and parses JSON; any failure is a 400 invalid_json. */
export function parseJsonBody(bytes: Uint8Array): unknown {
  try {
    return JSON.parse(decoder.decode(bytes));
  } catch {
    throw Errors.invalidJson();
  }
}
