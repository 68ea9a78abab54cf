/**
 * What a verified Stripe event means for a team's credits (domain/purchase-events.ts), and how to
 * find the team: a Checkout Session names it (`metadata.teamId`, `client_reference_id`), as does a
 * charge (its payment intent's metadata, which Stripe copies to it); refunds and disputes carry
 * only the payment intent, which the webhook looks up (db/stripe.ts, then Stripe itself).
 *
 * Handled: checkout.session.completed | async_payment_succeeded | async_payment_failed,
 * refund.created | refund.updated | charge.refund.updated, charge.refunded (the refunds it lists),
 * charge.dispute.created | funds_withdrawn (take back), charge.dispute.funds_reinstated and
 * charge.dispute.closed as won (give back); payment_intent.succeeded (a card saved for off-session
 * use; an auto-recharge's credits) and payment_intent.payment_failed (an auto-recharge that
 * failed). Everything else is acknowledged and ignored.
 */
import type Stripe from "stripe";
import type { PurchaseEvent } from "../domain/purchase-events";
import { MAX_AMOUNT_CREDITS, MAX_TEAM_ID_LENGTH } from "../limits";

/** One thing to apply to one team; `teamId` null means: find it by the payment intent. */
export interface RoutedPurchaseEvent {
  teamId: string | null;
  paymentIntentId: string | null;
  event: PurchaseEvent;
}

export type ReadStripeEvent =
  | { kind: "apply"; items: RoutedPurchaseEvent[] }
  | { kind: "ignore"; why: string }
  /** Ours by its shape but not usable (malformed metadata): kept for an admin. */
  | { kind: "unmatched"; teamId: string | null; reason: string };

const idOf = (v: string | { id: string } | null | undefined): string | null =>
  v === null || v === undefined ? null : typeof v === "string" ? v : v.id;

function teamIdFrom(metadata: Stripe.Metadata | null | undefined, fallback?: string | null): string | null {
  const id = metadata?.teamId ?? fallback ?? null;
  return id && id.length <= MAX_TEAM_ID_LENGTH ? id : null;
}

/** Refund statuses that mean money is, or is being, returned to the buyer. */
const COUNTED_REFUND = new Set(["succeeded", "pending", "requires_action"]);

export function readStripeEvent(e: Stripe.Event): ReadStripeEvent {
  switch (e.type) {
    case "checkout.session.completed":
    case "checkout.session.async_payment_succeeded":
    case "checkout.session.async_payment_failed":
      return readSession(e.type, e.data.object);
    case "refund.created":
    case "refund.updated":
    case "charge.refund.updated":
      return readRefunds(null, [e.data.object]);
    case "charge.refunded": {
      const charge = e.data.object;
      const refunds = charge.refunds?.data ?? [];
      if (refunds.length === 0)
        return { kind: "ignore", why: "charge.refunded lists no refunds: refund.* events carry them" };
      return readRefunds(teamIdFrom(charge.metadata), refunds, idOf(charge.payment_intent));
    }
    case "payment_intent.succeeded":
    case "payment_intent.payment_failed":
      return readIntent(e.type, e.data.object);
    case "charge.dispute.created":
    case "charge.dispute.funds_withdrawn":
      return readDispute(e.data.object, "dispute_withdrawn");
    case "charge.dispute.funds_reinstated":
      return readDispute(e.data.object, "dispute_reinstated");
    case "charge.dispute.closed":
      return e.data.object.status === "won"
        ? readDispute(e.data.object, "dispute_reinstated")
        : { kind: "ignore", why: `dispute closed as ${e.data.object.status}: its funds stay withdrawn` };
    default:
      return { kind: "ignore", why: `event type ${e.type} does not concern credits` };
  }
}

