/**
 * The Hono app: middleware order and routes, nothing else.
 *
 * request id → (front door) → auth → validate → admit → forward/buffer; every error, thrown from
 * anywhere, is written once by onError in the front door's format.
 */
import { Hono } from "hono";
import { requestId } from "hono/request-id";
import { adminApi } from "./admin/routes.ts";
import type { RelayEnv } from "./context.ts";
import { errorResponse, errors, REQUEST_ID_HEADERS, RelayError } from "./errors.ts";
import { awsApi } from "./ingest/aws-api.ts";
import { jsonApi } from "./ingest/json-api.ts";
import { sourcesApi } from "./ingest/sources-api.ts";
import { log } from "./log.ts";
import { openApiHandler } from "./openapi/document.ts";

export const app = new Hono<RelayEnv>();

// Hono's requestId sets c.var.requestId. headerName "" because the relay never adopts a
// caller's X-Request-Id (a caller-chosen value would land in the logs: a misplaced key included);
// the id goes out under each door's own header instead, on every answer, success or error.
app.use(requestId({ headerName: "" }));
app.use(async function requestIdHeader(c, next) {
  c.set("errorFormat", "problem");
  await next();
  const name = c.var.errorFormat === "aws" ? REQUEST_ID_HEADERS.aws : REQUEST_ID_HEADERS.problem;
  try {
    c.res.headers.set(name, c.var.requestId);
  } catch {
    // Immutable headers (a Response passed through as is): copy it once.
    c.res = new Response(c.res.body, c.res);
    c.res.headers.set(name, c.var.requestId);
  }
});

app.get("/healthz", (c) => c.json({ ok: true }, 200, { "cache-control": "no-store" }));
app.get("/openapi.json", openApiHandler);

app.route("/", jsonApi);
app.route("/", awsApi);
app.route("/", adminApi);
app.route("/", sourcesApi);

const ALLOWED: Record<string, string> = {
  "/v1/events": "POST",
  "/v1/status": "GET",
  "/healthz": "GET",
  "/": "POST",
  "/v1/sources": "GET, POST",
  "/openapi.json": "GET",
};

app.notFound((c) => {
  const allow =
    ALLOWED[c.req.path] ??
    (/^\/v1\/events\/[^/]+$/.test(c.req.path) ? "GET" : undefined) ??
    (c.req.path.startsWith("/v1/sources/") ? "GET, DELETE" : undefined);
  const err = allow ? errors.methodNotAllowed(allow) : errors.notFound();
  return errorResponse(err, c.var.errorFormat ?? "problem", c.var.requestId);
});

app.onError((err, c) => {
  const format = c.var.errorFormat ?? "problem";
  const requestId = c.var.requestId;
  if (err instanceof RelayError) {
    if (err.status >= 500 || err.logReason) {
      log.warn("request_refused", { requestId, status: err.status, code: err.code, reason: err.logReason });
    }
    return errorResponse(err, format, requestId);
  }
  log.error("unhandled_error", {
    requestId,
    error: err instanceof Error ? `${err.name}: ${err.message}` : String(err),
  });
  return errorResponse(errors.internalError(), format, requestId);
});
