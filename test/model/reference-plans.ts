/**
 * The reference ledger (reference-ledger.ts) with a price book, a plan and monthly periods, for the
 * plans model test (plans.model.test.ts). The rules of README "Prices and plans" written again, as
 * plainly as possible; like the reference ledger it shares no code with src/ on purpose (pricing is
 * computed here in integer micro-units, not with domain/pricing.ts).
 *
 * - Price: the plan's override for the feature (its tier price when a tier is asked for and the
 *   plan prices that tier; else its creditsPerUnit when no tier is asked for), else the feature's
 *   own (tiers[tier], or creditsPerUnit). Credits: ceil(price × quantity) (`ceil`) or
 *   price × ceil(quantity) (`per_unit`). Quantities are whole for counted units, at most 6
 *   decimals for metered ones; anything else (and a tier the feature does not offer, and a plain
 *   spend of a feature charged only on success) is the route's 400, decided before the ledger.
 * - Periods: the team is created on the plan: its starter credits (free, never expiring), then
 *   period 0's allocation, seats × monthlyCreditsPerSeat free credits that expire at the period's
 *   end. Crossing into period n (from p): the rollover is measured first (only when n = p + 1 and
 *   the plan sets rolloverMaxCredits: min(unreserved credits of p's live allocation grants, max)),
 *   then p's grants expire, then n opens with the rollover grant and the allocation grant.
 * - Seats: more seats than the period paid for get (seats − paid) × monthlyCreditsPerSeat at once
 *   (the period now counts the new seats); fewer seats change nothing until the next period, which
 *   allocates for the seats the team has when it opens.
 *
 * In virtual minutes a period's grants expire at PERIOD_EXPIRY + n: later than every grant the test
 * sends (minutes to hours ahead), and the same for every grant of one period, as in the object
 * (they all expire at the period's end). A crossing ends them itself.
 */
import { type Category, ReferenceLedger } from "./reference-ledger";

export const TIER_LIST = ["fast", "balanced", "premium"] as const;
export type Tier = (typeof TIER_LIST)[number];
export type TierPrices = Partial<Record<Tier, number>>;
export type Unit = "minute" | "second" | "lead" | "request";
export type Rounding = "ceil" | "per_unit";

const METERED: ReadonlySet<Unit> = new Set<Unit>(["minute", "second"]);
/** Quantities are counted in millionths of a unit: the finest a metered quantity may be. */
export const MICRO = 1_000_000;
const PERIOD_EXPIRY = 1_000_000_000;

export interface RefFeature {
  unit: Unit;
  creditsPerUnit: number;
  tiers: TierPrices | null;
  rounding: Rounding;
  chargeOnSuccess: boolean;
}

export interface RefPlanPrice {
  creditsPerUnit?: number;
  tiers?: TierPrices;
}

export interface RefPlan {
  starterCredits: number;
  monthlyCreditsPerSeat: number;
  rolloverMaxCredits: number;
  /** By feature key. */
  featurePrices: Record<string, RefPlanPrice>;
}

/** How many units a charge asks for: none (1), an exact number of millionths, or 7 decimals (never valid). */
export type Quantity = { type: "omit" } | { type: "micro"; micro: number } | { type: "tooPrecise" };

export interface Charge {
  feature: string;
  quantity: Quantity;
  tier: Tier | null;
}

export type Priced = { ok: true; credits: number; unitCredits: number } | { ok: false };

/** A grant the ledger made itself: what the object's grants table must say about it. */
export interface SystemGrant {
  source: "starter" | "allocation";
  reference: string;
  period: number | null;
}

export interface RefPeriod {
  idx: number;
  /** The seats the period's allocation covers (the most it was paid for). */
  seats: number;
  grantedCredits: number;
  /** What the period opened with (its allocation.granted event). */
  opened: { seats: number; allocationCredits: number; rolloverCredits: number };
}

export class PlansReference extends ReferenceLedger {
  readonly features = new Map<string, RefFeature>();
  /** Labels of the grants the ledger made itself, and what they are. */
  readonly system = new Map<number, SystemGrant>();
  readonly periods: RefPeriod[] = [];
  /** The period the team is in. */
  period = 0;
  seats: number;

  constructor(
    readonly planId: string,
    readonly terms: RefPlan,
    seats: number,
  ) {
    super();
    this.seats = seats;
  }

  // ---- pricing --------------------------------------------------------------------------------

