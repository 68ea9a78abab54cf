// Applies the D1 migrations (to every history database) once per test file, as `wrangler d1 migrations apply` does for dev.
import { applyD1Migrations } from "cloudflare:test";
import { env } from "cloudflare:workers";

await applyD1Migrations(env.DB, env.TEST_MIGRATIONS);
// The EU jurisdiction's history database (wrangler.toml DB_EU).
if (env.DB_EU) await applyD1Migrations(env.DB_EU, env.TEST_MIGRATIONS);
