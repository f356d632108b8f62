/**
 * The Worker's `Env` as the scripts' type check sees it. The CLI's typed admin client
 * (src/admin/client.ts, `hc<AdminApi>`) imports the admin routes' *type*, which reaches src/ files
 * that name `Env`; those files are checked for real, with the Workers types, by tsconfig.json.
 * Here (Node and DOM types, no Workers runtime types) `Env` only has to exist.
 */
// biome-ignore lint/suspicious/noExplicitAny: a stand-in; the Worker's Env is checked by tsconfig.json
type Env = Record<string, any>;
type DurableObjectId = unknown;
// The admin routes reach the shard routing (src/tenant-gate/client.ts) and the record store.
// biome-ignore lint/suspicious/noExplicitAny: a stand-in, as above
type DurableObjectNamespace = any;
// biome-ignore lint/suspicious/noExplicitAny: a stand-in, as above
type KVNamespace = any;
