/**
 * The team object's recharges table (schema v5): one row per auto-recharge payment it decided to
 * start; a partial unique index allows only one pending or started at a time. Typed reads and
 * writes only; the rules are in auto-recharge.ts.
 */

export type RechargeStatus = "pending" | "started" | "succeeded" | "failed" | "canceled";

export type RechargeRow = {
  id: string;
  status: RechargeStatus;
  month: string;
  credits: number;
  price_minor: number;
  currency: string;
  pack_id: string;
  payment_intent_id: string | null;
  attempts: number;
  next_attempt_at_ms: number;
  error: string | null;
  created_at_ms: number;
  finished_at_ms: number | null;
};

export class RechargeStore {
  constructor(private readonly sql: SqlStorage) {}

  get(id: string): RechargeRow | null {
    return this.sql.exec<RechargeRow>("SELECT * FROM recharges WHERE id = ?", id).toArray()[0] ?? null;
  }

  /** The recharge in flight (pending or started), if any. */
  inFlight(): RechargeRow | null {
    return (
      this.sql
        .exec<RechargeRow>("SELECT * FROM recharges WHERE status IN ('pending', 'started') LIMIT 1")
        .toArray()[0] ?? null
    );
  }

  /** Recharges started (or about to be) in a month, whatever became of them; canceled ones never left. */
  countInMonth(month: string): number {
    return this.sql
      .exec<{ n: number }>("SELECT COUNT(*) AS n FROM recharges WHERE month = ? AND status <> 'canceled'", month)
      .one().n;
  }

  /** When the pending recharge should be attempted, if one is. */
  nextAttemptMs(): number | null {
    const row = this.sql
      .exec<{ t: number | null }>("SELECT MIN(next_attempt_at_ms) AS t FROM recharges WHERE status = 'pending'")
      .one();
    return row.t;
  }

  list(limit: number): RechargeRow[] {
    return this.sql.exec<RechargeRow>("SELECT * FROM recharges ORDER BY created_at_ms DESC LIMIT ?", limit).toArray();
  }

  insert(r: RechargeRow): void {
    this.sql.exec(
      `INSERT INTO recharges (id, status, month, credits, price_minor, currency, pack_id, payment_intent_id, attempts,
         next_attempt_at_ms, error, created_at_ms, finished_at_ms)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
      r.id,
      r.status,
      r.month,
      r.credits,
      r.price_minor,
      r.currency,
      r.pack_id,
      r.payment_intent_id,
      r.attempts,
      r.next_attempt_at_ms,
      r.error,
      r.created_at_ms,
      r.finished_at_ms,
    );
  }

  /** Moves a recharge on; `from` guards the move (only a recharge still in that state moves). */
  move(
    id: string,
    from: readonly RechargeStatus[],
    to: {
      status: RechargeStatus;
      paymentIntentId?: string | null;
      error?: string | null;
      finishedAtMs?: number | null;
    },
  ): boolean {
    const placeholders = from.map(() => "?").join(", ");
    const cursor = this.sql.exec(
      `UPDATE recharges SET status = ?, payment_intent_id = COALESCE(?, payment_intent_id), error = COALESCE(?, error),
         finished_at_ms = COALESCE(?, finished_at_ms)
       WHERE id = ? AND status IN (${placeholders})`,
      to.status,
      to.paymentIntentId ?? null,
      to.error ?? null,
      to.finishedAtMs ?? null,
      id,
      ...from,
    );
    cursor.toArray();
    return cursor.rowsWritten > 0;
  }

  /**
   * Takes the pending recharge for one attempt, until `untilMs`: an alarm that overlaps this one
   * finds it taken and leaves it alone. False when it is not pending and due any more.
   */
  lease(id: string, nowMs: number, untilMs: number): boolean {
    const cursor = this.sql.exec(
      "UPDATE recharges SET next_attempt_at_ms = ? WHERE id = ? AND status = 'pending' AND next_attempt_at_ms <= ?",
      untilMs,
      id,
      nowMs,
    );
    cursor.toArray();
    return cursor.rowsWritten > 0;
  }

  /** A fault to try again later (a network error, Stripe unavailable): not a failed payment. */
  retryLater(id: string, nextAttemptAtMs: number, error: string): void {
    this.sql.exec(
      "UPDATE recharges SET attempts = attempts + 1, next_attempt_at_ms = ?, error = ? WHERE id = ? AND status = 'pending'",
      nextAttemptAtMs,
      error,
      id,
    );
  }
}
