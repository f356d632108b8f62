/**
 * The fake EventBridge over real HTTP on 127.0.0.1: bodies arrive byte-exact (signatures verify),
 * the AWS SDK's own Node transport works against it, `lost` drops the connection after recording,
 * the log says what happened, and the file runs as a CLI.
 */
import { spawn } from "node:child_process";
import { once } from "node:events";
import { EventBridgeClient, PutPartnerEventsCommand } from "@aws-sdk/client-eventbridge";
import { AwsClient } from "aws4fetch";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { FAKE_DEFAULT_CREDENTIAL, type ReceivedEvent } from "../../emulator/eventbridge.ts";
import { type FakeEventBridgeServer, startFakeEventBridgeServer } from "../../emulator/server.ts";

const REGION = "eu-west-1";
const SOURCE = "aws.partner/example.com/t42/orders";
const HEADERS = { "content-type": "application/x-amz-json-1.1", "x-amz-target": "AWSEvents.PutPartnerEvents" };
const signer = new AwsClient({ ...FAKE_DEFAULT_CREDENTIAL, service: "events", region: REGION, retries: 0 });

let server: FakeEventBridgeServer;
const lines: string[] = [];

beforeAll(async () => {
  server = await startFakeEventBridgeServer({ log: (line) => lines.push(line) });
});
afterAll(async () => {
  await server.close();
});
beforeEach(() => {
  server.fake.reset();
  lines.length = 0;
});

async function post(body: string | Uint8Array<ArrayBuffer>): Promise<Response> {
  const signed = await signer.sign(`${server.url}/`, { method: "POST", headers: HEADERS, body });
  return fetch(signed);
}

describe("startFakeEventBridgeServer", () => {
  it("listens on 127.0.0.1 and accepts an aws4fetch-signed request byte-exact", async () => {
    expect(server.url).toBe(`http://127.0.0.1:${server.port}`);
    const body = `{"Entries":[{"Time":1767323045,"Source":"${SOURCE}","DetailType":"Bestellung ✓","Detail":"{\\"id\\":\\"é€𝄞\\"}"}]}`;
    const res = await post(body);
    expect(res.status).toBe(200);
    const out = (await res.json()) as { FailedEntryCount: number; Entries: { EventId: string }[] };
    expect(out.FailedEntryCount).toBe(0);
    const id = out.Entries[0]!.EventId;
    expect(server.fake.events[0]?.entry.Detail).toBe('{"id":"é€𝄞"}');
    // The Host header (with its port) was signed and checked.
    expect(server.fake.calls[0]?.signedHeaders).toEqual(["host", "x-amz-date", "x-amz-target"]);
    expect(lines).toEqual([`event ${SOURCE} "Bestellung ✓" ${id}`]);

    const listed = (await (await fetch(`${server.url}/_fake/events`)).json()) as {
      events: ReceivedEvent[];
      total: number;
    };
    expect(listed.total).toBe(1);
    expect(listed.events[0]?.eventId).toBe(id);
  });

  it("verifies over the wire: a tampered body and bytes that are not UTF-8 are refused and logged", async () => {
    const signed = await signer.sign(`${server.url}/`, {
      method: "POST",
      headers: HEADERS,
      body: `{"Entries":[{"Source":"${SOURCE}","DetailType":"a","Detail":"{}"}]}`,
    });
    const tampered = await fetch(`${server.url}/`, {
      method: "POST",
      headers: signed.headers,
      body: `{"Entries":[{"Source":"${SOURCE}","DetailType":"b","Detail":"{}"}]}`,
    });
    expect(tampered.status).toBe(400);
    expect(((await tampered.json()) as { __type: string }).__type).toBe("InvalidSignatureException");

    // Signed raw bytes with an invalid UTF-8 sequence: the signature holds, so the bytes arrived
    // untouched, and the body is then refused as not UTF-8.
    const raw = new Uint8Array([
      ...new TextEncoder().encode('{"Entries":[{"Source":"'),
      0xff,
      ...new TextEncoder().encode('"}]}'),
    ]);
    const bad = await post(raw);
    expect(bad.status).toBe(400);
    expect(await bad.json()).toEqual({
      __type: "SerializationException",
      message: "The request body is not valid UTF-8.",
    });
    expect(lines).toEqual([
      expect.stringMatching(/^rejected 400 InvalidSignatureException: /),
      expect.stringMatching(/^rejected 400 SerializationException: /),
    ]);
  });

  it("serves the AWS SDK's own Node HTTP transport", async () => {
    const client = new EventBridgeClient({
      region: REGION,
      endpoint: server.url,
      credentials: { ...FAKE_DEFAULT_CREDENTIAL },
      maxAttempts: 1,
    });
    try {
      const out = await client.send(
        new PutPartnerEventsCommand({
          Entries: [
            { Time: new Date(), Source: SOURCE, DetailType: "Order Created", Detail: '{"id":1}' },
            { Source: "not-a-partner-source", DetailType: "x", Detail: "{}" },
          ],
        }),
      );
      expect(out.FailedEntryCount).toBe(1);
      expect(out.Entries?.[0]?.EventId).toBe(server.fake.events[0]?.eventId);
      expect(out.Entries?.[1]?.ErrorCode).toBe("InvalidArgument");
      expect(server.fake.calls[0]?.signedHeaders).toEqual(
        expect.arrayContaining(["content-length", "host", "x-amz-content-sha256"]),
      );
    } finally {
      client.destroy();
    }
  });

  it("lost: records the events, then destroys the socket", async () => {
    const inject = await fetch(`${server.url}/_fake/faults`, {
      method: "POST",
      body: JSON.stringify({ type: "lost" }),
    });
    expect(inject.status).toBe(204);
    const err = await post(`{"Entries":[{"Source":"${SOURCE}","DetailType":"a","Detail":"{}"}]}`).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(TypeError);
    const listed = (await (await fetch(`${server.url}/_fake/events`)).json()) as { total: number };
    expect(listed.total).toBe(1);
    expect(lines).toContainEqual(expect.stringMatching(/^fault lost 0/));
    // The server keeps serving.
    expect((await post(`{"Entries":[{"Source":"${SOURCE}","DetailType":"a","Detail":"{}"}]}`)).status).toBe(200);
  });

  it("refuses to bind anything but 127.0.0.1", async () => {
    await expect(startFakeEventBridgeServer({ host: "0.0.0.0" })).rejects.toThrow(/127\.0\.0\.1 only/);
  });
});

