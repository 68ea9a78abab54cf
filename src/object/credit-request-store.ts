/**
 * The team object's credit_requests table (schema.ts v5): one row per request for credits paid
 * outside Stripe (bank transfer, crypto, other), pending until an owner or admin decides it. The
 * decision is one conditional UPDATE (`WHERE status = 'pending'`), so a request is decided once
 * even if a caller forgot to look first. No rule of money lives here (credit-requests.ts).
 */

export const CREDIT_REQUEST_METHODS = ["bank_transfer", "crypto", "other"] as const;
export type CreditRequestMethod = (typeof CREDIT_REQUEST_METHODS)[number];

export const CREDIT_REQUEST_STATUSES = ["pending", "accepted", "rejected"] as const;
export type CreditRequestStatus = (typeof CREDIT_REQUEST_STATUSES)[number];

export interface StoredCreditRequest {
  seq: number;
  id: string;
  status: CreditRequestStatus;
  credits: number;
  priceMinor: number | null;
  currency: string | null;
  packId: string | null;
  method: CreditRequestMethod;
  reference: string | null;
  requestedBy: string | null;
  decidedBy: string | null;
  reason: string | null;
  grantId: string | null;
  createdAtMs: number;
  decidedAtMs: number | null;
}

type Row = {
  seq: number;
  id: string;
  status: string;
  credits: number;
  price_minor: number | null;
  currency: string | null;
  pack_id: string | null;
  method: string;
  reference: string | null;
  requested_by: string | null;
  decided_by: string | null;
  reason: string | null;
  grant_id: string | null;
  created_at_ms: number;
  decided_at_ms: number | null;
};

function fromRow(r: Row): StoredCreditRequest {
  return {
    seq: r.seq,
    id: r.id,
    status: r.status as CreditRequestStatus,
    credits: r.credits,
    priceMinor: r.price_minor,
    currency: r.currency,
    packId: r.pack_id,
    method: r.method as CreditRequestMethod,
    reference: r.reference,
    requestedBy: r.requested_by,
    decidedBy: r.decided_by,
    reason: r.reason,
    grantId: r.grant_id,
    createdAtMs: r.created_at_ms,
    decidedAtMs: r.decided_at_ms,
  };
}

export class CreditRequestStore {
  constructor(private readonly sql: SqlStorage) {}

  insert(r: Omit<StoredCreditRequest, "seq" | "status" | "decidedBy" | "reason" | "grantId" | "decidedAtMs">): void {
    this.sql.exec(
      `INSERT INTO credit_requests (id, status, credits, price_minor, currency, pack_id, method, reference,
         requested_by, created_at_ms)
       VALUES (?, 'pending', ?, ?, ?, ?, ?, ?, ?, ?)`,
      r.id,
      r.credits,
      r.priceMinor,
      r.currency,
      r.packId,
      r.method,
      r.reference,
      r.requestedBy,
      r.createdAtMs,
    );
  }

  get(id: string): StoredCreditRequest | null {
    const row = this.sql.exec<Row>("SELECT * FROM credit_requests WHERE id = ?", id).toArray()[0];
    return row ? fromRow(row) : null;
  }

  /** Decides a pending request; false when it was not pending (nothing written). */
  decide(
    id: string,
    d: {
      status: "accepted" | "rejected";
      decidedBy: string | null;
      reason: string | null;
      grantId: string | null;
      decidedAtMs: number;
    },
  ): boolean {
    // RETURNING, not rowsWritten: that counts the index rows the update rewrote too.
    const updated = this.sql.exec(
      `UPDATE credit_requests SET status = ?, decided_by = ?, reason = ?, grant_id = ?, decided_at_ms = ?
       WHERE id = ? AND status = 'pending' RETURNING id`,
      d.status,
      d.decidedBy,
      d.reason,
      d.grantId,
      d.decidedAtMs,
      id,
    );
    return updated.toArray().length === 1;
  }

  /** Requests before `beforeSeq`, newest first, with `status` when given; at most `limit`. */
  list(q: { status: CreditRequestStatus | undefined; beforeSeq: number; limit: number }): StoredCreditRequest[] {
    const rows =
      q.status === undefined
        ? this.sql.exec<Row>(
            "SELECT * FROM credit_requests WHERE seq < ? ORDER BY seq DESC LIMIT ?",
            q.beforeSeq,
            q.limit,
          )
        : this.sql.exec<Row>(
            "SELECT * FROM credit_requests WHERE status = ? AND seq < ? ORDER BY seq DESC LIMIT ?",
            q.status,
            q.beforeSeq,
            q.limit,
          );
    return rows.toArray().map(fromRow);
  }
}
