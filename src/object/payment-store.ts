/**
 * The team object's payments table (schema.ts v5): one row per invoice or service paid with
 * credits, written in the same transaction as the spend that drew them. The partial unique index
 * on an invoice's reference is the backstop of "an invoice is paid at most once"; payments.ts
 * looks first so the second payment is a 409, not a constraint error.
 */

export const PAYMENT_KINDS = ["invoice", "service"] as const;
export type PaymentKind = (typeof PAYMENT_KINDS)[number];

export interface StoredPayment {
  id: string;
  kind: PaymentKind;
  reference: string;
  serviceId: string | null;
  amountCredits: number;
  spendId: string;
  actor: string | null;
  createdAtMs: number;
}

type Row = {
  id: string;
  kind: string;
  reference: string;
  service_id: string | null;
  amount_credits: number;
  spend_id: string;
  actor: string | null;
  created_at_ms: number;
};

function fromRow(r: Row): StoredPayment {
  return {
    id: r.id,
    kind: r.kind as PaymentKind,
    reference: r.reference,
    serviceId: r.service_id,
    amountCredits: r.amount_credits,
    spendId: r.spend_id,
    actor: r.actor,
    createdAtMs: r.created_at_ms,
  };
}

export class PaymentStore {
  constructor(private readonly sql: SqlStorage) {}

  insert(p: StoredPayment): void {
    this.sql.exec(
      `INSERT INTO payments (id, kind, reference, service_id, amount_credits, spend_id, actor, created_at_ms)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
      p.id,
      p.kind,
      p.reference,
      p.serviceId,
      p.amountCredits,
      p.spendId,
      p.actor,
      p.createdAtMs,
    );
  }

  /** The payment of the invoice with this reference, if it was paid. */
  invoicePayment(reference: string): StoredPayment | null {
    const row = this.sql
      .exec<Row>("SELECT * FROM payments WHERE kind = 'invoice' AND reference = ?", reference)
      .toArray()[0];
    return row ? fromRow(row) : null;
  }
}
