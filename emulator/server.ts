/**
 * The fake EventBridge over HTTP, for `npm start`, the benchmark and Node tests. Node only.
 *
 *   node emulator/server.ts --port 4010 [--access-key-id X --secret-access-key Y]
 *
 * Binds 127.0.0.1 only. Converts node:http to a fetch Request (the body's bytes exactly as
 * received, the Host header as the URL's host) and the fake's Response back. A `lost` fault
 * destroys the socket after the events were recorded.
 */
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { pathToFileURL } from "node:url";
import { parseArgs } from "node:util";
import {
  type CallRecord,
  FAKE_DEFAULT_CREDENTIAL,
  type FakeCredential,
  FakeEventBridge,
  LostResponseError,
  type ReceivedEvent,
} from "./eventbridge.ts";
import { demoRole, FAKE_RELAY_IDENTITY } from "./sts.ts";

/** The only address the fake listens on: it accepts any request signed with a test key. */
const LOOPBACK = "127.0.0.1";

export interface FakeEventBridgeServerOptions {
  /** Only "127.0.0.1" is accepted. */
  host?: string;
  /** 0 (default) picks a free port. */
  port?: number;
  /** Default: a new fake that knows FAKE_DEFAULT_CREDENTIAL, and FAKE_RELAY_IDENTITY with the demo role (STS). */
  fake?: FakeEventBridge;
  /** One line per received event and per rejected or faulted call. */
  log?: (line: string) => void;
}

export interface FakeEventBridgeServer {
  url: string;
  port: number;
  fake: FakeEventBridge;
  close(): Promise<void>;
}

export async function startFakeEventBridgeServer(
  opts: FakeEventBridgeServerOptions = {},
): Promise<FakeEventBridgeServer> {
  const host = opts.host ?? LOOPBACK;
  if (host !== LOOPBACK) throw new Error(`the fake EventBridge binds ${LOOPBACK} only, not ${host}`);
  const fake =
    opts.fake ??
    new FakeEventBridge({
      credentials: [FAKE_DEFAULT_CREDENTIAL, { ...FAKE_RELAY_IDENTITY }],
      sts: { roles: [demoRole()] },
    });
  const log = opts.log;
  const unsubscribe = log ? fake.onCall((call, accepted) => logCall(log, call, accepted)) : () => {};

  let port = 0;
  const server = createServer((req, res) => {
    handle(fake, req, res, port, log).catch((err: unknown) => {
      log?.(`internal error: ${err instanceof Error ? err.message : String(err)}`);
      res.destroy();
    });
  });
  server.keepAliveTimeout = 5_000;
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(opts.port ?? 0, host, () => {
      server.off("error", reject);
      resolve();
    });
  });
  port = (server.address() as AddressInfo).port;
  const url = `http://${host}:${port}`;
  return {
    url,
    port,
    fake,
    close: () =>
      new Promise<void>((resolve, reject) => {
        unsubscribe();
        server.close((err) => (err ? reject(err) : resolve()));
        server.closeAllConnections();
      }),
  };
}

