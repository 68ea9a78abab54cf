/**
 * Writes and reads the replicated history in D1. Writes are idempotent on (team_id, seq): the
 * outbox may send the same entries again after a failure (and the queue may deliver a message
 * twice), and D1 keeps one copy. Every write also moves the teams' marks (history_marks).
 */
import { and, asc, desc, eq, gt, lte, type SQL, sql } from "drizzle-orm";
import { drizzle } from "drizzle-orm/d1";
import { D1_COLUMNS, type EntryFields, entryFromFields } from "../domain/entry";
import type { Direction, Entry, HistoryType } from "../domain/vocabulary";
import { OUTBOX_ROWS_PER_D1_BATCH } from "../limits";
import { ledgerEntries } from "./schema";

/**
 * Rows go to D1 as one JSON array per statement, unpacked by SQLite's json_each: D1 allows only
 * 100 bound parameters per statement, so binding columns one by one would take 16 per row.
 * The bound on rows per statement keeps each JSON text far below D1's size limits.
 */
export const ROWS_PER_STATEMENT = 100;
const MAX_STATEMENT_JSON_BYTES = 512 * 1024;

// Written against D1's binding directly: drizzle's insert builder binds every column. The columns
// and their order are domain/entry.ts's; the outbox tests compare every column D1 ends up with.
const INSERT_FROM_JSON = `INSERT INTO ledger_entries (${D1_COLUMNS.join(", ")})
   SELECT ${D1_COLUMNS.map((_, i) => `value ->> '$[${i}]'`).join(", ")}
   FROM json_each(?) WHERE true
   ON CONFLICT (team_id, seq) DO NOTHING`;

/** Packs JSON row texts into JSON arrays of at most ROWS_PER_STATEMENT rows and (unless one row is larger) MAX_STATEMENT_JSON_BYTES. */
function packs(rows: readonly string[]): string[] {
  const out: string[] = [];
  let current: string[] = [];
  let bytes = 2;
  for (const row of rows) {
    if (
      current.length > 0 &&
      (current.length >= ROWS_PER_STATEMENT || bytes + row.length + 1 > MAX_STATEMENT_JSON_BYTES)
    ) {
      out.push(`[${current.join(",")}]`);
      current = [];
      bytes = 2;
    }
    current.push(row);
    bytes += row.length + 1;
  }
  if (current.length > 0) out.push(`[${current.join(",")}]`);
  return out;
}

/**
 * Moves the teams' marks (schema.ts history_marks) to the last seq up to which D1 holds every
 * entry: from the stored mark, one step per entry present, so rows that landed out of order (a
 * later message before an earlier one, a retry) count once the hole below them is filled. The
 * walk reads one primary-key row per entry landed; it only goes up.
 */
const MOVE_MARKS = `INSERT INTO history_marks (team_id, contiguous_seq)
   SELECT t.value, (
     WITH RECURSIVE walk(s) AS (
       SELECT COALESCE((SELECT m.contiguous_seq FROM history_marks m WHERE m.team_id = t.value), 0)
       UNION ALL
       SELECT walk.s + 1 FROM walk
       WHERE EXISTS (SELECT 1 FROM ledger_entries e WHERE e.team_id = t.value AND e.seq = walk.s + 1)
     )
     SELECT MAX(s) FROM walk)
   FROM json_each(?) t WHERE true
   ON CONFLICT (team_id) DO UPDATE SET contiguous_seq = MAX(contiguous_seq, excluded.contiguous_seq)
   RETURNING team_id AS teamId, contiguous_seq AS seq`;

/** D1's marks after a landing: team id → every entry up to this seq is in D1. */
export type HistoryMarks = Map<string, number>;

/**
 * The statements that land rows of any number of teams and move their marks: the rows packed
 * into as few INSERTs as D1's limits allow (each row carries its team id), then one statement for
 * the marks. Rows already present are skipped, so a resend after any failure is harmless.
 */
export function landingStatements(
  d1: D1Database,
  rows: readonly string[],
  teamIds: readonly string[],
): D1PreparedStatement[] {
  const statements = packs(rows).map((json) => d1.prepare(INSERT_FROM_JSON).bind(json));
  statements.push(d1.prepare(MOVE_MARKS).bind(JSON.stringify([...new Set(teamIds)])));
  return statements;
}

