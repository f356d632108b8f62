/**
 * The admin API (src/admin/routes.ts) on Hono's bearerAuth and validator: the refusals keep their
 * codes, problem+json bodies and WWW-Authenticate challenges; and the CLI's typed client
 * (src/admin/client.ts, hc over the routes' type) against the real Worker.
 */
import { env, exports } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { AdminClient, RelayHttpError } from "../../src/admin/client.ts";
import { app } from "../../src/app.ts";
import { ADMIN_TOKEN, admin } from "../helpers/drain.ts";

const CHALLENGE = 'Bearer realm="eventbridge-relay-admin"';

function raw(path: string, init: RequestInit = {}): Promise<Response> {
  return exports.default.fetch(`http://relay.test${path}`, init);
}

async function expectProblem(res: Response, status: number, code: string): Promise<Record<string, unknown>> {
  expect(res.status).toBe(status);
  expect(res.headers.get("content-type")).toBe("application/problem+json");
  const body = (await res.json()) as Record<string, unknown>;
  expect(body).toMatchObject({ status, code, type: `urn:eventbridge-relay:problem:${code}` });
  return body;
}

describe("admin API authentication (bearerAuth)", () => {
  const path = "/admin/v1/tenants/admin-auth/status";

  it("no Authorization header: 401 missing_admin_token with the realm challenge", async () => {
    const res = await raw(path);
    expect(res.headers.get("www-authenticate")).toBe(CHALLENGE);
    const body = await expectProblem(res, 401, "missing_admin_token");
    expect(body.detail).toBe("Send `Authorization: Bearer <ADMIN_TOKEN>`.");
  });

  it("another scheme or no token: 401 missing_admin_token", async () => {
    for (const authorization of ["Basic dXNlcjpwYXNz", "Bearer", "Bearer    ", "token abc"]) {
      const res = await raw(path, { headers: { authorization } });
      expect(res.headers.get("www-authenticate"), authorization).toBe(CHALLENGE);
      await expectProblem(res, 401, "missing_admin_token");
    }
  });

  it("a wrong token, also one with characters outside RFC 6750's set: 401 invalid_admin_token, error=invalid_token", async () => {
    for (const authorization of ["Bearer wrong-token", `Bearer ${ADMIN_TOKEN}x`, "Bearer wr!ng", "bearer wrong"]) {
      const res = await raw(path, { headers: { authorization } });
      expect(res.headers.get("www-authenticate"), authorization).toBe(`${CHALLENGE}, error="invalid_token"`);
      await expectProblem(res, 401, "invalid_admin_token");
    }
  });

  it("the right token, any case of the scheme: through", async () => {
    for (const authorization of [`Bearer ${ADMIN_TOKEN}`, `bearer ${ADMIN_TOKEN}`]) {
      const res = await raw(path, { headers: { authorization } });
      expect(res.status, authorization).toBe(200);
    }
  });

  it("no ADMIN_TOKEN set: 503 admin_disabled, before the header is looked at", async () => {
    const res = await app.request(
      path,
      { headers: { authorization: `Bearer ${ADMIN_TOKEN}` } },
      { ...env, ADMIN_TOKEN: "" },
    );
    await expectProblem(res, 503, "admin_disabled");
  });
});

