/**
 * How many credits a refund (or a dispute) takes back from a purchase. Money comes back in minor
 * units; credits are integers. The share is cumulative, so partial refunds add up to exactly the
 * whole and never drift by rounding:
 *
 *   taken(refundedMinor) = ceil(credits × refundedMinor / amountMinor)   (capped at credits)
 *   a refund's credits   = taken(before + its amount) − taken(before)
 *
 * rounded up: a refunded cent never leaves a fraction of a credit with the buyer, and a full
 * refund takes back exactly what was bought. A purchase that cost nothing (a 100 % coupon) gives
 * everything back on any refund. What the grant no longer has (spent) is the refund's shortfall:
 * recorded, never taken from other grants (object/purchases.ts). Pure.
 */

/** Credits taken back once `refundedMinor` of a purchase of `credits` for `amountMinor` is refunded. */
export function creditsRefunded(credits: number, amountMinor: number, refundedMinor: number): number {
  if (refundedMinor <= 0) return 0;
  if (amountMinor <= 0 || refundedMinor >= amountMinor) return credits;
  const n = BigInt(credits) * BigInt(refundedMinor);
  const d = BigInt(amountMinor);
  return Number((n + d - 1n) / d);
}

/** The credits one more refund of `amountMinor` takes back, after `refundedBeforeMinor`. */
export function refundShare(
  purchase: { credits: number; amountMinor: number },
  refundedBeforeMinor: number,
  amountMinor: number,
): number {
  return (
    creditsRefunded(purchase.credits, purchase.amountMinor, refundedBeforeMinor + amountMinor) -
    creditsRefunded(purchase.credits, purchase.amountMinor, refundedBeforeMinor)
  );
}
