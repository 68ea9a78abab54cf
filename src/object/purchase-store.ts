/**
 * The team object's purchases and their adjustments (schema v5): one row per Checkout Session or
 * auto-recharge PaymentIntent, and one row per refund or dispute step, keyed by Stripe's own ids.
 * Those keys are what makes a top-up credited once and a refund clawed back once, whatever Stripe
 * redelivers. Typed reads and writes only; the rules are in purchases.ts.
 */

export type PurchaseKind = "checkout" | "auto_recharge";
export type PurchaseStatus = "awaiting_payment" | "credited" | "failed";
export type AdjustmentKind = "refund" | "dispute_withdrawn" | "dispute_reinstated";

export type PurchaseRow = {
  id: string;
  payment_intent_id: string | null;
  kind: PurchaseKind;
  status: PurchaseStatus;
  credits: number;
  amount_minor: number;
  currency: string;
  pack_id: string | null;
  customer_id: string | null;
  grant_id: string | null;
  refunded_minor: number;
  clawed_credits: number;
  shortfall_credits: number;
  created_at_ms: number;
  credited_at_ms: number | null;
};

export type AdjustmentRow = {
  id: string;
  payment_intent_id: string;
  kind: AdjustmentKind;
  amount_minor: number;
  credits: number;
  shortfall_credits: number;
  status: "applied" | "waiting";
  created_at_ms: number;
};

export class PurchaseStore {
  constructor(private readonly sql: SqlStorage) {}

  get(id: string): PurchaseRow | null {
    return this.sql.exec<PurchaseRow>("SELECT * FROM purchases WHERE id = ?", id).toArray()[0] ?? null;
  }

  byPaymentIntent(paymentIntentId: string): PurchaseRow | null {
    return (
      this.sql.exec<PurchaseRow>("SELECT * FROM purchases WHERE payment_intent_id = ?", paymentIntentId).toArray()[0] ??
      null
    );
  }

  /** Newest first, before `beforeMs` (a cursor), at most `limit`. */
  list(limit: number, beforeCreatedMs: number): PurchaseRow[] {
    return this.sql
      .exec<PurchaseRow>(
        "SELECT * FROM purchases WHERE created_at_ms < ? ORDER BY created_at_ms DESC, id DESC LIMIT ?",
        beforeCreatedMs,
        limit,
      )
      .toArray();
  }

  insert(p: PurchaseRow): void {
    this.sql.exec(
      `INSERT INTO purchases (id, payment_intent_id, kind, status, credits, amount_minor, currency, pack_id, customer_id,
         grant_id, refunded_minor, clawed_credits, shortfall_credits, created_at_ms, credited_at_ms)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
      p.id,
      p.payment_intent_id,
      p.kind,
      p.status,
      p.credits,
      p.amount_minor,
      p.currency,
      p.pack_id,
      p.customer_id,
      p.grant_id,
      p.refunded_minor,
      p.clawed_credits,
      p.shortfall_credits,
      p.created_at_ms,
      p.credited_at_ms,
    );
  }

  /** Marks a purchase credited with its grant; fills the payment intent and customer if now known. */
  credited(
    id: string,
    grantId: string,
    paymentIntentId: string | null,
    customerId: string | null,
    nowMs: number,
  ): void {
    this.sql.exec(
      `UPDATE purchases SET status = 'credited', grant_id = ?, credited_at_ms = ?,
         payment_intent_id = COALESCE(payment_intent_id, ?), customer_id = COALESCE(customer_id, ?)
       WHERE id = ?`,
      grantId,
      nowMs,
      paymentIntentId,
      customerId,
      id,
    );
  }

  setStatus(id: string, status: PurchaseStatus): void {
    this.sql.exec("UPDATE purchases SET status = ? WHERE id = ?", status, id);
  }

  /** Moves a purchase's refund counters (money refunded, credits taken back, credits short). */
  moveRefunded(id: string, delta: { refundedMinor: number; clawedCredits: number; shortfallCredits: number }): void {
    this.sql.exec(
      `UPDATE purchases SET refunded_minor = refunded_minor + ?, clawed_credits = clawed_credits + ?,
         shortfall_credits = shortfall_credits + ? WHERE id = ?`,
      delta.refundedMinor,
      delta.clawedCredits,
      delta.shortfallCredits,
      id,
    );
  }

  adjustment(id: string): AdjustmentRow | null {
    return this.sql.exec<AdjustmentRow>("SELECT * FROM purchase_adjustments WHERE id = ?", id).toArray()[0] ?? null;
  }

  /** Adjustments that arrived before their purchase was credited, oldest first. */
  waiting(paymentIntentId: string): AdjustmentRow[] {
    return this.sql
      .exec<AdjustmentRow>(
        "SELECT * FROM purchase_adjustments WHERE payment_intent_id = ? AND status = 'waiting' ORDER BY created_at_ms, id",
        paymentIntentId,
      )
      .toArray();
  }

  putAdjustment(a: AdjustmentRow): void {
    this.sql.exec(
      `INSERT INTO purchase_adjustments (id, payment_intent_id, kind, amount_minor, credits, shortfall_credits, status,
         created_at_ms)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?)
       ON CONFLICT (id) DO UPDATE SET amount_minor = excluded.amount_minor, credits = excluded.credits,
         shortfall_credits = excluded.shortfall_credits, status = excluded.status`,
      a.id,
      a.payment_intent_id,
      a.kind,
      a.amount_minor,
      a.credits,
      a.shortfall_credits,
      a.status,
      a.created_at_ms,
    );
  }
}
