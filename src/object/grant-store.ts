/**
 * The team object's grants table: typed reads and writes, no rule of money (the rules live in
 * domain/; the operations in grants.ts, spends.ts, holds.ts and settlement.ts decide what to
 * write). Every call is synchronous, so it runs inside the object's one transaction.
 */
import type { DrawableGrant } from "../domain/draw";
import { DRAWABLE_BY_SQL, SPEND_ORDER_SQL } from "../domain/spending-order";
import { CATEGORY_RANK, type Category, type Grant, type GrantSource, type GrantStatus } from "../domain/vocabulary";
import { iso } from "./time";

type GrantRow = {
  seq: number;
  id: string;
  amount: number;
  remaining: number;
  held: number;
  category: string;
  source: string;
  priority: number;
  expires_at: number | null;
  status: string;
  reference: string | null;
  created_at: number;
  restricted_feature: string | null;
};

export interface StoredGrant extends Grant {
  seq: number;
  expiresAtMs: number | null;
  /** `restrictedToFeature` under the spending order's name (domain/spending-order.ts). */
  restrictedFeature: string | null;
}

export interface NewGrant {
  id: string;
  amount: number;
  category: Category;
  source: GrantSource;
  priority: number;
  expiresAtMs: number | null;
  reference: string | null;
  createdAtMs: number;
  /** The monthly period an allocation grant belongs to (plans.ts); null for every other grant. */
  period?: number | null | undefined;
  /** The one feature its credits may be spent on (domain/spending-order.ts); null: any. */
  restrictedFeature?: string | null | undefined;
}

function grantFromRow(r: GrantRow): StoredGrant {
  return {
    id: r.id,
    seq: r.seq,
    amount: r.amount,
    remaining: r.remaining + r.held,
    held: r.held,
    category: r.category as Category,
    source: r.source as GrantSource,
    priority: r.priority,
    status: r.status as GrantStatus,
    expiresAt: r.expires_at === null ? null : iso(r.expires_at),
    expiresAtMs: r.expires_at,
    reference: r.reference,
    restrictedToFeature: r.restricted_feature,
    restrictedFeature: r.restricted_feature,
    createdAt: iso(r.created_at),
  };
}

/** A grant as the API shows it (without the object's own bookkeeping). */
export function publicGrant(g: StoredGrant): Grant {
  const { seq: _seq, expiresAtMs: _ms, restrictedFeature: _rf, ...rest } = g;
  return rest;
}

export class GrantStore {
  constructor(private readonly sql: SqlStorage) {}

  /**
   * Live grants with spendable credits, in spending order, read lazily row by row: every one
   * (`feature` omitted; a batch or an estimate then picks per item with mayDraw), or only those a
   * charge for `feature` may draw (null: a charge without a feature), filtered in SQL so a spend
   * reads no row it cannot use.
   */
  *drawable(nowMs: number, feature?: string | null): Generator<DrawableGrant> {
    const cursor =
      feature === undefined
        ? this.sql.exec<GrantRow>(
            `SELECT seq, id, remaining, category, priority, expires_at, restricted_feature FROM grants
             WHERE status = 'active' AND remaining > 0 AND (expires_at IS NULL OR expires_at > ?)
             ORDER BY ${SPEND_ORDER_SQL}`,
            nowMs,
          )
        : this.sql.exec<GrantRow>(
            `SELECT seq, id, remaining, category, priority, expires_at, restricted_feature FROM grants
             WHERE status = 'active' AND remaining > 0 AND (expires_at IS NULL OR expires_at > ?) AND ${DRAWABLE_BY_SQL}
             ORDER BY ${SPEND_ORDER_SQL}`,
            nowMs,
            feature,
          );
    for (const r of cursor) {
      yield {
        id: r.id,
        seq: r.seq,
        category: r.category as Category,
        restrictedFeature: r.restricted_feature,
        priority: r.priority,
        expiresAtMs: r.expires_at,
        remaining: r.remaining,
      };
    }
  }