/** Reads the marks out of a landing batch's results (the last statement's RETURNING rows). */
export function marksOf(results: readonly D1Result[]): HistoryMarks {
  const last = results[results.length - 1] as D1Result<{ teamId: string; seq: number }> | undefined;
  return new Map((last?.results ?? []).map((r) => [r.teamId, r.seq]));
}

/**
 * Inserts rows in one D1 batch (atomic in D1), without moving any mark: what the micro benchmarks
 * measure. Each row is a JSON array text in D1_COLUMNS order (the team object builds them in SQL:
 * EntryStore.outboxRows). At most OUTBOX_ROWS_PER_D1_BATCH rows.
 */
export async function insertEntryRows(d1: D1Database, rows: readonly string[]): Promise<void> {
  if (rows.length === 0) return;
  if (rows.length > OUTBOX_ROWS_PER_D1_BATCH) throw new Error("insertEntryRows: batch too large");
  await d1.batch(packs(rows).map((json) => d1.prepare(INSERT_FROM_JSON).bind(json)));
}

/**
 * What this isolate's landings cost D1 since it started: batch calls, statements and rows (the
 * bench reads them through GET /v1/admin/history/stats to compare the queue with the direct path).
 */
export const landingStats = { batches: 0, statements: 0, rows: 0 };

/** Lands rows of any number of teams in one D1 batch (atomic in D1) and returns their marks. */
export async function landRows(
  d1: D1Database,
  rows: readonly string[],
  teamIds: readonly string[],
): Promise<HistoryMarks> {
  const statements = landingStatements(d1, rows, teamIds);
  const results = await d1.batch(statements);
  landingStats.batches += 1;
  landingStats.statements += statements.length;
  landingStats.rows += rows.length;
  return marksOf(results);
}

/**
 * The direct path (HISTORY_DELIVERY=direct, object/outbox.ts): one team's rows in one D1 batch,
 * with its mark moved in the same batch. Returns the mark. At most OUTBOX_ROWS_PER_D1_BATCH rows.
 */
export async function deliverTeamRows(d1: D1Database, teamId: string, rows: readonly string[]): Promise<number> {
  if (rows.length > OUTBOX_ROWS_PER_D1_BATCH) throw new Error("deliverTeamRows: batch too large");
  return (await landRows(d1, rows, [teamId])).get(teamId) ?? 0;
}

/** D1's mark for the team: every entry up to it is in D1 (0 when it holds none). */
export async function historyMarkOf(d1: D1Database, teamId: string): Promise<number> {
  const row = await d1
    .prepare("SELECT contiguous_seq AS seq FROM history_marks WHERE team_id = ?")
    .bind(teamId)
    .first<{ seq: number }>();
  return row?.seq ?? 0;
}

/**
 * What D1 holds of a team, for reconciliation: its mark, its rows at or below `sentSeq` (what the
 * object has sent) and its rows above the mark (landed above a hole), in one D1 batch.
 */
export async function historyCoverage(
  d1: D1Database,
  teamId: string,
  sentSeq: number,
): Promise<{ mark: number; rowsUpToSent: number; rowsAboveMark: number }> {
  const [mark, counts] = await d1.batch<{ seq?: number; upToSent?: number; aboveMark?: number }>([
    d1.prepare("SELECT contiguous_seq AS seq FROM history_marks WHERE team_id = ?").bind(teamId),
    d1
      .prepare(
        `SELECT COUNT(*) FILTER (WHERE seq <= ?2) AS upToSent,
           COUNT(*) FILTER (WHERE seq > COALESCE((SELECT contiguous_seq FROM history_marks WHERE team_id = ?1), 0)) AS aboveMark
         FROM ledger_entries WHERE team_id = ?1`,
      )
      .bind(teamId, sentSeq),
  ]);
  const row = counts?.results[0];
  return {
    mark: mark?.results[0]?.seq ?? 0,
    rowsUpToSent: row?.upToSent ?? 0,
    rowsAboveMark: row?.aboveMark ?? 0,
  };
}

