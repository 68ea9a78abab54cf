/**
 * Agency pools: the rules of who draws from whose credits. Pure: membership, the sharing switch,
 * caps and their periods, as values. The objects apply them (object/pools.ts); nothing here does I/O.
 *
 * The rules (Landingi's agency accounts; API.md):
 * - A subaccount names its agency when it is created (`kind: "subaccount"`, `parentTeamId`), and
 *   never changes it: the parent exists, is an agency, is in the same jurisdiction (pooled credits
 *   never leave it), and an agency has no parent (no chains). An agency has at most
 *   MAX_SUBACCOUNTS_PER_AGENCY subaccounts.
 * - While the agency shares (`settings.shareCreditsWithSubaccounts`, set by its owner or admin),
 *   a subaccount's spends and holds draw from the agency's pool, in the agency's object (the one
 *   writer of the pool), attributed to the subaccount (`memberTeamId`) and the actor. While it
 *   does not, the subaccount uses its own balance only. Which of the two a request draws from is
 *   decided once, by the agency's object, when it first sees the request's Idempotency-Key, and
 *   saved under that key: a retry after the switch moved gets the first answer again.
 * - A hold lives where it was made. Turning sharing off leaves the pool's pending holds of
 *   subaccounts in the pool: they are captured, released, extended in time, or expire against the
 *   pool, as they would have; only drawing more (a new spend or hold, an extend with more credits)
 *   needs sharing on.
 * - Subaccounts never buy (domain/roles.ts buyingRefusal); the agency buys for them.
 * - Caps: a subaccount (its `settings.capCreditsPerPeriod`) and a member of the agency (an actor:
 *   PUT …/member-caps/{actorId}) may each use at most N pooled credits a period. Used = what its
 *   spends and captures took in the period + what its pending holds reserve now; a release gives
 *   a hold's credits back, a capture counts what it took. The period is the agency's monthly
 *   period when it is on a plan, else the calendar month (UTC).
 */
import { type Failure, failure } from "./failure";
import { periodBounds, periodIndexAt } from "./periods";
import { jurisdictionOfTeam } from "./placement";
import type { Team, TeamInput } from "./vocabulary";

/** Where a request's credits came from when the pool did not take it: the member's own balance. */
export interface OwnBalance {
  ownBalance: true;
  /**
   * Whether the agency shares with the subaccount now (an action on the subaccount's own hold
   * while sharing is on): its manager may then use credits (domain/roles.ts spendingRefusal).
   */
  poolShared?: boolean;
}
export const OWN_BALANCE: OwnBalance = { ownBalance: true };

export function isOwnBalance(body: unknown): body is OwnBalance {
  return typeof body === "object" && body !== null && (body as Partial<OwnBalance>).ownBalance === true;
}

/**
 * The pool's record of a member's Idempotency-Key: the member's id and the key, joined by a space,
 * which no Idempotency-Key contains (printable ASCII without spaces), so it never meets the
 * agency's own keys.
 */
export function memberKey(memberTeamId: string, key: string): string {
  return `pool ${memberTeamId} ${key}`;
}

/** Why this create or update may not set this team's kind, parent or pool settings, or null. */
export function membershipRefusal(teamId: string, input: TeamInput, prev: Team | null): Failure | null {
  const kind = input.kind ?? prev?.kind ?? "team";
  if (prev) {
    const moved =
      (input.kind !== undefined && (input.kind === "subaccount") !== (prev.kind === "subaccount")) ||
      (input.parentTeamId !== undefined && input.parentTeamId !== prev.parentTeamId);
    if (moved)
      return failure(
        "conflict",
        "a subaccount's agency is chosen when it is created and never changes (nor does a team become one later)",
        { reason: "membership_fixed" },
      );
  } else if (kind === "subaccount") {
    if (input.parentTeamId === undefined)
      return failure("invalid_request", "parentTeamId: a subaccount names its agency");
    if (input.parentTeamId === teamId) return failure("invalid_request", "parentTeamId: a team is not its own agency");
    if (jurisdictionOfTeam(input.parentTeamId) !== jurisdictionOfTeam(teamId))
      return failure("invalid_request", "parentTeamId: a subaccount is in its agency's jurisdiction");
  } else if (input.parentTeamId !== undefined) {
    return failure("invalid_request", 'parentTeamId: only a team of kind "subaccount" has one');
  }
  if (input.settings?.shareCreditsWithSubaccounts !== undefined && kind !== "agency")
    return failure("invalid_request", "settings.shareCreditsWithSubaccounts: only an agency shares its credits");
  if (input.settings?.capCreditsPerPeriod !== undefined && kind !== "subaccount")
    return failure("invalid_request", "settings.capCreditsPerPeriod: only a subaccount has a cap on pooled credits");
  return null;
}

/** The period a cap counts in: the agency's monthly period on a plan, else the UTC calendar month. */
export function capPeriod(
  pool: Pick<Team, "planId" | "periodAnchor">,
  nowMs: number,
): { startsAtMs: number; endsAtMs: number } {
  if (pool.planId !== null && pool.periodAnchor !== null) {
    const anchor = Date.parse(pool.periodAnchor);
    return periodBounds(anchor, periodIndexAt(anchor, nowMs));
  }
  return calendarMonth(nowMs);
}

/** The calendar month (UTC) around `nowMs`: an agency's cap period off a plan, and every key's. */
export function calendarMonth(nowMs: number): { startsAtMs: number; endsAtMs: number } {
  const d = new Date(nowMs);
  return {
    startsAtMs: Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), 1),
    endsAtMs: Date.UTC(d.getUTCFullYear(), d.getUTCMonth() + 1, 1),
  };
}

/** Whose cap: a subaccount's, an agency member's (an actor), or an API key's own spend limit. */
export type CapScope = "subaccount" | "member" | "key";

/** A cap as it stands: its size, what was spent and captured this period, what pending holds reserve. */
export interface CapStanding {
  scope: CapScope;
  subject: string;
  capCredits: number;
  spentCredits: number;
  heldCredits: number;
  periodStartsAtMs: number;
}

/** A cap as the API shows it (the balance of a subaccount drawing from the pool, GET …/member-caps). */
export interface CapView {
  scope: CapScope;
  subject: string;
  creditsPerPeriod: number;
  used: number;
  held: number;
  remaining: number;
  periodStart: string;
}

export function capRemaining(c: CapStanding): number {
  return Math.max(0, c.capCredits - c.spentCredits - c.heldCredits);
}

/** 402 cap_exceeded when `amount` more pooled credits would pass the cap, or null. */
export function capRefusal(c: CapStanding, amount: number): Failure | null {
  const used = c.spentCredits + c.heldCredits;
  if (used + amount <= c.capCredits) return null;
  const remaining = capRemaining(c);
  const whose = `${c.scope === "key" ? "API key" : c.scope} ${c.subject}`;
  return failure(
    "cap_exceeded",
    `${amount} credits would pass the cap of ${whose}: ${c.capCredits} a period, ${used} used, ${remaining} remaining`,
    {
      scope: c.scope,
      subject: c.subject,
      cap: c.capCredits,
      used,
      held: c.heldCredits,
      remaining,
      required: amount,
      periodStart: new Date(c.periodStartsAtMs).toISOString(),
    },
  );
}
