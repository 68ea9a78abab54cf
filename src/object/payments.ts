/**
 * Paying with credits (the client portal's "Pay with Credit" and "Buy with Credit"): an invoice or
 * a service paid from the team's balance. One rule decides both the options a client is shown
 * (`paymentReasons`: every reason that applies, as a stable code and a sentence) and the payment
 * itself, so the button never shows for a payment that would then be refused.
 *
 * A payment is all or nothing, in one transaction: the spend (spends.ts: drawn in spending order,
 * one `out` entry per grant, its feature `invoice` or the service's id, its reference the
 * payment's) and the payment's row. An invoice is paid at most once (409 on a second payment of
 * its reference, under any key). The refusals, checked in this order:
 *   403 forbidden   reason `role` / `sharing_off` (domain/roles.ts spendingRefusal: paying is
 *                   using credits), `credit_payments_disabled` (the team's setting),
 *                   `service_not_eligible` (not in the price book, or not creditPaymentEligible)
 *   409 conflict    the invoice was paid already (`paymentId` names that payment)
 *   402 insufficient_credits  not enough available credits; nothing is written
 */
import { assert } from "../domain/assert";
import { failure } from "../domain/failure";
import { type Actor, spendingRefusal } from "../domain/roles";
import type { BalanceSummary, Entry, Outcome, Spend, Team } from "../domain/vocabulary";
import { type LedgerTx, newId } from "./ledger-tx";
import type { PaymentKind, PaymentStore, StoredPayment } from "./payment-store";
import { capCheck } from "./pools";
import { spend } from "./spends";
import { iso } from "./time";

/** What the price book says of a service (the worker's copy of it; see routes/payments.ts). */
export type ServiceStanding = "eligible" | "not_eligible" | "unknown";

/** A payment or a question about one, as the worker sends it. */
export interface PaymentQuestion {
  kind: PaymentKind;
  amount: number;
  /** The service's feature key (kind `service` only). */
  serviceId: string | null;
  /** The price book's word on the service; null for an invoice. */
  service: ServiceStanding | null;
  /** The invoice's reference, when known: a paid invoice cannot be paid again. */
  reference: string | null;
  actor: Actor | undefined;
  /** Set by a subaccount's object: its agency's pool is shared with it now (a manager may pay then). */
  poolShared?: boolean | undefined;
}

export interface PaymentInput extends PaymentQuestion {
  reference: string;
  /** The member team a pooled payment is made for (client/ledger-client.ts resolveTeam). */
  memberTeamId: string | undefined;
}

export const PAYMENT_REASON_CODES = [
  "role",
  "sharing_off",
  "credit_payments_disabled",
  "service_not_eligible",
  "invoice_already_paid",
  "insufficient_credits",
  "invoice_exceeds_balance",
] as const;
export type PaymentReasonCode = (typeof PAYMENT_REASON_CODES)[number];

export interface PaymentReason {
  code: PaymentReasonCode;
  message: string;
}

export interface PaymentOptions {
  available: boolean;
  reasons: PaymentReason[];
  amount: number;
  availableCredits: number;
}

export interface Payment {
  id: string;
  kind: PaymentKind;
  reference: string;
  serviceId?: string;
  amount: number;
  spendId: string;
  actor?: string;
  createdAt: string;
}

export interface PaymentReply {
  payment: Payment;
  spend: Spend;
  entries: Entry[];
  balance: BalanceSummary;
}

/**
 * Every reason the payment cannot be made now, in a fixed order; empty when it can. For an
 * invoice larger than the balance both `insufficient_credits` and `invoice_exceeds_balance` apply
 * (the portal names both); a service only has the first. Pure.
 */
