/**
 * Tenant administration as a library (docs/admin.md "The library"): functions over a TENANTS
 * `KVNamespace` and the relay's admin API, used by `npm run tenant` (scripts/tenant.ts), by
 * `npm start`'s demo tenant (scripts/dev/demo-tenant.ts) and by the tests. One module per command
 * group; each function takes an `Admin` (context.ts), validates its input, keeps the fail-closed
 * order of docs/admin.md, and returns what happened (or throws an AdminError).
 */
export * from "./access.ts";
export * from "./client.ts";
export * from "./context.ts";
export * from "./credentials.ts";
export * from "./errors.ts";
export * from "./keys.ts";
export * from "./relay-state.ts";
export * from "./role.ts";
export * from "./sigv4.ts";
export * from "./sources.ts";
export * from "./store.ts";
export * from "./tenants.ts";
