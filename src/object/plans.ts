/**
 * A team's plan in its object: starter credits once, a free allocation every monthly period
 * (domain/periods.ts), rollover when the plan allows it, and the written rule for seat and plan
 * changes. Everything here runs inside the object's one transaction, so a period's allocation,
 * its entries, its events and the period's row commit together or not at all.
 *
 * The rules (README "Plans and monthly allocations"):
 * - Creating a team on a plan (or first giving it one) anchors its periods there, grants the
 *   plan's `starterCredits` once in the team's life (free, source `starter`, never expiring) and
 *   opens period 0: seats × monthlyCreditsPerSeat free credits (source `allocation`) expiring at
 *   the period's end.
 * - Feature credits: a plan's `monthlyFeatureCreditsPerSeat` adds, with each allocation, seats ×
 *   that many free credits per feature (source `allocation`, the same expiry), each a grant
 *   restricted to its feature (domain/spending-order.ts): part of the period's allocation in every
 *   rule below (once per period, seat changes, plan changes, cancelling), except rollover, which
 *   carries only unrestricted credits (a month's calling minutes do not become anything else).
 * - At each period start the next allocation is granted exactly once (the periods table's key),
 *   whoever gets there first: the alarm, set for the boundary, or any request after it. A team
 *   whose object slept through several periods gets the current period's allocation only.
 * - Rollover: off unless the plan sets `rolloverMaxCredits`. Then, at a boundary directly after
 *   the previous period, the previous allocation's unused credits (not reserved by holds) expire
 *   as usual (an `expire` entry for all of them) and min(unused, rolloverMaxCredits) come back
 *   as a new free grant for the new period (reference `rollover:period:N`).
 * - Seats added mid-period get their monthly credits at once for the rest of the period; seats
 *   removed take effect at the next period (the current allocation is kept). A period counts the
 *   seats its allocation covered, so removing and re-adding a seat within it adds nothing.
 * - A plan change voids what remains of the current period's allocation (`void` entries) and
 *   grants the new plan's full allocation for the rest of the period; the period keeps its dates.
 * - Cancelling (`planId: null`) voids what remains of the current allocation and stops the
 *   periods; a free plan is a plan change. Neither touches any other grant: purchased,
 *   promotional and manual credits stay.
 * - The object keeps a copy of its plan, taken when the team is put on it and refreshed by the
 *   alarm before each period boundary, so no boundary needs the catalog on a request's path.
 */
import { assert } from "../domain/assert";
import { periodBounds, periodIndexAt } from "../domain/periods";
import { allocationCredits, featureAllocations, type Plan } from "../domain/plans";
import type { Team } from "../domain/vocabulary";
import { addGrant, endGrant } from "./grants";
import type { LedgerTx } from "./ledger-tx";
import { type LedgerStore, NEXT_PERIOD_KEY } from "./store";
import { iso } from "./time";

const PLAN_KEY = "plan";
const STARTER_KEY = "plan.starterGranted";
/** Set once the team has been on a paid plan: a referral's upgrade bonus is for the first time only. */
export const PAID_ONCE_KEY = "plan.paidOnce";

export function storedPlan(tx: LedgerTx): Plan | null {
  const doc = tx.store.getMeta(PLAN_KEY);
  return doc ? (JSON.parse(doc) as Plan) : null;
}

/** Keeps the object's copy of its plan current (the alarm, before a boundary). */
export function storePlan(store: LedgerStore, plan: Plan): void {
  store.setMeta(PLAN_KEY, JSON.stringify(plan));
}

function anchorMs(team: Team): number | null {
  return team.periodAnchor === null ? null : Date.parse(team.periodAnchor);
}

/** The period a team on a plan is in now, for the team document. */
export function currentPeriod(team: Team, nowMs: number): Team["currentPeriod"] {
  const anchor = anchorMs(team);
  if (team.planId === null || anchor === null) return null;
  const index = periodIndexAt(anchor, nowMs);
  const b = periodBounds(anchor, index);
  return { index, startsAt: iso(b.startsAtMs), endsAt: iso(b.endsAtMs) };
}

/** A period that began and has not been opened: which one, and what rolls into it. */
export interface PeriodBoundary {
  index: number;
  carryCredits: number;
}