function readSession(type: string, s: Stripe.Checkout.Session): ReadStripeEvent {
  if (s.mode !== "payment") return { kind: "ignore", why: `a ${s.mode} session buys no credits` };
  const teamId = teamIdFrom(s.metadata, s.client_reference_id);
  const creditsText = s.metadata?.credits;
  if (!teamId && creditsText === undefined) return { kind: "ignore", why: "a session this service did not create" };
  const credits = creditsText !== undefined && /^[1-9][0-9]{0,15}$/.test(creditsText) ? Number(creditsText) : 0;
  if (!teamId) return { kind: "unmatched", teamId: null, reason: "the session names no team (metadata.teamId)" };
  if (credits < 1 || credits > MAX_AMOUNT_CREDITS)
    return { kind: "unmatched", teamId, reason: `metadata.credits is not a credit amount: ${String(creditsText)}` };
  const facts = {
    purchaseId: s.id,
    kind: "checkout" as const,
    paymentIntentId: idOf(s.payment_intent),
    customerId: idOf(s.customer),
    credits,
    amountMinor: s.amount_total ?? 0,
    currency: s.currency ?? "usd",
    packId: s.metadata?.packId ?? null,
  };
  const event: PurchaseEvent =
    type === "checkout.session.async_payment_failed"
      ? { type: "fail", ...facts }
      : {
          type: "complete",
          ...facts,
          // async_payment_succeeded is the payment clearing, whatever status the payload still shows.
          paid:
            type === "checkout.session.async_payment_succeeded" ||
            s.payment_status === "paid" ||
            s.payment_status === "no_payment_required",
        };
  return { kind: "apply", items: [{ teamId, paymentIntentId: facts.paymentIntentId, event }] };
}

function readRefunds(teamId: string | null, refunds: Stripe.Refund[], chargeIntent?: string | null): ReadStripeEvent {
  const items: RoutedPurchaseEvent[] = [];
  for (const r of refunds) {
    const paymentIntentId = idOf(r.payment_intent) ?? chargeIntent ?? null;
    if (!paymentIntentId || !COUNTED_REFUND.has(r.status ?? "")) continue;
    items.push({
      teamId: teamId ?? teamIdFrom(r.metadata),
      paymentIntentId,
      event: { type: "refund", refundId: r.id, paymentIntentId, amountMinor: r.amount },
    });
  }
  if (items.length === 0) return { kind: "ignore", why: "no counted refund of a payment intent" };
  return { kind: "apply", items };
}

function readDispute(d: Stripe.Dispute, type: "dispute_withdrawn" | "dispute_reinstated"): ReadStripeEvent {
  const paymentIntentId = idOf(d.payment_intent);
  if (!paymentIntentId) return { kind: "ignore", why: "a dispute of a charge without a payment intent" };
  return {
    kind: "apply",
    items: [
      {
        teamId: teamIdFrom(d.metadata),
        paymentIntentId,
        event: { type, disputeId: d.id, paymentIntentId, amountMinor: d.amount },
      },
    ],
  };
}

/**
 * A PaymentIntent of ours (its metadata names the team): a card the buyer agreed to have charged
 * off-session is saved for auto-recharge; an auto-recharge's intent credits (or fails) its purchase.
 * A Checkout payment's own intent credits nothing here: its session's events do.
 */
function readIntent(type: string, pi: Stripe.PaymentIntent): ReadStripeEvent {
  const teamId = teamIdFrom(pi.metadata);
  if (!teamId) return { kind: "ignore", why: "a payment intent this service did not create" };
  const items: RoutedPurchaseEvent[] = [];
  const customerId = idOf(pi.customer);
  const paymentMethodId = idOf(pi.payment_method);
  if (type === "payment_intent.succeeded" && pi.setup_future_usage === "off_session" && customerId && paymentMethodId)
    items.push({
      teamId,
      paymentIntentId: pi.id,
      event: { type: "payment_method_saved", customerId, paymentMethodId },
    });
  if (pi.metadata.kind === "auto_recharge") {
    const creditsText = pi.metadata.credits ?? "";
    const credits = /^[1-9][0-9]{0,15}$/.test(creditsText) ? Number(creditsText) : 0;
    if (credits < 1 || credits > MAX_AMOUNT_CREDITS)
      return { kind: "unmatched", teamId, reason: `metadata.credits is not a credit amount: ${creditsText}` };
    const facts = {
      purchaseId: pi.id,
      kind: "auto_recharge" as const,
      paymentIntentId: pi.id,
      customerId,
      credits,
      amountMinor: pi.amount_received || pi.amount,
      currency: pi.currency,
      packId: pi.metadata.packId ?? null,
      rechargeId: pi.metadata.rechargeId ?? null,
    };
    items.push({
      teamId,
      paymentIntentId: pi.id,
      event:
        type === "payment_intent.succeeded" ? { type: "complete", paid: true, ...facts } : { type: "fail", ...facts },
    });
  }
  if (items.length === 0) return { kind: "ignore", why: "a Checkout payment: its session's events credit it" };
  return { kind: "apply", items };
}
