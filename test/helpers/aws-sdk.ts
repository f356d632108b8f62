/**
 * A real @aws-sdk/client-eventbridge client whose transport is the Worker itself
 * (exports.default.fetch): the SDK builds, signs and parses exactly as it would over the network.
 */

import { exports } from "cloudflare:workers";
import { EventBridgeClient } from "@aws-sdk/client-eventbridge";
import { type HttpRequest, HttpResponse } from "@smithy/protocol-http";

export const RELAY_ENDPOINT = "http://relay.test:8787";

export function relayClient(
  creds: { accessKeyId: string; secretAccessKey: string; sessionToken?: string },
  opts: { region?: string; tamper?: (r: Request) => Request | Promise<Request> } = {},
): EventBridgeClient {
  return new EventBridgeClient({
    region: opts.region ?? "us-east-1",
    endpoint: RELAY_ENDPOINT,
    credentials: creds,
    maxAttempts: 1,
    requestHandler: {
      async handle(req: HttpRequest) {
        const url = `${req.protocol}//${req.hostname}${req.port ? `:${req.port}` : ""}${req.path}`;
        let request = new Request(url, {
          method: req.method,
          headers: req.headers as Record<string, string>,
          body: req.body as string | Uint8Array,
        });
        if (opts.tamper) request = await opts.tamper(request);
        const res = await exports.default.fetch(request);
        const headers: Record<string, string> = {};
        res.headers.forEach((v, k) => (headers[k] = v));
        return {
          response: new HttpResponse({
            statusCode: res.status,
            headers,
            body: new Uint8Array(await res.arrayBuffer()),
          }),
        };
      },
    },
  });
}
