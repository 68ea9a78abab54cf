/**
 * Where a team's object lives: a location hint (near the app that spends from it) or a
 * jurisdiction (its data never leaves it). Both are chosen when the team is created and never
 * change: an object cannot move, and a jurisdiction's data must not.
 *
 * The worker finds a team's object from its id alone, with no lookup on the spend path: a team in
 * a jurisdiction has an id that starts with the jurisdiction and a colon (`eu:acme`), and every id
 * of that form is in that jurisdiction. So routing is a pure function of the id
 * (`jurisdictionOfTeam`), the same in every isolate and region, and a team cannot be reached
 * through the wrong namespace by a stale copy of anything.
 */
import { type Failure, failure } from "./failure";

/** Cloudflare's location hints for Durable Objects (developers.cloudflare.com/durable-objects/reference/data-location/). */
export const LOCATION_HINTS = ["wnam", "enam", "sam", "weur", "eeur", "apac", "oc", "afr", "me"] as const;
export type LocationHint = (typeof LOCATION_HINTS)[number];

/** Jurisdictions a Durable Object (and a D1 database) can be restricted to. */
export const JURISDICTIONS = ["eu", "fedramp"] as const;
export type Jurisdiction = (typeof JURISDICTIONS)[number];

/** The jurisdiction a team id names (`eu:…`, `fedramp:…`), or null for a team placed anywhere. */
export function jurisdictionOfTeam(teamId: string): Jurisdiction | null {
  const prefix = teamId.slice(0, teamId.indexOf(":"));
  return (JURISDICTIONS as readonly string[]).includes(prefix) ? (prefix as Jurisdiction) : null;
}

export interface Placement {
  locationHint: LocationHint | null;
  jurisdiction: Jurisdiction | null;
}

/**
 * The placement a PUT asks for, checked against the team's id and its placement so far (null:
 * the team is being created). A jurisdiction must be the id's own; a placement, once made, stays.
 */
export function placementFor(
  teamId: string,
  asked: { locationHint?: LocationHint | undefined; jurisdiction?: Jurisdiction | undefined },
  existing: Placement | null,
): Placement | Failure {
  const byId = jurisdictionOfTeam(teamId);
  if (asked.jurisdiction !== undefined && asked.jurisdiction !== byId)
    return failure(
      "invalid_request",
      `jurisdiction: a team in ${asked.jurisdiction} has an id that starts with "${asked.jurisdiction}:"`,
    );
  if (existing) {
    if (asked.locationHint !== undefined && asked.locationHint !== existing.locationHint)
      return failure("conflict", "locationHint is chosen when the team is created and cannot change", {
        reason: "placement_fixed",
      });
    return existing;
  }
  return { locationHint: asked.locationHint ?? null, jurisdiction: byId };
}
