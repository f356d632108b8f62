/**
 * Setting a tenant up on a role, for the admin CLI (`credentials set <id> --role-arn ...`): the
 * role credentials to store, the external id (generated when not given, kept when the tenant
 * already has one), and the exact policies the partner pastes into IAM (docs/credentials.md).
 * Pure: no I/O, no Worker bindings, so the CLI and the tests use it as is.
 */
import { type RoleCredentials, roleCredentialsSchema, type TenantRecord } from "../tenants/record.ts";

/** Random bytes behind a generated external id (192 bits; base64url gives 32 characters). */
const EXTERNAL_ID_BYTES = 24;
/** Shown in the trust policy when the operator has not said what the relay's identity is. */
export const RELAY_PRINCIPAL_PLACEHOLDER = "arn:aws:iam::<relay-account-id>:user/<relay-user>";
/** The relay's principal: an IAM user or role ARN, or an account root. */
const PRINCIPAL_ARN = /^arn:aws(-[a-z]+)*:(iam::\d{12}:(user|role)\/[\w+=,.@/-]{1,512}|iam::\d{12}:root)$/;

export class RoleSetupError extends Error {
  override name = "RoleSetupError";
}

/** A fresh random external id: `ebr-` and 32 base64url characters (STS's charset allows all of them). */
export function generateExternalId(): string {
  const bytes = crypto.getRandomValues(new Uint8Array(EXTERNAL_ID_BYTES));
  let s = "";
  for (const b of bytes) s += String.fromCharCode(b);
  return `ebr-${btoa(s).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "")}`;
}

export interface RoleSetupInput {
  roleArn: string;
  /** Given by the operator; absent: the tenant's current one, or a new random one. */
  externalId?: string | undefined;
  durationSeconds?: number | undefined;
}

export interface RoleSetup {
  credentials: RoleCredentials;
  /** How the external id came about. */
  externalIdSource: "given" | "kept" | "generated";
}

/** The role credentials for a tenant; throws RoleSetupError naming what is wrong. */
export function roleSetup(current: TenantRecord["credentials"], input: RoleSetupInput): RoleSetup {
  const kept = current?.kind === "role" ? current.externalId : undefined;
  const externalId = input.externalId ?? kept ?? generateExternalId();
  const parsed = roleCredentialsSchema.safeParse({
    kind: "role",
    roleArn: input.roleArn,
    externalId,
    durationSeconds: input.durationSeconds ?? null,
  });
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const field = issue?.path.join(".") ?? "";
    const flag = field === "roleArn" ? "--role-arn" : field === "externalId" ? "--external-id" : "--duration-seconds";
    throw new RoleSetupError(`${flag}: ${issue?.message ?? "invalid"}`);
  }
  return {
    credentials: parsed.data,
    externalIdSource: input.externalId !== undefined ? "given" : kept !== undefined ? "kept" : "generated",
  };
}

/** True when `arn` can stand as the trust policy's principal (an IAM user or role ARN, or an account root). */
export function isPrincipalArn(arn: string): boolean {
  return PRINCIPAL_ARN.test(arn);
}

/**
 * The role's trust policy: only the relay's identity may assume it, and only with this tenant's
 * external id (AWS's guidance against the confused deputy).
 */
export function trustPolicy(relayPrincipalArn: string, externalId: string) {
  return {
    Version: "2012-10-17",
    Statement: [
      {
        Sid: "EventBridgeRelay",
        Effect: "Allow",
        Principal: { AWS: relayPrincipalArn },
        Action: "sts:AssumeRole",
        Condition: { StringEquals: { "sts:ExternalId": externalId } },
      },
    ],
  };
}

/**
 * The role's permission policy: PutPartnerEvents (no resource type in IAM, hence `*`) and the
 * partner-event-source control-plane calls the relay makes for the tenant (issue 13); a partner
 * that manages its sources itself may leave the second statement out.
 */
export function permissionPolicy() {
  return {
    Version: "2012-10-17",
    Statement: [
      { Sid: "SendPartnerEvents", Effect: "Allow", Action: "events:PutPartnerEvents", Resource: "*" },
      {
        Sid: "ManagePartnerEventSources",
        Effect: "Allow",
        Action: [
          "events:CreatePartnerEventSource",
          "events:DescribePartnerEventSource",
          "events:ListPartnerEventSources",
          "events:ListPartnerEventSourceAccounts",
          "events:DeletePartnerEventSource",
        ],
        Resource: "*",
      },
    ],
  };
}

/** The relay identity's own policy: AssumeRole on the tenants' roles and nothing else. */
export function relayIdentityPolicy(roleArns: readonly string[]) {
  return {
    Version: "2012-10-17",
    Statement: [
      {
        Sid: "AssumeTenantRoles",
        Effect: "Allow",
        Action: "sts:AssumeRole",
        Resource: roleArns.length > 0 ? [...roleArns] : ["arn:aws:iam::*:role/<tenant-role-name>"],
      },
    ],
  };
}
