/**
 * The Hono environment every route shares: the bindings and what middleware puts on the context.
 */
import type { RequestIdVariables } from "hono/request-id";
import type { Actor } from "./domain/roles";

/**
 * Who is calling. The admin key (ADMIN_API_KEY) is the only key until API keys exist; the
 * contract's other scopes (spend, read, billing) and team-bound keys arrive with them.
 */
export interface Caller {
  keyId: string;
  scopes: readonly "admin"[];
}

export interface AppEnv {
  Bindings: Cloudflare.Env;
  /** `actor` is set when the request names the person it acts for (middleware/actor.ts). */
  Variables: RequestIdVariables & { caller: Caller; actor?: Actor };
}
