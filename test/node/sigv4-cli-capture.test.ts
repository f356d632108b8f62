/**
 * Inbound SigV4 against real clients on a real socket: the AWS CLI v1 (botocore), boto3 and the
 * JS SDK v3 with its default Node HTTP handler send PutPartnerEvents to a node:http server on
 * 127.0.0.1 that verifies them with src/auth/sigv4.ts and answers as the relay would (a canned
 * 200, or errorResponse(err, "aws")), so the CLI's own error output is checked too.
 *
 * The CLI and boto3 tests skip, saying so, when `aws` / boto3 are not installed.
 * Run: npx vitest run --project node test/node/sigv4-cli-capture.test.ts
 */

import { execFile, spawnSync } from "node:child_process";
import { createServer, type IncomingMessage, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { EventBridgeClient, PutPartnerEventsCommand } from "@aws-sdk/client-eventbridge";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { generateSigV4KeyPair, parseSigV4, verifySigV4 } from "../../src/auth/sigv4.ts";
import { errorResponse, RelayError } from "../../src/errors.ts";

const KEY = generateSigV4KeyPair();
const ENTRIES = [
  { Source: "aws.partner/example.com/t/orders", DetailType: "Order Created", Detail: '{"id":1,"note":"überprüft"}' },
];
const BOTOCORE_SIGNED = ["content-type", "host", "x-amz-date", "x-amz-target"];

interface Captured {
  method: string;
  url: string;
  headers: Headers;
  body: Uint8Array;
}

function hasCommand(cmd: string, args: string[]): boolean {
  const r = spawnSync(cmd, args, { encoding: "utf8", timeout: 60_000 });
  return r.status === 0;
}
const HAS_AWS = hasCommand("aws", ["--version"]);
const HAS_BOTO3 = hasCommand("python3", ["-c", "import boto3"]);
if (!HAS_AWS) console.warn("sigv4-cli-capture: `aws` is not on PATH: the AWS CLI tests are skipped.");
if (!HAS_BOTO3) console.warn("sigv4-cli-capture: python3 with boto3 is not available: the boto3 test is skipped.");

/** Verifies what arrived with the module, as the front door would. */
async function verify(c: Captured, secretAccessKey: string): Promise<void> {
  const parsed = parseSigV4(c.headers, c.url);
  await verifySigV4({ ...c, parsed, secretAccessKey, now: Date.now() });
}

let server: Server;
let port = 0;
let serverSecret = KEY.secretAccessKey;
let captured: Captured[] = [];
let outcomes: (RelayError | "ok")[] = [];

async function readAll(req: IncomingMessage): Promise<Uint8Array> {
  const chunks: Buffer[] = [];
  for await (const c of req) chunks.push(c as Buffer);
  return new Uint8Array(Buffer.concat(chunks));
}

beforeAll(async () => {
  server = createServer(async (req, res) => {
    const headers = new Headers();
    for (let i = 0; i < req.rawHeaders.length; i += 2) headers.append(req.rawHeaders[i]!, req.rawHeaders[i + 1]!);
    const c: Captured = {
      method: req.method!,
      url: `http://127.0.0.1:${port}${req.url}`,
      headers,
      body: await readAll(req),
    };
    captured.push(c);
    let response: Response;
    try {
      await verify(c, serverSecret);
      outcomes.push("ok");
      response = new Response('{"FailedEntryCount":0,"Entries":[{"EventId":"x"}]}', {
        headers: { "content-type": "application/x-amz-json-1.1", "x-amzn-requestid": "req-1" },
      });
    } catch (e) {
      if (!(e instanceof RelayError)) throw e;
      outcomes.push(e);
      response = errorResponse(e, "aws", "req-1");
    }
    res.writeHead(response.status, Object.fromEntries(response.headers));
    res.end(Buffer.from(await response.arrayBuffer()));
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  port = (server.address() as AddressInfo).port;
});

afterAll(async () => {
  await new Promise<void>((resolve) => server.close(() => resolve()));
});

beforeEach(() => {
  serverSecret = KEY.secretAccessKey;
  captured = [];
  outcomes = [];
});

/** A hermetic environment: nothing from the developer's AWS setup leaks in. */
function awsEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith("AWS_")) env[k] = v;
  return {
    ...env,
    AWS_ACCESS_KEY_ID: KEY.accessKeyId,
    AWS_SECRET_ACCESS_KEY: KEY.secretAccessKey,
    AWS_MAX_ATTEMPTS: "1",
    AWS_RETRY_MODE: "standard",
    AWS_CONFIG_FILE: "/dev/null",
    AWS_SHARED_CREDENTIALS_FILE: "/dev/null",
    AWS_EC2_METADATA_DISABLED: "true",
    ...extra,
  };
}

function run(
  cmd: string,
  args: string[],
  env: NodeJS.ProcessEnv,
): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(cmd, args, { env, timeout: 60_000 }, (err, stdout, stderr) => {
      const code = err ? (typeof err.code === "number" ? err.code : 1) : 0;
      resolve({ code, stdout, stderr });
    });
  });
}

