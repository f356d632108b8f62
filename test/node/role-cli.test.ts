/**
 * The admin CLI's role credentials (issue 14), on local KV with no relay running:
 * `credentials set <id> --role-arn` stores the role and an external id (generated, kept on a
 * re-set, or given) and prints the trust and permission policies; `show` gives the role and
 * external id and nothing secret; flags that do not go together are refused.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { KV, tenantRecordSchema } from "../../src/tenants/record.ts";
import { CliHarness, unusedLocalUrl } from "./helpers/tenant-cli.ts";

const ROLE_ARN = "arn:aws:iam::210987654321:role/eventbridge-relay";
const PRINCIPAL = "arn:aws:iam::111122223333:user/relay";

describe("credentials set --role-arn", () => {
  let h: CliHarness;

  beforeAll(async () => {
    h = new CliHarness(await unusedLocalUrl());
    await h.ok([
      "create",
      "acme",
      "--name",
      "Acme",
      "--source",
      "aws.partner/example.com/acme/*",
      "--region",
      "eu-west-1",
    ]);
  });
  afterAll(() => h.cleanup());

  it("stores the role with a generated external id and prints the policies to paste", async () => {
    const { data, entry } = await h.json(["credentials", "set", "acme", "--role-arn", ROLE_ARN], {
      env: { RELAY_AWS_PRINCIPAL_ARN: PRINCIPAL },
    });
    expect(data).toMatchObject({ tenantId: "acme", kind: "role", roleArn: ROLE_ARN, externalIdSource: "generated" });
    expect(data.externalId).toMatch(/^ebr-[\w-]{32}$/);
    expect(data.trustPolicy.Statement[0]).toEqual({
      Sid: "EventBridgeRelay",
      Effect: "Allow",
      Principal: { AWS: PRINCIPAL },
      Action: "sts:AssumeRole",
      Condition: { StringEquals: { "sts:ExternalId": data.externalId } },
    });
    expect(data.permissionPolicy.Statement[0]).toEqual({
      Sid: "SendPartnerEvents",
      Effect: "Allow",
      Action: "events:PutPartnerEvents",
      Resource: "*",
    });
    expect(entry.stderr).not.toMatch(/placeholder/);

    const raw = await (await h.kv()).get(KV.tenant("acme"));
    const record = tenantRecordSchema.parse(JSON.parse(raw!));
    expect(record.credentials).toEqual({
      kind: "role",
      roleArn: ROLE_ARN,
      externalId: data.externalId,
      durationSeconds: null,
    });
    expect(raw).not.toMatch(/secretAccessKey|sessionToken/);

    // A re-set without --external-id keeps the one the partner already pasted.
    const again = await h.json(["credentials", "set", "acme", "--role-arn", ROLE_ARN, "--duration-seconds", "900"]);
    expect(again.data).toMatchObject({ externalId: data.externalId, externalIdSource: "kept", durationSeconds: 900 });
    expect(again.entry.stderr).toMatch(/placeholder principal/);

    const show = await h.json(["show", "acme"]);
    expect(show.data.credentials).toEqual({
      kind: "role",
      roleArn: ROLE_ARN,
      externalId: data.externalId,
      durationSeconds: 900,
    });
    const human = await h.ok(["show", "acme"]);
    expect(human.stdout).toContain(`role ${ROLE_ARN}, external id ${data.externalId}`);
  });

  it("refuses what does not go together, or is not valid, naming the flag (exit 2)", async () => {
    const cases: [string[], RegExp][] = [
      [["--role-arn", ROLE_ARN, "--access-key-id", "AKIAIOSFODNN7EXAMPLE"], /either --role-arn or --access-key-id/],
      [["--role-arn", "arn:aws:iam::12:role/x"], /--role-arn: a role ARN looks like/],
      [["--role-arn", ROLE_ARN, "--external-id", "x"], /--external-id/],
      [["--role-arn", ROLE_ARN, "--duration-seconds", "60"], /--duration-seconds/],
      [["--access-key-id", "AKIAIOSFODNN7EXAMPLE", "--external-id", "abc"], /--external-id goes with --role-arn/],
    ];
    for (const [flags, message] of cases) {
      const r = await h.run(["credentials", "set", "acme", ...flags]);
      expect({ code: r.code, stderr: r.stderr }).toMatchObject({ code: 2, stderr: expect.stringMatching(message) });
    }
  });
});
