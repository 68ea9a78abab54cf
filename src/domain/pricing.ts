/**
 * Pricing: what a charge costs, decided before the ledger draws it. A request either names its
 * cost (`amount`, and `feature` is only a label) or leaves it to the price book:
 *
 *   unit price = the plan's override for the feature (and tier), else the feature's own
 *                (`tiers[tier]` when a tier is asked for, else `creditsPerUnit`)
 *   credits    = ceil(unit price × quantity)                 unitRounding "ceil" (the default)
 *              = unit price × ceil(quantity)                  unitRounding "per_unit" (each started unit)
 *
 * Tier prices are absolute credits per unit, not multipliers, so every price is an integer.
 * Quantities may be fractional only for metered units (minutes, seconds, …), with at most
 * QUANTITY_DECIMALS decimals, and the arithmetic is exact (BigInt over the decimal digits), so
 * `2.25` minutes at 4 credits is exactly 9 credits and `0.1 × 3` never becomes 0.30000000000000004.
 * A feature marked `chargeOnSuccess` is charged only through a hold and its capture.
 *
 * Pure and fed by a quote the caller passes in (the worker's copy of the price book), so the team
 * object prices with its own plan and only ever draws integer credits.
 */
import { type Failure, failure } from "./failure";
import type { ChargeInput, Dimensions, Tier } from "./vocabulary";

export const UNITS = [
  "request",
  "lead",
  "record",
  "email",
  "message",
  "page",
  "image",
  "video",
  "clip",
  "document",
  "call",
  "token",
  "character",
  "second",
  "minute",
  "hour",
  "megabyte",
  "gigabyte",
] as const;
export type Unit = (typeof UNITS)[number];
/** Units measured rather than counted: only these take a fractional quantity. */
export const METERED_UNITS: ReadonlySet<Unit> = new Set<Unit>(["second", "minute", "hour", "megabyte", "gigabyte"]);
/** Decimals a metered quantity may carry (a millionth of a unit). */
export const QUANTITY_DECIMALS = 6;

export const UNIT_ROUNDINGS = ["ceil", "per_unit"] as const;
export type UnitRounding = (typeof UNIT_ROUNDINGS)[number];

export type TierPrices = Partial<Record<Tier, number>>;

/** A feature of the price book, as stored and returned by GET /v1/features. */
export interface Feature {
  key: string;
  name: string;
  unit: Unit;
  creditsPerUnit: number;
  /** Absolute credits per unit for each tier offered; null when the feature has no tiers. */
  tiers: TierPrices | null;
  chargeOnSuccess: boolean;
  creditPaymentEligible: boolean;
  unitRounding: UnitRounding;
  /** The price book's version when this feature last changed. */
  version: number;
  createdAt: string;
  updatedAt: string;
}

/** A plan's price for one feature: its own credits per unit and/or tier prices. */
export interface PlanPrice {
  creditsPerUnit?: number | undefined;
  tiers?: TierPrices | undefined;
}

/** What pricing reads of a feature (a quote travels with every priced spend: kept small). */
export type PricedFeature = Pick<
  Feature,
  "key" | "unit" | "creditsPerUnit" | "tiers" | "chargeOnSuccess" | "unitRounding"
>;

/** Everything pricing needs about one feature: its price and every plan's override of it. */
export interface FeatureQuote {
  feature: PricedFeature;
  /** The price book's version the quote was read at (recorded on entries as `priceVersion`). */
  catalogVersion: number;
  /** planId → that plan's price for this feature. */
  planPrices: Readonly<Record<string, PlanPrice>>;
}

/** A charge as a request describes it, before pricing. */
export interface ChargeRequest {
  feature: string;
  quantity?: number | undefined;
  tier?: Tier | undefined;
  amount?: number | undefined;
  dimensions?: Dimensions | undefined;
  reference?: string | undefined;
}

/** How the charge reaches the ledger: a plain spend, or a hold (captured later). */
export type ChargeKind = "spend" | "hold";

/** A quantity as an exact decimal: value = digits / 10^scale; null when it has too many decimals. */
export function exactQuantity(quantity: number): { digits: bigint; scale: number } | null {
  if (!Number.isFinite(quantity) || quantity < 0) return null;
  // Shortest round-trip text of the double: what the client wrote, for every quantity we accept.
  const text = String(quantity);
  const m = /^(\d+)(?:\.(\d+))?$/.exec(text);
  if (!m?.[1]) return null;
  const decimals = m[2] ?? "";
  if (decimals.length > QUANTITY_DECIMALS) return null;
  return { digits: BigInt(m[1] + decimals), scale: decimals.length };
}

