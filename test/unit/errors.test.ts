/**
 * The one place error responses are built (src/errors.ts), and the app's last-resort handler:
 * every refusal is RFC 9457 problem+json with a stable code, a status-derived title, never
 * cached; the AWS front door's form is AWS JSON 1.1; an unexpected exception becomes a 500 with
 * nothing internal on the wire or a stack in the log. Plus EventBridge's code normalisation and
 * classification (src/eventbridge/codes.ts).
 */

import { createExecutionContext, waitOnExecutionContext } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { afterEach, describe, expect, it, vi } from "vitest";
import { app } from "../../src/app.ts";
import { generateApiKey } from "../../src/auth/api-key.ts";
import { errorResponse, errors, internalError, RelayError } from "../../src/errors.ts";
import { classifyCallError, isRetryableEntryCode, normalizeErrorCode } from "../../src/eventbridge/codes.ts";
import { checkProblemShape, expectProblem, STACK_TRACE } from "../helpers/http.ts";
import { captureLogs } from "../helpers/leaks.ts";

afterEach(() => vi.restoreAllMocks());

const CHALLENGE = 'Bearer realm="eventbridge-relay"';

const ALL: [string, RelayError, number, Record<string, string>][] = [
  ["missingApiKey", errors.missingApiKey(CHALLENGE), 401, { "www-authenticate": CHALLENGE }],
  [
    "malformedApiKey",
    errors.malformedApiKey(CHALLENGE),
    401,
    { "www-authenticate": `${CHALLENGE}, error="invalid_token"` },
  ],
  [
    "invalidApiKey",
    errors.invalidApiKey(CHALLENGE),
    401,
    { "www-authenticate": `${CHALLENGE}, error="invalid_token"` },
  ],
  ["tenantDisabled", errors.tenantDisabled(), 403, {}],
  ["tenantMisconfigured", errors.tenantMisconfigured("record v7 does not parse"), 503, {}],
  ["invalidJson", errors.invalidJson(), 400, {}],
  ["invalidRequest", errors.invalidRequest("Entries is required"), 400, {}],
  ["payloadTooLarge", errors.payloadTooLarge(589_824), 413, {}],
  ["batchTooLarge", errors.batchTooLarge(262_145, 262_144), 413, {}],
  ["unsupportedMediaType", errors.unsupportedMediaType("application/json"), 415, { "accept-post": "application/json" }],
  ["notFound", errors.notFound(), 404, {}],
  ["methodNotAllowed", errors.methodNotAllowed("POST"), 405, { allow: "POST" }],
  ["internalError", internalError(), 500, {}],
];

const TITLES: Record<number, string> = {
  400: "Bad Request",
  401: "Unauthorized",
  403: "Forbidden",
  404: "Not Found",
  405: "Method Not Allowed",
  413: "Content Too Large",
  415: "Unsupported Media Type",
  500: "Internal Server Error",
  503: "Service Unavailable",
};

describe("errorResponse, problem format", () => {
  it.each(ALL)("%s: status, code, title, detail, headers, no-store", async (_, err, status, headers) => {
    const res = errorResponse(err, "problem", "req-123");
    const body = await expectProblem(res, status, err.code);
    expect(body.title).toBe(TITLES[status]);
    expect(body.detail).toBe(err.detail);
    expect(body.requestId).toBe("req-123");
    expect(res.headers.get("x-request-id")).toBe("req-123");
    for (const [k, v] of Object.entries(headers)) expect(res.headers.get(k)).toBe(v);
  });

  it("carries a refusal's extra members (batch size) but never its log reason", async () => {
    const big = await (await errorResponse(errors.batchTooLarge(262_145, 262_144), "problem")).json();
    expect(big).toMatchObject({ size: 262_145, limit: 262_144 });
    const text = await errorResponse(
      errors.tenantMisconfigured("sealed secretAccessKey failed to decrypt"),
      "problem",
    ).text();
    expect(text).not.toContain("decrypt");
  });

  it("a status without a known title still gets the problem members", async () => {
    const res = errorResponse(new RelayError({ status: 418, code: "teapot", detail: "short and stout" }), "problem");
    checkProblemShape(await res.json(), 418);
  });
});

