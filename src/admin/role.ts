/**
 * Putting a tenant on a role the relay assumes with STS (docs/credentials.md): the role ARN and
 * an external id (the given one, else the tenant's current one, else a new random one) replace
 * the tenant's credentials; nothing secret is written. Returns the trust and permission policies
 * for the partner to paste.
 */
import {
  isPrincipalArn,
  permissionPolicy,
  RELAY_PRINCIPAL_PLACEHOLDER,
  RoleSetupError,
  roleSetup,
  trustPolicy,
} from "../credentials/role-setup.ts";
import type { Admin } from "./context.ts";
import { invalidInput } from "./errors.ts";
import { assertTenantId, loadTenant, nextRevision, putInOrder, recordEntry } from "./store.ts";

export interface RoleCredentialsInput {
  roleArn: string;
  /** Absent: the tenant's current external id, else a new random one. */
  externalId?: string | undefined;
  /** STS session length, in s (900-43,200); absent: the relay's default (1 h). */
  durationSeconds?: number | undefined;
  /** The relay identity's IAM ARN, for the trust policy; absent: a placeholder (and a warning). */
  relayPrincipalArn?: string | undefined;
}

export async function setRoleCredentials(admin: Admin, rawId: string, input: RoleCredentialsInput) {
  const id = assertTenantId(rawId);
  const principal = input.relayPrincipalArn;
  if (principal !== undefined && !isPrincipalArn(principal)) {
    throw invalidInput("--relay-principal must be an IAM user or role ARN (arn:aws:iam::<account>:user/<name>)");
  }
  const record = await loadTenant(admin.kv, id);
  let setup: ReturnType<typeof roleSetup>;
  try {
    setup = roleSetup(record.credentials, input);
  } catch (e) {
    if (e instanceof RoleSetupError) throw invalidInput(e.message);
    throw e;
  }
  const next = nextRevision(record, { credentials: setup.credentials }, admin.now());
  await putInOrder(admin.kv, [recordEntry(next)]);
  if (principal === undefined) {
    admin.notices.warn(
      "the trust policy names a placeholder principal: pass --relay-principal <the relay identity's IAM ARN> (or set RELAY_AWS_PRINCIPAL_ARN)",
    );
  }
  const { roleArn, externalId, durationSeconds } = setup.credentials;
  return {
    tenantId: id,
    kind: "role" as const,
    roleArn,
    externalId,
    externalIdSource: setup.externalIdSource,
    durationSeconds,
    revision: next.revision,
    trustPolicy: trustPolicy(principal ?? RELAY_PRINCIPAL_PLACEHOLDER, externalId),
    permissionPolicy: permissionPolicy(),
  };
}
