/**
 * The worker's bindings, merged into the global Cloudflare.Env that workers-types declares.
 * Kept by hand (wrangler.toml is the source): `wrangler types` would also emit runtime types
 * that @cloudflare/workers-types already provides.
 */
declare namespace Cloudflare {
  interface Env {
    DB: D1Database;
    TEAM_LEDGER: DurableObjectNamespace<import("./object/team-ledger").TeamLedger>;
    /** Secret: the first admin API key (`.dev.vars` locally, `wrangler secret put` in production). */
    ADMIN_API_KEY?: string;
  }
}