  /** Credits per unit for the team's plan, or null when the feature does not offer the tier. */
  unitPrice(featureKey: string, tier: Tier | null): number | null {
    const f = this.features.get(featureKey);
    if (!f) return null;
    const override = this.terms.featurePrices[featureKey];
    if (tier === null) return override?.creditsPerUnit ?? f.creditsPerUnit;
    const own = f.tiers?.[tier];
    if (own === undefined) return null;
    return override?.tiers?.[tier] ?? own;
  }

  /** The millionths of a unit a quantity is, or null when the feature's unit cannot take it. */
  private micros(f: RefFeature, q: Quantity): number | null {
    if (q.type === "omit") return MICRO;
    if (q.type === "tooPrecise") return null;
    if (!METERED.has(f.unit) && q.micro % MICRO !== 0) return null;
    return q.micro;
  }

  /** What a charge costs, or { ok: false } for a charge the route refuses (400, saved nowhere). */
  price(c: Charge, kind: "spend" | "hold"): Priced {
    const f = this.features.get(c.feature);
    if (!f) return { ok: false };
    if (f.chargeOnSuccess && kind === "spend") return { ok: false };
    const micro = this.micros(f, c.quantity);
    if (micro === null) return { ok: false };
    const price = this.unitPrice(c.feature, c.tier);
    if (price === null) return { ok: false };
    // ceil: the total rounds up; per_unit: every started unit counts whole. All integers.
    const credits =
      f.rounding === "ceil"
        ? Math.floor((price * micro + MICRO - 1) / MICRO)
        : price * Math.floor((micro + MICRO - 1) / MICRO);
    return { ok: true, credits, unitCredits: price };
  }

  // ---- the plan -------------------------------------------------------------------------------

  private systemGrant(amount: number, g: SystemGrant): void {
    const expiresAt = g.period === null ? null : PERIOD_EXPIRY + g.period;
    const out = this.grant(amount, "free" satisfies Category, 0, expiresAt);
    if (!(out.ok && out.kind === "grant")) throw new Error("reference: a system grant is never refused");
    this.system.set(out.grant, g);
  }

  /** The team is created on the plan: starter credits, then period 0. */
  create(): void {
    if (this.terms.starterCredits > 0)
      this.systemGrant(this.terms.starterCredits, {
        source: "starter",
        reference: `starter:${this.planId}`,
        period: null,
      });
    this.openPeriod(0, 0);
  }

  private openPeriod(idx: number, carry: number): void {
    const credits = this.seats * this.terms.monthlyCreditsPerSeat;
    this.period = idx;
    this.periods.push({
      idx,
      seats: this.seats,
      grantedCredits: credits + carry,
      opened: { seats: this.seats, allocationCredits: credits, rolloverCredits: carry },
    });
    if (carry > 0)
      this.systemGrant(carry, { source: "allocation", reference: `rollover:period:${idx - 1}`, period: idx });
    if (credits > 0)
      this.systemGrant(credits, { source: "allocation", reference: `allocation:period:${idx}`, period: idx });
  }

  private currentRow(): RefPeriod {
    const row = this.periods.at(-1);
    if (!row || row.idx !== this.period) throw new Error("reference: the current period is open");
    return row;
  }

  /** The live grants of period `idx` (allocation, rollover, seats added). */
  private periodGrants(idx: number) {
    return this.grants.filter((g) => this.system.get(g.label)?.period === idx && this.isLive(g));
  }

  /** PUT /v1/teams/{id} {seats}. */
  setSeats(seats: number): void {
    this.settle();
    const row = this.currentRow();
    const added = seats - row.seats;
    if (added > 0) {
      const credits = added * this.terms.monthlyCreditsPerSeat;
      if (credits > 0)
        this.systemGrant(credits, { source: "allocation", reference: `seats:period:${row.idx}`, period: row.idx });
      row.seats = seats;
      row.grantedCredits += credits;
    }
    this.seats = seats;
  }

  /** Time moves `by` period boundaries forward (the object's periods are re-anchored). */
  cross(by: number): void {
    this.settle();
    const from = this.period;
    const old = this.periodGrants(from);
    const unused = old.reduce((s, g) => s + g.unreserved, 0);
    const carry = by === 1 && this.terms.rolloverMaxCredits > 0 ? Math.min(unused, this.terms.rolloverMaxCredits) : 0;
    // The old period's grants expire at its end (settle writes their expire entries, oldest first).
    for (const g of old) g.expiresAt = this.now;
    this.settle();
    this.openPeriod(from + by, carry);
  }
}
