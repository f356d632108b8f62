/**
 * moto_server (an AWS emulator nobody here wrote) for the moto suite: started on a free loopback
 * port with signature checking switched on after the first N calls, and a small signed client for
 * the set-up calls (IAM query API, EventBridge JSON 1.1, SQS JSON 1.0), made with aws4fetch.
 * Facts about moto 5.2.1: /work/shared/reference/putpartnerevents.md, "moto 5.2.1".
 */
import { AwsClient } from "aws4fetch";
import { freePort, onPath, type Suite, sleep, startDaemon } from "./harness.ts";

export interface Moto {
  url: string;
  port: number;
  /** moto's output (request log lines). */
  log: string[];
}

export interface AwsKey {
  accessKeyId: string;
  secretAccessKey: string;
}

/** The reason to skip when moto_server is not installed, or null. */
export function motoMissing(): string | null {
  return onPath("moto_server") ? null : 'moto_server not on PATH (pip install "moto[server]")';
}

/**
 * Starts `moto_server -H 127.0.0.1 -p <free port>` with INITIAL_NO_AUTH_ACTION_COUNT=freeCalls:
 * the first `freeCalls` authenticated API calls are not checked, every later one must carry a
 * valid SigV4 signature made with an IAM key that moto issued. Stopped at clean-up.
 */
export async function startMoto(s: Suite, freeCalls: number): Promise<Moto> {
  const bin = onPath("moto_server");
  if (!bin) throw new Error("moto_server not on PATH");
  const env: NodeJS.ProcessEnv = { ...process.env, INITIAL_NO_AUTH_ACTION_COUNT: String(freeCalls) };
  // MOTO_ACCOUNT_ID would override the account of every request (the customer/partner split needs it unset).
  delete env.MOTO_ACCOUNT_ID;
  for (const k of Object.keys(env)) if (/^AWS_/i.test(k)) delete env[k];
  const log: string[] = [];
  let lastError = "";
  for (let attempt = 0; attempt < 3; attempt++) {
    const port = await freePort();
    const daemon = startDaemon(bin, ["-H", "127.0.0.1", "-p", String(port)], {
      env,
      onLine: (l) => {
        log.push(l);
        if (log.length > 2000) log.splice(0, 1000);
      },
    });
    s.defer("stop moto_server", () => daemon.stop());
    const url = `http://127.0.0.1:${port}`;
    const deadline = Date.now() + 30_000;
    while (Date.now() < deadline && !daemon.exited()) {
      try {
        // /moto-api/ is moto's own dashboard API: not an AWS call, so it uses none of the free calls.
        const res = await fetch(`${url}/moto-api/data.json`, { signal: AbortSignal.timeout(2_000) });
        await res.body?.cancel();
        if (res.ok) return { url, port, log };
      } catch {
        /* not yet */
      }
      await sleep(200);
    }
    lastError = daemon.exited()
      ? `moto_server exited: ${log.slice(-5).join(" | ")}`
      : "moto_server did not answer within 30 s";
    await daemon.stop();
  }
  throw new Error(lastError);
}

/** A client for one account: with `asAccount`, moto takes the account from x-moto-account-id. */
export class MotoClient {
  readonly #aws: AwsClient;
  readonly #url: string;
  readonly #account: string | undefined;

  constructor(url: string, key: AwsKey, asAccount?: string) {
    this.#aws = new AwsClient({ ...key, region: "us-east-1", retries: 0 });
    this.#url = url;
    this.#account = asAccount;
  }

