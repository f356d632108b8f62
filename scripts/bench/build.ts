/**
 * Builds what the benchmark runs: the relay's production bundle exactly as `wrangler deploy`
 * would upload it (`wrangler deploy --dry-run --outdir`), and the baseline Worker with esbuild
 * (the esbuild wrangler itself uses, same conditions, no minification either).
 */
import { spawn } from "node:child_process";
import { readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { build } from "esbuild";

export interface Bundle {
  /** Directory holding the bundle (and wrangler's source map beside it). */
  dir: string;
  /** The main module's file name inside `dir`. */
  mainModule: string;
  /** The main module's source. */
  code: string;
  bytes: number;
}

/** `wrangler deploy --dry-run --outdir <dir>`: the production bundle, nothing uploaded. */
export async function buildRelay(root: string, outDir: string): Promise<Bundle> {
  const wrangler = join(root, "node_modules", "wrangler", "bin", "wrangler.js");
  const out = await run(process.execPath, [wrangler, "deploy", "--dry-run", "--outdir", outDir], root);
  if (out.code !== 0) {
    throw new Error(`wrangler deploy --dry-run failed (exit ${out.code}):\n${out.output.slice(-4000)}`);
  }
  const mainModule = "index.js";
  const file = join(outDir, mainModule);
  return { dir: outDir, mainModule, code: readFileSync(file, "utf8"), bytes: statSync(file).size };
}

/** The baseline Hono app (scripts/bench/baseline-worker.ts), bundled like wrangler bundles. */
export function buildBaseline(root: string, outDir: string): Promise<Bundle> {
  return buildWorker(root, join(root, "scripts", "bench", "baseline-worker.ts"), outDir, "baseline.js");
}

/** Bundles one Worker module with esbuild: ESM, workerd conditions, not minified (as wrangler). */
export async function buildWorker(root: string, entry: string, outDir: string, mainModule: string): Promise<Bundle> {
  const outfile = join(outDir, mainModule);
  await build({
    entryPoints: [entry],
    outfile,
    bundle: true,
    format: "esm",
    target: "es2024",
    platform: "neutral",
    conditions: ["workerd", "worker", "browser"],
    mainFields: ["browser", "module", "main"],
    minify: false,
    sourcemap: false,
    logLevel: "warning",
    absWorkingDir: root,
    // Runtime modules workerd provides.
    external: ["cloudflare:*", "node:*"],
  });
  return { dir: outDir, mainModule, code: readFileSync(outfile, "utf8"), bytes: statSync(outfile).size };
}

function run(cmd: string, args: string[], cwd: string): Promise<{ code: number; output: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, {
      cwd,
      stdio: ["ignore", "pipe", "pipe"],
      // No telemetry from a benchmark; wrangler needs Node 22, which is what runs this script.
      env: { ...process.env, WRANGLER_SEND_METRICS: "false", CI: "true", NO_COLOR: "1" },
    });
    let output = "";
    child.stdout.on("data", (d: Buffer) => (output += d.toString()));
    child.stderr.on("data", (d: Buffer) => (output += d.toString()));
    child.once("error", reject);
    child.once("close", (code) => resolve({ code: code ?? 1, output }));
  });
}