describe("admin API validation (validator + zod)", () => {
  it("a bad tenant id: 400 invalid_tenant_id", async () => {
    await expectProblem(await admin("/admin/v1/tenants/Bad_Id/status"), 400, "invalid_tenant_id");
  });

  it("access: malformed JSON is invalid_json, a bad shape invalid_request naming the field; JSON without a JSON content-type is read", async () => {
    const path = "/admin/v1/tenants/admin-validate/access";
    await expectProblem(await admin(path, { method: "PUT", body: '{"revision":' }), 400, "invalid_json");
    const shape = await expectProblem(
      await admin(path, { method: "PUT", body: JSON.stringify({ revision: 0, status: "active" }) }),
      400,
      "invalid_request",
    );
    expect(shape.detail).toMatch(/^revision: /);
    await expectProblem(
      await admin(path, { method: "PUT", body: JSON.stringify({ revision: 1, status: "active", extra: 1 }) }),
      400,
      "invalid_request",
    );
    const plain = await admin(path, {
      method: "PUT",
      headers: { "content-type": "text/plain" },
      body: JSON.stringify({ revision: 5, status: "active" }),
    });
    expect(plain.status, await plain.clone().text()).toBe(200);
    expect(await plain.json()).toMatchObject({ revision: 5, status: "active" });
    await expectProblem(
      await admin(path, { method: "PUT", headers: { "content-type": "text/plain" }, body: "nope" }),
      400,
      "invalid_json",
    );
  });

  it("dead letters: limit 1-1000 and a numeric cursor, else invalid_request", async () => {
    for (const q of ["limit=0", "limit=1001", "limit=x", "after=abc"]) {
      await expectProblem(await admin(`/admin/v1/tenants/admin-validate/dead-letters?${q}`), 400, "invalid_request");
    }
    const ok = await admin("/admin/v1/tenants/admin-validate/dead-letters?limit=5");
    expect(await ok.json()).toEqual({ items: [], next: null });
  });

  it("replay: --all or ids, nothing else", async () => {
    const path = "/admin/v1/tenants/admin-validate/dead-letters/replay";
    await expectProblem(await admin(path, { method: "POST", body: "{}" }), 400, "invalid_request");
    await expectProblem(
      await admin(path, { method: "POST", body: JSON.stringify({ relayEventIds: [] }) }),
      400,
      "invalid_request",
    );
  });
});

describe("the typed admin client (hc over AdminApi) against the Worker", () => {
  const client = (token: string = ADMIN_TOKEN) =>
    new AdminClient({
      baseUrl: "http://relay.test",
      token,
      fetch: (input, init) => exports.default.fetch(input as string, init),
    });

  it("access, status, dead letters, replay, purge", async () => {
    const c = client();
    expect(await c.reachable()).toBe(true);
    expect(
      await c.putAccess("admin-client", {
        revision: 7,
        status: "disabled",
        revokeApiKeyIds: ["key_a"],
        revokeAccessKeyIds: [],
      }),
    ).toEqual({
      revision: 7,
      status: "disabled",
    });
    const status = await c.status("admin-client");
    expect(status).toMatchObject({ revision: 7, status: "disabled", queued: 0, lastUpstreamError: null });
    expect(await c.deadLetters("admin-client", 10)).toEqual({ items: [], next: null });
    expect(await c.replay("admin-client", { relayEventIds: ["relay-x"] })).toEqual({
      replayed: 0,
      notFound: ["relay-x"],
    });
    expect(await c.purge("admin-client", false)).toMatchObject({ purged: true });
  });

  it("refusals become RelayHttpErrors with the Worker's code and a hint, never the token", async () => {
    const wrong = client("not-the-token");
    const e = await wrong.status("admin-client").catch((x: unknown) => x);
    expect(e).toBeInstanceOf(RelayHttpError);
    expect(e).toMatchObject({ status: 401, code: "invalid_admin_token", kind: "failure" });
    expect((e as Error).message).toMatch(/check RELAY_ADMIN_TOKEN/);
    expect((e as Error).message).not.toContain("not-the-token");
    const none = await client("")
      .status("admin-client")
      .catch((x: unknown) => x);
    expect(none).toMatchObject({ status: 401, code: "missing_admin_token" });
    expect((none as Error).message).toMatch(/no admin token: set RELAY_ADMIN_TOKEN/);
    const bad = await client()
      .status("Bad_Id")
      .catch((x: unknown) => x);
    expect(bad).toMatchObject({ status: 400, code: "invalid_tenant_id", kind: "failure" });
  });
});
