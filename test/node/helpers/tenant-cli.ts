/**
 * Runs the admin CLI in-process (scripts/lib/cli.ts `main`, the function `npm run tenant` calls)
 * against a temporary local state directory, with its own stdout, stderr, stdin and environment,
 * and one TENANTS namespace opened on that state (Miniflare, as the CLI opens it) shared by every
 * invocation and by the test's own reads. Keeps a transcript of everything printed so a test can
 * prove no secret was printed except where it was minted. `runProcess` runs the real CLI as a
 * child for the smoke tests.
 */
import { spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { main } from "../../../scripts/lib/cli.ts";
import { type OpenedKv, openTenantsKv } from "../../../scripts/lib/kv.ts";
import type { TenantsKv } from "../../../src/admin/store.ts";

export const ROOT = fileURLToPath(new URL("../../../", import.meta.url));

/** base64 of 32 bytes; the same value goes to the local relay as SEALING_KEY. */
export const TEST_SEALING_KEY = "Y2xpLXRlc3Qtc2VhbGluZy1rZXktMzItYnl0ZXMhISE=";
export const TEST_ADMIN_TOKEN = "cli-test-admin-token-5f1c2d9e8b7a6f40";

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
  args: string[];
}

export interface TranscriptEntry extends CliResult {
  /** Secrets this invocation is allowed to print (it minted them). */
  minted: string[];
}

export interface RunOptions {
  stdin?: string;
  env?: Record<string, string | undefined>;
}

export class CliHarness {
  readonly dir: string;
  readonly stateDir: string;
  readonly transcript: TranscriptEntry[] = [];
  env: Record<string, string>;
  #opened: OpenedKv | undefined;

  constructor(relayUrl: string) {
    this.dir = mkdtempSync(join(tmpdir(), "tenant-cli-test-"));
    this.stateDir = join(this.dir, "state");
    this.env = {
      RELAY_STATE_DIR: this.stateDir,
      // No .dev.vars: the key comes from RELAY_SEALING_KEY even if the checkout has a .dev.vars.
      RELAY_DEV_VARS: join(this.dir, "no-dev-vars"),
      RELAY_SEALING_KEY: TEST_SEALING_KEY,
      RELAY_ADMIN_TOKEN: TEST_ADMIN_TOKEN,
      RELAY_URL: relayUrl,
    };
  }

  /** The local TENANTS namespace on this state, as the CLI opens it (opened once, on first use). */
  async kv(): Promise<TenantsKv> {
    this.#opened ??= await openTenantsKv({ root: ROOT, mode: "local", persistTo: this.stateDir });
    return this.#opened.kv;
  }

  /** The environment a run sees: the test's process env, minus what could point it elsewhere. */
  envFor(opts: RunOptions = {}): NodeJS.ProcessEnv {
    const env: NodeJS.ProcessEnv = { ...process.env, ...this.env };
    for (const k of ["INIT_CWD", "PORT", "CLOUDFLARE_API_TOKEN"]) delete env[k];
    for (const [k, v] of Object.entries(opts.env ?? {})) {
      if (v === undefined) delete env[k];
      else env[k] = v;
    }
    return env;
  }

  /** Runs `tenant args...` in-process; `minted` is filled in by the caller when the output holds a new secret. */
  async run(args: string[], opts: RunOptions = {}): Promise<TranscriptEntry> {
    let stdout = "";
    let stderr = "";
    const code = await main(args, {
      env: this.envFor(opts),
      root: ROOT,
      io: {
        stdout: (s) => void (stdout += s),
        stderr: (s) => void (stderr += s),
        readStdin: async () => opts.stdin ?? "",
        kv: await this.kv(),
      },
    });
    const entry: TranscriptEntry = { code, stdout, stderr, args, minted: [] };
    this.transcript.push(entry);
    return entry;
  }

  /** Runs and expects exit 0; returns stdout parsed as JSON when `--json` is among the args. */
  async ok(args: string[], opts: RunOptions = {}): Promise<TranscriptEntry> {
    const r = await this.run(args, opts);
    if (r.code !== 0) throw new Error(`tenant ${args.join(" ")} exited ${r.code}:\n${r.stderr}\n${r.stdout}`);
    return r;
  }

  // biome-ignore lint/suspicious/noExplicitAny: parsed JSON; the tests assert the fields they use
  async json<T = any>(args: string[], opts: RunOptions = {}): Promise<{ data: T; entry: TranscriptEntry }> {
    const entry = await this.ok([...args, "--json"], opts);
    return { data: JSON.parse(entry.stdout) as T, entry };
  }

  async cleanup(): Promise<void> {
    await this.#opened?.dispose();
    this.#opened = undefined;
    rmSync(this.dir, { recursive: true, force: true });
  }
}

export function runProcess(cmd: string, args: string[], env: NodeJS.ProcessEnv, stdin?: string): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { cwd: ROOT, env, stdio: ["pipe", "pipe", "pipe"] });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on("data", (b: Buffer) => out.push(b));
    child.stderr.on("data", (b: Buffer) => err.push(b));
    child.on("error", reject);
    child.on("close", (code) =>
      resolve({
        code: code ?? -1,
        stdout: Buffer.concat(out).toString("utf8"),
        stderr: Buffer.concat(err).toString("utf8"),
        args,
      }),
    );
    child.stdin.end(stdin ?? "");
  });
}

/** A loopback URL nothing listens on (a port the OS just handed out and took back). */
export async function unusedLocalUrl(): Promise<string> {
  const server = createServer();
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const port = (server.address() as { port: number }).port;
  await new Promise<void>((r) => server.close(() => r()));
  return `http://127.0.0.1:${port}`;
}