describe("errorResponse, AWS JSON 1.1 format", () => {
  it.each(ALL)("%s: __type and message, with AWS's status", async (_, err) => {
    const res = errorResponse(err, "aws", "req-9");
    expect(res.status).toBe(err.aws.status);
    expect(res.headers.get("content-type")).toBe("application/x-amz-json-1.1");
    expect(res.headers.get("x-amzn-errortype")).toBe(err.aws.type);
    expect(res.headers.get("x-amzn-requestid")).toBe("req-9");
    expect(res.headers.get("cache-control")).toBe("no-store");
    expect(await res.json()).toEqual({ __type: err.aws.type, message: err.detail });
  });
});

describe("the app's last-resort handler", () => {
  it("an unexpected exception is a 500 internal_error with nothing internal; the log names it without a stack", async () => {
    const logs = captureLogs();
    // No KV binding: the key lookup throws a TypeError the relay did not plan for.
    const broken = { ...env, TENANTS: undefined } as unknown as Env;
    const ctx = createExecutionContext();
    const res = await app.request(
      "/v1/events",
      {
        method: "POST",
        headers: { authorization: `Bearer ${generateApiKey()}`, "content-type": "application/json" },
        body: "{}",
      },
      broken,
      ctx,
    );
    await waitOnExecutionContext(ctx);
    const p = await expectProblem(res, 500, "internal_error");
    expect(p.raw).not.toMatch(/TypeError|undefined|TENANTS/);
    const line = logs.find((l) => l.includes('"unhandled_error"'));
    expect(line).toBeDefined();
    expect(line).toMatch(/TypeError/);
    expect(line).not.toMatch(STACK_TRACE);
  });
});

describe("EventBridge codes", () => {
  it.each([
    ["ThrottlingException", "ThrottlingException"],
    ["com.amazonaws.events#ThrottlingException", "ThrottlingException"],
    ["ThrottlingException:Rate exceeded", "ThrottlingException"],
    ["com.amazonaws.events#ValidationException:1 validation error: a:b", "ValidationException"],
    ["aws.protocoltests#ns#InternalException", "InternalException"],
    ["  UnrecognizedClientException  ", "UnrecognizedClientException"],
    ["", ""],
  ])("normalizeErrorCode(%j) = %j", (raw, code) => {
    expect(normalizeErrorCode(raw)).toBe(code);
  });

  it.each<[number, string, string]>([
    [400, "ThrottlingException", "throttled"],
    [429, "Whatever", "throttled"],
    [400, "TooManyRequestsException", "throttled"],
    [400, "InvalidSignatureException", "credentials"],
    [400, "UnrecognizedClientException", "credentials"],
    [403, "MissingAuthenticationTokenException", "credentials"],
    [400, "ExpiredTokenException", "credentials"],
    [400, "AccessDeniedException", "credentials"],
    [500, "InternalException", "server"],
    [503, "ServiceUnavailable", "server"],
    [400, "ValidationException", "rejected"],
    [400, "OperationDisabledException", "rejected"],
  ])("classifyCallError(%i, %s) = %s", (status, code, cls) => {
    expect(classifyCallError(status, code)).toBe(cls);
  });

  it("only InternalFailure and ThrottlingException are retryable per entry", () => {
    expect(["InternalFailure", "ThrottlingException"].every(isRetryableEntryCode)).toBe(true);
    for (const c of [
      "AccessDeniedException",
      "InvalidAccountIdException",
      "InvalidArgument",
      "MalformedDetail",
      "RedactionFailure",
      "NotAuthorizedForSourceException",
      "NotAuthorizedForDetailTypeException",
    ]) {
      expect(isRetryableEntryCode(c)).toBe(false);
    }
  });
});
