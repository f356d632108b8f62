/**
 * The Hono app: middleware order and routes, nothing else.
 *
 * request id → (front door) → auth → validate → admit → forward/buffer; every error, thrown from
 * anywhere, is written once by onError in the front door's format.
 */
import { Hono } from "hono";
import { adminApi } from "./admin/routes.ts";
import type { RelayEnv } from "./context.ts";
import { Errors, errorResponse, internalError, RelayError } from "./errors.ts";
import { awsApi } from "./ingest/aws-api.ts";
import { jsonApi } from "./ingest/json-api.ts";
import { sourcesApi } from "./ingest/sources-api.ts";
import { log } from "./log.ts";

export const app = new Hono<RelayEnv>();

app.use(async function requestId(c, next) {
  c.set("requestId", crypto.randomUUID());
  c.set("errorFormat", "problem");
  await next();
});

app.get("/healthz", (c) => c.json({ ok: true }, 200, { "cache-control": "no-store" }));

app.route("/", jsonApi);
app.route("/", awsApi);
app.route("/", adminApi);
app.route("/", sourcesApi);

const ALLOWED: Record<string, string> = {
  "/v1/events": "POST",
  "/v1/status": "GET",
  "/healthz": "GET",
  "/": "POST",
};

app.notFound((c) => {
  const allow = ALLOWED[c.req.path] ?? (/^\/v1\/events\/[^/]+$/.test(c.req.path) ? "GET" : undefined);
  const err = allow ? Errors.methodNotAllowed(allow) : Errors.notFound();
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
  return errorResponse(internalError(), format, requestId);
});
