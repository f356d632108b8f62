/**
 * Runs the real admin CLI (`node scripts/tenant.ts ...`) as a child process against a temporary
 * local state directory, and keeps a transcript of everything it printed so a test can prove no
 * secret was printed except where it was minted.
 */
import { spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { nodeForWrangler } from "../../../scripts/lib/local-relay.ts";

export const ROOT = fileURLToPath(new URL("../../../", import.meta.url));
const CLI = join(ROOT, "scripts", "tenant.ts");

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

export class CliHarness {
  readonly dir: string;
  readonly stateDir: string;
  readonly transcript: TranscriptEntry[] = [];
  env: Record<string, string>;

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

  /** Runs `tenant.ts args...`; `minted` is filled in by the caller when the output holds a new secret. */
  async run(
    args: string[],
    opts: { stdin?: string; env?: Record<string, string | undefined> } = {},
  ): Promise<TranscriptEntry> {
    const env: NodeJS.ProcessEnv = { ...process.env, ...this.env };
    for (const k of ["INIT_CWD", "PORT", "CLOUDFLARE_API_TOKEN"]) delete env[k];
    for (const [k, v] of Object.entries(opts.env ?? {})) {
      if (v === undefined) delete env[k];
      else env[k] = v;
    }
    const result = await runProcess(nodeForWrangler(ROOT), [CLI, ...args], env, opts.stdin);
    const entry: TranscriptEntry = { ...result, args, minted: [] };
    this.transcript.push(entry);
    return entry;
  }

  /** Runs and expects exit 0; returns stdout parsed as JSON when `--json` is among the args. */
  async ok(
    args: string[],
    opts: { stdin?: string; env?: Record<string, string | undefined> } = {},
  ): Promise<TranscriptEntry> {
    const r = await this.run(args, opts);
    if (r.code !== 0) throw new Error(`tenant ${args.join(" ")} exited ${r.code}:\n${r.stderr}\n${r.stdout}`);
    return r;
  }

  // biome-ignore lint/suspicious/noExplicitAny: parsed JSON; the tests assert the fields they use
  async json<T = any>(
    args: string[],
    opts: { stdin?: string; env?: Record<string, string | undefined> } = {},
  ): Promise<{ data: T; entry: TranscriptEntry }> {
    const entry = await this.ok([...args, "--json"], opts);
    return { data: JSON.parse(entry.stdout) as T, entry };
  }

  cleanup(): void {
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
