/**
 * Which D1 database holds a team's history: the account's (`DB`) for a team placed anywhere, and
 * its jurisdiction's own (`DB_EU`, `DB_FEDRAMP`: D1 databases created with that jurisdiction) for
 * a team in one (domain/placement.ts), so a residency-bound team's history never leaves it. Null
 * when the jurisdiction has no database bound: such a team cannot be created, and an existing one
 * keeps its history in its object until the binding is back (never in another jurisdiction's).
 */
import { jurisdictionOfTeam } from "../domain/placement";

export function historyDatabase(env: Cloudflare.Env, teamId: string): D1Database | null {
  switch (jurisdictionOfTeam(teamId)) {
    case null:
      return env.DB;
    case "eu":
      return env.DB_EU ?? null;
    case "fedramp":
      return env.DB_FEDRAMP ?? null;
  }
}

/** The team's history database for a read; a jurisdiction without one is the operator's fault, never the caller's. */
export function historyDatabaseFor(env: Cloudflare.Env, teamId: string): D1Database {
  const db = historyDatabase(env, teamId);
  if (!db) throw new Error(`no D1 database is bound for the jurisdiction of team ${teamId}`);
  return db;
}
