/**
 * The local relay's front: a small node:http server on the user-facing port (127.0.0.1 only) that
 * forwards every request to `wrangler dev` on an internal loopback port (scripts/lib/local-relay.ts).
 *
 * Why: in front of the Worker, miniflare's entry Worker pumps each request body into it, and when
 * that pump fails (a body that ends before its Content-Length, broken chunk framing, a chunked
 * body cut off) it answers `500 text/plain` with its own stack trace
 * (node_modules/miniflare/dist/src/workers/core/entry.worker.js, the `catch` around
 * `service.fetch(request)`) before the relay's `400 body_incomplete` can count. Wrangler and
 * miniflare have no option to change that, so this front sees the framing first: when Node's HTTP
 * parser reports a broken body ('clientError', e.g. HPE_INVALID_CHUNK_SIZE or an EOF inside the
 * body) or the body ends early, it answers the relay's documented 400 itself (src/errors.ts:
 * problem+json `body_incomplete` on the JSON API, AWS JSON `SerializationException` with
 * x-amzn-RequestId on the AWS door, `POST /`) and never lets the cut-off body reach wrangler.
 *
 * Everything else passes through unchanged: method, path and query, every header as the client
 * sent it (names, order, values: Host included, which SigV4 signs), the body streamed both ways.
 * If wrangler is unreachable or its answer breaks off, the client's connection is cut (as it was
 * when the client talked to wrangler directly); the front never invents a 5xx.
 */

import { randomUUID } from "node:crypto";
import {
  Agent,
  createServer,
  type IncomingMessage,
  request,
  type Server,
  type ServerResponse,
  STATUS_CODES,
} from "node:http";
import type { AddressInfo, Socket } from "node:net";
import { errorResponse, errors, type RelayError } from "../../src/errors.ts";

export interface LocalFront {
  port: number;
  /** Where to forward; set once wrangler dev is ready (until then the front cuts connections). */
  setTarget(port: number): void;
  /** Stops listening and cuts every open connection (a stop or a crash of the runtime). */
  close(): Promise<void>;
}

/** Larger than Node's 16 KiB default, so hostile header sizes reach the relay as before. */
const MAX_HEADER_BYTES = 128 * 1024;

interface InFlight {
  req: IncomingMessage;
  res: ServerResponse;
  /** The request to wrangler, destroyed when the client's body breaks. */
  upstream?: ReturnType<typeof request>;
  /** Set once an answer (the relay's or the front's own) has started. */
  answered: boolean;
  /** Set when the front answers itself (the request to wrangler is then destroyed on purpose). */
  own?: boolean;
}

