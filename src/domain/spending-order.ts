/**
 * The spending order, once: free before promotional before paid; then, within a category, credits
 * restricted to the charge's feature before unrestricted ones (they are the narrower credits);
 * then lower priority first; then the soonest expiry (never-expiring last); then the oldest grant.
 * The list of keys below is the rule. The team object's SQL orders by SPEND_ORDER_SQL, built from
 * it, and uses the index built from the same columns; compareSpendOrder applies the same keys in
 * memory.
 *
 * Who may draw a grant, also once: a grant restricted to a feature (`restrictedFeature`, the
 * lemlist plan's calling credits) is drawn only by a charge whose `feature` is that feature (a
 * priced charge or a plain `amount` labelled with it alike: the label is the feature); an
 * unrestricted grant by any charge. A charge for F therefore never sees credits restricted to
 * another feature, and a charge without a feature (a hold may have none) sees only unrestricted
 * ones. DRAWABLE_BY_SQL and mayDraw state it for SQLite and for memory.
 * test/ledger/spend-order.test.ts checks that SQLite's order and filter are the pure ones for
 * random grants.
 */
import { CATEGORY_RANK, type Category } from "./vocabulary";

/** What the order needs to know about a grant. */
export interface OrderedGrant {
  category: Category;
  /** The one feature this grant's credits may be spent on; null: any feature. */
  restrictedFeature: string | null;
  priority: number;
  expiresAtMs: number | null;
  /** Creation order within the team (the object's grants.seq). */
  seq: number;
}

interface OrderKey {
  /** The SQL expression over the object's `grants` table. */
  sql: string;
  /** The same key in memory; ascending. */
  of: (g: OrderedGrant) => number;
}

const SPEND_ORDER: readonly OrderKey[] = [
  { sql: "category_rank", of: (g) => CATEGORY_RANK[g.category] },
  // Restricted before unrestricted within a category. Among the grants a charge may draw, every
  // restricted one is restricted to the charge's own feature, so this is "F's credits first".
  { sql: "restricted_feature IS NULL", of: (g) => (g.restrictedFeature === null ? 1 : 0) },
  { sql: "priority", of: (g) => g.priority },
  // Never-expiring grants last: SQLite sorts NULL first, so order by "is NULL" before the time.
  { sql: "expires_at IS NULL", of: (g) => (g.expiresAtMs === null ? 1 : 0) },
  { sql: "expires_at", of: (g) => g.expiresAtMs ?? 0 },
  { sql: "seq", of: (g) => g.seq },
];

/** `ORDER BY` list for the object's grants table, ascending, in spending order. */
export const SPEND_ORDER_SQL = SPEND_ORDER.map((k) => k.sql).join(", ");

/** Negative when `a` is spent before `b`. */
export function compareSpendOrder(a: OrderedGrant, b: OrderedGrant): number {
  for (const key of SPEND_ORDER) {
    const d = key.of(a) - key.of(b);
    if (d !== 0) return d;
  }
  return 0;
}

/**
 * The condition on the object's `grants` table for "a charge for the bound feature may draw this
 * grant"; it takes one parameter, the charge's feature (NULL for a charge without one, which then
 * matches only unrestricted grants: `restricted_feature = NULL` is never true).
 */
export const DRAWABLE_BY_SQL = "(restricted_feature IS NULL OR restricted_feature = ?)";

/** Whether a charge for `feature` may draw `g` (the same rule as DRAWABLE_BY_SQL). */
export function mayDraw(g: Pick<OrderedGrant, "restrictedFeature">, feature: string | null | undefined): boolean {
  return g.restrictedFeature === null || g.restrictedFeature === (feature ?? null);
}
