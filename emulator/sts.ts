/**
 * A fake AWS STS that answers AssumeRole, served by FakeEventBridge at the same origin (as moto
 * serves every service at one address): a form-encoded POST with `Action=AssumeRole` and no
 * X-Amz-Target is routed here, after FakeEventBridge has verified the caller's SigV4 for service
 * `sts` with the same independent (@smithy) verifier it uses for PutPartnerEvents.
 *
 * It knows roles (`addRole` or `POST /_fake/roles`): each trusts one access key id (the relay's
 * identity) and, when it has one, requires its external id, as a trust policy with an
 * `sts:ExternalId` condition does. It issues expiring credentials (ASIA... key, secret, session
 * token) and hands them to FakeEventBridge, which then accepts PutPartnerEvents signed with them
 * only with the matching X-Amz-Security-Token and only until they expire.
 *
 * Answers are STS's XML (AssumeRoleResponse; ErrorResponse/Error/{Type,Code,Message}).
 * Facts: /work/shared/reference/partner-sources.md ("STS AssumeRole without the SDK").
 * Runtime-neutral like eventbridge.ts: no `node:` modules, erasable TypeScript only.
 */
import { z } from "zod";

export interface FakeRole {
  roleArn: string;
  /** The external id the trust policy requires; null: none required. */
  externalId: string | null;
  /** The only access key id allowed to assume it (the relay's identity). */
  trustedAccessKeyId: string;
  /** The role's MaxSessionDuration, in s (AWS default 3600; at most 43200). */
  maxSessionDuration?: number;
  /**
   * Not AWS: issue credentials for this many seconds whatever DurationSeconds asked (which STS
   * bounds at 900 s and more), so tests and demos can watch credentials expire and be refreshed.
   */
  issueSeconds?: number;
}

export interface IssuedCredential {
  accessKeyId: string;
  secretAccessKey: string;
  sessionToken: string;
  /** Epoch ms. */
  expiresAt: number;
  roleArn: string;
  sessionName: string;
  /** The access key id that assumed the role. */
  callerAccessKeyId: string;
}

export interface StsCallRecord {
  requestId: string;
  at: number;
  callerAccessKeyId: string;
  roleArn: string | null;
  sessionName: string | null;
  externalId: string | null;
  durationSeconds: number | null;
  /** HTTP status answered (0: the answer was held by a delay still running). */
  status: number;
  /** STS's error code, when it refused. */
  errorCode?: string;
  /** The fault this call consumed, if any. */
  fault?: StsFault["type"];
}

export type StsFault =
  /** 400 Throttling "Rate exceeded", as STS answers it. */
  | { type: "throttle" }
  /** Any error: e.g. 403 AccessDenied, 403 RegionDisabledException, 500 InternalFailure. */
  | { type: "error"; status: number; code: string; message?: string }
  /** Answer normally after `ms`. */
  | { type: "delay"; ms: number }
  /** 200 with a body that is not a well-formed AssumeRoleResponse. */
  | { type: "malformed" };

export interface FakeStsOptions {
  roles?: FakeRole[];
  /** The account in assumed-role ARNs (default 123456789012). */
  accountId?: string;
}

/** Called with every credential issued: FakeEventBridge accepts it from then on, until it expires. */
export type IssueListener = (c: IssuedCredential) => void;

/**
 * The local relay's AWS identity for `npm start` (the Worker secrets RELAY_AWS_ACCESS_KEY_ID /
 * RELAY_AWS_SECRET_ACCESS_KEY when .dev.vars sets none), and the demo role that trusts it. Not
 * secrets: they only ever open this emulator.
 */
export const FAKE_RELAY_IDENTITY = {
  accessKeyId: "AKIAFAKERELAYIDENTITY",
  secretAccessKey: "fakeRelayIdentitySecretKey00000000000000",
} as const;
export const FAKE_DEMO_ROLE_ARN = "arn:aws:iam::123456789012:role/relay-demo";
export const FAKE_DEMO_EXTERNAL_ID = "demo-external-id";

/** The demo role, trusting `accessKeyId` (default: FAKE_RELAY_IDENTITY) with FAKE_DEMO_EXTERNAL_ID. */
export function demoRole(accessKeyId: string = FAKE_RELAY_IDENTITY.accessKeyId): FakeRole {
  return { roleArn: FAKE_DEMO_ROLE_ARN, externalId: FAKE_DEMO_EXTERNAL_ID, trustedAccessKeyId: accessKeyId };
}

// ---- STS facts (own copy: the emulator imports nothing from src/) ------------------------------

