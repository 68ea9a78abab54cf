/**
 * The spending order, once: free before promotional before paid; then lower priority first; then
 * the soonest expiry (never-expiring last); then the oldest grant. The list of keys below is the
 * rule. The team object's SQL orders by SPEND_ORDER_SQL, built from it, and uses the index built
 * from the same columns; compareSpendOrder applies the same keys in memory.
 * test/ledger/spend-order.test.ts checks that SQLite's order is the pure order for random grants.
 */
import { CATEGORY_RANK, type Category } from "./vocabulary";

/** What the order needs to know about a grant. */
export interface OrderedGrant {
  category: Category;
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
