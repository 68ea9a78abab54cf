/**
 * The team object's periods table: one row per monthly period the team was on a plan for, written
 * when the period opens. The primary key (the period's index) is what makes a period's allocation
 * exactly once: a late, repeated or concurrent alarm finds the row and grants nothing.
 */

export type PeriodRow = {
  idx: number;
  starts_at: number;
  ends_at: number;
  plan_id: string | null;
  seats: number;
  granted_credits: number;
  opened_at: number;
};

export class PeriodStore {
  constructor(private readonly sql: SqlStorage) {}

  last(): PeriodRow | null {
    return this.sql.exec<PeriodRow>("SELECT * FROM periods ORDER BY idx DESC LIMIT 1").toArray()[0] ?? null;
  }

  get(idx: number): PeriodRow | null {
    return this.sql.exec<PeriodRow>("SELECT * FROM periods WHERE idx = ?", idx).toArray()[0] ?? null;
  }

  open(row: PeriodRow): void {
    this.sql.exec(
      "INSERT INTO periods (idx, starts_at, ends_at, plan_id, seats, granted_credits, opened_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
      row.idx,
      row.starts_at,
      row.ends_at,
      row.plan_id,
      row.seats,
      row.granted_credits,
      row.opened_at,
    );
  }

  /** A change within the period (seats added, a plan change): who it is for now and what was granted. */
  update(idx: number, change: { planId: string | null; seats: number; addedCredits: number }): void {
    this.sql.exec(
      "UPDATE periods SET plan_id = ?, seats = ?, granted_credits = granted_credits + ? WHERE idx = ?",
      change.planId,
      change.seats,
      change.addedCredits,
      idx,
    );
  }
}
