/** A call to the emulator's EventBridge API as someone other than the relay (the customer with the AWS CLI, the partner's own tooling). */
import { AwsClient } from "aws4fetch";
import { expect } from "vitest";
import type { FakeCredential, FakeEventBridge } from "../../emulator/eventbridge.ts";
import { UPSTREAM } from "./tenants.ts";

/** Signs `op` with `cred`, sends it straight to the emulator, expects 200 and returns its JSON. */
export async function awsCall(
  fake: FakeEventBridge,
  cred: FakeCredential,
  op: string,
  body: unknown,
): Promise<unknown> {
  const aws = new AwsClient({ ...cred, region: "us-east-1", service: "events", retries: 0 });
  const req = await aws.sign(`${UPSTREAM}/`, {
    method: "POST",
    headers: { "content-type": "application/x-amz-json-1.1", "x-amz-target": `AWSEvents.${op}` },
    body: JSON.stringify(body),
  });
  const res = await fake.fetch(req);
  expect(res.status, await res.clone().text()).toBe(200);
  return res.json();
}
