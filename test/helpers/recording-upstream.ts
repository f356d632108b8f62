/**
 * Like installFakeUpstream (helpers/upstream.ts), plus two things some tests need:
 * - the fetch honours the request's AbortSignal as a real fetch does, so the relay's upstream
 *   timeout can fire while the fake is still sleeping on a `delay` fault;
 * - every outbound Authorization header is kept, so tests can prove no signature leaks.
 * Any request to another host fails: nothing reaches the internet.
 */
import { vi } from "vitest";
import { type CallRecord, FakeEventBridge, type FakeEventBridgeOptions } from "../../emulator/eventbridge.ts";
import { UPSTREAM } from "./tenants.ts";

export interface RecordingUpstream {
  fake: FakeEventBridge;
  /** The `Signature=` of every request the relay sent, in order. */
  signatures: string[];
  /** Resolves with the first call the fake records from now on that matches (e.g. a delayed one finishing). */
  waitForCall(match: (call: CallRecord) => boolean): Promise<CallRecord>;
}

export function installRecordingUpstream(opts: FakeEventBridgeOptions = {}): RecordingUpstream {
  const fake = new FakeEventBridge(opts);
  const host = new URL(UPSTREAM).host;
  const signatures: string[] = [];
  vi.spyOn(globalThis, "fetch").mockImplementation(async (input: RequestInfo | URL, init?: RequestInit) => {
    const request = new Request(input, init);
    if (new URL(request.url).host !== host) {
      throw new Error(`unexpected outbound request to ${new URL(request.url).origin} (only ${UPSTREAM} is faked)`);
    }
    const sig = /Signature=([0-9a-f]+)/.exec(request.headers.get("authorization") ?? "")?.[1];
    if (sig) signatures.push(sig);
    const signal = init?.signal ?? request.signal;
    if (signal.aborted) throw signal.reason;
    return new Promise<Response>((resolve, reject) => {
      const onAbort = () => reject(signal.reason);
      signal.addEventListener("abort", onAbort, { once: true });
      fake.fetch(request).then(
        (r) => {
          signal.removeEventListener("abort", onAbort);
          resolve(r);
        },
        (e: unknown) => {
          signal.removeEventListener("abort", onAbort);
          reject(e);
        },
      );
    });
  });
  return {
    fake,
    signatures,
    waitForCall: (match) =>
      new Promise<CallRecord>((resolve) => {
        const off = fake.onCall((call) => {
          if (!match(call)) return;
          off();
          resolve(call);
        });
      }),
  };
}
