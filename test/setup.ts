// Applies the D1 migrations once per test file, as `wrangler d1 migrations apply` does for dev.
import { applyD1Migrations } from "cloudflare:test";
import { env } from "cloudflare:workers";

await applyD1Migrations(env.DB, env.TEST_MIGRATIONS);
