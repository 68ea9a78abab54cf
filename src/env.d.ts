/**
 * The worker's bindings, merged into the global Cloudflare.Env that workers-types declares.
 * Kept by hand (wrangler.toml is the source): `wrangler types` would also emit runtime types
 * that @cloudflare/workers-types already provides.
 */
declare namespace Cloudflare {
  interface Env {
    DB: D1Database;
    /** The history of teams in the EU jurisdiction (a D1 database created with --jurisdiction eu). */
    DB_EU?: D1Database;
    /** The history of teams in the FedRAMP jurisdiction. */
    DB_FEDRAMP?: D1Database;
    TEAM_LEDGER: DurableObjectNamespace<import("./object/team-ledger").TeamLedger>;
    CATALOG: DurableObjectNamespace<import("./catalog/catalog-object").Catalog>;
    WEBHOOK_DIRECTORY: DurableObjectNamespace<import("./webhooks/directory-object").WebhookDirectory>;
    WEBHOOK_ENDPOINT: DurableObjectNamespace<import("./webhooks/endpoint-object").WebhookEndpoint>;
    API_KEYS: DurableObjectNamespace<import("./keys/key-directory-object").ApiKeyDirectory>;
    /** The history queue (wrangler.toml): team objects send their entries, one consumer lands them in D1. */
    HISTORY_QUEUE?: Queue<import("./history-queue/message").HistoryMessage>;
    /**
     * "direct": team objects write their history to D1 themselves, one batch per team (the path
     * before the queue; the bench compares the two). Absent: through HISTORY_QUEUE.
     */
    HISTORY_DELIVERY?: string;
    /** Secret: the first admin API key (`.dev.vars` locally, `wrangler secret put` in production). */
    ADMIN_API_KEY?: string;
    /**
     * Which webhook URLs are accepted: absent or "public" (production: https to public hosts only),
     * "local" (also http://127.0.0.1 and http://localhost; `npm run dev` and the tests set it).
     */
    OUTBOUND_URL_POLICY?: string;
    /**
     * "local" where the runtime has no Durable Object jurisdictions (workerd: wrangler dev, the
     * tests): teams of a jurisdiction stay in the one local namespace. Absent in production.
     */
    DO_JURISDICTIONS?: string;
    /** Secret: Stripe's API key (`sk_test_…` or `sk_live_…`); absent, buying by card is 503 stripe_not_configured. */
    STRIPE_SECRET_KEY?: string;
    /** Secret: the signing secret of the Stripe webhook endpoint (`whsec_…`); absent, /webhooks/stripe is 503. */
    STRIPE_WEBHOOK_SECRET?: string;
  }
}
