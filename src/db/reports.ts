/**
 * Reports over the D1 replica: usage by feature or by a dimension, hold outcomes, and the sums
 * reconciliation compares with the team object. Each query reads one team's rows through an
 * index that starts with team_id (see schema.ts), and a time window through
 * (team_id, type, created_at_ms): its cost follows the rows in the window, not the team's history.
 *
 * Usage sums credits over a team's whole life, which may pass 2^53 (JSON numbers stop being exact)
 * and even 2^63 (SQLite's integer sum fails). Each such sum is read as two exact parts, the sums
 * of amount / 10^6 and amount % 10^6 (both stay far inside 2^53 for any real history), and joined
 * as a BigInt: `exact` is its decimal text, `number` the nearest JSON number.
 */
import { and, eq, gte, inArray, lt, lte, type SQL, sql } from "drizzle-orm";
import { drizzle } from "drizzle-orm/d1";
import { AVAILABLE_EFFECT_SQL, HELD_EFFECT_SQL } from "../domain/entry-effect";
import type { EntrySums } from "../domain/vocabulary";
import { ledgerEntries } from "./schema";

/**
 * What to group usage by: the entry's feature, the person who made it (`actor`), the member team a
 * pooled charge was made for (`subaccount`), or one key of its `dimensions` object.
 */
export type UsageGroupBy =
  | { kind: "feature" }
  | { kind: "actor" }
  | { kind: "subaccount" }
  | { kind: "dimension"; key: string };

/** An entry's columns a group key can come from, as SQL for the table alias in use. */
interface KeyColumns {
  dimensions: SQL;
  feature: SQL;
  actor: SQL;
  memberTeamId: SQL;
}

export interface UsageWindow {
  teamId: string;
  groupBy: UsageGroupBy;
  fromMs?: number | undefined;
  toMs?: number | undefined;
  /** At most this many groups, largest first. */
  limit: number;
}

const t = ledgerEntries;

/** The group key of an entry: its feature, actor, member team, or a dimension's value (a JSON path). */
function keyOf(groupBy: UsageGroupBy, c: KeyColumns): SQL {
  switch (groupBy.kind) {
    case "feature":
      return c.feature;
    case "actor":
      return c.actor;
    case "subaccount":
      return c.memberTeamId;
    case "dimension":
      // The key is bound, never spliced: `$."key"` reads a key containing dots as one key.
      return sql`json_extract(${c.dimensions}, ${`$."${groupBy.key}"`})`;
  }
}

function windowOf(w: UsageWindow): SQL[] {
  const out: SQL[] = [];
  if (w.fromMs !== undefined) out.push(gte(t.createdAtMs, w.fromMs));
  if (w.toMs !== undefined) out.push(lt(t.createdAtMs, w.toMs));
  return out;
}

const PART = 1_000_000;

/** A credit sum read exactly, from its two parts (see the header). */
export interface ExactCredits {
  number: number;
  exact: string;
}

export function joinParts(high: number | null, low: number | null): ExactCredits {
  const total = BigInt(high ?? 0) * BigInt(PART) + BigInt(low ?? 0);
  return { number: Number(total), exact: total.toString() };
}

/** The two parts of sum(expr), as SQL. */
const highPart = (expr: SQL) => sql<number>`sum(${expr} / ${sql.raw(String(PART))})`;
const lowPart = (expr: SQL) => sql<number>`sum(${expr} % ${sql.raw(String(PART))})`;

/**
 * Credits consumed per key in the window: spend entries plus capture entries (a hold's captured
 * part is spent). `count` is the number of charges, not entries: one spend drawing from three
 * grants writes three entries but is one spend (distinct spend id), and a captured hold is one
 * charge (distinct hold id).
 */
export function usageQuery(d1: D1Database, w: UsageWindow) {
  const key = keyOf(w.groupBy, {
    dimensions: sql`${t.dimensions}`,
    feature: sql`${t.feature}`,
    actor: sql`${t.actor}`,
    memberTeamId: sql`${t.memberTeamId}`,
  });
  return (
    drizzle(d1)
      .select({
        key: sql<string | null>`${key}`.as("grp"),
        creditsHigh: highPart(sql`${t.amountCredits}`).as("credits_high"),
        creditsLow: lowPart(sql`${t.amountCredits}`).as("credits_low"),
        count: sql<number>`count(DISTINCT coalesce(${t.spendId}, ${t.holdId}))`.as("charges"),
      })
      .from(t)
      .where(and(eq(t.teamId, w.teamId), inArray(t.type, ["spend", "capture"]), ...windowOf(w)))
      .groupBy(sql`grp`)
      // Largest first: the high part orders, the low part breaks its ties.
      .orderBy(sql`credits_high DESC`, sql`credits_low DESC`, sql`grp`)
      .limit(w.limit)
  );
}

export interface HoldOutcomeRow {
  key: string | null;
  capturedCount: number;
  capturedHigh: number;
  capturedLow: number;
  releasedCount: number;
  releasedHigh: number;
  releasedLow: number;
  expiredCount: number;
  expiredHigh: number;
  expiredLow: number;
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
  const key = keyOf(w.groupBy, {
    dimensions: sql`h.dimensions`,
    feature: sql`h.feature`,
    actor: sql`h.actor`,
    memberTeamId: sql`h.member_team_id`,
  });
  return sql`
    SELECT grp AS key,
      sum(captured > 0) AS capturedCount, ${highPart(sql`captured`)} AS capturedHigh, ${lowPart(sql`captured`)} AS capturedLow,
      sum(captured = 0 AND released > 0) AS releasedCount, ${highPart(sql`released`)} AS releasedHigh,
      ${lowPart(sql`released`)} AS releasedLow,
      sum(captured = 0 AND released = 0 AND expired > 0) AS expiredCount, ${highPart(sql`expired`)} AS expiredHigh,
      ${lowPart(sql`expired`)} AS expiredLow
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
    ORDER BY capturedHigh + releasedHigh + expiredHigh DESC, capturedLow + releasedLow + expiredLow DESC, grp
    LIMIT ${w.limit}`;
}

export interface Usage {
  groups: { key: string | null; creditsHigh: number; creditsLow: number; count: number }[];
  holds: HoldOutcomeRow[];
}

export async function usage(d1: D1Database, w: UsageWindow): Promise<Usage> {
  const [groups, holds] = await Promise.all([usageQuery(d1, w), drizzle(d1).all<HoldOutcomeRow>(holdOutcomesQuery(w))]);
  return { groups, holds };
}

/**
 * The sums of a team's D1 entries with seq <= maxSeq, by the same rule as the object's
 * (domain/entry-effect.ts), plus how many rows there are: with maxSeq the outbox's mark, a
 * complete replica has exactly maxSeq rows.
 */
export async function d1EntrySums(d1: D1Database, teamId: string, maxSeq: number): Promise<EntrySums> {
  const [row] = await drizzle(d1)
    .select({
      entries: sql<number>`count(*)`,
      available: sql<number | null>`sum(${sql.raw(AVAILABLE_EFFECT_SQL)})`,
      held: sql<number | null>`sum(${sql.raw(HELD_EFFECT_SQL)})`,
    })
    .from(t)
    .where(and(eq(t.teamId, teamId), lte(t.seq, maxSeq)));
  const available = row?.available ?? 0;
  const held = row?.held ?? 0;
  return { entries: row?.entries ?? 0, available, held, total: available + held };
}
