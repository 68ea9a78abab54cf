/**
 * Pricing: what a charge costs, decided before the ledger draws it. A request either names its
 * cost (`amount`, and `feature` is only a label) or leaves it to the price book: the feature's
 * credits per unit × quantity. Pure and fed by a catalog the caller passes in, so the worker can
 * price from a copy close to it and the team object only ever sees integer credits. Until the
 * price book exists (features are defined through the API in a later issue) the catalog is empty
 * and an unpriced charge is refused.
 */
import { type Failure, failure } from "./failure";
import type { ChargeInput, Dimensions, Tier } from "./vocabulary";

/** One feature's price: whole credits per unit. */
export interface FeaturePrice {
  creditsPerUnit: number;
}

/** The price book as a pricing call sees it: a version (recorded later on entries) and the features. */
export interface Catalog {
  version: number;
  features: ReadonlyMap<string, FeaturePrice>;
}

/** No features defined: every charge must name its amount. */
export const EMPTY_CATALOG: Catalog = { version: 0, features: new Map() };

/** A charge as a request describes it, before pricing. */
export interface ChargeRequest {
  feature: string;
  quantity?: number | undefined;
  tier?: Tier | undefined;
  amount?: number | undefined;
  dimensions?: Dimensions | undefined;
  reference?: string | undefined;
}

/**
 * The charge with its cost in credits, or why it cannot be priced. `where` names the field in
 * the refusal (e.g. `items[3].feature` in a batch).
 *
 * @example priceCharge({ feature: "email_finder", amount: 120 }, EMPTY_CATALOG) // ok, 120 credits
 */
export function priceCharge(
  request: ChargeRequest,
  catalog: Catalog,
  maxCredits: number,
  where = "feature",
): { ok: true; charge: ChargeInput } | Failure {
  if (request.amount !== undefined) return { ok: true, charge: { ...request, amount: request.amount } };
  const price = catalog.features.get(request.feature);
  if (price === undefined)
    return failure(
      "invalid_request",
      `${where} "${request.feature}" is not in the price book; send "amount" with the credits to charge`,
    );
  const amount = price.creditsPerUnit * (request.quantity ?? 1);
  if (!Number.isSafeInteger(amount) || amount < 1 || amount > maxCredits)
    return failure(
      "invalid_request",
      `${where} "${request.feature}" would cost ${amount} credits; at most ${maxCredits}`,
    );
  return { ok: true, charge: { ...request, amount } };
}
