/**
 * The Hono environment every route shares: the bindings and what middleware puts on the context.
 */
import type { RequestIdVariables } from "hono/request-id";
import type { Actor } from "./domain/roles";
import type { Scope } from "./keys/api-key";

/**
 * Who is calling: the key's id ("admin" for the ADMIN_API_KEY secret), its scopes and the team it is
 * bound to (null: none). middleware/access.ts decides from these what the request may do.
 */
export interface Caller {
  keyId: string;
  scopes: readonly Scope[];
  teamId: string | null;
  /** A bound key's own monthly spend limit (keys/api-key.ts), or null. */
  spendLimitCreditsPerMonth: number | null;
}

export interface AppEnv {
  Bindings: Cloudflare.Env;
  /** `actor` is set when the request names the person it acts for (middleware/actor.ts). */
  Variables: RequestIdVariables & { caller: Caller; actor?: Actor };
}
