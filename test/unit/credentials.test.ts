/**
 * The pieces of role credentials on their own: the strict XML reader, AssumeRole's request and
 * its reading of STS's answers (AWS's documented shapes, an emulator's variant, HTML, truncated
 * and oversized bodies, fed through a stubbed outbound fetch), session names, the tenant record's
 * credentials union, and the CLI's role set-up (external id, trust policy).
 */
import { afterEach, describe, expect, it, vi } from "vitest";
import { generateExternalId, roleSetup, trustPolicy } from "../../src/credentials/role-setup.ts";
import { assumeRole, sessionNameFor } from "../../src/credentials/sts.ts";
import { parseXml, XmlError } from "../../src/credentials/xml.ts";
import { credentialsSchema } from "../../src/tenants/record.ts";

afterEach(() => vi.restoreAllMocks());

const SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYzEXAMPLEKEY";
const TOKEN =
  "AQoDYXdzEPT//////////wEXAMPLEtc764bNrC9SAPBSM22wDOk4x4HIZ8j4FZTwdQWLWsKWHGBuFqwAeMicRXmxfpSPfIeoIYRqTflfKD8YUuwthAx7mSEI";

/** AWS's documented AssumeRole answer (STS API reference), expiring in an hour. */
function awsAnswer(expiration = new Date(Date.now() + 3600_000).toISOString().replace(/\.\d{3}Z$/, "Z")): string {
  return `<AssumeRoleResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">
  <AssumeRoleResult>
  <SourceIdentity>Alice</SourceIdentity>
    <AssumedRoleUser>
      <Arn>arn:aws:sts::123456789012:assumed-role/demo/TestAR</Arn>
      <AssumedRoleId>ARO123EXAMPLE123:TestAR</AssumedRoleId>
    </AssumedRoleUser>
    <Credentials>
      <AccessKeyId>ASIAIOSFODNN7EXAMPLE</AccessKeyId>
      <SecretAccessKey>${SECRET}</SecretAccessKey>
      <SessionToken>${TOKEN}</SessionToken>
      <Expiration>${expiration}</Expiration>
    </Credentials>
    <PackedPolicySize>6</PackedPolicySize>
  </AssumeRoleResult>
  <ResponseMetadata>
    <RequestId>c6104cbe-af31-11e0-8154-cbc7ccf896c7</RequestId>
  </ResponseMetadata>
</AssumeRoleResponse>`;
}

const awsError = (code: string, message: string) =>
  `<ErrorResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><Error><Type>Sender</Type><Code>${code}</Code><Message>${message}</Message></Error><RequestId>req-1</RequestId></ErrorResponse>`;

const INPUT = {
  identity: { accessKeyId: "AKIARELAYEXAMPLE0000", secretAccessKey: "relay-secret-example" },
  endpoint: "https://sts.eu-west-1.amazonaws.com",
  region: "eu-west-1",
  roleArn: "arn:aws:iam::210987654321:role/relay",
  externalId: "ext-123",
  sessionName: "relay-acme",
  durationSeconds: 3600,
  timeoutMs: 1000,
};

/** Answers every outbound fetch with `respond(request)`; returns the requests seen. */
function stubFetch(respond: (r: Request) => Response | Promise<Response>): Request[] {
  const seen: Request[] = [];
  vi.spyOn(globalThis, "fetch").mockImplementation(async (input: RequestInfo | URL, init?: RequestInit) => {
    const r = new Request(input, init);
    seen.push(r.clone());
    return respond(r);
  });
  return seen;
}

describe("parseXml", () => {
  it("reads elements and text, decodes entities, skips the declaration, comments and attributes", () => {
    const root = parseXml(
      `<?xml version="1.0" encoding="UTF-8"?>\n<!-- c --><a x="1" y='2'><b>&lt;x&gt; &amp; &#65;&#x42;</b><c/></a>`,
    );
    expect(root.name).toBe("a");
    expect(root.children.map((c) => c.name)).toEqual(["b", "c"]);
    expect(root.children[0]!.text).toBe("<x> & AB");
  });

  it.each([
    ["a DOCTYPE", `<!DOCTYPE a [<!ENTITY x "y">]><a>&x;</a>`],
    ["CDATA", "<a><![CDATA[x]]></a>"],
    ["a mismatched tag", "<a><b></a></b>"],
    ["an unclosed element", "<a><b></b>"],
    ["two roots", "<a></a><b></b>"],
    ["text outside the root", "<a></a>x"],
    ["an unknown entity", "<a>&nbsp;</a>"],
    ["a bare ampersand", "<a>x & y</a>"],
    ["nothing", ""],
    ["malformed attributes", "<a x=1></a>"],
  ])("refuses %s", (_what, xml) => {
    expect(() => parseXml(xml)).toThrow(XmlError);
  });
});

