/**
 * The worker entry: the fetch handler and the Durable Object classes, nothing else.
 */
import { buildApp } from "./app";

export { Catalog } from "./catalog/catalog-object";
export { ApiKeyDirectory } from "./keys/key-directory-object";
export { TeamLedger } from "./object/team-ledger";
export { WebhookDirectory } from "./webhooks/directory-object";
export { WebhookEndpoint } from "./webhooks/endpoint-object";

export default buildApp();
