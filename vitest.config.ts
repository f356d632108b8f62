import { cloudflareTest } from "@cloudflare/vitest-plugin";
import { defineConfig } from "vitest/config";

/** Bindings the tests run with: a fixed sealing key, an admin token, endpoint overrides on. */
export const TEST_BINDINGS = {
  SEALING_KEY: "dGVzdC1zZWFsaW5nLWtleS0zMi1ieXRlcy1sb25nISE=",
  ADMIN_TOKEN: "test-admin-token-0123456789abcdef",
  ALLOW_ENDPOINT_OVERRIDE: "true",
  // Fast retries so buffer tests run in milliseconds (production: 1 s base, 5 min cap).
  DRAIN_BACKOFF_BASE_MS: "5",
  DRAIN_BACKOFF_CAP_MS: "40",
  // The relay's own AWS identity, which assumes role tenants' roles (the emulator's STS trusts it).
  RELAY_AWS_ACCESS_KEY_ID: "AKIARELAYTESTIDENTITY",
  RELAY_AWS_SECRET_ACCESS_KEY: "relay-test-identity-secret-0123456789abcdef",
};

// wrangler checks `[secrets] required` against the environment when it reads the config; the
// test values above are what the Worker receives.
process.env.SEALING_KEY ??= TEST_BINDINGS.SEALING_KEY;
process.env.ADMIN_TOKEN ??= TEST_BINDINGS.ADMIN_TOKEN;
process.env.RELAY_AWS_ACCESS_KEY_ID ??= TEST_BINDINGS.RELAY_AWS_ACCESS_KEY_ID;
process.env.RELAY_AWS_SECRET_ACCESS_KEY ??= TEST_BINDINGS.RELAY_AWS_SECRET_ACCESS_KEY;

export default defineConfig({
  test: {
    projects: [
      {
        // Unit and integration tests, inside workerd with the Worker's real bindings.
        plugins: [
          cloudflareTest({
            wrangler: { configPath: "./wrangler.toml" },
            miniflare: { bindings: TEST_BINDINGS },
          }),
        ],
        test: {
          name: "workers",
          // The relay logs a JSON line per request: show them only for tests that fail.
          silent: "passed-only",
          setupFiles: ["./test/setup.ts", "./test/helpers/contract-setup.ts"],
          include: ["test/unit/**/*.test.ts", "test/integration/**/*.test.ts"],
          // A guard against hangs, not a timing assertion: a 2-core machine running other work
          // can take several seconds for one workerd round of a large batch.
          testTimeout: 30_000,
        },
      },
      {
        // The API's contract from Node: the OpenAPI document against the official schemas (the
        // validator compiles with ajv, which workerd forbids), the README's examples, the metrics CLI.
        test: {
          name: "contract",
          environment: "node",
          include: ["test/contract/**/*.test.ts"],
        },
      },
      {
        // Tests that drive real processes from Node: the admin CLI over wrangler, wrangler dev.
        test: {
          name: "node",
          environment: "node",
          include: ["test/node/**/*.test.ts"],
          exclude: ["test/node/**/*.slow.test.ts"],
          testTimeout: 120_000,
          hookTimeout: 120_000,
          fileParallelism: false,
        },
      },
      {
        // `npm run test:slow` (and CI): real-process smoke tests of the admin CLI (npm start on
        // another port with `npm run tenant` finding it, --remote without a login) and the local KV
        // layout checked against wrangler's getPlatformProxy.
        test: {
          name: "node-slow",
          environment: "node",
          include: ["test/node/**/*.slow.test.ts"],
          testTimeout: 180_000,
          hookTimeout: 180_000,
          fileParallelism: false,
        },
      },
    ],
  },
});