describe("assumeRole", () => {
  it("sends the Query API form, signed for sts in the endpoint's region, and reads AWS's answer", async () => {
    const seen = stubFetch(() => new Response(awsAnswer(), { status: 200, headers: { "content-type": "text/xml" } }));
    const r = await assumeRole(INPUT);
    expect(r.kind).toBe("ok");
    if (r.kind !== "ok") return;
    expect(r.credentials).toMatchObject({
      accessKeyId: "ASIAIOSFODNN7EXAMPLE",
      secretAccessKey: SECRET,
      sessionToken: TOKEN,
    });
    expect(r.credentials.expiresAt).toBeGreaterThan(Date.now());
    expect(r.requestId).toBe("c6104cbe-af31-11e0-8154-cbc7ccf896c7");

    const req = seen[0]!;
    expect(req.method).toBe("POST");
    expect(req.url).toBe("https://sts.eu-west-1.amazonaws.com/");
    expect(req.headers.get("content-type")).toMatch(/^application\/x-www-form-urlencoded/);
    expect(req.headers.get("authorization")).toMatch(
      /^AWS4-HMAC-SHA256 Credential=AKIARELAYEXAMPLE0000\/\d{8}\/eu-west-1\/sts\/aws4_request, SignedHeaders=[^,]*content-type[^,]*host/,
    );
    expect(req.headers.get("x-amz-security-token")).toBeNull();
    expect(Object.fromEntries(new URLSearchParams(await req.text()))).toEqual({
      Action: "AssumeRole",
      Version: "2011-06-15",
      RoleArn: INPUT.roleArn,
      RoleSessionName: "relay-acme",
      ExternalId: "ext-123",
      DurationSeconds: "3600",
    });
  });

  it.each([
    ["AccessDenied", 403, "credentials"],
    ["RegionDisabledException", 403, "credentials"],
    ["ExpiredToken", 400, "credentials"],
    ["ValidationError", 400, "credentials"],
    ["Throttling", 400, "throttled"],
    ["InternalFailure", 500, "server"],
  ])("ErrorResponse %s (HTTP %i) → class %s, STS's code and message", async (code, status, errorClass) => {
    stubFetch(() => new Response(awsError(code, "why &amp; how"), { status }));
    const r = await assumeRole(INPUT);
    expect(r).toMatchObject({ kind: "error", code, errorClass, status, message: "why & how", requestId: "req-1" });
  });

  it("an emulator's ErrorResponse/Errors/Error and Response/Errors/Error shapes are read too", async () => {
    stubFetch(
      () =>
        new Response(
          "<Response><Errors><Error><Code>SignatureDoesNotMatch</Code><Message>no</Message></Error></Errors><RequestID>r</RequestID></Response>",
          { status: 403 },
        ),
    );
    expect(await assumeRole(INPUT)).toMatchObject({
      kind: "error",
      code: "SignatureDoesNotMatch",
      errorClass: "credentials",
    });
  });

  it("an HTML 502 page: InternalFailure, retryable", async () => {
    stubFetch(() => new Response("<html><body>Bad gateway</body></html>", { status: 502 }));
    expect(await assumeRole(INPUT)).toMatchObject({ kind: "error", code: "InternalFailure", errorClass: "server" });
  });

  it.each([
    ["truncated XML", awsAnswer().slice(0, 400)],
    ["no SessionToken", awsAnswer().replace(/<SessionToken>.*<\/SessionToken>/, "")],
    ["a bad Expiration", awsAnswer("tomorrow")],
    ["another root", "<GetCallerIdentityResponse></GetCallerIdentityResponse>"],
  ])("200 with %s: InvalidResponse (retryable), and no secret in the message", async (_what, body) => {
    stubFetch(() => new Response(body, { status: 200 }));
    const r = await assumeRole(INPUT);
    expect(r).toMatchObject({ kind: "error", code: "InvalidResponse", errorClass: "server" });
    expect(JSON.stringify(r)).not.toContain(SECRET);
    expect(JSON.stringify(r)).not.toContain(TOKEN);
  });

  it("an answer over 64 KiB is refused unread", async () => {
    stubFetch(() => new Response(`<a>${"x".repeat(70_000)}</a>`, { status: 200 }));
    expect(await assumeRole(INPUT)).toMatchObject({ kind: "error", code: "InvalidResponse" });
  });

  it("no connection: NetworkError", async () => {
    stubFetch(() => {
      throw new TypeError("Network connection lost");
    });
    expect(await assumeRole(INPUT)).toMatchObject({
      kind: "error",
      code: "NetworkError",
      errorClass: "network",
      status: 0,
    });
  });
});

