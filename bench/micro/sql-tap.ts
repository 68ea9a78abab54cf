/**
 * Counts a team object's SQLite statements from inside it, for the micro benches that report what
 * an operation costs (capacity-costs.micro.ts, pool-costs.micro.ts): `exec` is wrapped so every
 * cursor it returns is kept, and `takeCount` sums what they read and wrote.
 */
import { runInDurableObject } from "cloudflare:test";
import type { TeamLedger } from "../../src/object/team-ledger";
import { ledgerStub } from "../../test/support/object";

export interface Counted {
  statements: number;
  rowsRead: number;
  rowsWritten: number;
}

/** The object's SqlStorage with `exec` wrapped so every cursor it returns is kept (and counted later). */
interface Tap {
  cursors: SqlStorageCursor<Record<string, SqlStorageValue>>[];
  restore: () => void;
}

const taps = new Map<string, Tap>();

export function tapSql(teamId: string): Promise<void> {
  return runInDurableObject(ledgerStub(teamId), (_i: TeamLedger, state) => {
    const sql = state.storage.sql;
    const real = sql.exec.bind(sql);
    const tap: Tap = {
      cursors: [],
      restore: () => {
        Reflect.deleteProperty(sql, "exec");
      },
    };
    const wrapped = <T extends Record<string, SqlStorageValue>>(query: string, ...bindings: unknown[]) => {
      const cursor = real<T>(query, ...bindings);
      tap.cursors.push(cursor);
      return cursor;
    };
    Object.defineProperty(sql, "exec", { value: wrapped, configurable: true, writable: true });
    taps.set(teamId, tap);
  });
}

/** Sums what the kept cursors read and wrote (they are consumed by now), and starts a new count. */
export function takeCount(teamId: string): Counted {
  const tap = taps.get(teamId);
  if (!tap) throw new Error("no tap");
  const counted = tap.cursors.reduce(
    (sum, c) => ({
      statements: sum.statements + 1,
      rowsRead: sum.rowsRead + c.rowsRead,
      rowsWritten: sum.rowsWritten + c.rowsWritten,
    }),
    { statements: 0, rowsRead: 0, rowsWritten: 0 },
  );
  tap.cursors = [];
  return counted;
}

/** Puts the object's own `exec` back and forgets the count. */
export function untapSql(teamId: string): void {
  taps.get(teamId)?.restore();
  taps.delete(teamId);
}
