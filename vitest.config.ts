// Two test projects (`npm test` runs both):
//  - workers: everything under test/ but test/domain, inside workerd through
//    @cloudflare/vitest-pool-workers: the real runtime, the real Durable Object and a local D1,
//    with the D1 migrations applied by test/setup.ts.
//  - domain: test/domain, the pure domain (src/domain/) in plain Node, no runtime.
// Both extend this file (`extends: true`), so what a config built on it sets at the root (the
// bench's `include` and `testTimeout`, bench/micro/vitest.config.ts) reaches them: the workers
// project takes the root's `include`, and the domain project only looks inside test/domain
// (`dir`), where the bench's files are not.
import { cloudflareTest, readD1Migrations } from "@cloudflare/vitest-pool-workers";
import { configDefaults, defineConfig, type Plugin, type ViteUserConfig } from "vitest/config";

// stripe-like packages ship source maps without sources; keep vitest's output readable.
const quietSourceMaps: Plugin = {
  name: "quiet-missing-source-maps",
  configResolved(config) {
    const warnOnce = config.logger.warnOnce;
    config.logger.warnOnce = (msg, options) => {
      if (msg.includes("points to missing source files")) return;
      warnOnce(msg, options);
    };
  },
};

export default defineConfig(async (): Promise<ViteUserConfig> => {
  const migrations = await readD1Migrations("./migrations");
  return {
    plugins: [quietSourceMaps],
    test: {
      testTimeout: 30_000,
      projects: [
        {
          extends: true,
          plugins: [
            cloudflareTest({
              wrangler: { configPath: "./wrangler.toml" },
              miniflare: {
                // OUTBOUND_URL_POLICY "local": webhooks may go to the receiver on 127.0.0.1 (test/webhooks).
                bindings: {
                  TEST_MIGRATIONS: migrations,
                  ADMIN_API_KEY: "test-admin-key",
                  OUTBOUND_URL_POLICY: "local",
                  // workerd has no Durable Object jurisdictions (src/client/ledger-client.ts namespaceOf).
                  DO_JURISDICTIONS: "local",
                  // Stripe in test mode, never reached: test/support/stripe.ts answers its API at the fetch level.
                  STRIPE_SECRET_KEY: "sk_test_never_leaves_the_tests",
                  STRIPE_WEBHOOK_SECRET: "whsec_test_webhook_secret_of_the_tests",
                },
                // The history queues as wrangler.toml declares them (batch size, max_retries, the
                // dead-letter queue), but batches close after 50 ms and retries come at once, so the
                // tests wait for the consumer in milliseconds rather than seconds.
                queueConsumers: {
                  "credits-history": {
                    maxBatchSize: 100,
                    maxBatchTimeout: 0.05,
                    maxRetries: 5,
                    retryDelay: 0,
                    deadLetterQueue: "credits-history-dlq",
                  },
                  "credits-history-dlq": { maxBatchSize: 100, maxBatchTimeout: 0.05, maxRetries: 10, retryDelay: 0 },
                },
              },
            }),
          ],
          test: {
            name: "workers",
            exclude: [...configDefaults.exclude, "test/domain/**"],
            setupFiles: ["./test/setup.ts"],
            // A real HTTP receiver on 127.0.0.1 for the webhook deliveries (runs in Node, once).
            globalSetup: ["./test/support/receiver-global-setup.ts"],
          },
        },
        {
          extends: true,
          test: {
            name: "domain",
            environment: "node",
            dir: "test/domain",
          },
        },
      ],
    },
  };
});
