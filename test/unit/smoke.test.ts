import { env, exports } from "cloudflare:workers";
import { describe, expect, it, vi } from "vitest";

describe("smoke", () => {
  it("healthz", async () => {
    const r = await exports.default.fetch("http://relay.test/healthz");
    expect(r.status).toBe(200);
  });
  it("spy reaches DO fetch", async () => {
    const spy = vi.spyOn(globalThis, "fetch").mockImplementation(async () => new Response("faked"));
    const stub = env.TENANT_GATE.getByName("t1");
    expect(await stub.ping("http://upstream.test/")).toBe("faked");
    spy.mockRestore();
  });
});