const STS_NS = "https://sts.amazonaws.com/doc/2011-06-15/";
const VERSION = "2011-06-15";
const FORM = "application/x-www-form-urlencoded";
/** DurationSeconds: 900 to 43,200 s; 3,600 s when absent (STS API reference). */
const MIN_DURATION_S = 900;
const MAX_DURATION_S = 43_200;
const DEFAULT_DURATION_S = 3_600;
/** RoleSessionName: 2-64 of [\w+=,.@-]; ExternalId: 2-1224 of [\w+=,.@:/-]; RoleArn: 20-2048. */
const SESSION_NAME = /^[\w+=,.@-]{2,64}$/;
const EXTERNAL_ID = /^[\w+=,.@:/-]{2,1224}$/;
const ROLE_ARN = /^arn:aws(-[a-z]+)*:iam::(\d{12}):role\/([\w+=,.@/-]{1,512})$/;
const MAX_DELAY_MS = 600_000;

// ---- Control-route schemas ---------------------------------------------------------------------

export const fakeRoleSchema = z.strictObject({
  roleArn: z.string().regex(ROLE_ARN, { error: "roleArn: arn:aws:iam::<12 digits>:role/<name>" }),
  externalId: z.string().regex(EXTERNAL_ID).nullable(),
  trustedAccessKeyId: z.string().min(1),
  maxSessionDuration: z.number().int().min(MIN_DURATION_S).max(MAX_DURATION_S).optional(),
  issueSeconds: z.number().int().min(1).max(MAX_DURATION_S).optional(),
});

export const stsFaultSchema = z.discriminatedUnion("type", [
  z.strictObject({ type: z.literal("throttle") }),
  z.strictObject({
    type: z.literal("error"),
    status: z.number().int().min(400).max(599),
    code: z.string().min(1),
    message: z.string().optional(),
  }),
  z.strictObject({ type: z.literal("delay"), ms: z.number().int().min(0).max(MAX_DELAY_MS) }),
  z.strictObject({ type: z.literal("malformed") }),
]);

// ---- The fake ----------------------------------------------------------------------------------

/** True for a request FakeEventBridge should hand to STS: a form POST to / without X-Amz-Target. */
export function isStsQuery(request: Request, url: URL): boolean {
  if (request.method !== "POST" || url.pathname !== "/" || request.headers.has("x-amz-target")) return false;
  const type = (request.headers.get("content-type") ?? "").split(";")[0]!.trim().toLowerCase();
  return type === FORM;
}

export class FakeSts {
  /** Every credential issued, in order (secrets included: this is a fake). */
  readonly issued: IssuedCredential[] = [];
  /** Every AssumeRole call that passed authentication. */
  readonly calls: StsCallRecord[] = [];

  #roles = new Map<string, FakeRole>();
  #faults: StsFault[] = [];
  #accountId: string;
  #now: () => number;
  #onIssue: IssueListener;

  constructor(opts: FakeStsOptions, now: () => number, onIssue: IssueListener) {
    this.#accountId = opts.accountId ?? "123456789012";
    this.#now = now;
    this.#onIssue = onIssue;
    for (const r of opts.roles ?? []) this.addRole(r);
  }

