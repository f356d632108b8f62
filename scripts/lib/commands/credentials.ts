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
import { assertTenantId } from "../../../src/admin/store.ts";
import { bool, type CommandSpec, str } from "../args.ts";
import { usageError } from "../errors.ts";

const credentialsSet: CommandSpec = {
  name: "credentials set",
  summary: "store the AWS credentials the relay signs PutPartnerEvents with (sealed)",
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
  },
  details:
    "The secret is sealed with the sealing key (locally SEALING_KEY in .dev.vars, else RELAY_SEALING_KEY;\n" +
    "remotely RELAY_SEALING_KEY), the same key the Worker opens it with, before anything is written.",
  examples: [
    "credentials set acme --access-key-id AKIAIOSFODNN7EXAMPLE --secret-access-key-stdin < secret.txt",
    'printf \'%s\\n\' "$AWS_SECRET_ACCESS_KEY" | npm run tenant -- credentials set acme --access-key-id "$AWS_ACCESS_KEY_ID" --secret-access-key-stdin',
  ],
  async run(ctx, { values, positionals }) {
    const id = assertTenantId(positionals[0]!);
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