/**
 * Lowers the team's mark to `seq` (never raises it): before a resend from seq + 1, when rows at or
 * below the mark are known to be missing (deleted, restored from an old copy). The next landing
 * walks up again over whatever is present.
 */
export async function lowerHistoryMark(d1: D1Database, teamId: string, seq: number): Promise<void> {
  await d1
    .prepare("UPDATE history_marks SET contiguous_seq = ? WHERE team_id = ? AND contiguous_seq > ?")
    .bind(seq, teamId, seq)
    .run();
}

// ---- reading history ------------------------------------------------------------------------

/** What a page of history asks D1 for. `maxSeq` is the outbox's mark: D1 holds every entry up to it. */
export interface D1EntryQuery {
  teamId: string;
  limit: number;
  maxSeq: number;
  beforeSeq?: number | undefined;
  types?: readonly HistoryType[] | undefined;
  direction?: Direction | undefined;
  fromMs?: number | undefined;
  toMs?: number | undefined;
}

type D1EntryRow = typeof ledgerEntries.$inferSelect;

/** A D1 row is an entry's fields as they are (the schema's property names are EntryFields'). */
function fieldsOfD1Row(r: D1EntryRow): EntryFields {
  return r;
}

/** The team's entries after `afterSeq`, oldest first, at most `limit`: what the chain check reads. */
export async function chainPage(
  d1: D1Database,
  teamId: string,
  afterSeq: number,
  limit: number,
): Promise<EntryFields[]> {
  const t = ledgerEntries;
  const rows = await drizzle(d1)
    .select()
    .from(t)
    .where(and(eq(t.teamId, teamId), gt(t.seq, afterSeq)))
    .orderBy(asc(t.seq))
    .limit(limit);
  return rows.map(fieldsOfD1Row);
}

/**
 * One page query: newest first by seq, for at most one type. The walk is always along an index
 * in seq order (the primary key, or (team_id, type, seq) with a type), so no sort is needed and a
 * page costs `limit` rows plus the rows the residual filters skip. The time filters are written
 * `+created_at_ms` so the planner never trades that order for the time index and a sort of the
 * whole window.
 */
export function entryPageQuery(d1: D1Database, q: D1EntryQuery, type: HistoryType | undefined) {
  const t = ledgerEntries;
  // One upper bound on seq: SQLite seeks on one of two and would filter the rows between them.
  const maxSeq = q.beforeSeq === undefined ? q.maxSeq : Math.min(q.maxSeq, q.beforeSeq - 1);
  const where: (SQL | undefined)[] = [eq(t.teamId, q.teamId), lte(t.seq, maxSeq)];
  if (type !== undefined) where.push(eq(t.type, type));
  if (q.direction !== undefined) where.push(eq(t.direction, q.direction));
  if (q.fromMs !== undefined) where.push(sql`+${t.createdAtMs} >= ${q.fromMs}`);
  if (q.toMs !== undefined) where.push(sql`+${t.createdAtMs} < ${q.toMs}`);
  return drizzle(d1)
    .select()
    .from(t)
    .where(and(...where))
    .orderBy(desc(t.seq))
    .limit(q.limit);
}

/**
 * Entries from D1 with seq <= maxSeq, newest first, at most `limit`. Several types are read as one
 * index range each (in one D1 batch) and merged, so the cost stays that of `limit` rows per type.
 */
export async function listEntriesFromD1(d1: D1Database, q: D1EntryQuery): Promise<Entry[]> {
  if (q.limit <= 0 || q.maxSeq <= 0 || (q.beforeSeq !== undefined && q.beforeSeq <= 1)) return [];
  const types = q.types === undefined || q.types.length === 0 ? [undefined] : [...new Set(q.types)];
  const [first, ...rest] = types.map((type) => entryPageQuery(d1, q, type));
  if (!first) return [];
  const pages = rest.length === 0 ? [await first] : await drizzle(d1).batch([first, ...rest]);
  const rows = pages.flat();
  rows.sort((a, b) => b.seq - a.seq);
  return rows.slice(0, q.limit).map((r) => entryFromFields(fieldsOfD1Row(r)));
}
