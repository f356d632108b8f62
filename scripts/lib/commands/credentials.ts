/**
 * The AWS credentials the relay signs PutPartnerEvents with. The secret access key and session
 * token are sealed (AES-GCM, fields `secretAccessKey` / `sessionToken`) before anything is written.
 */
import {
  AWS_ACCESS_KEY_ID_PATTERN,
  assertCredentials,
  clearCredentials,
  setCredentials,
} from "../../../src/admin/credentials.ts";
import { setRoleCredentials } from "../../../src/admin/role.ts";
import { assertTenantId } from "../../../src/admin/store.ts";
import { MAX_ROLE_DURATION_S, MIN_ROLE_DURATION_S } from "../../../src/tenants/record.ts";
import { bool, type CommandSpec, parseIntFlag, str, type Values } from "../args.ts";
import type { Context } from "../context.ts";
import { usageError } from "../errors.ts";

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
    assertCredentials({ accessKeyId, secretAccessKey: secret ?? "" }); // the secret's checks, before the token's
    if (tokenStdin && !token) throw usageError("--session-token-stdin: no session token on stdin");
    const r = await setCredentials(ctx.admin, id, {
      accessKeyId,
      secretAccessKey: secret ?? "",
      sessionToken: token ?? null,
    });
    ctx.out.result(
      r,
      () =>
        `stored credentials for tenant ${id}: access key id ${accessKeyId}, secret sealed${r.sessionToken ? ", session token sealed" : ""}`,
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
    const r = await clearCredentials(ctx.admin, id);
    ctx.out.result(r, () => `cleared the credentials of tenant ${id}`);
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
  const r = await setRoleCredentials(ctx.admin, id, {
    roleArn: str(values, "role-arn")!,
    externalId: str(values, "external-id"),
    durationSeconds:
      durationRaw === undefined
        ? undefined
        : parseIntFlag("duration-seconds", durationRaw, MIN_ROLE_DURATION_S, MAX_ROLE_DURATION_S),
    relayPrincipalArn: str(values, "relay-principal") ?? ctx.env.RELAY_AWS_PRINCIPAL_ARN,
  });
  const source =
    r.externalIdSource === "generated" ? "generated" : r.externalIdSource === "kept" ? "kept from before" : "as given";
  ctx.out.result(r, () =>
    [
      `tenant ${id} now signs with role ${r.roleArn}, assumed with STS (no keys stored)`,
      `external id: ${r.externalId} (${source}; not a secret, but give it only to this partner)`,
      "",
      "The partner attaches this trust policy to the role:",
      JSON.stringify(r.trustPolicy, null, 2),
      "",
      "and this permission policy (PutPartnerEvents has no resource type, hence *; the second statement",
      "covers the partner-event-source calls, and may be left out if the partner manages its sources itself):",
      JSON.stringify(r.permissionPolicy, null, 2),
    ].join("\n"),
  );
}
