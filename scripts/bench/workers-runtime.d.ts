/**
 * The little of the Workers runtime's types that the benchmark's own Workers use
 * (baseline-worker.ts). The scripts program type-checks with Node's types, not workerd's.
 */
declare module "cloudflare:workers" {
  export abstract class DurableObject<Env = unknown> {
    protected ctx: unknown;
    protected env: Env;
    constructor(ctx: unknown, env: Env);
  }
}

/** A Durable Object namespace, reduced to what the floor row calls. */
interface BenchDurableObjectNamespace<T> {
  getByName(name: string): T;
}
