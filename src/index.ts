/** Worker entry: the app's fetch handler and the Durable Object class. */
import { app } from "./app.ts";

export { TenantControl } from "./tenant-gate/control.ts";
export { TenantGate } from "./tenant-gate/gate.ts";

export default {
  fetch: app.fetch,
} satisfies ExportedHandler<Env>;
