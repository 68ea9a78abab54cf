/**
 * Plans: what a team's subscription gives it in credits (starter credits once, a monthly free
 * allocation per seat, credits per seat restricted to one feature each month, an optional
 * rollover cap, referral bonuses) and the rate at which it buys
 * more (credits per currency unit; packs and custom amounts). Money is in minor units (cents,
 * pence) and credits are integers:
 *
 *   credits for a price = floor(priceMinor × creditsPerCurrencyUnit / 10^exponent(currency))
 *
 * rounded down, so a pack never gives more than it was paid for (£25 at 40 credits a pound is
 * 2500 pence × 40 / 100 = 1000 credits). The exponent is the currency's minor-unit exponent as
 * Stripe uses it (2 for usd, eur, gbp; 0 for jpy and the other zero-decimal currencies). Pure.
 */
import type { PlanPrice } from "./pricing";

/** Stripe's zero-decimal currencies (amounts are whole units): https://docs.stripe.com/currencies */
const ZERO_DECIMAL = new Set([
  "bif",
  "clp",
  "djf",
  "gnf",
  "jpy",
  "kmf",
  "krw",
  "mga",
  "pyg",
  "rwf",
  "ugx",
  "vnd",
  "vuv",
  "xaf",
  "xof",
  "xpf",
]);

export function currencyExponent(currency: string): number {
  return ZERO_DECIMAL.has(currency.toLowerCase()) ? 0 : 2;
}

export interface Pack {
  id: string;
  priceMinor: number;
  /** What the pack gives at the plan's rate (derived, shown so a buyer sees it exactly). */
  credits: number;
}

export interface Plan {
  id: string;
  name: string;
  paid: boolean;
  /** ISO 4217, lowercase (as Stripe writes it). */
  currency: string;
  creditsPerCurrencyUnit: number;
  starterCredits: number;
  monthlyCreditsPerSeat: number;
  /**
   * Free credits per seat each period that only one feature may spend (lemlist's 400 calling
   * credits): feature key → credits. Absent on plans written before it existed: none.
   */
  monthlyFeatureCreditsPerSeat?: Record<string, number>;
  /** Unused free allocation carried into the next period, at most this many; 0: none (the default). */
  rolloverMaxCredits: number;
  packs: Pack[];
  customAmount: { minMinor: number; maxMinor: number } | null;
  referral: { signupCredits: number; upgradeCredits: number } | null;
  featurePrices: Record<string, PlanPrice>;
  /** The price book's version when this plan last changed. */
  version: number;
  createdAt: string;
  updatedAt: string;
}

/** Credits a payment of `priceMinor` buys on the plan (rounded down; see the header). */
export function creditsForMinor(plan: Pick<Plan, "currency" | "creditsPerCurrencyUnit">, priceMinor: number): number {
  const scale = 10n ** BigInt(currencyExponent(plan.currency));
  return Number((BigInt(priceMinor) * BigInt(plan.creditsPerCurrencyUnit)) / scale);
}

/** A period's free allocation: seats × monthly credits per seat. */
export function allocationCredits(plan: Pick<Plan, "monthlyCreditsPerSeat">, seats: number): number {
  return plan.monthlyCreditsPerSeat * seats;
}

/**
 * A period's feature-restricted allocations: seats × the plan's credits per seat for each feature,
 * by feature key (a fixed order, so a period's grants are always written the same way); features
 * at 0 credits give nothing.
 */
export function featureAllocations(
  plan: Pick<Plan, "monthlyFeatureCreditsPerSeat">,
  seats: number,
): { feature: string; credits: number }[] {
  return Object.entries(plan.monthlyFeatureCreditsPerSeat ?? {})
    .filter(([, perSeat]) => perSeat > 0 && seats > 0)
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    .map(([feature, perSeat]) => ({ feature, credits: perSeat * seats }));
}

/**
 * The plan's packs that cover `shortfall` credits, cheapest first; when none is big enough, the
 * largest (one pack brings the team closest). Empty when the plan sells no packs.
 */
export function packsCovering(plan: Pick<Plan, "packs">, shortfall: number): Pack[] {
  if (shortfall <= 0 || plan.packs.length === 0) return [];
  const covering = plan.packs.filter((p) => p.credits >= shortfall).sort((a, b) => a.priceMinor - b.priceMinor);
  if (covering.length > 0) return covering;
  const largest = [...plan.packs].sort((a, b) => b.credits - a.credits)[0];
  return largest ? [largest] : [];
}

/** What a buyer chose: one of the plan's packs, or a custom amount of money within its bounds. */
export type PurchaseChoice = { packId: string } | { amountMinor: number };

/** What a purchase choice costs and gives on the plan. */
export interface PricedPurchase {
  credits: number;
  priceMinor: number;
  currency: string;
  packId: string | null;
}

/**
 * Prices a purchase on the plan (checkout, credit requests): a pack gives its credits; a custom
 * amount must be within the plan's `customAmount` bounds and give at least one credit. The
 * refusal says why, as a value (the routes answer 400 with it).
 */
export function pricePurchase(
  plan: Pick<Plan, "id" | "currency" | "creditsPerCurrencyUnit" | "packs" | "customAmount">,
  choice: PurchaseChoice,
): ({ ok: true } & PricedPurchase) | { ok: false; detail: string } {
  if ("packId" in choice) {
    const pack = plan.packs.find((p) => p.id === choice.packId);
    if (!pack) return { ok: false, detail: `plan ${plan.id} has no pack ${choice.packId}` };
    const credits = creditsForMinor(plan, pack.priceMinor);
    return { ok: true, credits, priceMinor: pack.priceMinor, currency: plan.currency, packId: pack.id };
  }
  const bounds = plan.customAmount;
  if (!bounds) return { ok: false, detail: `plan ${plan.id} sells packs only, not custom amounts` };
  if (choice.amountMinor < bounds.minMinor || choice.amountMinor > bounds.maxMinor)
    return {
      ok: false,
      detail: `amountMinor must be between ${bounds.minMinor} and ${bounds.maxMinor} on plan ${plan.id}`,
    };
  const credits = creditsForMinor(plan, choice.amountMinor);
  if (credits < 1) return { ok: false, detail: `amountMinor ${choice.amountMinor} buys no credit at the plan's rate` };
  return { ok: true, credits, priceMinor: choice.amountMinor, currency: plan.currency, packId: null };
}
