/**
 * Where a team's object is: the one place that turns a team id into its Durable Object, for the
 * worker (client/ledger-client.ts) and for objects that call each other (a subaccount's object
 * calls its agency's, which holds the pool).
 *
 * A team in a jurisdiction (its id says which: domain/placement.ts) is reached through that
 * jurisdiction's subnamespace, so its object is created and kept only there; no lookup decides it.
 * workerd (wrangler dev, the tests) implements no jurisdictions and throws on asking for one, so
 * there DO_JURISDICTIONS=local keeps every object in the one local namespace (the ids still differ).
 */
import { jurisdictionOfTeam, type LocationHint } from "../domain/placement";
import type { TeamLedger } from "./team-ledger";

/** The namespace a team's object is in: its jurisdiction's subnamespace, or the account's. */
export function namespaceOf(
  env: Pick<Cloudflare.Env, "TEAM_LEDGER" | "DO_JURISDICTIONS">,
  teamId: string,
): Cloudflare.Env["TEAM_LEDGER"] {
  const jurisdiction = jurisdictionOfTeam(teamId);
  if (jurisdiction === null || env.DO_JURISDICTIONS === "local") return env.TEAM_LEDGER;
  return env.TEAM_LEDGER.jurisdiction(jurisdiction);
}

/**
 * The team's Durable Object: one per team id. `options.locationHint` places an object that this
 * call creates (PUT of a new team); it does nothing to one that exists.
 */
export function teamObject(
  env: Pick<Cloudflare.Env, "TEAM_LEDGER" | "DO_JURISDICTIONS">,
  teamId: string,
  options?: { locationHint: LocationHint },
): DurableObjectStub<TeamLedger> {
  const ns = namespaceOf(env, teamId);
  return ns.get(ns.idFromName(teamId), options);
}
