/**
 * readBodyCapped's refusal of an over-cap body (issue 11): by default the stream is cancelled at
 * once; with drainRefused (local runs, LOCAL_DRAIN_REFUSED_BODIES) it is read to its end first, so
 * the local proxy that pumps the body into the Worker finishes and delivers the 413.
 */
import { describe, expect, it } from "vitest";
import { RelayError } from "../../src/errors.ts";
import { readBodyCapped } from "../../src/ingest/body.ts";

const LIMIT = 1_000;
const CHUNK = 4_096;
const CHUNKS = 50;

/** A request whose body is CHUNKS chunks; records how many were pulled and whether it was cancelled. */
function request(withLength: boolean) {
  const seen = { pulled: 0, cancelled: false };
  const body = new ReadableStream<Uint8Array>({
    pull(controller) {
      if (seen.pulled === CHUNKS) return controller.close();
      seen.pulled++;
      controller.enqueue(new Uint8Array(CHUNK));
    },
    cancel() {
      seen.cancelled = true;
    },
  });
  const headers: Record<string, string> = withLength ? { "content-length": String(CHUNK * CHUNKS) } : {};
  // A ReadableStream body with a declared length: the runtime frames it by length.
  const req = new Request("http://relay.test/v1/events", {
    method: "POST",
    headers,
    body,
    duplex: "half",
  } as RequestInit);
  return { req, seen };
}

async function refusal(p: Promise<unknown>): Promise<RelayError> {
  const e = await p.then(
    () => null,
    (err: unknown) => err,
  );
  expect(e).toBeInstanceOf(RelayError);
  return e as RelayError;
}

describe("an over-cap body", () => {
  for (const withLength of [true, false]) {
    const how = withLength ? "with a Content-Length over the cap" : "chunked, over the cap as it arrives";
    it(`${how}: cancelled by default`, async () => {
      const { req, seen } = request(withLength);
      const e = await refusal(readBodyCapped(req, LIMIT));
      expect([e.status, e.code]).toEqual([413, "payload_too_large"]);
      expect(seen.pulled).toBeLessThan(CHUNKS);
    });

    it(`${how}: read to its end first with drainRefused`, async () => {
      const { req, seen } = request(withLength);
      const e = await refusal(readBodyCapped(req, LIMIT, { drainRefused: true }));
      expect([e.status, e.code]).toEqual([413, "payload_too_large"]);
      expect(seen.pulled).toBe(CHUNKS);
      expect(seen.cancelled).toBe(false);
    });
  }
});
