/**
 * The ready-to-paste commands `npm start` prints: a curl for POST /v1/events with the demo API
 * key, and the AWS CLI equivalent with the demo SigV4 pair (the relay's AWS front door, POST /).
 * POSIX shell syntax (bash, zsh, sh); every value is single-quoted or needs no quoting.
 */
import { DEMO_EVENT_SOURCE } from "./demo-tenant.ts";

/** The demo event: an order placed at the partner, as EventBridge's customer would receive it. */
export const DEMO_DETAIL_TYPE = "Order Placed";
export const DEMO_DETAIL = { orderId: "1001", total: 42.5, currency: "EUR" } as const;

/** Quotes a word for a POSIX shell. */
export function shellQuote(s: string): string {
  return /^[\w@%+=:,./-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`;
}

/** The JSON API body: Detail as an object (the relay serialises it), as partners usually send it. */
export function demoJsonBody(): string {
  return JSON.stringify({
    Entries: [{ Source: DEMO_EVENT_SOURCE, DetailType: DEMO_DETAIL_TYPE, Detail: DEMO_DETAIL }],
  });
}

/** The AWS CLI's --entries: Detail as a JSON string, as PutPartnerEvents takes it. */
export function demoAwsEntries(): string {
  return JSON.stringify([
    { Source: DEMO_EVENT_SOURCE, DetailType: DEMO_DETAIL_TYPE, Detail: JSON.stringify(DEMO_DETAIL) },
  ]);
}

export function curlCommand(relayUrl: string, apiKey: string): string {
  return [
    `curl -sS ${shellQuote(`${relayUrl}/v1/events`)} \\`,
    `  -H ${shellQuote(`Authorization: Bearer ${apiKey}`)} \\`,
    `  -H 'Content-Type: application/json' \\`,
    `  -d ${shellQuote(demoJsonBody())}`,
  ].join("\n");
}

export function awsCliCommand(
  relayUrl: string,
  pair: { accessKeyId: string; secretAccessKey: string },
  region: string,
): string {
  return [
    `AWS_ACCESS_KEY_ID=${shellQuote(pair.accessKeyId)} AWS_SECRET_ACCESS_KEY=${shellQuote(pair.secretAccessKey)} \\`,
    `aws events put-partner-events --endpoint-url ${shellQuote(relayUrl)} --region ${shellQuote(region)} \\`,
    `  --entries ${shellQuote(demoAwsEntries())}`,
  ].join("\n");
}

/** A fault for the local EventBridge's next call, as a curl. */
export function faultCommand(emulatorUrl: string, fault: object): string {
  return `curl -X POST ${shellQuote(`${emulatorUrl}/_fake/faults`)} -d ${shellQuote(JSON.stringify(fault))}`;
}
