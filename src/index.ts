/**
 * The worker entry: the fetch handler and the Durable Object class, nothing else.
 */
import { buildApp } from "./app";

export { TeamLedger } from "./object/team-ledger";

export default buildApp();
