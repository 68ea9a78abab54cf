/**
 * Purchases: credits bought with money, credited exactly once, and taken back once per refund or
 * dispute. Every event from the payment provider (domain/purchase-events.ts) lands here, in the
 * team object's one transaction, keyed by the provider's own ids:
 *
 * - a purchase (Checkout Session, or an auto-recharge's PaymentIntent) is credited once: its row
 *   in `purchases` says so, whatever is redelivered, reordered or sent twice at once (the object
 *   runs one event at a time). A `paid` grant, source `purchase`, that never expires.
 * - an unpaid completion (a bank debit still clearing) records the purchase and credits nothing;
 *   the async success credits it; an async failure never does.
 * - a refund takes back its share of the purchase (domain/refunds.ts) from that purchase's own
 *   grant, once per refund id: a `refund` entry. What was already spent cannot be taken: it is the
 *   entry's `shortfallCredits` and a `purchase.refund_shortfall` event, never lost silently.
 * - a dispute's withdrawn funds are taken back like a refund (once per dispute); funds reinstated
 *   (a dispute won) give back, once, exactly what the dispute took, as a new paid grant.
 * - a refund or dispute that arrives before its purchase is credited waits, and is applied when
 *   the purchase is.
 */
import { assert } from "../domain/assert";
import type { PurchaseEvent, PurchaseEventResult, PurchaseFacts } from "../domain/purchase-events";
import { refundShare } from "../domain/refunds";
import { rechargeFailed, rechargeSucceeded, savePaymentMethod } from "./auto-recharge";
import { addGrant } from "./grants";
import type { LedgerTx } from "./ledger-tx";
import type { AdjustmentKind, PurchaseRow } from "./purchase-store";

const result = (r: Partial<PurchaseEventResult> & Pick<PurchaseEventResult, "outcome">): PurchaseEventResult => ({
  purchaseId: null,
  grantId: null,
  credits: 0,
  shortfallCredits: 0,
  ...r,
});

export function applyPurchaseEvent(tx: LedgerTx, e: PurchaseEvent): PurchaseEventResult {
  switch (e.type) {
    case "complete":
      return e.paid ? credit(tx, e) : awaitPayment(tx, e);
    case "fail":
      return fail(tx, e);
    case "refund":
      return adjust(tx, `refund:${e.refundId}`, "refund", e.paymentIntentId, e.amountMinor);
    case "dispute_withdrawn":
      return adjust(tx, `dispute:${e.disputeId}:withdrawn`, "dispute_withdrawn", e.paymentIntentId, e.amountMinor);
    case "dispute_reinstated":
      return reinstate(tx, e.disputeId, e.paymentIntentId, e.amountMinor);
    case "payment_method_saved":
      savePaymentMethod(tx.store, { customerId: e.customerId, paymentMethodId: e.paymentMethodId });
      return result({ outcome: "payment_method_saved" });
  }
}

function newRow(tx: LedgerTx, f: PurchaseFacts, status: PurchaseRow["status"]): PurchaseRow {
  return {
    id: f.purchaseId,
    payment_intent_id: f.paymentIntentId,
    kind: f.kind,
    status,
    credits: f.credits,
    amount_minor: f.amountMinor,
    currency: f.currency,
    pack_id: f.packId,
    customer_id: f.customerId,
    grant_id: null,
    refunded_minor: 0,
    clawed_credits: 0,
    shortfall_credits: 0,
    created_at_ms: tx.nowMs,
    credited_at_ms: null,
  };
}