  /** Available (spendable, unreserved) credits of live restricted grants, per feature. */
  availableByFeature(nowMs: number): Record<string, number> {
    const rows = this.sql
      .exec<{ feature: string; available: number }>(
        `SELECT restricted_feature AS feature, SUM(remaining) AS available FROM grants
         WHERE status = 'active' AND remaining > 0 AND (expires_at IS NULL OR expires_at > ?)
           AND restricted_feature IS NOT NULL
         GROUP BY restricted_feature ORDER BY restricted_feature`,
        nowMs,
      )
      .toArray();
    return Object.fromEntries(rows.map((r) => [r.feature, r.available]));
  }

  get(id: string): StoredGrant | null {
    const row = this.sql.exec<GrantRow>("SELECT * FROM grants WHERE id = ?", id).toArray()[0];
    return row ? grantFromRow(row) : null;
  }

  /** Grants still worth showing: live, or holding credits for a pending hold (at most 1,000). */
  listLive(): StoredGrant[] {
    return this.sql
      .exec<GrantRow>(`SELECT * FROM grants WHERE status = 'active' OR held > 0 ORDER BY ${SPEND_ORDER_SQL} LIMIT 1000`)
      .toArray()
      .map(grantFromRow);
  }

  insert(g: NewGrant): void {
    this.sql.exec(
      `INSERT INTO grants (id, amount, remaining, held, category, category_rank, source, priority, expires_at, status, reference, created_at, period, restricted_feature)
       VALUES (?, ?, ?, 0, ?, ?, ?, ?, ?, 'active', ?, ?, ?, ?)`,
      g.id,
      g.amount,
      g.amount,
      g.category,
      CATEGORY_RANK[g.category],
      g.source,
      g.priority,
      g.expiresAtMs,
      g.reference,
      g.createdAtMs,
      g.period ?? null,
      g.restrictedFeature ?? null,
    );
  }

  /** Moves credits of a grant: `remaining` is what is spendable, `held` what holds reserved. */
  adjust(id: string, delta: { remaining: number; held: number }): void {
    this.sql.exec(
      `UPDATE grants SET remaining = remaining + ?, held = held + ?,
         status = CASE WHEN status IN ('active', 'depleted')
                       THEN CASE WHEN remaining + ? = 0 AND held + ? = 0 THEN 'depleted' ELSE 'active' END
                       ELSE status END
       WHERE id = ?`,
      delta.remaining,
      delta.held,
      delta.remaining,
      delta.held,
      id,
    );
  }

  /** Ends a grant: what remains unreserved is gone; reserved credits stay with their holds. */
  end(id: string, status: "expired" | "voided"): void {
    this.sql.exec("UPDATE grants SET remaining = 0, status = ? WHERE id = ?", status, id);
  }

  /** Live grants whose expiry has passed, oldest expiry first, at most `limit`. */
  due(nowMs: number, limit: number): StoredGrant[] {
    return this.sql
      .exec<GrantRow>(
        `SELECT * FROM grants WHERE status = 'active' AND expires_at IS NOT NULL AND expires_at <= ?
         ORDER BY expires_at, seq LIMIT ?`,
        nowMs,
        limit,
      )
      .toArray()
      .map(grantFromRow);
  }

  /** The live grants of a monthly period (its allocation and what rolled into it). */
  ofPeriod(period: number): StoredGrant[] {
    return this.sql
      .exec<GrantRow>("SELECT * FROM grants WHERE period = ? AND status = 'active' ORDER BY seq", period)
      .toArray()
      .map(grantFromRow);
  }

  /** Credits the team holds in all its grants: spendable and reserved. */
  totalGranted(): number {
    const row = this.sql.exec<{ total: number | null }>("SELECT SUM(remaining + held) AS total FROM grants").one();
    return row.total ?? 0;
  }
}
