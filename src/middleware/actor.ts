/**
 * The person a request acts for: `X-Actor-Id` and `X-Actor-Role` (API.md). When a request names
 * one, the role matrix (domain/roles.ts) decides what it may do; when it does not, the key's
 * scopes alone decide. A role outside the matrix, or one header without the other, is a 400: a
 * request must never act with fewer checks than it asked for.
 */
import type { MiddlewareHandler } from "hono";
import type { AppEnv } from "../app-env";
import { ACTOR_ROLES, type ActorRole } from "../domain/roles";
import { isStorableText } from "../domain/text";
import { ApiError } from "../http/problem";
import { MAX_ACTOR_ID_LENGTH } from "../limits";

const ROLES: ReadonlySet<string> = new Set(ACTOR_ROLES);

export function actorHeaders(): MiddlewareHandler<AppEnv> {
  return async function actorHeadersMiddleware(c, next) {
    const id = c.req.header("x-actor-id");
    const role = c.req.header("x-actor-role");
    if (id === undefined && role === undefined) return next();
    if (id === undefined || role === undefined)
      throw new ApiError("invalid_request", "send X-Actor-Id and X-Actor-Role together, or neither");
    if (id.length === 0 || id.length > MAX_ACTOR_ID_LENGTH || !isStorableText(id))
      throw new ApiError("invalid_request", `X-Actor-Id must be 1 to ${MAX_ACTOR_ID_LENGTH} characters of text`);
    const normalized = role.trim().toLowerCase();
    if (!ROLES.has(normalized))
      throw new ApiError("invalid_request", `X-Actor-Role must be one of ${ACTOR_ROLES.join(", ")}`);
    c.set("actor", { id, role: normalized as ActorRole });
    return next();
  };
}