/** Whether a quantity can be priced for this unit (whole for counted units; ≤ 6 decimals metered). */
export function quantityProblem(unit: Unit, quantity: number): string | null {
  if (!(quantity > 0)) return "must be greater than 0";
  if (!METERED_UNITS.has(unit) && !Number.isInteger(quantity)) return `must be a whole number of ${unit}s`;
  if (exactQuantity(quantity) === null) return `may have at most ${QUANTITY_DECIMALS} decimals`;
  return null;
}

/** The unit price a team on `planId` pays for the feature at `tier`, or why there is none. */
export function unitPrice(quote: FeatureQuote, tier: Tier | undefined, planId: string | null): number | string {
  const f = quote.feature;
  // Own keys only: a plan or feature named "constructor" must not find Object.prototype's.
  const override = planId !== null && Object.hasOwn(quote.planPrices, planId) ? quote.planPrices[planId] : undefined;
  if (tier !== undefined) {
    const own = f.tiers && Object.hasOwn(f.tiers, tier) ? f.tiers[tier] : undefined;
    if (own === undefined) {
      const offered = Object.keys(f.tiers ?? {});
      return offered.length === 0
        ? `has no tiers; leave "tier" out`
        : `has no tier "${tier}"; its tiers are ${offered.join(", ")}`;
    }
    return (override?.tiers && Object.hasOwn(override.tiers, tier) ? override.tiers[tier] : undefined) ?? own;
  }
  return override?.creditsPerUnit ?? f.creditsPerUnit;
}

/** Credits for `quantity` units at `price` credits each, rounded up by the feature's rule. */
export function creditsFor(price: number, quantity: number, rounding: UnitRounding): number {
  // Whole quantities (the common case) need no decimal arithmetic.
  if (Number.isSafeInteger(quantity) && quantity >= 0) {
    const credits = price * quantity;
    return Number.isSafeInteger(credits) ? credits : Number.POSITIVE_INFINITY;
  }
  const q = exactQuantity(quantity);
  if (q === null) return Number.NaN;
  const scale = 10n ** BigInt(q.scale);
  const units = rounding === "per_unit" ? (q.digits + scale - 1n) / scale : q.digits;
  const divisor = rounding === "per_unit" ? 1n : scale;
  const product = BigInt(price) * units;
  const credits = (product + divisor - 1n) / divisor;
  return credits > BigInt(Number.MAX_SAFE_INTEGER) ? Number.POSITIVE_INFINITY : Number(credits);
}

/**
 * The charge with its cost in credits, or why it cannot be priced. `quote` is the price book's
 * entry for the request's feature (undefined when it has none); `planId` the team's plan. `where`
 * names the field in a refusal (e.g. `items[3].feature` in a batch).
 *
 * @example priceCharge({ feature: "email_finder", amount: 120 }, undefined, null, "spend", 10 ** 12) // 120 credits
 */
export function priceCharge(
  request: ChargeRequest,
  quote: FeatureQuote | undefined,
  planId: string | null,
  kind: ChargeKind,
  maxCredits: number,
  where = "feature",
): { ok: true; charge: ChargeInput } | Failure {
  if (quote?.feature.chargeOnSuccess && kind === "spend")
    return failure(
      "invalid_request",
      `${where} "${request.feature}" is charged only on success: create a hold and capture it when the work succeeded`,
    );
  if (request.amount !== undefined) {
    const { amount, ...rest } = request;
    return { ok: true, charge: { ...rest, amount } };
  }
  if (quote === undefined)
    return failure(
      "invalid_request",
      `${where} "${request.feature}" is not in the price book; define it (PUT /v1/features/{featureKey}) or send "amount"`,
    );
  const quantity = request.quantity ?? 1;
  const bad = quantityProblem(quote.feature.unit, quantity);
  if (bad !== null) return failure("invalid_request", `quantity ${bad}`);
  const price = unitPrice(quote, request.tier, planId);
  if (typeof price === "string") return failure("invalid_request", `${where} "${request.feature}" ${price}`);
  const amount = creditsFor(price, quantity, quote.feature.unitRounding);
  if (!Number.isSafeInteger(amount) || amount < 1 || amount > maxCredits)
    return failure(
      "invalid_request",
      `${where} "${request.feature}" would cost ${amount} credits (${quantity} × ${price}); a charge is 1 to ${maxCredits} credits`,
    );
  return {
    ok: true,
    charge: { ...request, quantity, amount, unitCredits: price, priceVersion: quote.catalogVersion },
  };
}

/** The quote for a feature from quotes keyed by feature (own keys only: "constructor" is a feature name). */
export function quoteOf(quotes: Readonly<Record<string, FeatureQuote>>, feature: string): FeatureQuote | undefined {
  return Object.hasOwn(quotes, feature) ? quotes[feature] : undefined;
}
