/**
 * Runs around every workers test: restores spies, and purges the gates of the tenants the test
 * seeded, so no drain alarm from one test fires into the next (or toward the real network).
 */
import { afterEach, vi } from "vitest";
import { purgeGates } from "./helpers/drain.ts";
import { seededTenantIds } from "./helpers/tenants.ts";

afterEach(async () => {
  await purgeGates(seededTenantIds.splice(0));
  vi.restoreAllMocks();
});