describe("eventbridge-server.ts as a CLI", () => {
  it("prints its URL and serves signed requests with the given key pair", async () => {
    const child = spawn(
      process.execPath,
      [
        "emulator/server.ts",
        "--port",
        "0",
        "--access-key-id",
        "AKIDCLITEST000000001",
        "--secret-access-key",
        "cli-test-secret",
        "--quiet",
      ],
      { stdio: ["ignore", "pipe", "pipe"] },
    );
    try {
      let out = "";
      child.stdout.setEncoding("utf8");
      const url = await new Promise<string>((resolve, reject) => {
        child.stdout.on("data", (chunk: string) => {
          out += chunk;
          const m = /listening on (http:\/\/127\.0\.0\.1:\d+)/.exec(out);
          if (m) resolve(m[1]!);
        });
        child.once("exit", (code) => reject(new Error(`exited ${code}: ${out}`)));
      });
      expect(out).not.toContain("cli-test-secret");
      const cli = new AwsClient({
        accessKeyId: "AKIDCLITEST000000001",
        secretAccessKey: "cli-test-secret",
        service: "events",
        region: REGION,
        retries: 0,
      });
      const res = await fetch(
        await cli.sign(`${url}/`, {
          method: "POST",
          headers: HEADERS,
          body: `{"Entries":[{"Source":"${SOURCE}","DetailType":"a","Detail":"{}"}]}`,
        }),
      );
      expect(res.status).toBe(200);
      const def = await fetch(
        await signer.sign(`${url}/`, { method: "POST", headers: HEADERS, body: '{"Entries":[]}' }),
      );
      expect(((await def.json()) as { __type: string }).__type).toBe("UnrecognizedClientException");
    } finally {
      child.kill("SIGTERM");
      if (child.exitCode === null) await once(child, "exit");
    }
  });
});