async function handle(
  fake: FakeEventBridge,
  req: IncomingMessage,
  res: ServerResponse,
  port: number,
  log: ((line: string) => void) | undefined,
): Promise<void> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  const body = Buffer.concat(chunks);

  const headers = new Headers();
  for (let i = 0; i + 1 < req.rawHeaders.length; i += 2) {
    headers.append(req.rawHeaders[i]!, req.rawHeaders[i + 1]!);
  }
  const hostHeader = req.headers.host ?? `${LOOPBACK}:${port}`;
  const target = req.url ?? "/";
  const url = target.startsWith("/") ? `http://${hostHeader}${target}` : target;
  const method = req.method ?? "GET";
  let request: Request;
  try {
    request = new Request(url, {
      method,
      headers,
      ...(method === "GET" || method === "HEAD" ? {} : { body: new Uint8Array(body) }),
    });
  } catch (err) {
    res.writeHead(400, { "content-type": "text/plain" }).end("bad request\n");
    log?.(`unparseable request: ${err instanceof Error ? err.message : String(err)}`);
    return;
  }

  let response: Response;
  try {
    response = await fake.fetch(request);
  } catch (err) {
    if (err instanceof LostResponseError) {
      res.destroy();
      return;
    }
    log?.(`fake failed: ${err instanceof Error ? err.message : String(err)}`);
    res
      .writeHead(500, { "content-type": "application/x-amz-json-1.1" })
      .end(JSON.stringify({ __type: "InternalFailure", message: "The fake EventBridge failed." }));
    return;
  }
  const out = Buffer.from(await response.arrayBuffer());
  const outHeaders: Record<string, string> = {};
  response.headers.forEach((value, name) => {
    outHeaders[name] = value;
  });
  if (response.status !== 204 && response.status !== 304) outHeaders["content-length"] = String(out.byteLength);
  res.writeHead(response.status, outHeaders);
  res.end(out);
}

function logCall(log: (line: string) => void, call: CallRecord, accepted: readonly ReceivedEvent[]): void {
  for (const e of accepted) {
    log(`event ${e.entry.Source ?? "-"} "${e.entry.DetailType ?? "-"}" ${e.eventId}`);
  }
  if (call.outcome === "rejected") {
    log(`rejected ${call.status} ${call.errorType ?? "-"}: ${call.reason ?? ""}`);
  } else if (call.outcome === "fault") {
    log(`fault ${call.fault ?? "-"} ${call.status} ${call.errorType ?? ""}`.trimEnd());
  }
  if (call.failedEntryCount) log(`failed entries ${call.failedEntryCount}/${call.entryCount}`);
}

// ---- CLI ---------------------------------------------------------------------------------------

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      port: { type: "string", default: "4010" },
      "access-key-id": { type: "string" },
      "secret-access-key": { type: "string" },
      "session-token": { type: "string" },
      region: { type: "string" },
      "max-batch-bytes": { type: "string" },
      seed: { type: "string" },
      quiet: { type: "boolean", default: false },
    },
    strict: true,
  });
  const port = Number(values.port);
  if (!Number.isInteger(port) || port < 0 || port > 65_535) throw new Error(`--port: not a port: ${values.port}`);
  if (Boolean(values["access-key-id"]) !== Boolean(values["secret-access-key"])) {
    throw new Error("give --access-key-id and --secret-access-key together");
  }
  const credential: FakeCredential = values["access-key-id"]
    ? {
        accessKeyId: values["access-key-id"],
        secretAccessKey: values["secret-access-key"]!,
        ...(values["session-token"] ? { sessionToken: values["session-token"] } : {}),
      }
    : FAKE_DEFAULT_CREDENTIAL;
  const maxBatchBytes = values["max-batch-bytes"] ? Number(values["max-batch-bytes"]) : undefined;
  const fake = new FakeEventBridge({
    credentials: [credential],
    ...(values.region ? { region: values.region } : {}),
    ...(maxBatchBytes !== undefined ? { maxBatchBytes } : {}),
    ...(values.seed ? { seed: Number(values.seed) } : {}),
  });
  const server = await startFakeEventBridgeServer({
    port,
    fake,
    ...(values.quiet ? {} : { log: (line: string) => console.log(`${new Date().toISOString()} ${line}`) }),
  });
  // The key id only: never the secret.
  console.log(
    `Fake EventBridge listening on ${server.url} (access key id ${credential.accessKeyId}; events at ${server.url}/_fake/)`,
  );
  const stop = () => {
    server.close().then(
      () => process.exit(0),
      () => process.exit(1),
    );
  };
  process.once("SIGINT", stop);
  process.once("SIGTERM", stop);
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  main().catch((err: unknown) => {
    console.error(err instanceof Error ? err.message : err);
    process.exit(1);
  });
}
