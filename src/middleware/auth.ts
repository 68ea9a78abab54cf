/**
 * Bearer-key authentication. The admin key comes from the ADMIN_API_KEY secret; keys are compared
 * as SHA-256 digests with crypto.subtle.timingSafeEqual, so neither the comparison's time nor an
 * early exit tells an attacker how much of a guess was right.
 */
import type { MiddlewareHandler } from "hono";
import type { AppEnv } from "../app-env";
import { ApiError } from "../http/problem";

const encoder = new TextEncoder();

async function digest(value: string): Promise<ArrayBuffer> {
  return crypto.subtle.digest("SHA-256", encoder.encode(value));
}

/** The admin key's digest, computed once per isolate and per key value (secrets can rotate). */
let adminDigest: { key: string; digest: Promise<ArrayBuffer> } | null = null;
function adminKeyDigest(key: string): Promise<ArrayBuffer> {
  if (adminDigest?.key !== key) adminDigest = { key, digest: digest(key) };
  return adminDigest.digest;
}

// The scheme name is case-insensitive (RFC 9110); the key itself is not.
const BEARER = /^Bearer ([\x21-\x7e]{1,512})$/i;

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
    const [given, expected] = await Promise.all([digest(match[1]), adminKeyDigest(adminKey)]);
    if (!crypto.subtle.timingSafeEqual(given, expected)) throw new ApiError("unauthorized", "the API key is not valid");
    c.set("caller", { keyId: "admin", scopes: ["admin"] });
    await next();
  };
}
