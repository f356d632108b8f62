/**
 * Finding the installed AWS CLIs and running them with a clean, explicit environment: only the
 * AWS_* variables set here reach them (none inherited), empty config and credentials files, one
 * attempt, no pager.
 */
import { realpathSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { allOnPath, type ProcResult, run } from "./harness.ts";

export interface AwsCli {
  /** "v1" or "v2". */
  major: "v1" | "v2";
  path: string;
  /** `aws --version`'s line, e.g. "aws-cli/2.9.19 Python/3.11.2 Linux/... source/x86_64.debian.12". */
  version: string;
}

/** Where the Debian package (`apt-get install awscli`, a v2 build) puts the CLI. */
export const DEBIAN_AWS = "/usr/bin/aws";

/** `aws --version` of one executable, or null when it does not run. */
export async function cliVersion(path: string): Promise<string | null> {
  try {
    const r = await run(path, ["--version"], { env: cleanEnv(), timeoutMs: 30_000 });
    const line = (r.stdout + "\n" + r.stderr).split("\n").find((l) => /^aws-cli\/\d/.test(l.trim()));
    return r.code === 0 && line ? line.trim() : null;
  } catch {
    return null;
  }
}

/**
 * The AWS CLIs to test: v1 is the first `aws` on PATH that reports aws-cli/1.x (the pyenv one
 * here); v2 is /usr/bin/aws when it reports aws-cli/2.x, else the first v2 on PATH.
 */
export async function findAwsClis(): Promise<{ v1: AwsCli | null; v2: AwsCli | null; seen: string[] }> {
  const seen: string[] = [];
  let v1: AwsCli | null = null;
  let v2: AwsCli | null = null;
  const candidates = [DEBIAN_AWS, ...allOnPath("aws").filter((p) => p !== DEBIAN_AWS)];
  const real = new Set<string>();
  for (const path of candidates) {
    // /bin is /usr/bin on merged-/usr systems: one CLI, not two.
    let resolved: string;
    try {
      resolved = realpathSync(path);
    } catch {
      continue;
    }
    if (real.has(resolved)) continue;
    real.add(resolved);
    const version = await cliVersion(path);
    if (!version) continue;
    seen.push(`${path}: ${version}`);
    if (!v1 && version.startsWith("aws-cli/1.") && path !== DEBIAN_AWS) v1 = { major: "v1", path, version };
    if (!v2 && version.startsWith("aws-cli/2.")) v2 = { major: "v2", path, version };
  }
  // v1 is "the `aws` on PATH": prefer PATH order, so only fall back to /usr/bin/aws if it is v1.
  if (!v1 && seen.some((s) => s.startsWith(`${DEBIAN_AWS}: aws-cli/1.`))) {
    v1 = {
      major: "v1",
      path: DEBIAN_AWS,
      version: seen.find((s) => s.startsWith(DEBIAN_AWS))!.slice(DEBIAN_AWS.length + 2),
    };
  }
  return { v1, v2, seen };
}

/** The process environment without any AWS_* variable. */
export function cleanEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!/^AWS_/i.test(k)) env[k] = v;
  return env;
}

export interface CliCredentials {
  accessKeyId: string;
  secretAccessKey: string;
}

/** Environment for one AWS CLI run: the given credentials and nothing else from AWS_*. */
export function cliEnv(dir: string, creds: CliCredentials | null): NodeJS.ProcessEnv {
  const config = join(dir, "aws-config");
  const credentials = join(dir, "aws-credentials");
  writeFileSync(config, "");
  writeFileSync(credentials, "");
  return {
    ...cleanEnv(),
    ...(creds ? { AWS_ACCESS_KEY_ID: creds.accessKeyId, AWS_SECRET_ACCESS_KEY: creds.secretAccessKey } : {}),
    AWS_CONFIG_FILE: config,
    AWS_SHARED_CREDENTIALS_FILE: credentials,
    AWS_MAX_ATTEMPTS: "1",
    AWS_PAGER: "",
  };
}

/** `aws events put-partner-events --endpoint-url <relay> --region us-east-1 <args>`. */
export function putPartnerEvents(
  cli: AwsCli,
  endpoint: string,
  env: NodeJS.ProcessEnv,
  args: readonly string[],
): Promise<ProcResult> {
  return run(
    cli.path,
    [
      "events",
      "put-partner-events",
      "--endpoint-url",
      endpoint,
      "--region",
      "us-east-1",
      "--cli-connect-timeout",
      "10",
      "--cli-read-timeout",
      "30",
      ...args,
    ],
    { env, timeoutMs: 60_000 },
  );
}