describe("names and records", () => {
  it("session names name the tenant within STS's 64 characters", () => {
    expect(sessionNameFor("acme")).toBe("relay-acme");
    const long = sessionNameFor("a".repeat(63));
    expect(long).toHaveLength(64);
    expect(long).toMatch(/^[\w+=,.@-]{2,64}$/);
  });

  it("credentials without kind are static keys (every record before roles); role records carry no secret", () => {
    const legacy = credentialsSchema.parse({ accessKeyId: "AKIAIOSFODNN7EXAMPLE", secretAccessKey: "v1.a.b" });
    expect(legacy).toMatchObject({ accessKeyId: "AKIAIOSFODNN7EXAMPLE", sessionToken: null });
    expect(legacy.kind).toBeUndefined();
    const role = credentialsSchema.parse({
      kind: "role",
      roleArn: "arn:aws:iam::210987654321:role/relay",
      externalId: "ext-123",
      secretAccessKey: "v1.a.b",
    });
    expect(role).toEqual({
      kind: "role",
      roleArn: "arn:aws:iam::210987654321:role/relay",
      externalId: "ext-123",
      durationSeconds: null,
    });
    expect(
      credentialsSchema.safeParse({ kind: "role", roleArn: "arn:aws:iam::1:role/x", externalId: "e1" }).success,
    ).toBe(false);
    expect(credentialsSchema.safeParse({ kind: "token" }).success).toBe(false);
  });
});

describe("role set-up (the CLI's library)", () => {
  const arn = "arn:aws:iam::210987654321:role/relay";

  it("generates a random external id when none is given, keeps the tenant's on a re-set, takes a given one", () => {
    const a = roleSetup(null, { roleArn: arn });
    expect(a.externalIdSource).toBe("generated");
    expect(a.credentials.externalId).toMatch(/^ebr-[\w-]{32}$/);
    expect(generateExternalId()).not.toBe(generateExternalId());
    const kept = roleSetup(a.credentials, { roleArn: "arn:aws:iam::210987654321:role/other" });
    expect(kept).toMatchObject({ externalIdSource: "kept", credentials: { externalId: a.credentials.externalId } });
    expect(roleSetup(a.credentials, { roleArn: arn, externalId: "given-1" }).externalIdSource).toBe("given");
  });

  it("names the flag that is wrong", () => {
    expect(() => roleSetup(null, { roleArn: "arn:aws:iam::12:role/x" })).toThrow(/--role-arn/);
    expect(() => roleSetup(null, { roleArn: arn, externalId: "x" })).toThrow(/--external-id/);
    expect(() => roleSetup(null, { roleArn: arn, durationSeconds: 60 })).toThrow(/--duration-seconds/);
  });

  it("the trust policy lets only the relay's principal assume the role, with the external id", () => {
    expect(trustPolicy("arn:aws:iam::111122223333:user/relay", "ext-1").Statement[0]).toEqual({
      Sid: "EventBridgeRelay",
      Effect: "Allow",
      Principal: { AWS: "arn:aws:iam::111122223333:user/relay" },
      Action: "sts:AssumeRole",
      Condition: { StringEquals: { "sts:ExternalId": "ext-1" } },
    });
  });
});
