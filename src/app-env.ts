/**
 * The Hono environment every route shares: the bindings and what middleware puts on the context.
 */
import type { RequestIdVariables } from "hono/request-id";

export interface Caller {
  keyId: string;
  scopes: readonly ("admin" | "spend" | "read" | "billing")[];
  /** A key bound to one team may act on that team only. */
  teamId: string | null;
}

export interface AppEnv {
  Bindings: Cloudflare.Env;
  Variables: RequestIdVariables & { caller: Caller };
}