function cli(extraArgs: string[] = [], env: Record<string, string> = {}) {
  return run(
    "aws",
    [
      "events",
      "put-partner-events",
      "--endpoint-url",
      `http://127.0.0.1:${port}`,
      "--region",
      "us-east-1",
      "--entries",
      JSON.stringify(ENTRIES),
      ...extraArgs,
    ],
    awsEnv(env),
  );
}

/** The CLI's line for a refused call; standard retry mode inserts "(reached max retries: N)". */
function cliError(type: string, message: string): RegExp {
  const esc = (t: string) => t.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
  return new RegExp(
    `An error occurred \\(${esc(type)}\\) when calling the PutPartnerEvents operation( \\(reached max retries: \\d+\\))?: ${esc(message)}`,
  );
}

function onlyOutcome(): RelayError | "ok" {
  expect(outcomes).toHaveLength(1);
  return outcomes[0]!;
}

describe.skipIf(!HAS_AWS)(`the AWS CLI v1 on the wire${HAS_AWS ? "" : " (skipped: `aws` not on PATH)"}`, () => {
  it("verifies, host with port, botocore's signed headers", async () => {
    const r = await cli();
    expect(r.stderr).toBe("");
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout)).toEqual({ FailedEntryCount: 0, Entries: [{ EventId: "x" }] });
    expect(onlyOutcome()).toBe("ok");
    const c = captured[0]!;
    expect(c.headers.get("host")).toBe(`127.0.0.1:${port}`);
    expect(c.headers.get("user-agent")).toMatch(/^aws-cli\/1\./);
    const parsed = parseSigV4(c.headers);
    expect(parsed.signedHeaders).toEqual(BOTOCORE_SIGNED);
    expect(parsed).toMatchObject({ accessKeyId: KEY.accessKeyId, region: "us-east-1", service: "events" });
  });

  it("any client region verifies (the relay forwards to the tenant's region regardless)", async () => {
    const r = await run(
      "aws",
      [
        "events",
        "put-partner-events",
        "--endpoint-url",
        `http://127.0.0.1:${port}`,
        "--region",
        "ap-southeast-2",
        "--entries",
        JSON.stringify(ENTRIES),
      ],
      awsEnv(),
    );
    expect(r.code).toBe(0);
    expect(onlyOutcome()).toBe("ok");
    expect(parseSigV4(captured[0]!.headers).region).toBe("ap-southeast-2");
  });

  it("the captured request replayed with one body byte changed does not verify", async () => {
    await cli();
    const c = captured[0]!;
    await verify(c, KEY.secretAccessKey);
    const body = c.body.slice();
    body[body.length - 3] = body[body.length - 3]! ^ 0x20;
    const err = await verify({ ...c, body }, KEY.secretAccessKey).then(
      () => null,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(RelayError);
    expect((err as RelayError).code).toBe("signature_mismatch");
  });

  it("a wrong secret: the CLI prints InvalidSignatureException with AWS's message", async () => {
    serverSecret = generateSigV4KeyPair().secretAccessKey;
    const r = await cli();
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(
      cliError(
        "InvalidSignatureException",
        "The request signature we calculated does not match the signature you provided.",
      ),
    );
    expect(r.stderr).not.toContain(serverSecret);
  });

  it("--no-sign-request: MissingAuthenticationTokenException", async () => {
    const r = await cli(["--no-sign-request"]);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(cliError("MissingAuthenticationTokenException", "Missing Authentication Token"));
  });

  it("AWS_SESSION_TOKEN set: UnrecognizedClientException telling the user to unset it", async () => {
    const r = await cli([], { AWS_SESSION_TOKEN: "FwoGZXIvYXdzEXAMPLE" });
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(cliError("UnrecognizedClientException", "The relay issues long-term key pairs"));
    expect(r.stderr).toContain("Unset AWS_SESSION_TOKEN");
    expect(parseSigV4(captured[0]!.headers).signedHeaders).toContain("x-amz-security-token");
  });
});

