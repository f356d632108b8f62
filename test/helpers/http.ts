/**
 * Talking to the Worker the way a partner does, and checking the one error format every non-2xx
 * answer must have (RFC 9457 problem+json with a stable code, never cached).
 */
import { exports } from "cloudflare:workers";
import { expect } from "vitest";

export const RELAY = "http://relay.test";

export interface PostOptions {
  /** Sent as `Authorization: Bearer <key>` unless `headers` overrides authorization. */
  key?: string;
  headers?: Record<string, string>;
}

/** POST /v1/events through the Worker's real fetch handler. A string body is sent as is. */
export function postEvents(body: unknown, opts: PostOptions = {}): Promise<Response> {
  const headers: Record<string, string> = { "content-type": "application/json" };
  if (opts.key !== undefined) headers["authorization"] = `Bearer ${opts.key}`;
  Object.assign(headers, opts.headers);
  return exports.default.fetch(`${RELAY}/v1/events`, {
    method: "POST",
    headers,
    body: typeof body === "string" || body instanceof Uint8Array ? body : JSON.stringify(body),
  });
}

/** EventBridge's output shape, as the relay answers it (QueuedEntryCount/RelayEventId: the relay's). */
export interface PutAnswer {
  FailedEntryCount: number;
  QueuedEntryCount?: number;
  Entries: ({ EventId: string } | { RelayEventId: string } | { ErrorCode: string; ErrorMessage: string })[];
}

export interface Problem {
  type: string;
  title: string;
  status: number;
  code: string;
  detail: string;
  requestId?: string;
  [k: string]: unknown;
}

/**
 * Asserts the response is the documented problem+json for `status`/`code` and returns its body.
 * Also returns the raw text so callers can look for leaks in it.
 */
export async function expectProblem(res: Response, status: number, code: string): Promise<Problem & { raw: string }> {
  const raw = await res.text();
  expect({ status: res.status, raw }).toMatchObject({ status });
  expect(res.headers.get("content-type")).toBe("application/problem+json");
  expect(res.headers.get("cache-control")).toBe("no-store");
  const body = JSON.parse(raw) as Problem;
  checkProblemShape(body, res.status);
  expect(body.code).toBe(code);
  expect(body.type).toBe(`urn:eventbridge-relay:problem:${code}`);
  if (body.requestId !== undefined) expect(res.headers.get("x-request-id")).toBe(body.requestId);
  return { ...body, raw };
}

/** The members every problem has, and nothing that looks like an internal leak. */
export function checkProblemShape(body: unknown, status: number): void {
  expect(body).toMatchObject({
    type: expect.stringMatching(/^urn:eventbridge-relay:problem:[a-z_]+$/),
    title: expect.any(String),
    status,
    code: expect.stringMatching(/^[a-z_]+$/),
    detail: expect.any(String),
  });
  const text = JSON.stringify(body);
  expect(text).not.toMatch(STACK_TRACE);
}

/** A V8 stack frame ("    at fn (file:1:2)") or a file position: what a leaked stack looks like. */
export const STACK_TRACE = /\bat [^\n]*\(?[\w./-]+\.(?:ts|js):\d+:\d+\)?|\n\s+at /;

export async function readAnswer(res: Response): Promise<PutAnswer> {
  expect(res.headers.get("content-type")).toBe("application/json");
  expect(res.headers.get("cache-control")).toBe("no-store");
  return (await res.json()) as PutAnswer;
}
