/**
 * The AWS credentials the relay signs PutPartnerEvents with. The secret access key and session
 * token are sealed (AES-GCM, fields `secretAccessKey` / `sessionToken`) before anything is written.
 */
import {
  isPrincipalArn,
  permissionPolicy,
  RELAY_PRINCIPAL_PLACEHOLDER,
  RoleSetupError,
  roleSetup,
  trustPolicy,
} from "../../../src/credentials/role-setup.ts";
import { MAX_ROLE_DURATION_S, MIN_ROLE_DURATION_S } from "../../../src/tenants/record.ts";
import { seal } from "../../../src/tenants/sealed.ts";
import { bool, type CommandSpec, parseIntFlag, str, type Values } from "../args.ts";
import type { Context } from "../context.ts";
import { usageError } from "../errors.ts";
import { assertTenantId, loadTenant, nextRevision, recordEntry } from "../tenant-store.ts";

/** AWS access key ids: 16-128 word characters (IAM API: AccessKeyIdType). */
const AWS_ACCESS_KEY_ID_PATTERN = /^\w{16,128}$/;
/** Longest secret / session token accepted, in characters (STS tokens run to a few KB). */
const MAX_SECRET_CHARS = 256;
const MAX_SESSION_TOKEN_CHARS = 8192;

const credentialsSet: CommandSpec = {
  name: "credentials set",
  summary: "store the AWS credentials the relay signs PutPartnerEvents with: static keys (sealed) or a role to assume",
  args: "<id>",
  minPositionals: 1,
  maxPositionals: 1,
  options: {
    "access-key-id": { type: "string", value: "<AKIA...>", help: "the partner account's AWS access key id" },
    "secret-access-key": {
      type: "string",
      value: "<secret>",
      help: "the secret access key (lands in shell history: prefer --secret-access-key-stdin)",
    },
    "secret-access-key-stdin": { type: "boolean", help: "read the secret access key from stdin (first line)" },
    "session-token": { type: "string", value: "<token>", help: "session token, for temporary credentials" },
    "session-token-stdin": {
      type: "boolean",
      help: "read the session token from stdin (the line after the secret when both come from stdin)",
    },
    "role-arn": {
      type: "string",
      value: "<arn>",
      help: "instead of keys: a role in the partner's account the relay assumes with STS (docs/credentials.md)",
    },
    "external-id": {
      type: "string",
      value: "<id>",
      help: "with --role-arn: the external id its trust policy requires (default: the tenant's current one, else a new random one)",
    },
    "duration-seconds": {
      type: "string",
      value: "<s>",
      help: `with --role-arn: the session length asked of STS, ${MIN_ROLE_DURATION_S}-${MAX_ROLE_DURATION_S} (default 3600)`,
    },
    "relay-principal": {
      type: "string",
      value: "<arn>",
      help: "with --role-arn: the relay identity's IAM ARN for the printed trust policy (default: env RELAY_AWS_PRINCIPAL_ARN)",
    },
  },
  details:
    "The secret is sealed with the sealing key (locally SEALING_KEY in .dev.vars, else RELAY_SEALING_KEY;\n" +
    "remotely RELAY_SEALING_KEY), the same key the Worker opens it with, before anything is written.",
  examples: [
    "credentials set acme --access-key-id AKIAIOSFODNN7EXAMPLE --secret-access-key-stdin < secret.txt",
    'printf \'%s\\n\' "$AWS_SECRET_ACCESS_KEY" | npm run tenant -- credentials set acme --access-key-id "$AWS_ACCESS_KEY_ID" --secret-access-key-stdin',
    "credentials set acme --role-arn arn:aws:iam::210987654321:role/eventbridge-relay",
  ],
  async run(ctx, { values, positionals }) {
    const id = assertTenantId(positionals[0]!);
    if (str(values, "role-arn") !== undefined) return setRole(ctx, id, values);
    for (const flag of ["external-id", "duration-seconds", "relay-principal"]) {
      if (str(values, flag) !== undefined) throw usageError(`--${flag} goes with --role-arn`);
    }
    const accessKeyId = str(values, "access-key-id");
    const secretFlag = str(values, "secret-access-key");
    const secretStdin = bool(values, "secret-access-key-stdin");
    const tokenFlag = str(values, "session-token");
    const tokenStdin = bool(values, "session-token-stdin");
    if (!accessKeyId) throw usageError("credentials set needs --access-key-id");
    if (!AWS_ACCESS_KEY_ID_PATTERN.test(accessKeyId)) {
      throw usageError("--access-key-id must be 16-128 letters, digits or underscores (e.g. AKIAIOSFODNN7EXAMPLE)");
    }
    if (secretFlag === undefined && !secretStdin) {
      throw usageError("credentials set needs --secret-access-key-stdin (or --secret-access-key <secret>)");
    }
    if (secretFlag !== undefined && secretStdin)
      throw usageError("give either --secret-access-key or --secret-access-key-stdin, not both");
    if (tokenFlag !== undefined && tokenStdin)
      throw usageError("give either --session-token or --session-token-stdin, not both");
    if (secretFlag !== undefined) {
      ctx.out.warn(
        "--secret-access-key on a command line lands in your shell history and the process list; prefer --secret-access-key-stdin",
      );
    }
    if (tokenFlag !== undefined) {
      ctx.out.warn("--session-token on a command line lands in your shell history; prefer --session-token-stdin");
    }
    let secret = secretFlag;
    let token = tokenFlag;
    if (secretStdin || tokenStdin) {
      const lines = (await ctx.readStdin()).split(/\r?\n/);
      let at = 0;
      if (secretStdin) secret = lines[at++]?.trim();
      if (tokenStdin) token = lines[at++]?.trim();
    }
    if (!secret) throw usageError("the secret access key is empty");
    if (/\s/.test(secret) || secret.length > MAX_SECRET_CHARS) {
      throw usageError(
        `the secret access key must be one line of at most ${MAX_SECRET_CHARS} characters without spaces`,
      );
    }
    if (tokenStdin && !token) throw usageError("--session-token-stdin: no session token on stdin");
    if (token !== undefined && (token === "" || /\s/.test(token) || token.length > MAX_SESSION_TOKEN_CHARS)) {
      throw usageError(`the session token must be one non-empty line of at most ${MAX_SESSION_TOKEN_CHARS} characters`);
    }
    const key = await ctx.sealingKey();
    const record = await loadTenant(ctx.kv, id);
    const now = ctx.now();
    const next = nextRevision(
      record,
      {
        credentials: {
          accessKeyId,
          secretAccessKey: await seal(key, id, "secretAccessKey", secret),
          sessionToken: token ? await seal(key, id, "sessionToken", token) : null,
        },
      },
      now,
    );
    await ctx.kv.putMany([recordEntry(next)]);
    ctx.out.result(
      { tenantId: id, accessKeyId, sessionToken: token ? "sealed" : null, revision: next.revision },
      () =>
        `stored credentials for tenant ${id}: access key id ${accessKeyId}, secret sealed${token ? ", session token sealed" : ""}`,
    );
  },
};