function credit(tx: LedgerTx, f: PurchaseFacts): PurchaseEventResult {
  const purchases = tx.store.purchases;
  const existing = purchases.get(f.purchaseId);
  if (existing?.status === "credited")
    return result({ outcome: "already_applied", purchaseId: existing.id, grantId: existing.grant_id });
  if (!existing) purchases.insert(newRow(tx, f, "awaiting_payment"));
  // The credits are the ones recorded first (the session's metadata, set when we created it).
  const row = purchases.get(f.purchaseId);
  assert(row, "purchase row just written");
  const grantId = addGrant(tx, {
    amount: row.credits,
    category: "paid",
    source: "purchase",
    expiresAtMs: null,
    reference: `stripe:${row.id}`,
  });
  purchases.credited(row.id, grantId, f.paymentIntentId, f.customerId, tx.nowMs);
  if (row.kind === "auto_recharge") rechargeSucceeded(tx, f.rechargeId ?? null, f.paymentIntentId ?? row.id);
  tx.emit("topup.succeeded", {
    purchaseId: row.id,
    kind: row.kind,
    paymentIntentId: f.paymentIntentId ?? row.payment_intent_id,
    credits: row.credits,
    amountMinor: row.amount_minor,
    currency: row.currency,
    packId: row.pack_id,
    grantId,
  });
  const intent = f.paymentIntentId ?? row.payment_intent_id;
  let shortfallCredits = 0;
  if (intent)
    for (const w of purchases.waiting(intent)) {
      const applied =
        w.kind === "dispute_reinstated"
          ? reinstate(tx, w.id.split(":")[1] ?? "", intent, w.amount_minor)
          : adjust(tx, w.id, w.kind, intent, w.amount_minor, true);
      shortfallCredits += applied.shortfallCredits;
    }
  return result({ outcome: "credited", purchaseId: row.id, grantId, credits: row.credits, shortfallCredits });
}

function awaitPayment(tx: LedgerTx, f: PurchaseFacts): PurchaseEventResult {
  const existing = tx.store.purchases.get(f.purchaseId);
  if (existing) return result({ outcome: "already_applied", purchaseId: existing.id, grantId: existing.grant_id });
  tx.store.purchases.insert(newRow(tx, f, "awaiting_payment"));
  return result({ outcome: "awaiting_payment", purchaseId: f.purchaseId });
}

function fail(tx: LedgerTx, f: PurchaseFacts): PurchaseEventResult {
  const existing = tx.store.purchases.get(f.purchaseId);
  // A credited purchase stays credited: a failure cannot follow a success of the same payment.
  if (existing?.status === "credited" || existing?.status === "failed")
    return result({ outcome: "already_applied", purchaseId: existing.id, grantId: existing.grant_id });
  if (existing) tx.store.purchases.setStatus(existing.id, "failed");
  else tx.store.purchases.insert(newRow(tx, f, "failed"));
  if (f.kind === "auto_recharge" && f.rechargeId)
    rechargeFailed(tx, f.rechargeId, "payment_failed", f.paymentIntentId ?? undefined);
  return result({ outcome: "failed", purchaseId: f.purchaseId });
}

/**
 * Takes back a refund's or a dispute's share of the purchase paid by `paymentIntentId`, once per
 * `id`, from that purchase's grant; what the grant no longer has is the shortfall.
 */