/** Listens on 127.0.0.1:`port` (0: any free port). Rejects with EADDRINUSE if it is taken. */
export async function startLocalFront(port: number): Promise<LocalFront> {
  let target: number | undefined;
  const agent = new Agent({ keepAlive: true, maxSockets: Number.POSITIVE_INFINITY });
  const inFlight = new WeakMap<Socket, InFlight>();
  const sockets = new Set<Socket>();

  const server: Server = createServer({
    maxHeaderSize: MAX_HEADER_BYTES,
    // The relay answers a missing Host itself; Node's own 400 would hide that.
    requireHostHeader: false,
    // No timeouts of the front's own: wrangler dev had none on the user's port either.
    requestTimeout: 0,
    headersTimeout: 0,
    keepAliveTimeout: 5_000,
  });

  // A client that half-closes after its request still gets the answer (Node's default would end
  // the connection at the FIN and drop it; wrangler dev answered).
  (server as Server & { httpAllowHalfOpen: boolean }).httpAllowHalfOpen = true;

  server.on("connection", (socket: Socket) => {
    sockets.add(socket);
    socket.once("close", () => sockets.delete(socket));
  });

  server.on("request", (req: IncomingMessage, res: ServerResponse) => {
    const socket = req.socket;
    const flight: InFlight = { req, res, answered: false };
    inFlight.set(socket, flight);
    res.once("finish", () => {
      if (inFlight.get(socket) === flight) inFlight.delete(socket);
    });

    // The client's body ended before it was complete (half-close or reset before Content-Length,
    // a chunked body cut off). Node reports a broken body on the socket ('clientError') too.
    const onBroken = () => {
      if (!req.complete) bodyBroken(flight, "the client's body ended early");
    };
    req.once("aborted", onBroken);
    req.once("error", onBroken);

    if (target === undefined) {
      socket.destroy();
      return;
    }
    const upstream = request({
      host: "127.0.0.1",
      port: target,
      method: req.method,
      path: req.url,
      // The raw list: names, order and values as the client sent them (Host included). Given as an
      // array, Node adds no header of its own (no Host, no Connection).
      headers: req.rawHeaders,
      agent,
      setHost: false,
    });
    flight.upstream = upstream;
    upstream.on("response", (answer) => {
      if (flight.answered) {
        answer.resume();
        return;
      }
      flight.answered = true;
      res.writeHead(answer.statusCode ?? 502, answer.statusMessage, answer.rawHeaders);
      answer.pipe(res);
      answer.once("aborted", () => socket.destroy());
      answer.once("error", () => socket.destroy());
    });
    upstream.on("error", () => {
      // wrangler unreachable or gone mid-answer: cut the client's connection, as wrangler would.
      if (!flight.own && !res.writableEnded) socket.destroy();
    });
    req.pipe(upstream);
  });

  server.on("clientError", (err: NodeJS.ErrnoException, socket: Socket) => {
    const flight = inFlight.get(socket);
    if (flight && !flight.req.complete) {
      bodyBroken(flight, `HTTP parser: ${err.code ?? err.message}`);
      return;
    }
    if (flight) {
      // Bytes after a complete request (e.g. a Content-Length shorter than the body): the answer in
      // flight stands; the connection ends after it.
      flight.res.once("finish", () => socket.destroySoon());
      return;
    }
    if (!socket.writable || err.code === "ECONNRESET") {
      socket.destroy();
      return;
    }
    // Nothing parseable as a request: the relay's invalid_request (problem+json, the default door).
    const detail =
      err.code === "HPE_HEADER_OVERFLOW"
        ? `The request's headers are larger than ${MAX_HEADER_BYTES} bytes.`
        : "The request is not valid HTTP/1.1.";
    void writeRaw(socket, errors.invalidRequest(detail), "problem");
  });

  /** The client's body broke: answer body_incomplete (unless an answer already started) and close. */
  function bodyBroken(flight: InFlight, why: string): void {
    const socket = flight.req.socket;
    if (flight.answered) {
      // The relay answered before reading the body (e.g. a refused key): that answer stands.
      flight.res.once("finish", () => socket.destroySoon());
      return;
    }
    flight.answered = true;
    flight.own = true;
    flight.upstream?.destroy();
    const door = isAwsDoor(flight.req) ? "aws" : "problem";
    // A pipelined request behind another answer still in flight: writing now would corrupt it.
    const current = (socket as Socket & { _httpMessage?: unknown })._httpMessage;
    if (!socket.writable || (current && current !== flight.res)) {
      socket.destroy();
      return;
    }
    void writeRaw(socket, errors.bodyIncomplete(why), door);
  }

  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, "127.0.0.1", () => {
      server.removeListener("error", reject);
      resolve();
    });
  });

  return {
    port: (server.address() as AddressInfo).port,
    setTarget(p: number) {
      target = p;
    },
    close() {
      return new Promise<void>((resolve) => {
        server.close(() => resolve());
        for (const s of sockets) s.destroy();
        agent.destroy();
      });
    },
  };
}

/** The AWS front door is `POST /` (any query), as src/ingest/aws-api.ts routes it. */
function isAwsDoor(req: IncomingMessage): boolean {
  return req.method === "POST" && (req.url ?? "").split("?")[0] === "/";
}

/**
 * Writes the relay's error response (src/errors.ts builds it, with a fresh request id as the
 * Worker would) straight onto the socket, then closes it: after a broken body, nothing more on
 * this connection can be trusted.
 */
async function writeRaw(socket: Socket, err: RelayError, door: "aws" | "problem"): Promise<void> {
  const response = errorResponse(err, door, randomUUID());
  const body = Buffer.from(await response.text());
  const lines = [`HTTP/1.1 ${response.status} ${STATUS_CODES[response.status] ?? "Error"}`];
  response.headers.forEach((value, name) => {
    lines.push(`${name}: ${value}`);
  });
  lines.push(`content-length: ${body.length}`, "connection: close", "", "");
  if (!socket.writable) {
    socket.destroy();
    return;
  }
  socket.end(Buffer.concat([Buffer.from(lines.join("\r\n"), "latin1"), body]));
}
