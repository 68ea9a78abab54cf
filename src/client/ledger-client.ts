/**
 * What every ledger route does around its one RPC: find the team's object, fingerprint the
 * request for idempotency, and turn the object's reply into a response or a problem.
 */
import { createHash } from "node:crypto";
import type { Context } from "hono";
import type { AppEnv } from "../app-env";
import { ApiError } from "../errors";
import type { IdempotencyInput, Reply } from "../ledger/types";

/** The team's Durable Object: one per team id, wherever in the world it runs. */
export function teamLedger(env: Cloudflare.Env, teamId: string) {
  return env.TEAM_LEDGER.get(env.TEAM_LEDGER.idFromName(teamId));
}

/**
 * The Idempotency-Key with a fingerprint of the request: method, path and the validated body.
 * The same key with another fingerprint is refused with 422 idempotency_key_reused.
 */
export function idempotency(c: Context<AppEnv>, key: string, body: unknown): IdempotencyInput {
  const text = `${c.req.method} ${c.req.path}\n${JSON.stringify(body ?? null)}`;
  return { key, fingerprint: createHash("sha256").update(text, "utf8").digest("hex") };
}

/** The body of a successful reply; a failure becomes the problem response via ApiError. */
export function unwrap<T>(c: Context<AppEnv>, reply: Reply<T>): T {
  if (!reply.ok) throw ApiError.from(reply);
  if (reply.replayed) c.header("Idempotent-Replayed", "true");
  return reply.body;
}