  addRole(role: FakeRole): void {
    const r = fakeRoleSchema.parse(role);
    this.#roles.set(r.roleArn, {
      roleArn: r.roleArn,
      externalId: r.externalId,
      trustedAccessKeyId: r.trustedAccessKeyId,
      ...(r.maxSessionDuration !== undefined ? { maxSessionDuration: r.maxSessionDuration } : {}),
      ...(r.issueSeconds !== undefined ? { issueSeconds: r.issueSeconds } : {}),
    });
  }

  /** FIFO: each fault is consumed by the next AssumeRole that passed authentication. */
  inject(...faults: StsFault[]): void {
    for (const f of faults) this.#faults.push(stsFaultSchema.parse(f) as StsFault);
  }

  /** Forgets calls and faults; keeps roles and issued credentials. */
  reset(): void {
    this.calls.length = 0;
    this.#faults = [];
  }

  /** An authenticated Query API request (the caller's signature already checked for service sts). */
  async handle(body: Uint8Array, callerAccessKeyId: string, requestId: string): Promise<Response> {
    const params = new URLSearchParams(new TextDecoder().decode(body));
    const get = (k: string) => params.get(k);
    const call: StsCallRecord = {
      requestId,
      at: this.#now(),
      callerAccessKeyId,
      roleArn: get("RoleArn"),
      sessionName: get("RoleSessionName"),
      externalId: get("ExternalId"),
      durationSeconds: get("DurationSeconds") === null ? null : Number(get("DurationSeconds")),
      status: 0,
    };
    this.calls.push(call);
    const refuse = (status: number, code: string, message: string) => {
      call.status = status;
      call.errorCode = code;
      return stsError(status, code, message, requestId);
    };
    const action = get("Action");
    if (action !== "AssumeRole") {
      return refuse(400, "InvalidAction", `Could not find operation ${action ?? "(no Action)"} for version ${VERSION}`);
    }
    if (get("Version") !== VERSION) return refuse(400, "InvalidParameterValue", `Version must be ${VERSION}.`);
    const problems: string[] = [];
    const roleArn = get("RoleArn");
    const sessionName = get("RoleSessionName");
    const externalId = get("ExternalId");
    const durationRaw = get("DurationSeconds");
    if (roleArn === null)
      problems.push("Value null at 'roleArn' failed to satisfy constraint: Member must not be null");
    else if (roleArn.length < 20 || roleArn.length > 2048) {
      problems.push("Value at 'roleArn' failed to satisfy constraint: Member must have length between 20 and 2048");
    }
    if (sessionName === null) {
      problems.push("Value null at 'roleSessionName' failed to satisfy constraint: Member must not be null");
    } else if (!SESSION_NAME.test(sessionName)) {
      problems.push(
        `Value '${sessionName}' at 'roleSessionName' failed to satisfy constraint: Member must satisfy regular expression pattern: [\\w+=,.@-]* and have length between 2 and 64`,
      );
    }
    if (externalId !== null && !EXTERNAL_ID.test(externalId)) {
      problems.push(
        "Value at 'externalId' failed to satisfy constraint: Member must satisfy regular expression pattern: [\\w+=,.@:/-]* and have length between 2 and 1224",
      );
    }
    const duration = durationRaw === null ? DEFAULT_DURATION_S : Number(durationRaw);
    if (!Number.isInteger(duration) || duration < MIN_DURATION_S || duration > MAX_DURATION_S) {
      problems.push(
        `Value '${durationRaw}' at 'durationSeconds' failed to satisfy constraint: Member must have value between ${MIN_DURATION_S} and ${MAX_DURATION_S}`,
      );
    }
    if (problems.length > 0) {
      return refuse(
        400,
        "ValidationError",
        `${problems.length} validation error${problems.length > 1 ? "s" : ""} detected: ${problems.join("; ")}`,
      );
    }

    const fault = this.#faults.shift();
    if (fault) call.fault = fault.type;
    if (fault?.type === "throttle") return refuse(400, "Throttling", "Rate exceeded");
    if (fault?.type === "error")
      return refuse(fault.status, fault.code, fault.message ?? `Injected fault: ${fault.code}.`);
    if (fault?.type === "delay") await new Promise((r) => setTimeout(r, fault.ms));

    const role = this.#roles.get(roleArn!);
    const denied = `User: arn:aws:iam::${this.#accountId}:user/${callerAccessKeyId} is not authorized to perform: sts:AssumeRole on resource: ${roleArn}`;
    // AWS does not say which condition failed: an unknown role, an untrusted caller and a wrong or
    // missing external id all answer the same AccessDenied.
    if (!role || role.trustedAccessKeyId !== callerAccessKeyId) return refuse(403, "AccessDenied", denied);
    if (role.externalId !== null && externalId !== role.externalId) return refuse(403, "AccessDenied", denied);
    if (duration > (role.maxSessionDuration ?? DEFAULT_DURATION_S)) {
      return refuse(
        400,
        "ValidationError",
        "The requested DurationSeconds exceeds the MaxSessionDuration set for this role.",
      );
    }
    if (fault?.type === "malformed") {
      call.status = 200;
      return xml(200, `<AssumeRoleResponse xmlns="${STS_NS}"><AssumeRoleResult><Credentials><AccessKeyId>`, requestId);
    }

    const now = this.#now();
    const issued: IssuedCredential = {
      accessKeyId: `ASIA${randomChars(16, "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567")}`,
      secretAccessKey: randomChars(40, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"),
      sessionToken: `FQoGZXIvYXdzE${randomChars(300, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/")}`,
      // Whole seconds, as STS's Expiration is written.
      expiresAt: Math.floor(now / 1000) * 1000 + (role.issueSeconds ?? duration) * 1000,
      roleArn: role.roleArn,
      sessionName: sessionName!,
      callerAccessKeyId,
    };
    this.issued.push(issued);
    this.#onIssue(issued);
    call.status = 200;
    const [, , account, name] = ROLE_ARN.exec(role.roleArn)!;
    const roleName = name!.split("/").pop()!;
    return xml(
      200,
      `<AssumeRoleResponse xmlns="${STS_NS}">
  <AssumeRoleResult>
    <AssumedRoleUser>
      <AssumedRoleId>AROA${randomChars(17, "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567")}:${esc(issued.sessionName)}</AssumedRoleId>
      <Arn>arn:aws:sts::${account}:assumed-role/${esc(roleName)}/${esc(issued.sessionName)}</Arn>
    </AssumedRoleUser>
    <Credentials>
      <AccessKeyId>${issued.accessKeyId}</AccessKeyId>
      <SecretAccessKey>${esc(issued.secretAccessKey)}</SecretAccessKey>
      <SessionToken>${esc(issued.sessionToken)}</SessionToken>
      <Expiration>${new Date(issued.expiresAt).toISOString().replace(/\.\d{3}Z$/, "Z")}</Expiration>
    </Credentials>
  </AssumeRoleResult>
  <ResponseMetadata>
    <RequestId>${requestId}</RequestId>
  </ResponseMetadata>
</AssumeRoleResponse>
`,
      requestId,
    );
  }

  /** `/_fake/roles` and `/_fake/sts/...` control routes; null for a route that is not STS's. */
  async control(request: Request, route: string): Promise<Response | null> {
    switch (route) {
      case "GET /_fake/roles":
        return json(200, { roles: [...this.#roles.values()] });
      case "POST /_fake/roles":
        this.addRole(fakeRoleSchema.parse(await request.json()) as FakeRole);
        return new Response(null, { status: 204 });
      case "GET /_fake/sts/calls":
        return json(200, { calls: this.calls });
      case "GET /_fake/sts/issued":
        // Key ids and expiry only: the control API never hands out a secret.
        return json(200, {
          issued: this.issued.map((c) => ({
            accessKeyId: c.accessKeyId,
            expiresAt: new Date(c.expiresAt).toISOString(),
            roleArn: c.roleArn,
            sessionName: c.sessionName,
          })),
        });
      case "POST /_fake/sts/faults": {
        const body: unknown = await request.json();
        const faults = z.union([stsFaultSchema, z.array(stsFaultSchema)]).parse(body);
        this.inject(...((Array.isArray(faults) ? faults : [faults]) as StsFault[]));
        return new Response(null, { status: 204 });
      }
      default:
        return null;
    }
  }
}

// ---- Wire helpers ------------------------------------------------------------------------------

/** STS's error document. `Type` is Sender for 4xx, Receiver for 5xx. */
export function stsError(status: number, code: string, message: string, requestId: string): Response {
  return xml(
    status,
    `<ErrorResponse xmlns="${STS_NS}">
  <Error>
    <Type>${status >= 500 ? "Receiver" : "Sender"}</Type>
    <Code>${esc(code)}</Code>
    <Message>${esc(message)}</Message>
  </Error>
  <RequestId>${requestId}</RequestId>
</ErrorResponse>
`,
    requestId,
  );
}

/** The verifier's EventBridge-style refusals as STS names them (status, code). */
export function stsAuthError(type: string): { status: number; code: string } {
  switch (type) {
    case "UnrecognizedClientException":
      return { status: 403, code: "InvalidClientTokenId" };
    case "InvalidSignatureException":
      return { status: 403, code: "SignatureDoesNotMatch" };
    case "IncompleteSignatureException":
      return { status: 400, code: "IncompleteSignature" };
    case "MissingAuthenticationTokenException":
      return { status: 403, code: "MissingAuthenticationToken" };
    case "ExpiredTokenException":
      return { status: 400, code: "ExpiredToken" };
    default:
      return { status: 400, code: type };
  }
}

function xml(status: number, body: string, requestId: string): Response {
  return new Response(body, { status, headers: { "content-type": "text/xml", "x-amzn-RequestId": requestId } });
}

function json(status: number, body: unknown): Response {
  return new Response(JSON.stringify(body), {
    status,
    headers: { "content-type": "application/json", "cache-control": "no-store" },
  });
}

function esc(s: string): string {
  return s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

function randomChars(n: number, alphabet: string): string {
  const bytes = crypto.getRandomValues(new Uint8Array(n));
  let out = "";
  for (const b of bytes) out += alphabet[b % alphabet.length];
  return out;
}