/** Whether a period boundary passed (measured before the old allocation expires); see settle(). */
export function periodBoundary(tx: LedgerTx): PeriodBoundary | null {
  const next = tx.store.getMeta(NEXT_PERIOD_KEY);
  if (next === null || Number(next) > tx.nowMs) return null;
  const plan = storedPlan(tx);
  const anchor = anchorMs(tx.team);
  if (!plan || anchor === null || tx.team.planId === null) {
    tx.store.deleteMeta(NEXT_PERIOD_KEY);
    return null;
  }
  const index = periodIndexAt(anchor, tx.nowMs);
  const last = tx.store.periods.last();
  if (last && last.idx >= index) {
    // Already open (a late or repeated alarm): nothing to grant, only the next boundary to set.
    tx.store.setMeta(NEXT_PERIOD_KEY, String(periodBounds(anchor, last.idx + 1).startsAtMs));
    return null;
  }
  let carryCredits = 0;
  if (plan.rolloverMaxCredits > 0 && last && last.idx === index - 1) {
    const unused = tx.store.grants
      .ofPeriod(last.idx)
      .filter((g) => g.restrictedToFeature === null)
      .reduce((sum, g) => sum + (g.remaining - g.held), 0);
    carryCredits = Math.min(unused, plan.rolloverMaxCredits);
  }
  return { index, carryCredits };
}

/** Opens period `b.index`: its row, its rollover and allocation grants, its event, the next boundary. */
export function openPeriod(tx: LedgerTx, b: PeriodBoundary): void {
  const plan = storedPlan(tx);
  const anchor = anchorMs(tx.team);
  assert(plan !== null && anchor !== null, "a period opens for a team on a plan");
  const { startsAtMs, endsAtMs } = periodBounds(anchor, b.index);
  const credits = allocationCredits(plan, tx.team.seats);
  const byFeature = featureAllocations(plan, tx.team.seats);
  const featureTotal = byFeature.reduce((sum, f) => sum + f.credits, 0);
  tx.store.periods.open({
    idx: b.index,
    starts_at: startsAtMs,
    ends_at: endsAtMs,
    plan_id: plan.id,
    seats: tx.team.seats,
    granted_credits: credits + featureTotal + b.carryCredits,
    opened_at: tx.nowMs,
  });
  const grantIds: string[] = [];
  if (b.carryCredits > 0)
    grantIds.push(
      addGrant(tx, {
        amount: b.carryCredits,
        category: "free",
        source: "allocation",
        expiresAtMs: endsAtMs,
        reference: `rollover:period:${b.index - 1}`,
        period: b.index,
      }),
    );
  if (credits > 0)
    grantIds.push(
      addGrant(tx, {
        amount: credits,
        category: "free",
        source: "allocation",
        expiresAtMs: endsAtMs,
        reference: `allocation:period:${b.index}`,
        period: b.index,
      }),
    );
  grantIds.push(...grantFeatureCredits(tx, byFeature, endsAtMs, `allocation:period:${b.index}`, b.index));
  tx.emit("allocation.granted", {
    period: { index: b.index, startsAt: iso(startsAtMs), endsAt: iso(endsAtMs) },
    planId: plan.id,
    seats: tx.team.seats,
    allocationCredits: credits,
    featureCredits: Object.fromEntries(byFeature.map((f) => [f.feature, f.credits])),
    rolloverCredits: b.carryCredits,
    grantIds,
  });
  tx.store.setMeta(NEXT_PERIOD_KEY, String(endsAtMs));
}

/** Grants a period's feature-restricted credits, one grant per feature; returns their ids. */
function grantFeatureCredits(
  tx: LedgerTx,
  byFeature: readonly { feature: string; credits: number }[],
  expiresAtMs: number,
  reference: string,
  period: number,
): string[] {
  return byFeature.map((f) =>
    addGrant(tx, {
      amount: f.credits,
      category: "free",
      source: "allocation",
      expiresAtMs,
      reference: `${reference}:feature:${f.feature}`,
      period,
      restrictedFeature: f.feature,
    }),
  );
}

/**
 * Grants the current period's allocation for `seats` seats now (seats added, a new plan
 * mid-period): the plan's credits per seat, and its feature credits per seat.
 */
