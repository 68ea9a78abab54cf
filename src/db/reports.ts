/**
 * Reports over the D1 replica: usage by feature or by a dimension, hold outcomes, and the sums
 * reconciliation compares with the team object. Each query reads one team's rows through an
 * index that starts with team_id (see schema.ts), and a time window through
 * (team_id, type, created_at_ms): its cost follows the rows in the window, not the team's history.
 */
import { and, eq, gte, inArray, lt, lte, type SQL, sql } from "drizzle-orm";
import { drizzle } from "drizzle-orm/d1";
import type { EntrySums } from "../ledger/types";
import { ledgerEntries } from "./schema";

/** What to group usage by: the entry's feature, or one key of its `dimensions` object. */
export type UsageGroupBy = { kind: "feature" } | { kind: "dimension"; key: string };

export interface UsageWindow {
  teamId: string;
  groupBy: UsageGroupBy;
  fromMs?: number | undefined;
  toMs?: number | undefined;
  /** At most this many groups, largest first. */
  limit: number;
}

const t = ledgerEntries;

/** The group key of an entry (of alias `alias`): its feature or a dimension's value (a JSON path). */
function keyOf(groupBy: UsageGroupBy, dimensions: SQL, feature: SQL): SQL {
  // The key is bound, never spliced: `$."key"` reads a key containing dots as one key.
  return groupBy.kind === "feature" ? feature : sql`json_extract(${dimensions}, ${`$."${groupBy.key}"`})`;
}

function windowOf(w: UsageWindow): SQL[] {
  const out: SQL[] = [];
  if (w.fromMs !== undefined) out.push(gte(t.createdAtMs, w.fromMs));
  if (w.toMs !== undefined) out.push(lt(t.createdAtMs, w.toMs));
  return out;
}

/**
 * Credits consumed per key in the window: spend entries plus capture entries (a hold's captured
 * part is spent). `count` is the number of charges, not entries: one spend drawing from three
 * grants writes three entries but is one spend (distinct spend id), and a captured hold is one
 * charge (distinct hold id).
 */
export function usageQuery(d1: D1Database, w: UsageWindow) {
  const key = keyOf(w.groupBy, sql`${t.dimensions}`, sql`${t.feature}`);
  return drizzle(d1)
    .select({
      key: sql<string | null>`${key}`.as("grp"),
      credits: sql<number>`sum(${t.amountCredits})`.as("credits"),
      count: sql<number>`count(DISTINCT coalesce(${t.spendId}, ${t.holdId}))`.as("charges"),
    })
    .from(t)
    .where(and(eq(t.teamId, w.teamId), inArray(t.type, ["spend", "capture"]), ...windowOf(w)))
    .groupBy(sql`grp`)
    .orderBy(sql`credits DESC`, sql`grp`)
    .limit(w.limit);
}

export interface HoldOutcomeRow {
  key: string | null;
  capturedCount: number;
  capturedCredits: number;
  releasedCount: number;
  releasedCredits: number;
  expiredCount: number;
  expiredCredits: number;
}

/**
 * Holds resolved in the window, per key: a hold is `captured` when any of it was captured (the
 * uncaptured rest, returned by release entries, still counts in releasedCredits), else `released`
 * or `expired` by how its credits came back. Release and expire entries do not carry the hold's
 * feature or dimensions, so each hold's key is read from its own `hold` entry, found through the
 * (team_id, hold_id) index. The window is read through (team_id, type, created_at_ms), named with
 * INDEXED BY: left alone, the planner prefers walking every hold entry of the team in hold_id
 * order to save sorting the window's rows.
 */
export function holdOutcomesQuery(w: UsageWindow): SQL {
  const window = [
    w.fromMs === undefined ? sql`` : sql` AND created_at_ms >= ${w.fromMs}`,
    w.toMs === undefined ? sql`` : sql` AND created_at_ms < ${w.toMs}`,
  ];
  const key = keyOf(w.groupBy, sql`h.dimensions`, sql`h.feature`);
  return sql`
    SELECT grp AS key,
      sum(captured > 0) AS capturedCount, sum(captured) AS capturedCredits,
      sum(captured = 0 AND released > 0) AS releasedCount, sum(released) AS releasedCredits,
      sum(captured = 0 AND released = 0 AND expired > 0) AS expiredCount, sum(expired) AS expiredCredits
    FROM (
      SELECT o.captured, o.released, o.expired,
        (SELECT ${key} FROM ledger_entries h
          WHERE h.team_id = o.team_id AND h.hold_id = o.hold_id AND h.type = 'hold' LIMIT 1) AS grp
      FROM (
        SELECT team_id, hold_id,
          sum(CASE WHEN type = 'capture' THEN amount_credits ELSE 0 END) AS captured,
          sum(CASE WHEN type = 'release' AND direction = 'in' THEN amount_credits ELSE 0 END) AS released,
          sum(CASE WHEN type = 'expire' AND direction = 'in' THEN amount_credits ELSE 0 END) AS expired
        FROM ledger_entries INDEXED BY ledger_entries_team_type_created
        WHERE team_id = ${w.teamId} AND type IN ('capture', 'release', 'expire')
          AND hold_id IS NOT NULL${window[0]}${window[1]}
        GROUP BY team_id, hold_id
      ) o
    )
    GROUP BY grp
    ORDER BY capturedCredits + releasedCredits + expiredCredits DESC, grp
    LIMIT ${w.limit}`;
}

export interface Usage {
  groups: { key: string | null; credits: number; count: number }[];
  holds: HoldOutcomeRow[];
}

export async function usage(d1: D1Database, w: UsageWindow): Promise<Usage> {
  const [groups, holds] = await Promise.all([usageQuery(d1, w), drizzle(d1).all<HoldOutcomeRow>(holdOutcomesQuery(w))]);
  return { groups, holds };
}

/**
 * The sums of a team's D1 entries with seq <= maxSeq, by the same rules as the object's
 * (LedgerStore.entrySums), plus how many rows there are: with maxSeq the outbox's mark, a
 * complete replica has exactly maxSeq rows.
 */
export async function d1EntrySums(d1: D1Database, teamId: string, maxSeq: number): Promise<EntrySums> {
  const [row] = await drizzle(d1)
    .select({
      entries: sql<number>`count(*)`,
      available: sql<number | null>`sum(CASE WHEN ${t.direction} = 'in' THEN ${t.amountCredits}
        WHEN ${t.type} = 'capture' THEN 0 ELSE -${t.amountCredits} END)`,
      held: sql<number | null>`sum(CASE WHEN ${t.type} = 'hold' THEN ${t.amountCredits}
        WHEN ${t.type} = 'capture' THEN -${t.amountCredits}
        WHEN ${t.direction} = 'in' AND ${t.holdId} IS NOT NULL THEN -${t.amountCredits} ELSE 0 END)`,
    })
    .from(t)
    .where(and(eq(t.teamId, teamId), lte(t.seq, maxSeq)));
  const available = row?.available ?? 0;
  const held = row?.held ?? 0;
  return { entries: row?.entries ?? 0, available, held, total: available + held };
}
