/**
 * Credentials minted while the Worker holds the tenant's record in its isolate cache work on the
 * very next request: the index (written by the CLI) is newer than the cached record, so the
 * record is read again once.
 */

import { env, exports } from "cloudflare:workers";
import { PutPartnerEventsCommand } from "@aws-sdk/client-eventbridge";
import { describe, expect, it } from "vitest";
import { generateApiKey, generateKeyId, hashApiKey } from "../../src/auth/api-key.ts";
import { KV } from "../../src/tenants/record.ts";
import { relayClient } from "../helpers/aws-sdk.ts";
import { addSigV4Key, entry, seedTenant, updateTenant } from "../helpers/tenants.ts";
import { installFakeUpstream } from "../helpers/upstream.ts";

function post(key: string, body: unknown) {
  return exports.default.fetch("http://relay.test/v1/events", {
    method: "POST",
    headers: { authorization: `Bearer ${key}`, "content-type": "application/json" },
    body: JSON.stringify(body),
  });
}

describe("rotation against a cached tenant record", () => {
  it("a second API key works at once, and both work until one is revoked", async () => {
    const t = await seedTenant();
    installFakeUpstream({ credentials: [t.aws] });
    expect((await post(t.apiKey, { Entries: [entry(t)] })).status).toBe(200); // record now cached
    const key2 = generateApiKey();
    const id2 = generateKeyId();
    await updateTenant(t, {
      apiKeys: [
        ...t.record.apiKeys,
        { id: id2, hash: await hashApiKey(key2), createdAt: new Date().toISOString(), expiresAt: null },
      ],
    });
    await env.TENANTS.put(KV.apiKey(await hashApiKey(key2)), JSON.stringify({ tenantId: t.record.id, keyId: id2 }));
    expect((await post(key2, { Entries: [entry(t)] })).status).toBe(200);
    expect((await post(t.apiKey, { Entries: [entry(t)] })).status).toBe(200);
  });

  it("a SigV4 pair minted after the record was cached works at once", async () => {
    const t = await seedTenant();
    installFakeUpstream({ credentials: [t.aws] });
    expect((await post(t.apiKey, { Entries: [entry(t)] })).status).toBe(200);
    const pair = await addSigV4Key(t);
    const out = await relayClient(pair).send(new PutPartnerEventsCommand({ Entries: [entry(t)] }));
    expect(out.FailedEntryCount).toBe(0);
  });

  it("a revoked SigV4 pair is told so in AWS's words, not an API key's", async () => {
    const t = await seedTenant();
    const pair = await addSigV4Key(t);
    installFakeUpstream({ credentials: [t.aws] });
    await exports.default.fetch(`http://relay.test/admin/v1/tenants/${t.record.id}/access`, {
      method: "PUT",
      headers: { authorization: "Bearer test-admin-token-0123456789abcdef", "content-type": "application/json" },
      body: JSON.stringify({
        revision: t.record.revision + 1,
        status: "active",
        revokeAccessKeyIds: [pair.accessKeyId],
      }),
    });
    const err = await relayClient(pair)
      .send(new PutPartnerEventsCommand({ Entries: [entry(t)] }))
      .then(
        () => null,
        (e: Error) => e,
      );
    expect(err?.name).toBe("UnrecognizedClientException");
    expect(err?.message).toContain("The security token included in the request is invalid");
  });
});
