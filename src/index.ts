/**
 * The worker entry: the fetch handler, the queue handler and the Durable Object classes, nothing
 * else. The queue handler serves the history queue (history-queue/consumer.ts) and its dead-letter
 * queue (history-queue/dead-letters.ts), told apart by the queue's name (wrangler.toml).
 */
import { buildApp } from "./app";
import { consumeHistory } from "./history-queue/consumer";
import { consumeDeadLetters } from "./history-queue/dead-letters";

export { Catalog } from "./catalog/catalog-object";
export { ApiKeyDirectory } from "./keys/key-directory-object";
export { TeamLedger } from "./object/team-ledger";
export { WebhookDirectory } from "./webhooks/directory-object";
export { WebhookEndpoint } from "./webhooks/endpoint-object";

/** The dead-letter queue's name ends so (wrangler.toml `dead_letter_queue`); every other queue is the history's. */
const DEAD_LETTER_SUFFIX = "-dlq";

const app = buildApp();

export default {
  fetch: app.fetch,
  async queue(batch, env, ctx) {
    if (batch.queue.endsWith(DEAD_LETTER_SUFFIX)) await consumeDeadLetters(batch, env);
    else await consumeHistory(batch, env, ctx);
  },
} satisfies ExportedHandler<Cloudflare.Env>;
