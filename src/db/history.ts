/**
 * Writes and reads the replicated history in D1. Writes are idempotent on (team_id, seq): the
 * outbox may send the same entries again after a failure, and D1 keeps one copy.
 */
import { and, count, eq, sql } from "drizzle-orm";
import { drizzle } from "drizzle-orm/d1";
import { OUTBOX_ROWS_PER_D1_BATCH } from "../limits";
import { type LedgerEntryRow, ledgerEntries } from "./schema";

/** D1 allows 100 bound parameters per statement; each row binds 16. */
const ROWS_PER_STATEMENT = 6;

/**
 * Inserts rows for one team in one D1 batch (atomic in D1). Rows already present are skipped.
 * Callers pass at most OUTBOX_ROWS_PER_D1_BATCH rows.
 */
export async function insertEntries(d1: D1Database, rows: LedgerEntryRow[]): Promise<void> {
  if (rows.length === 0) return;
  if (rows.length > OUTBOX_ROWS_PER_D1_BATCH) throw new Error("insertEntries: batch too large");
  const db = drizzle(d1);
  const statements = [];
  for (let i = 0; i < rows.length; i += ROWS_PER_STATEMENT) {
    statements.push(
      db
        .insert(ledgerEntries)
        .values(rows.slice(i, i + ROWS_PER_STATEMENT))
        .onConflictDoNothing(),
    );
  }
  const [first, ...rest] = statements;
  if (!first) return;
  await db.batch([first, ...rest]);
}

/** How many entries and which credits D1 holds for a team (used by tests and reconciliation). */
export async function historySummary(d1: D1Database, teamId: string) {
  const db = drizzle(d1);
  const [row] = await db
    .select({
      entries: count(),
      maxSeq: sql<number | null>`max(${ledgerEntries.seq})`,
      inCredits: sql<number>`coalesce(sum(case when ${ledgerEntries.direction} = 'in' then ${ledgerEntries.amountCredits} else 0 end), 0)`,
      outCredits: sql<number>`coalesce(sum(case when ${ledgerEntries.direction} = 'out' and ${ledgerEntries.type} <> 'capture' then ${ledgerEntries.amountCredits} else 0 end), 0)`,
    })
    .from(ledgerEntries)
    .where(eq(ledgerEntries.teamId, teamId));
  return row ?? { entries: 0, maxSeq: null, inCredits: 0, outCredits: 0 };
}

export async function countEntriesAtSeq(d1: D1Database, teamId: string, seq: number): Promise<number> {
  const db = drizzle(d1);
  const [row] = await db
    .select({ n: count() })
    .from(ledgerEntries)
    .where(and(eq(ledgerEntries.teamId, teamId), eq(ledgerEntries.seq, seq)));
  return row?.n ?? 0;
}
