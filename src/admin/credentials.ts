/**
 * The AWS credentials the relay signs PutPartnerEvents with. The secret access key and session
 * token are sealed (AES-GCM, fields `secretAccessKey` / `sessionToken`, bound to the tenant id)
 * before anything is written.
 */
import type { TenantRecord } from "../tenants/record.ts";
import { seal } from "../tenants/sealed.ts";
import type { Admin } from "./context.ts";
import { invalidInput } from "./errors.ts";
import { assertTenantId, loadTenant, nextRevision, putInOrder, recordEntry } from "./store.ts";

/** AWS access key ids: 16-128 word characters (IAM API: AccessKeyIdType). */
export const AWS_ACCESS_KEY_ID_PATTERN = /^\w{16,128}$/;
/** Longest secret / session token accepted, in characters (STS tokens run to a few KB). */
export const MAX_SECRET_CHARS = 256;
export const MAX_SESSION_TOKEN_CHARS = 8192;
/** The fields the secrets are sealed under. */
export const SECRET_ACCESS_KEY_FIELD = "secretAccessKey";
export const SESSION_TOKEN_FIELD = "sessionToken";

export interface AwsCredentialsInput {
  accessKeyId: string;
  secretAccessKey: string;
  sessionToken?: string | null;
}

/** Checks the values (invalid input names what is wrong, never the value). */
export function assertCredentials(input: AwsCredentialsInput): void {
  if (!AWS_ACCESS_KEY_ID_PATTERN.test(input.accessKeyId)) {
    throw invalidInput("--access-key-id must be 16-128 letters, digits or underscores (e.g. AKIAIOSFODNN7EXAMPLE)");
  }
  const secret = input.secretAccessKey;
  if (!secret) throw invalidInput("the secret access key is empty");
  if (/\s/.test(secret) || secret.length > MAX_SECRET_CHARS) {
    throw invalidInput(
      `the secret access key must be one line of at most ${MAX_SECRET_CHARS} characters without spaces`,
    );
  }
  const token = input.sessionToken;
  if (
    token !== undefined &&
    token !== null &&
    (token === "" || /\s/.test(token) || token.length > MAX_SESSION_TOKEN_CHARS)
  ) {
    throw invalidInput(`the session token must be one non-empty line of at most ${MAX_SESSION_TOKEN_CHARS} characters`);
  }
}

/** The record's `credentials`, sealed for tenant `tenantId`. */
export async function sealCredentials(
  key: CryptoKey,
  tenantId: string,
  input: AwsCredentialsInput,
): Promise<NonNullable<TenantRecord["credentials"]>> {
  return {
    accessKeyId: input.accessKeyId,
    secretAccessKey: await seal(key, tenantId, SECRET_ACCESS_KEY_FIELD, input.secretAccessKey),
    sessionToken: input.sessionToken ? await seal(key, tenantId, SESSION_TOKEN_FIELD, input.sessionToken) : null,
  };
}

export async function setCredentials(admin: Admin, rawId: string, input: AwsCredentialsInput) {
  const id = assertTenantId(rawId);
  assertCredentials(input);
  const key = await admin.sealingKey();
  const record = await loadTenant(admin.kv, id);
  const next = nextRevision(record, { credentials: await sealCredentials(key, id, input) }, admin.now());
  await putInOrder(admin.kv, [recordEntry(next)]);
  return {
    tenantId: id,
    accessKeyId: input.accessKeyId,
    sessionToken: input.sessionToken ? ("sealed" as const) : null,
    revision: next.revision,
  };
}

export async function clearCredentials(admin: Admin, rawId: string) {
  const id = assertTenantId(rawId);
  const record = await loadTenant(admin.kv, id);
  const next = nextRevision(record, { credentials: null }, admin.now());
  await putInOrder(admin.kv, [recordEntry(next)]);
  return { tenantId: id, credentials: null, revision: next.revision };
}
