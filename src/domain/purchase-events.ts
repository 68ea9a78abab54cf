/**
 * What a payment provider tells a team's ledger about its purchases, once the worker has verified
 * and read the provider's event (src/stripe/): a purchase completed (paid or still unpaid), failed,
 * was refunded in part or whole, or was disputed (funds withdrawn, then perhaps reinstated). Each
 * carries the provider's own id, which is what the team object deduplicates on. Pure: types only.
 */

export interface PurchaseFacts {
  /** The Checkout Session id (`cs_…`), or the PaymentIntent id of an auto-recharge. */
  purchaseId: string;
  kind: "checkout" | "auto_recharge";
  paymentIntentId: string | null;
  customerId: string | null;
  credits: number;
  amountMinor: number;
  currency: string;
  packId: string | null;
  /** An auto-recharge's own id (its PaymentIntent's metadata.rechargeId). */
  rechargeId?: string | null | undefined;
}

export type PurchaseEvent =
  /** `paid`: the money is in (credit now); otherwise the payment is pending (credit nothing yet). */
  | ({ type: "complete"; paid: boolean } & PurchaseFacts)
  /** An asynchronous payment failed: never credits. */
  | ({ type: "fail" } & PurchaseFacts)
  | { type: "refund"; refundId: string; paymentIntentId: string; amountMinor: number }
  | { type: "dispute_withdrawn"; disputeId: string; paymentIntentId: string; amountMinor: number }
  | { type: "dispute_reinstated"; disputeId: string; paymentIntentId: string; amountMinor: number }
  /** The buyer agreed to be charged off-session with this card (auto-recharge may use it). */
  | { type: "payment_method_saved"; customerId: string; paymentMethodId: string };

/** What the team object did with a purchase event. */
export interface PurchaseEventResult {
  outcome:
    | "credited"
    | "already_applied"
    | "awaiting_payment"
    | "failed"
    | "refunded"
    | "disputed"
    | "reinstated"
    /** A refund or dispute for a purchase not credited yet: kept, applied when it is. */
    | "waiting"
    | "payment_method_saved"
    | "ignored";
  purchaseId: string | null;
  grantId: string | null;
  /** Credits granted, or taken back, by this event. */
  credits: number;
  /** Refunded or disputed credits that could not be taken back (already spent). */
  shortfallCredits: number;
}
