/** What middleware puts on the Hono context, typed once for every route. */
import type { ErrorFormat } from "./errors.ts";
import type { Principal } from "./tenant-gate/protocol.ts";
import type { TenantRecord } from "./tenants/record.ts";

/** An authenticated partner: the tenant and the credential it used. */
export interface Caller {
  tenant: TenantRecord;
  principal: Principal;
}

export interface RelayVariables {
  requestId: string;
  errorFormat: ErrorFormat;
  caller: Caller;
}

export interface RelayEnv {
  Bindings: Env;
  Variables: RelayVariables;
}