const credentialsClear: CommandSpec = {
  name: "credentials clear",
  summary: "remove a tenant's AWS credentials (the relay then cannot deliver its events)",
  args: "<id>",
  minPositionals: 1,
  maxPositionals: 1,
  options: {},
  examples: ["credentials clear acme"],
  async run(ctx, { positionals }) {
    const id = assertTenantId(positionals[0]!);
    const record = await loadTenant(ctx.kv, id);
    const next = nextRevision(record, { credentials: null }, ctx.now());
    await ctx.kv.putMany([recordEntry(next)]);
    ctx.out.result(
      { tenantId: id, credentials: null, revision: next.revision },
      () => `cleared the credentials of tenant ${id}`,
    );
  },
};

export const credentialsCommands: CommandSpec[] = [credentialsSet, credentialsClear];

/** `credentials set <id> --role-arn ...`: the role and external id (no secret), and the policies to paste. */
async function setRole(ctx: Context, id: string, values: Values): Promise<void> {
  for (const flag of [
    "access-key-id",
    "secret-access-key",
    "secret-access-key-stdin",
    "session-token",
    "session-token-stdin",
  ]) {
    if (values[flag] !== undefined) throw usageError(`give either --role-arn or --${flag}, not both`);
  }
  const durationRaw = str(values, "duration-seconds");
  const principal = str(values, "relay-principal") ?? ctx.env.RELAY_AWS_PRINCIPAL_ARN;
  if (principal !== undefined && !isPrincipalArn(principal)) {
    throw usageError("--relay-principal must be an IAM user or role ARN (arn:aws:iam::<account>:user/<name>)");
  }
  const record = await loadTenant(ctx.kv, id);
  let setup: ReturnType<typeof roleSetup>;
  try {
    setup = roleSetup(record.credentials, {
      roleArn: str(values, "role-arn")!,
      externalId: str(values, "external-id"),
      durationSeconds:
        durationRaw === undefined
          ? undefined
          : parseIntFlag("duration-seconds", durationRaw, MIN_ROLE_DURATION_S, MAX_ROLE_DURATION_S),
    });
  } catch (e) {
    if (e instanceof RoleSetupError) throw usageError(e.message);
    throw e;
  }
  const next = nextRevision(record, { credentials: setup.credentials }, ctx.now());
  await ctx.kv.putMany([recordEntry(next)]);
  const { roleArn, externalId, durationSeconds } = setup.credentials;
  const trust = trustPolicy(principal ?? RELAY_PRINCIPAL_PLACEHOLDER, externalId);
  const permissions = permissionPolicy();
  if (principal === undefined) {
    ctx.out.warn(
      "the trust policy names a placeholder principal: pass --relay-principal <the relay identity's IAM ARN> (or set RELAY_AWS_PRINCIPAL_ARN)",
    );
  }
  ctx.out.result(
    {
      tenantId: id,
      kind: "role",
      roleArn,
      externalId,
      externalIdSource: setup.externalIdSource,
      durationSeconds,
      revision: next.revision,
      trustPolicy: trust,
      permissionPolicy: permissions,
    },
    () =>
      [
        `tenant ${id} now signs with role ${roleArn}, assumed with STS (no keys stored)`,
        `external id: ${externalId} (${setup.externalIdSource === "generated" ? "generated" : setup.externalIdSource === "kept" ? "kept from before" : "as given"}; not a secret, but give it only to this partner)`,
        "",
        "The partner attaches this trust policy to the role:",
        JSON.stringify(trust, null, 2),
        "",
        "and this permission policy (PutPartnerEvents has no resource type, hence *; the second statement",
        "covers the partner-event-source calls, and may be left out if the partner manages its sources itself):",
        JSON.stringify(permissions, null, 2),
      ].join("\n"),
  );
}
