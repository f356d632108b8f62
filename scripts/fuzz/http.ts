/**
 * Two ways to put a request on the wire: node:http (keep-alive, any header, a body of any length,
 * chunked or with a Content-Length) and a raw socket for what no HTTP client sends on purpose (a
 * Content-Length that lies, a body cut off by a half-close, broken chunk framing).
 */
import { Agent, request } from "node:http";
import { connect } from "node:net";

/** One request's longest wait for an answer, in ms. */
const ANSWER_TIMEOUT_MS = 30_000;

export interface Answer {
  status: number;
  headers: Record<string, string>;
  body: string;
  /** Set when no HTTP answer came (reset, timeout); status is 0 then. */
  error?: string;
}

export interface WireRequest {
  method: string;
  path: string;
  headers: Record<string, string>;
  /** Undefined: no body. */
  body?: Uint8Array;
  /** Send the body chunked (no Content-Length), in pieces of this many bytes. */
  chunked?: number;
  /** On a new connection of its own (for requests a server answers by closing the connection). */
  fresh?: boolean;
}

export function makeAgent(maxSockets: number): Agent {
  return new Agent({ keepAlive: true, maxSockets });
}

/**
 * Sends once; when a kept-alive socket turns out to have been closed by the server meanwhile
 * (ECONNRESET / EPIPE on a reused socket: the race every HTTP client has), once more on a new
 * connection, as Node's documentation advises. A reset on a fresh connection is an answer missing.
 */
export async function send(agent: Agent, port: number, r: WireRequest): Promise<Answer> {
  const first = await sendOnce(r.fresh ? false : agent, port, r);
  if (first.reusedSocketReset) return sendOnce(false, port, r);
  return first;
}

function sendOnce(
  agent: Agent | false,
  port: number,
  r: WireRequest,
): Promise<Answer & { reusedSocketReset?: boolean }> {
  return new Promise((resolve) => {
    const headers: Record<string, string> = { ...r.headers };
    if (r.body !== undefined && !r.chunked && !Object.keys(headers).some((h) => h.toLowerCase() === "content-length")) {
      headers["content-length"] = String(r.body.byteLength);
    }
    let done = false;
    const finish = (a: Answer & { reusedSocketReset?: boolean }) => {
      if (done) return;
      done = true;
      resolve(a);
    };
    let req: ReturnType<typeof request>;
    try {
      req = request(
        { host: "127.0.0.1", port, method: r.method, path: r.path, headers, agent, timeout: ANSWER_TIMEOUT_MS },
        (res) => {
          const chunks: Buffer[] = [];
          res.on("data", (c: Buffer) => chunks.push(c));
          res.on("end", () =>
            finish({
              status: res.statusCode ?? 0,
              headers: flatten(res.headers),
              body: Buffer.concat(chunks).toString("utf8"),
            }),
          );
          res.on("error", (e) => finish({ status: 0, headers: {}, body: "", error: `response: ${e.message}` }));
        },
      );
    } catch (e) {
      // node:http refused the request itself (an invalid header): nothing reached the relay.
      finish({ status: -1, headers: {}, body: "", error: `client refused: ${(e as Error).message}` });
      return;
    }
    req.on("timeout", () => req.destroy(new Error("timeout")));
    req.on("error", (e) => {
      const code = (e as { code?: string }).code;
      const reused = req.reusedSocket && (code === "ECONNRESET" || code === "EPIPE");
      finish({ status: 0, headers: {}, body: "", error: e.message, ...(reused ? { reusedSocketReset: true } : {}) });
    });
    if (r.body === undefined) req.end();
    else if (r.chunked) {
      for (let i = 0; i < r.body.byteLength; i += r.chunked) req.write(r.body.subarray(i, i + r.chunked));
      req.end();
    } else req.end(r.body);
  });
}

/**
 * Writes `head` and `body` as given on a fresh connection; `halfClose` then ends the write side
 * (FIN) so the server sees the body end early. Reads the answer until the server closes.
 */
export function sendRaw(port: number, bytes: Uint8Array, halfClose: boolean): Promise<Answer> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    let done = false;
    const s = connect({ host: "127.0.0.1", port });
    const finish = (err?: string) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      s.destroy();
      resolve(parseRaw(Buffer.concat(chunks), err));
    };
    const timer = setTimeout(() => finish("timeout"), ANSWER_TIMEOUT_MS);
    s.on("connect", () => {
      s.write(bytes);
      if (halfClose) s.end();
    });
    s.on("data", (c: Buffer) => {
      chunks.push(c);
      // One answer is all we want: stop once it is complete.
      const a = parseRaw(Buffer.concat(chunks));
      if (a.status > 0 && !a.error) finish();
    });
    s.on("end", () => finish());
    s.on("error", (e) => finish(e.message));
  });
}

function parseRaw(buf: Buffer, err?: string): Answer {
  const headEnd = buf.indexOf("\r\n\r\n");
  if (headEnd < 0) return { status: 0, headers: {}, body: "", error: err ?? "no answer" };
  const lines = buf.subarray(0, headEnd).toString("latin1").split("\r\n");
  const m = /^HTTP\/1\.[01] (\d{3})/.exec(lines[0] ?? "");
  if (!m) return { status: 0, headers: {}, body: "", error: "not HTTP" };
  const headers: Record<string, string> = {};
  for (const l of lines.slice(1)) {
    const i = l.indexOf(":");
    if (i > 0) headers[l.slice(0, i).trim().toLowerCase()] = l.slice(i + 1).trim();
  }
  let rest = buf.subarray(headEnd + 4);
  if (headers["transfer-encoding"]?.toLowerCase() === "chunked") {
    const out: Buffer[] = [];
    for (;;) {
      const nl = rest.indexOf("\r\n");
      if (nl < 0) return { status: 0, headers, body: "", error: err ?? "incomplete chunked answer" };
      const n = Number.parseInt(rest.subarray(0, nl).toString("latin1"), 16);
      if (!Number.isFinite(n)) return { status: 0, headers, body: "", error: "bad chunk" };
      if (n === 0) break;
      if (rest.byteLength < nl + 2 + n + 2) return { status: 0, headers, body: "", error: err ?? "incomplete chunk" };
      out.push(rest.subarray(nl + 2, nl + 2 + n));
      rest = rest.subarray(nl + 2 + n + 2);
    }
    return { status: Number(m[1]), headers, body: Buffer.concat(out).toString("utf8") };
  }
  const cl = headers["content-length"];
  if (cl !== undefined) {
    const n = Number(cl);
    if (rest.byteLength < n) return { status: 0, headers, body: "", error: err ?? "incomplete answer" };
    return { status: Number(m[1]), headers, body: rest.subarray(0, n).toString("utf8") };
  }
  if (!err && !buf.length) return { status: 0, headers, body: "", error: "no answer" };
  // No framing: the body runs to the close.
  return err === undefined || err === "timeout"
    ? { status: Number(m[1]), headers, body: rest.toString("utf8") }
    : { status: 0, headers, body: "", error: err };
}

function flatten(h: Record<string, string | string[] | undefined>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(h)) if (v !== undefined) out[k] = Array.isArray(v) ? v.join(", ") : v;
  return out;
}