describe.skipIf(!HAS_BOTO3)(
  `boto3 on the wire${HAS_BOTO3 ? "" : " (skipped: python3 with boto3 not available)"}`,
  () => {
    it("verifies", async () => {
      const script = [
        "import boto3, json, sys",
        "c = boto3.client('events', endpoint_url=sys.argv[1], region_name='eu-central-1')",
        "print(json.dumps(c.put_partner_events(Entries=json.loads(sys.argv[2]))['Entries']))",
      ].join("\n");
      const r = await run("python3", ["-c", script, `http://127.0.0.1:${port}`, JSON.stringify(ENTRIES)], awsEnv());
      expect(r.stderr).toBe("");
      expect(JSON.parse(r.stdout)).toEqual([{ EventId: "x" }]);
      expect(onlyOutcome()).toBe("ok");
      expect(parseSigV4(captured[0]!.headers).signedHeaders).toEqual(BOTOCORE_SIGNED);
    });
  },
);

describe("the JS SDK v3 with its default Node HTTP handler on the wire", () => {
  it("verifies (nine signed headers as Node sent them)", async () => {
    const client = new EventBridgeClient({
      region: "us-west-2",
      endpoint: `http://127.0.0.1:${port}`,
      credentials: { accessKeyId: KEY.accessKeyId, secretAccessKey: KEY.secretAccessKey },
      maxAttempts: 1,
    });
    const out = await client.send(new PutPartnerEventsCommand({ Entries: ENTRIES }));
    client.destroy();
    expect(out.Entries).toEqual([{ EventId: "x" }]);
    expect(onlyOutcome()).toBe("ok");
    expect(parseSigV4(captured[0]!.headers).signedHeaders).toContain("x-amz-content-sha256");
  });
});

const CAN_STRIP_TYPES = Boolean((process.features as { typescript?: unknown }).typescript);
describe.skipIf(!CAN_STRIP_TYPES)(
  `Node type stripping${CAN_STRIP_TYPES ? "" : " (skipped: this Node cannot strip types)"}`,
  () => {
    it("imports src/auth/sigv4.ts with no build step (erasable TypeScript only)", async () => {
      const r = await run(
        process.execPath,
        [
          "--input-type=module",
          "-e",
          "import { generateSigV4KeyPair, SIGV4_ACCESS_KEY_PATTERN } from './src/auth/sigv4.ts'; const p = generateSigV4KeyPair(); console.log(SIGV4_ACCESS_KEY_PATTERN.test(p.accessKeyId));",
        ],
        process.env,
      );
      expect(r.stdout.trim()).toBe("true");
      expect(r.code).toBe(0);
    });
  },
);
