import { DurableObject } from "cloudflare:workers";
import { Hono } from "hono";

const app = new Hono<{ Bindings: Env }>();
app.get("/healthz", (c) => c.json({ ok: true }));
export default app;

export class TenantGate extends DurableObject<Env> {
  async ping(url: string): Promise<string> {
    const r = await fetch(url);
    return await r.text();
  }
}