export function paymentReasons(
  team: Pick<Team, "kind" | "settings">,
  availableCredits: number,
  paid: Pick<StoredPayment, "id"> | null,
  q: PaymentQuestion,
): PaymentReason[] {
  const reasons: PaymentReason[] = [];
  const actorRefusal = spendingRefusal(team, q.actor, q.poolShared ?? false);
  if (actorRefusal) {
    const code = actorRefusal.extras?.reason === "sharing_off" ? "sharing_off" : "role";
    reasons.push({ code, message: sentence(actorRefusal.detail) });
  }
  if (!team.settings.creditPaymentsEnabled)
    reasons.push({ code: "credit_payments_disabled", message: "Credit payments are disabled for this team." });
  if (q.kind === "service" && q.service !== "eligible")
    reasons.push({
      code: "service_not_eligible",
      message:
        q.service === "unknown"
          ? `The service ${q.serviceId} is not in the price book, so it cannot be paid with credits.`
          : `The service ${q.serviceId} is not eligible for credit payments.`,
    });
  if (paid)
    reasons.push({
      code: "invoice_already_paid",
      message: `The invoice ${q.reference} was already paid with credits (${paid.id}).`,
    });
  if (q.amount > availableCredits) {
    reasons.push({
      code: "insufficient_credits",
      message: `Not enough credits: ${q.amount} required, ${availableCredits} available.`,
    });
    if (q.kind === "invoice")
      reasons.push({
        code: "invoice_exceeds_balance",
        message: `The invoice amount (${q.amount} credits) exceeds the available balance (${availableCredits} credits).`,
      });
  }
  return reasons;
}

/** What GET …/payment-options answers: whether the payment can be made, and every reason if not. */
export function paymentOptions(tx: LedgerTx, payments: PaymentStore, q: PaymentQuestion): PaymentOptions {
  const paid = q.kind === "invoice" && q.reference !== null ? payments.invoicePayment(q.reference) : null;
  // What this payment's spend could draw: credits restricted to another feature do not pay it.
  const availableCredits = tx.availableFor(q.kind === "invoice" ? "invoice" : q.serviceId);
  const reasons = paymentReasons(tx.team, availableCredits, paid, q);
  return { available: reasons.length === 0, reasons, amount: q.amount, availableCredits };
}

/** Pays an invoice or a service with credits: the spend and the payment's row, or a refusal. */
export function payWithCredits(tx: LedgerTx, payments: PaymentStore, input: PaymentInput): Outcome<PaymentReply> {
  const actorRefusal = spendingRefusal(tx.team, input.actor, input.poolShared ?? false);
  if (actorRefusal) return actorRefusal;
  if (!tx.team.settings.creditPaymentsEnabled)
    return failure("forbidden", "credit payments are disabled for this team", {
      reason: "credit_payments_disabled",
    });
  if (input.kind === "service" && input.service !== "eligible")
    return failure("forbidden", `the service ${input.serviceId} is not eligible for credit payments`, {
      reason: "service_not_eligible",
      serviceId: input.serviceId,
    });
  if (input.kind === "invoice") {
    const paid = payments.invoicePayment(input.reference);
    if (paid)
      return failure("conflict", `the invoice ${input.reference} was already paid with credits`, {
        paymentId: paid.id,
      });
  }
  const feature = input.kind === "invoice" ? "invoice" : input.serviceId;
  assert(feature !== null, "a service payment names its service");
  const charge = {
    feature,
    quantity: 1,
    amount: input.amount,
    reference: input.reference,
    actor: input.actor?.id,
    memberTeamId: input.memberTeamId,
  };
  // Paying is using credits: the caps that limit a spend limit it too (object/pools.ts).
  const capped = capCheck(tx, charge, input.amount);
  if (capped) return capped;
  const spent = spend(tx, charge);
  if (!spent.ok) return spent;
  const row: StoredPayment = {
    id: newId("pay"),
    kind: input.kind,
    reference: input.reference,
    serviceId: input.kind === "service" ? input.serviceId : null,
    amountCredits: input.amount,
    spendId: spent.body.spend.id,
    actor: input.actor?.id ?? null,
    createdAtMs: tx.nowMs,
  };
  payments.insert(row);
  return { ok: true, status: 201, body: { payment: publicPayment(row), ...spent.body } };
}

/** A refusal's detail as a sentence for a person: capitalised, with a full stop. */
function sentence(detail: string): string {
  return `${detail.charAt(0).toUpperCase()}${detail.slice(1)}.`;
}

function publicPayment(p: StoredPayment): Payment {
  const out: Payment = {
    id: p.id,
    kind: p.kind,
    reference: p.reference,
    amount: p.amountCredits,
    spendId: p.spendId,
    createdAt: iso(p.createdAtMs),
  };
  if (p.serviceId !== null) out.serviceId = p.serviceId;
  if (p.actor !== null) out.actor = p.actor;
  return out;
}
