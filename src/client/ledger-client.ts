/**
 * The ledger client: what every route does around its one RPC. It resolves a team to the object
 * that holds its credits, fingerprints the request for idempotency, and turns the object's reply
 * into a response or a problem. Routes call the ledger only through here.
 *
 * Every request goes to the object of the team it names. A subaccount's object knows its agency
 * (fixed when it was created) and asks the agency's object, which holds the pool and decides
 * whether it shares (object/team-ledger.ts, domain/pools.ts): so the worker needs no lookup and
 * no copy of who is whose, and the spend path has no D1 query.
 */
import { createHash } from "node:crypto";
import type { Context } from "hono";
import type { AppEnv } from "../app-env";
import type { LocationHint } from "../domain/placement";
import type { IdempotencyInput, Reply } from "../domain/vocabulary";
import { ApiError } from "../http/problem";
import { teamObject } from "../object/team-address";

/** Where a team's charges go: the object holding the pool, and who within it they are for. */
export interface LedgerRoute {
  /** The team whose object holds the credits (the RPC's team id). */
  poolTeamId: string;
  /** Set when the team draws from another team's pool: the member the charge is made for. */
  memberTeamId: string | undefined;
  ledger: DurableObjectStub<import("../object/team-ledger").TeamLedger>;
}

export { namespaceOf } from "../object/team-address";

/** Resolves a team to the object holding its credits. Every team holds its own today. */
export function resolveTeam(env: Cloudflare.Env, teamId: string): LedgerRoute {
  return { poolTeamId: teamId, memberTeamId: undefined, ledger: teamObject(env, teamId) };
}

/** The team's own object, for what is the team's own whatever its pool (its profile, its history). */
export function teamLedger(env: Cloudflare.Env, teamId: string, options?: { locationHint: LocationHint }) {
  return teamObject(env, teamId, options);
}

/**
 * The Idempotency-Key with a fingerprint of the request (method, path, the validated body and the
 * actor it names, if any) and the request's id. The same key with another fingerprint is refused with 422
 * idempotency_key_reused.
 */
export function idempotency(c: Context<AppEnv>, key: string, body: unknown): IdempotencyInput {
  // The person a request acts for is part of what it asked (another actor, same key: 422).
  const actor = c.get("actor");
  const asked = actor ? { request: body ?? null, actor } : (body ?? null);
  const text = `${c.req.method} ${c.req.path}\n${JSON.stringify(asked)}`;
  const caller = c.get("caller");
  return {
    key,
    fingerprint: createHash("sha256").update(text, "utf8").digest("hex"),
    requestId: c.get("requestId"),
    // A key bound to a team is checked again by that team's object (revoked at once: keys/).
    ...(caller.teamId !== null ? { keyId: caller.keyId } : {}),
    ...(caller.teamId !== null && caller.spendLimitCreditsPerMonth !== null
      ? { keySpendLimitCredits: caller.spendLimitCreditsPerMonth }
      : {}),
  };
}

/** The body of a successful reply; a failure becomes the problem response via ApiError. */
export function unwrap<T>(c: Context<AppEnv>, reply: Reply<T>): T {
  if (!reply.ok) throw ApiError.from(reply);
  if (reply.replayed) c.header("Idempotent-Replayed", "true");
  return reply.body;
}
