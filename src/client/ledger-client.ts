/**
 * The ledger client: what every route does around its one RPC. It resolves a team to the object
 * that holds its credits, fingerprints the request for idempotency, and turns the object's reply
 * into a response or a problem. Routes call the ledger only through here.
 *
 * Resolution is the pool seam: today every team's credits live in its own object, so a team
 * resolves to itself. When an agency shares its pool, a subaccount will resolve to the agency's
 * object (`poolTeamId`) and its charges carry `memberTeamId`, without a D1 query on the spend
 * path (the resolution must come from a copy close to the worker, or from the team's own id).
 */
import { createHash } from "node:crypto";
import type { Context } from "hono";
import type { AppEnv } from "../app-env";
import { jurisdictionOfTeam, type LocationHint } from "../domain/placement";
import type { IdempotencyInput, Reply } from "../domain/vocabulary";
import { ApiError } from "../http/problem";

/** Where a team's charges go: the object holding the pool, and who within it they are for. */
export interface LedgerRoute {
  /** The team whose object holds the credits (the RPC's team id). */
  poolTeamId: string;
  /** Set when the team draws from another team's pool: the member the charge is made for. */
  memberTeamId: string | undefined;
  ledger: DurableObjectStub<import("../object/team-ledger").TeamLedger>;
}

/**
 * The team's Durable Object: one per team id. A team in a jurisdiction (its id says which:
 * domain/placement.ts) is reached through that jurisdiction's subnamespace, so its object is
 * created and kept only there; no lookup decides it. `options.locationHint` places an object that
 * this call creates (PUT of a new team); it does nothing to one that exists.
 */
function objectOf(env: Cloudflare.Env, teamId: string, options?: { locationHint: LocationHint }) {
  const ns = namespaceOf(env, teamId);
  return ns.get(ns.idFromName(teamId), options);
}

/**
 * The namespace a team's object is in: its jurisdiction's subnamespace, or the account's. workerd
 * (wrangler dev, the tests) implements no jurisdictions and throws on asking for one, so there
 * DO_JURISDICTIONS=local keeps every object in the one local namespace (the ids still differ).
 */
export function namespaceOf(
  env: Pick<Cloudflare.Env, "TEAM_LEDGER" | "DO_JURISDICTIONS">,
  teamId: string,
): Cloudflare.Env["TEAM_LEDGER"] {
  const jurisdiction = jurisdictionOfTeam(teamId);
  if (jurisdiction === null || env.DO_JURISDICTIONS === "local") return env.TEAM_LEDGER;
  return env.TEAM_LEDGER.jurisdiction(jurisdiction);
}

/** Resolves a team to the object holding its credits. Every team holds its own today. */
export function resolveTeam(env: Cloudflare.Env, teamId: string): LedgerRoute {
  return { poolTeamId: teamId, memberTeamId: undefined, ledger: objectOf(env, teamId) };
}

/** The team's own object, for what is the team's own whatever its pool (its profile, its history). */
export function teamLedger(env: Cloudflare.Env, teamId: string, options?: { locationHint: LocationHint }) {
  return objectOf(env, teamId, options);
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
  return {
    key,
    fingerprint: createHash("sha256").update(text, "utf8").digest("hex"),
    requestId: c.get("requestId"),
  };
}

/** The body of a successful reply; a failure becomes the problem response via ApiError. */
export function unwrap<T>(c: Context<AppEnv>, reply: Reply<T>): T {
  if (!reply.ok) throw ApiError.from(reply);
  if (reply.replayed) c.header("Idempotent-Replayed", "true");
  return reply.body;
}
