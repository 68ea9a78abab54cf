/**
 * Bearer-key authentication. The admin key comes from the ADMIN_API_KEY secret; keys are compared
 * as SHA-256 digests with crypto.subtle.timingSafeEqual, so neither the comparison's time nor an
 * early exit tells an attacker how much of a guess was right.
 */
import type { MiddlewareHandler } from "hono";
import type { AppEnv } from "../app-env";
import { ApiError } from "../errors";

const encoder = new TextEncoder();

async function digest(value: string): Promise<ArrayBuffer> {
  return crypto.subtle.digest("SHA-256", encoder.encode(value));
}

/** Constant-time equality of two secrets of any length. */
export async function secretsEqual(a: string, b: string): Promise<boolean> {
  const [da, db] = await Promise.all([digest(a), digest(b)]);
  return crypto.subtle.timingSafeEqual(da, db);
}

const BEARER = /^Bearer ([\x21-\x7e]{1,512})$/;

export function bearerAuth(): MiddlewareHandler<AppEnv> {
  return async function bearerAuthMiddleware(c, next) {
    const header = c.req.header("authorization");
    if (!header) throw new ApiError("unauthorized", "send Authorization: Bearer <api key>");
    const match = BEARER.exec(header);
    if (!match?.[1]) throw new ApiError("unauthorized", "the Authorization header must be Bearer <api key>");
    const adminKey = c.env.ADMIN_API_KEY;
    if (!adminKey) {
      console.error("ADMIN_API_KEY is not set: every request is refused");
      throw new ApiError("unauthorized", "the API key is not valid");
    }
    if (!(await secretsEqual(match[1], adminKey))) throw new ApiError("unauthorized", "the API key is not valid");
    c.set("caller", { keyId: "admin", scopes: ["admin"], teamId: null });
    await next();
  };
}
