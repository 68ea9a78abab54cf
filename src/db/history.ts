/**
 * Writes and reads the replicated history in D1. Writes are idempotent on (team_id, seq): the
 * outbox may send the same entries again after a failure, and D1 keeps one copy.
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
 * Inserts rows for one team in one D1 batch (atomic in D1). Each row is a JSON array text in
 * D1_COLUMNS order (the team object builds them in SQL: EntryStore.outboxRows). Rows already present
 * are skipped, so a resend after any failure is harmless. At most OUTBOX_ROWS_PER_D1_BATCH rows.
 */
export async function insertEntryRows(d1: D1Database, rows: readonly string[]): Promise<void> {
  if (rows.length === 0) return;
  if (rows.length > OUTBOX_ROWS_PER_D1_BATCH) throw new Error("insertEntryRows: batch too large");
  const statements = packs(rows).map((json) => d1.prepare(INSERT_FROM_JSON).bind(json));
  await d1.batch(statements);
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
