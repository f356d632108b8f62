/**
 * The benchmark's floor: a Hono app with the relay's route that reads the whole body and answers
 * 200 `{}`. Bundled with esbuild (scripts/bench/build.ts) and run under the same workerd as the
 * relay, so "relay / baseline" is what the relay adds on top of the runtime, Hono and reading
 * the same bytes. Not part of the relay; never deployed. /v1/forward is the "floor: forward" row.
 */
import { Hono } from "hono";

const app = new Hono<{ Bindings: { UPSTREAM?: string } }>();

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
app.post("/v1/forward", async (c) => {
  const body = await c.req.arrayBuffer();
  const upstream = await fetch(`${c.env.UPSTREAM}/`, {
    method: "POST",
    headers: { "content-type": "application/x-amz-json-1.1", "x-amz-target": "AWSEvents.PutPartnerEvents" },
    body,
  });
  await upstream.arrayBuffer();
  return c.json({});
});

export default { fetch: app.fetch };