function adjust(
  tx: LedgerTx,
  id: string,
  kind: Exclude<AdjustmentKind, "dispute_reinstated">,
  paymentIntentId: string,
  amountMinor: number,
  wasWaiting = false,
): PurchaseEventResult {
  const purchases = tx.store.purchases;
  const seen = purchases.adjustment(id);
  if (seen && !(wasWaiting && seen.status === "waiting"))
    return result({ outcome: "already_applied", credits: seen.credits, shortfallCredits: seen.shortfall_credits });
  const p = purchases.byPaymentIntent(paymentIntentId);
  const base = { id, payment_intent_id: paymentIntentId, kind, amount_minor: amountMinor, created_at_ms: tx.nowMs };
  if (p?.status !== "credited" || p.grant_id === null) {
    purchases.putAdjustment({ ...base, credits: 0, shortfall_credits: 0, status: "waiting" });
    return result({ outcome: "waiting", purchaseId: p?.id ?? null });
  }
  // A dispute whose funds were already reinstated (the events came in reverse) takes nothing.
  if (kind === "dispute_withdrawn" && purchases.adjustment(id.replace(/:withdrawn$/, ":reinstated"))) {
    purchases.putAdjustment({ ...base, credits: 0, shortfall_credits: 0, status: "applied" });
    return result({ outcome: "already_applied", purchaseId: p.id });
  }
  // Never more than the purchase gave, whatever Stripe's amounts say.
  const refundable = Math.max(0, p.amount_minor - p.refunded_minor);
  const counted = Math.min(amountMinor, refundable);
  const share = refundShare({ credits: p.credits, amountMinor: p.amount_minor }, p.refunded_minor, counted);
  const g = tx.store.grants.get(p.grant_id);
  assert(g, "a credited purchase has its grant");
  const live = g.status === "active" || g.status === "depleted";
  const unreserved = live ? g.remaining - g.held : 0;
  const taken = Math.min(share, unreserved);
  const shortfall = share - taken;
  if (taken > 0) tx.store.grants.adjust(g.id, { remaining: -taken, held: 0 });
  const ref = id.startsWith("refund:") ? `stripe:${id.slice("refund:".length)}` : `stripe:${id}`;
  tx.entry({
    type: "refund",
    direction: "out",
    amount: taken,
    grantId: g.id,
    reference: ref,
    shortfallCredits: shortfall,
  });
  purchases.moveRefunded(p.id, { refundedMinor: counted, clawedCredits: taken, shortfallCredits: shortfall });
  // The money it counted (never more than was left to refund): what a won dispute gives back.
  purchases.putAdjustment({
    ...base,
    amount_minor: counted,
    credits: taken,
    shortfall_credits: shortfall,
    status: "applied",
  });
  const which = kind === "refund" ? { refundId: id.slice("refund:".length) } : { disputeId: id.split(":")[1] };
  const facts = {
    ...which,
    purchaseId: p.id,
    paymentIntentId,
    amountMinor: counted,
    credits: taken,
    shortfallCredits: shortfall,
    grantId: g.id,
  };
  if (kind === "refund") tx.emit("topup.refunded", facts);
  else tx.emit("topup.disputed", { ...facts, stage: "funds_withdrawn" });
  if (shortfall > 0)
    tx.emit("purchase.refund_shortfall", {
      ...facts,
      reason: kind === "refund" ? "refund" : "dispute",
      message: `${shortfall} of the ${share} credits refunded were already spent and could not be taken back`,
    });
  return result({
    outcome: kind === "refund" ? "refunded" : "disputed",
    purchaseId: p.id,
    grantId: g.id,
    credits: taken,
    shortfallCredits: shortfall,
  });
}

/** A dispute won: gives back, once, exactly the credits its withdrawal took, as a new paid grant. */
function reinstate(tx: LedgerTx, disputeId: string, paymentIntentId: string, amountMinor: number): PurchaseEventResult {
  const purchases = tx.store.purchases;
  const id = `dispute:${disputeId}:reinstated`;
  const seen = purchases.adjustment(id);
  if (seen?.status === "applied") return result({ outcome: "already_applied", credits: seen.credits });
  const withdrawn = purchases.adjustment(`dispute:${disputeId}:withdrawn`);
  const p = purchases.byPaymentIntent(paymentIntentId);
  const base = { id, payment_intent_id: paymentIntentId, kind: "dispute_reinstated" as const, created_at_ms: tx.nowMs };
  if (p?.status !== "credited") {
    purchases.putAdjustment({
      ...base,
      amount_minor: amountMinor,
      credits: 0,
      shortfall_credits: 0,
      status: "waiting",
    });
    return result({ outcome: "waiting", purchaseId: p?.id ?? null });
  }
  // Reinstated before withdrawn (reordered events): record it, so the withdrawal then takes nothing.
  if (withdrawn?.status !== "applied") {
    purchases.putAdjustment({
      ...base,
      amount_minor: amountMinor,
      credits: 0,
      shortfall_credits: 0,
      status: "applied",
    });
    return result({ outcome: "reinstated", purchaseId: p.id });
  }
  const credits = withdrawn.credits;
  let grantId: string | null = null;
  if (credits > 0)
    grantId = addGrant(tx, {
      amount: credits,
      category: "paid",
      source: "purchase",
      expiresAtMs: null,
      reference: `stripe:dispute:${disputeId}:reinstated`,
    });
  purchases.moveRefunded(p.id, {
    refundedMinor: -withdrawn.amount_minor,
    clawedCredits: -withdrawn.credits,
    shortfallCredits: -withdrawn.shortfall_credits,
  });
  purchases.putAdjustment({
    ...base,
    amount_minor: withdrawn.amount_minor,
    credits,
    shortfall_credits: 0,
    status: "applied",
  });
  tx.emit("topup.disputed", {
    purchaseId: p.id,
    paymentIntentId,
    disputeId,
    stage: "funds_reinstated",
    amountMinor: withdrawn.amount_minor,
    credits,
    grantId,
  });
  return result({ outcome: "reinstated", purchaseId: p.id, grantId, credits });
}
