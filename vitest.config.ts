// Tests run inside workerd through @cloudflare/vitest-pool-workers: the real runtime, the real
// Durable Object and a local D1, with the D1 migrations applied by test/setup.ts.
import { cloudflareTest, readD1Migrations } from "@cloudflare/vitest-pool-workers";
import { defineConfig, type Plugin } from "vitest/config";

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

export default defineConfig(async () => {
  const migrations = await readD1Migrations("./migrations");
  return {
    plugins: [
      quietSourceMaps,
      cloudflareTest({
        wrangler: { configPath: "./wrangler.toml" },
        miniflare: {
          bindings: { TEST_MIGRATIONS: migrations, ADMIN_API_KEY: "test-admin-key" },
        },
      }),
    ],
    test: {
      setupFiles: ["./test/setup.ts"],
      testTimeout: 30_000,
    },
  };
});
