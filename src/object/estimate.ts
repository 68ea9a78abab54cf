/**
 * The credit planner (POST …/estimate): what a list of items would cost this team now and which
 * grants a spend of it would draw, without writing anything. It prices with the same function and
 * the team's plan as a spend does (domain/pricing.ts) and draws with the same function over the
 * same grants in the same order (domain/draw.ts), so a spend right after an estimate, with nothing
 * in between, charges exactly `total` and draws exactly `drawdown` (test/plans/referrals-events.test.ts,
 * test/plans/restricted-credits.test.ts). Each line draws as its own spend would, after the lines
 * before it: only from the grants its feature may draw (domain/spending-order.ts mayDraw), so
 * credits restricted to one line's feature never cover another line.
 */
import { assert } from "../domain/assert";
import { type Allocation, type DrawableGrant, draw, mergeAllocations } from "../domain/draw";
import type { Failure } from "../domain/failure";
import { type Pack, packsCovering } from "../domain/plans";
import { type ChargeRequest, type FeatureQuote, priceCharge, quoteOf } from "../domain/pricing";
import { mayDraw } from "../domain/spending-order";
import type { Category, Tier } from "../domain/vocabulary";
import { MAX_AMOUNT_CREDITS } from "../limits";
import type { LedgerTx } from "./ledger-tx";
import { storedPlan } from "./plans";
import { iso } from "./time";

export interface EstimateLine {
  feature: string;
  quantity: number;
  tier?: Tier;
  unitCredits: number | null;
  credits: number;
}

export interface Estimate {
  lines: EstimateLine[];
  total: number;
  /** What the lines' features could draw between them now (all of available without restricted credits). */
  availableNow: number;
  /** availableNow − total when sufficient, else 0 (the shortfall says how far short). */
  afterEstimate: number;
  shortfall: number;
  sufficient: boolean;
  drawdown: { grantId: string; category: Category; amount: number; expiresAt: string | null }[];
  suggestedPacks: Pack[];
  planId: string | null;
  priceVersion: number | null;
}

export function estimate(
  tx: LedgerTx,
  items: readonly ChargeRequest[],
  quotes: Readonly<Record<string, FeatureQuote>>,
): Estimate | Failure {
  const lines: EstimateLine[] = [];
  let total = 0;
  let priceVersion: number | null = null;
  for (const [i, item] of items.entries()) {
    const priced = priceCharge(
      item,
      quoteOf(quotes, item.feature),
      tx.team.planId,
      "hold",
      MAX_AMOUNT_CREDITS,
      `items[${i}].feature`,
    );
    if (!priced.ok) return priced;
    const c = priced.charge;
    const line: EstimateLine = {
      feature: c.feature,
      quantity: c.quantity ?? 1,
      unitCredits: c.unitCredits ?? null,
      credits: c.amount,
    };
    if (c.tier) line.tier = c.tier;
    lines.push(line);
    total += c.amount;
    if (c.priceVersion !== undefined) priceVersion = c.priceVersion;
  }
  const grants = [...tx.drawable()];
  const byId = new Map(grants.map((g) => [g.id, g]));
  const features = new Set(lines.map((l) => l.feature));
  const usableByAny = grants.filter((g) => g.restrictedFeature === null || features.has(g.restrictedFeature));
  const available = usableByAny.reduce((sum, g) => sum + g.remaining, 0);
  // Each line in turn, from what the lines before it left (copies: the grants read stay as read).
  const left = new Map(usableByAny.map((g) => [g.id, g.remaining]));
  let allocations: Allocation[] = [];
  let drawnTotal = 0;
  for (const line of lines) {
    if (line.credits === 0) continue;
    const usable: DrawableGrant[] = usableByAny
      .filter((g) => mayDraw(g, line.feature))
      .map((g) => ({ ...g, remaining: left.get(g.id) ?? 0 }));
    const drawn = draw(usable, line.credits);
    // Short: a spend would be refused; the drawdown shows everything this line could take.
    const taken = drawn.ok ? drawn.allocations : usable.map((g) => ({ grantId: g.id, amount: g.remaining }));
    for (const a of taken) {
      left.set(a.grantId, (left.get(a.grantId) ?? 0) - a.amount);
      drawnTotal += a.amount;
    }
    allocations = mergeAllocations(allocations, taken);
  }
  const shortfall = total - drawnTotal;
  const sufficient = shortfall === 0;
  const plan = storedPlan(tx);
  return {
    lines,
    total,
    availableNow: available,
    afterEstimate: sufficient ? available - total : 0,
    shortfall,
    sufficient,
    drawdown: allocations
      .filter((a) => a.amount > 0)
      .map((a) => {
        const g = byId.get(a.grantId);
        assert(g, "a drawn grant is one of the drawable grants");
        return {
          grantId: a.grantId,
          category: g.category,
          amount: a.amount,
          expiresAt: g.expiresAtMs === null ? null : iso(g.expiresAtMs),
        };
      }),
    suggestedPacks: plan?.paid ? packsCovering(plan, shortfall) : [],
    planId: tx.team.planId,
    priceVersion,
  };
}