  async #send(service: string, headers: Record<string, string>, body: string): Promise<Response> {
    return this.#aws.fetch(`${this.#url}/`, {
      method: "POST",
      headers: { ...headers, ...(this.#account ? { "x-moto-account-id": this.#account } : {}) },
      body,
      aws: { service, region: "us-east-1", allHeaders: true },
      signal: AbortSignal.timeout(15_000),
    });
  }

  /** IAM query API; returns the XML answer (throws on a non-2xx answer). */
  async iam(action: string, params: Record<string, string>): Promise<string> {
    const body = new URLSearchParams({ Action: action, Version: "2010-05-08", ...params }).toString();
    const res = await this.#send("iam", { "content-type": "application/x-www-form-urlencoded; charset=utf-8" }, body);
    const text = await res.text();
    if (!res.ok) throw new Error(`IAM ${action}: HTTP ${res.status} ${text.slice(0, 500)}`);
    return text;
  }

  /** EventBridge JSON 1.1; returns the raw response (callers check the status). */
  eventsRaw(action: string, input: unknown): Promise<Response> {
    return this.#send(
      "events",
      { "content-type": "application/x-amz-json-1.1", "x-amz-target": `AWSEvents.${action}` },
      JSON.stringify(input),
    );
  }

  // biome-ignore lint/suspicious/noExplicitAny: parsed JSON; the tests assert the fields they use
  async events<T = any>(action: string, input: unknown): Promise<T> {
    const res = await this.eventsRaw(action, input);
    const text = await res.text();
    if (!res.ok) throw new Error(`events ${action}: HTTP ${res.status} ${text.slice(0, 500)}`);
    return (text ? JSON.parse(text) : {}) as T;
  }

  /** SQS JSON 1.0. */
  // biome-ignore lint/suspicious/noExplicitAny: parsed JSON; the tests assert the fields they use
  async sqs<T = any>(action: string, input: unknown): Promise<T> {
    const res = await this.#send(
      "sqs",
      { "content-type": "application/x-amz-json-1.0", "x-amz-target": `AmazonSQS.${action}` },
      JSON.stringify(input),
    );
    const text = await res.text();
    if (!res.ok) throw new Error(`sqs ${action}: HTTP ${res.status} ${text.slice(0, 500)}`);
    return (text ? JSON.parse(text) : {}) as T;
  }
}

/** `<Tag>value</Tag>` from an XML answer. */
export function xmlValue(xml: string, tag: string): string {
  const m = new RegExp(`<${tag}>([^<]*)</${tag}>`).exec(xml);
  if (!m) throw new Error(`no <${tag}> in ${xml.slice(0, 300)}`);
  return m[1]!;
}

/**
 * In `account` (free calls, picked by x-moto-account-id): an IAM user with an inline policy and
 * an access key. Uses exactly IAM_SETUP_CALLS of moto's free calls.
 */
export async function createIamKey(url: string, account: string, user: string, actions: string[]): Promise<AwsKey> {
  const anon = new MotoClient(
    url,
    { accessKeyId: "AKIAIOSFODNN7EXAMPLE", secretAccessKey: "not-checked-during-the-free-calls" },
    account,
  );
  await anon.iam("CreateUser", { UserName: user });
  await anon.iam("PutUserPolicy", {
    UserName: user,
    PolicyName: "e2e",
    PolicyDocument: JSON.stringify({
      Version: "2012-10-17",
      Statement: [{ Effect: "Allow", Action: actions, Resource: "*" }],
    }),
  });
  const xml = await anon.iam("CreateAccessKey", { UserName: user });
  return { accessKeyId: xmlValue(xml, "AccessKeyId"), secretAccessKey: xmlValue(xml, "SecretAccessKey") };
}

/** moto calls createIamKey spends. */
export const IAM_SETUP_CALLS = 3;

/**
 * In `account` (free calls): a role that trusts `trustedPrincipal` on condition of `externalId`,
 * with an inline policy allowing `actions`. Uses exactly ROLE_SETUP_CALLS of moto's free calls.
 * moto 5.2.1 does not evaluate trust policies (any caller allowed sts:AssumeRole gets credentials,
 * whatever the external id); it does check the caller's signature and policy, and the session
 * token and the role's policy on every call made with the issued credentials.
 */
export async function createRole(
  url: string,
  account: string,
  name: string,
  trustedPrincipal: string,
  externalId: string,
  actions: string[],
): Promise<string> {
  const anon = new MotoClient(
    url,
    { accessKeyId: "AKIAIOSFODNN7EXAMPLE", secretAccessKey: "not-checked-during-the-free-calls" },
    account,
  );
  const xml = await anon.iam("CreateRole", {
    RoleName: name,
    AssumeRolePolicyDocument: JSON.stringify({
      Version: "2012-10-17",
      Statement: [
        {
          Effect: "Allow",
          Principal: { AWS: trustedPrincipal },
          Action: "sts:AssumeRole",
          Condition: { StringEquals: { "sts:ExternalId": externalId } },
        },
      ],
    }),
  });
  await anon.iam("PutRolePolicy", {
    RoleName: name,
    PolicyName: "e2e",
    PolicyDocument: JSON.stringify({
      Version: "2012-10-17",
      Statement: [{ Effect: "Allow", Action: actions, Resource: "*" }],
    }),
  });
  return xmlValue(xml, "Arn");
}

/** moto calls createRole spends. */
export const ROLE_SETUP_CALLS = 2;
