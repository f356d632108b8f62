/**
 * Routes the Worker's outbound fetches to a FakeEventBridge (which verifies SigV4 with the AWS
 * SDK's own signer); any other outbound request fails the test: nothing reaches the internet.
 */
import { vi } from "vitest";
import { FakeEventBridge, type FakeEventBridgeOptions } from "../../emulator/eventbridge.ts";
import { UPSTREAM } from "./tenants.ts";

export function installFakeUpstream(opts: FakeEventBridgeOptions = {}): FakeEventBridge {
  const fake = new FakeEventBridge(opts);
  const host = new URL(UPSTREAM).host;
  vi.spyOn(globalThis, "fetch").mockImplementation(async (input: RequestInfo | URL, init?: RequestInit) => {
    const request = new Request(input, init);
    if (new URL(request.url).host !== host) {
      throw new Error(`unexpected outbound request to ${new URL(request.url).origin} (only ${UPSTREAM} is faked)`);
    }
    return fake.fetch(request);
  });
  return fake;
}