function topUpPeriod(tx: LedgerTx, index: number, plan: Plan, seats: number, reason: string): void {
  const credits = allocationCredits(plan, seats);
  const byFeature = featureAllocations(plan, seats);
  const row = tx.store.periods.get(index);
  assert(row !== null, "a period is topped up after it opened");
  const anchor = anchorMs(tx.team);
  assert(anchor !== null, "a period belongs to an anchored team");
  const { endsAtMs } = periodBounds(anchor, index);
  if (credits > 0)
    addGrant(tx, {
      amount: credits,
      category: "free",
      source: "allocation",
      expiresAtMs: endsAtMs,
      reference: `${reason}:period:${index}`,
      period: index,
    });
  grantFeatureCredits(tx, byFeature, endsAtMs, `${reason}:period:${index}`, index);
  tx.store.periods.update(index, {
    planId: tx.team.planId,
    seats: reason === "seats" ? Math.max(row.seats, tx.team.seats) : tx.team.seats,
    addedCredits: credits + byFeature.reduce((sum, f) => sum + f.credits, 0),
  });
}

/** Voids what remains of period `index`'s allocation (a plan change or a cancellation). */
function voidAllocation(tx: LedgerTx, index: number, reason: string): void {
  for (const g of tx.store.grants.ofPeriod(index)) endGrant(tx, g, `${reason}:period:${index}`);
}

/**
 * Applies a team update's plan and seats by the rules above. `before` is the team as it was
 * (null when it is being created), `tx.team` as it is now; `given` is the catalog's plan for
 * `tx.team.planId` when the update names one (else the object's copy is used). Returns whether the team just moved to a paid
 * plan for the first time (a referral's upgrade bonus).
 */
export function applyPlanChange(tx: LedgerTx, before: Team | null, given: Plan | null): { firstPaid: boolean } {
  const team = tx.team;
  const planChanged = (before?.planId ?? null) !== team.planId;
  // A seats-only update names no plan: the team's own copy of it is the plan.
  const plan = given ?? (planChanged ? null : storedPlan(tx));
  const anchor = anchorMs(team);
  const last = tx.store.periods.last();
  const index = anchor === null ? null : periodIndexAt(anchor, tx.nowMs);
  const open = last !== null && index !== null && last.idx === index && before?.planId !== null ? last : null;
  let firstPaid = false;

  if (team.planId === null) {
    if (planChanged && open) voidAllocation(tx, open.idx, "cancelled");
    tx.store.deleteMeta(NEXT_PERIOD_KEY);
    tx.store.deleteMeta(PLAN_KEY);
    return { firstPaid };
  }
  assert(plan !== null && plan.id === team.planId, "the worker passes the plan the team is put on");
  storePlan(tx.store, plan);
  if (plan.starterCredits > 0 && tx.store.getMeta(STARTER_KEY) === null) {
    tx.store.setMeta(STARTER_KEY, iso(tx.nowMs));
    addGrant(tx, {
      amount: plan.starterCredits,
      category: "free",
      source: "starter",
      expiresAtMs: null,
      reference: `starter:${plan.id}`,
    });
  }
  if (plan.paid && tx.store.getMeta(PAID_ONCE_KEY) === null) {
    tx.store.setMeta(PAID_ONCE_KEY, iso(tx.nowMs));
    firstPaid = true;
  }
  assert(anchor !== null && index !== null, "a team on a plan has an anchor");
  if (!planChanged) {
    // The period's row counts the seats its allocation covers: only seats beyond those get credits
    // (3 seats, down to 1, back to 3 within a period adds nothing: those seats were paid for).
    const added = open ? team.seats - open.seats : 0;
    if (open && added > 0) topUpPeriod(tx, open.idx, plan, added, "seats");
    return { firstPaid };
  }
  if (open) {
    voidAllocation(tx, open.idx, "plan_change");
    topUpPeriod(tx, open.idx, plan, team.seats, "plan_change");
    tx.store.setMeta(NEXT_PERIOD_KEY, String(periodBounds(anchor, open.idx + 1).startsAtMs));
    return { firstPaid };
  }
  // No period open now (a new plan, or back after cancelling): open the current one.
  const existing = tx.store.periods.get(index);
  if (existing) {
    topUpPeriod(tx, index, plan, team.seats, "plan_change");
    tx.store.setMeta(NEXT_PERIOD_KEY, String(periodBounds(anchor, index + 1).startsAtMs));
  } else openPeriod(tx, { index, carryCredits: 0 });
  return { firstPaid };
}
