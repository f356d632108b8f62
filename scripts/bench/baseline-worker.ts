/**
 * The benchmark's floor: a Hono app with the relay's route that reads the whole body and answers
 * 200 `{}`. Bundled with esbuild (scripts/bench/build.ts) and run under the same workerd as the
 * relay, so "relay / baseline" is what the relay adds on top of the runtime, Hono and reading
 * the same bytes. Not part of the relay; never deployed. /v1/forward is the "floor: forward" row.
 */
import { DurableObject } from "cloudflare:workers";
import { Hono } from "hono";

/**
 * For the "floor: rpc + forward" row only: a Durable Object whose RPC does what an admission
 * check minimally must (read a counter, answer a small object), so one round trip's cost shows.
 */
export class FloorGate extends DurableObject {
  #taken = 0;
  async admit(input: {
    tenantId: string;
    entries: number;
  }): Promise<{ kind: "direct"; revision: number; rate: { limit: number; remaining: number } }> {
    this.#taken += input.entries > 0 ? 1 : 0;
    return { kind: "direct", revision: 1, rate: { limit: 3_600, remaining: 3_600 - (this.#taken % 3_600) } };
  }
}

type Bindings = { UPSTREAM?: string; FLOOR_GATE?: DurableObjectNamespace<FloorGate> };

const app = new Hono<{ Bindings: Bindings }>();

app.post("/v1/events", async (c) => {
  const body = await c.req.arrayBuffer();
  // Touch the length so the read cannot be optimised away.
  if (body.byteLength < 0) return c.text("impossible", 500);
  return c.json({});
});

/**
 * The forwarding floor (not the baseline): the same body sent on to the upstream unsigned, its
 * answer read and dropped. What any relay pays for one subrequest in this harness.
 */
app.post("/v1/forward", (c) => forward(c.env, c.req.raw).then(() => c.json({})));

/** "floor: rpc + forward": one Durable Object RPC (as admission makes), then the same forward. */
app.post("/v1/forward-rpc", async (c) => {
  const admitted = await c.env.FLOOR_GATE!.getByName("bench").admit({ tenantId: "bench", entries: 20 });
  if (admitted.kind !== "direct") return c.text("impossible", 500);
  await forward(c.env, c.req.raw);
  return c.json({});
});

async function forward(env: Bindings, request: Request): Promise<void> {
  const body = await request.arrayBuffer();
  const upstream = await fetch(`${env.UPSTREAM}/`, {
    method: "POST",
    headers: { "content-type": "application/x-amz-json-1.1", "x-amz-target": "AWSEvents.PutPartnerEvents" },
    body,
  });
  await upstream.arrayBuffer();
}

export default { fetch: app.fetch };
