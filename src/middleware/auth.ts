/**
 * Bearer-key authentication. The ADMIN_API_KEY secret is the first admin key; every other key is
 * one the key directory made (keys/), found by its id in the isolate's copy of the directory
 * (keys/key-copy.ts: no D1 query, and no RPC in the steady state) and proved by its secret's
 * digest. Digests are compared with crypto.subtle.timingSafeEqual, so neither the comparison's
 * time nor an early exit tells an attacker how much of a guess was right. A revoked or expired
 * key is refused like a wrong one: 401, with nothing said about which.
 */
import type { MiddlewareHandler } from "hono";
import type { AppEnv } from "../app-env";
import { ApiError } from "../http/problem";
import { keyRefusal, parseApiKey, sameDigest, secretDigest } from "../keys/api-key";
import { findKey } from "../keys/key-copy";
import { keyDirectoryStub } from "../keys/key-directory-object";
import { KEY_LAST_USED_RESOLUTION_MS } from "../limits";

/** The admin key's digest, computed once per isolate and per key value (secrets can rotate). */
let adminDigest: { key: string; digest: Promise<string> } | null = null;
function adminKeyDigest(key: string): Promise<string> {
  if (adminDigest?.key !== key) adminDigest = { key, digest: secretDigest(key) };
  return adminDigest.digest;
}

/** When this isolate last told the directory a key was used. */
const lastTouchedMs = new Map<string, number>();

// The scheme name is case-insensitive (RFC 9110); the key itself is not.
const BEARER = /^Bearer ([\x21-\x7e]{1,512})$/i;

export function bearerAuth(): MiddlewareHandler<AppEnv> {
  return async function bearerAuthMiddleware(c, next) {
    const header = c.req.header("authorization");
    if (!header) throw new ApiError("unauthorized", "send Authorization: Bearer <api key>");
    const match = BEARER.exec(header);
    if (!match?.[1]) throw new ApiError("unauthorized", "the Authorization header must be Bearer <api key>");
    const given = match[1];
    const parsed = parseApiKey(given);
    if (parsed) {
      const background = (p: Promise<unknown>) => c.executionCtx.waitUntil(p);
      const [key, proof] = await Promise.all([findKey(c.env, parsed.id, background), secretDigest(parsed.secret)]);
      const nowMs = Date.now();
      if (!key || !sameDigest(proof, key.secretDigest) || keyRefusal(key, nowMs) !== null)
        throw new ApiError("unauthorized", "the API key is not valid");
      c.set("caller", {
        keyId: key.id,
        scopes: key.scopes,
        teamId: key.teamId,
        spendLimitCreditsPerMonth: key.spendLimitCreditsPerMonth,
      });
      if (nowMs - (lastTouchedMs.get(key.id) ?? 0) >= KEY_LAST_USED_RESOLUTION_MS) {
        lastTouchedMs.set(key.id, nowMs);
        background(
          keyDirectoryStub(c.env)
            .touch(key.id, nowMs)
            .catch(() => undefined),
        );
      }
      return next();
    }
    const adminKey = c.env.ADMIN_API_KEY;
    if (!adminKey) {
      console.error("ADMIN_API_KEY is not set: only keys from the key directory are accepted");
      throw new ApiError("unauthorized", "the API key is not valid");
    }
    const [givenDigest, expected] = await Promise.all([secretDigest(given), adminKeyDigest(adminKey)]);
    if (!sameDigest(givenDigest, expected)) throw new ApiError("unauthorized", "the API key is not valid");
    c.set("caller", { keyId: "admin", scopes: ["admin"], teamId: null, spendLimitCreditsPerMonth: null });
    await next();
  };
}
