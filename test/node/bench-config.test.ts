/**
 * The benchmark runs the production bundle under its own `workerd serve` config: its
 * compatibility date and flags must be the ones wrangler deploys with (read from wrangler.toml
 * by wrangler's own config reader), or the bench measures another runtime.
 */
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { unstable_readConfig } from "wrangler";
import { COMPATIBILITY_DATE, COMPATIBILITY_FLAGS } from "../../scripts/bench/workers.ts";

describe("benchmark runtime settings", () => {
  it("match wrangler.toml's compatibility date and flags", () => {
    const config = unstable_readConfig({ config: fileURLToPath(new URL("../../wrangler.toml", import.meta.url)) });
    expect(COMPATIBILITY_DATE).toBe(config.compatibility_date);
    expect([...COMPATIBILITY_FLAGS].sort()).toEqual([...(config.compatibility_flags ?? [])].sort());
  });
});
