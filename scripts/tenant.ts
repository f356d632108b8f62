/**
 * The relay's admin CLI: `npm run tenant -- <command> [args] [flags]` (docs/admin.md).
 *
 * A thin layer: scripts/lib/cli.ts parses the command line (node:util parseArgs) and calls the
 * tenant-administration library (src/admin/), which reads and writes the TENANTS KV namespace
 * through wrangler's getPlatformProxy (local state by default, `--remote` for production) and tells
 * the tenant's Durable Object, through the relay's admin API, about access changes that must take
 * effect on the very next request. Exit codes: scripts/lib/errors.ts.
 */
import { enableCompileCache } from "node:module";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

// wrangler's bundle is large: Node's compile cache (kept in node_modules/.cache) saves most of its
// load time on every run after the first.
enableCompileCache?.(
  process.env.NODE_COMPILE_CACHE ??
    join(fileURLToPath(new URL("..", import.meta.url)), "node_modules", ".cache", "relay-wrangler-compile-cache"),
);
const { main } = await import("./lib/cli.ts");
process.exitCode = await main(process.argv.slice(2));
