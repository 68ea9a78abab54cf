/**
 * The SQL forms of the balance rule (AVAILABLE_EFFECT_SQL, HELD_EFFECT_SQL in
 * src/domain/entry-effect.ts) agree with entryEffect, row by row and summed, evaluated by the
 * team object's own SQLite over random rows of a scratch table with the entries' column names.
 */
import { runInDurableObject } from "cloudflare:test";
import { env } from "cloudflare:workers";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { AVAILABLE_EFFECT_SQL, entryEffect, HELD_EFFECT_SQL } from "../../src/domain/entry-effect";
import { DIRECTIONS, ENTRY_TYPES } from "../../src/domain/vocabulary";

type Row = { type: string; direction: string; amountCredits: number; holdId: string | null };

const row: fc.Arbitrary<Row> = fc.record({
  type: fc.constantFrom(...ENTRY_TYPES),
  direction: fc.constantFrom(...DIRECTIONS),
  amountCredits: fc.integer({ min: 0, max: 1_000_000_000_000 }),
  holdId: fc.option(fc.constantFrom("hld_1", "hld_2"), { nil: null }),
});

const stub = () => env.TEAM_LEDGER.get(env.TEAM_LEDGER.idFromName(`effects-${crypto.randomUUID()}`));

describe("the balance rule in SQL", () => {
  it("agrees with entryEffect on every row and on the sums", async () => {
    await runInDurableObject(stub(), (_instance, state) => {
      const sql = state.storage.sql;
      sql.exec(
        "CREATE TABLE scratch_effects (n INTEGER PRIMARY KEY, type TEXT, direction TEXT, amount_credits INTEGER, hold_id TEXT)",
      );
      let runs = 0;
      fc.assert(
        fc.property(fc.array(row, { maxLength: 40 }), (rows) => {
          runs += 1;
          sql.exec("DELETE FROM scratch_effects");
          for (const r of rows)
            sql.exec(
              "INSERT INTO scratch_effects (type, direction, amount_credits, hold_id) VALUES (?, ?, ?, ?)",
              r.type,
              r.direction,
              r.amountCredits,
              r.holdId,
            );
          const perRow = sql
            .exec<{ available: number; held: number }>(
              `SELECT ${AVAILABLE_EFFECT_SQL} AS available, ${HELD_EFFECT_SQL} AS held FROM scratch_effects ORDER BY n`,
            )
            .toArray();
          // + 0 turns -0 into 0: SQLite has no negative zero.
          expect(perRow).toEqual(
            rows.map((r) => entryEffect(r)).map((e) => ({ available: e.available + 0, held: e.held + 0 })),
          );
          const sums = sql
            .exec<{ available: number; held: number }>(
              `SELECT COALESCE(SUM(${AVAILABLE_EFFECT_SQL}), 0) AS available, COALESCE(SUM(${HELD_EFFECT_SQL}), 0) AS held
               FROM scratch_effects`,
            )
            .one();
          const effects = rows.map((r) => entryEffect(r));
          expect(sums).toEqual({
            available: effects.reduce((s, e) => s + e.available, 0),
            held: effects.reduce((s, e) => s + e.held, 0),
          });
        }),
        { numRuns: 200 },
      );
      expect(runs).toBeGreaterThanOrEqual(200);
    });
  });

  it("covers every type, direction and hold combination", async () => {
    await runInDurableObject(stub(), (_instance, state) => {
      const sql = state.storage.sql;
      sql.exec("CREATE TABLE scratch_effects (type TEXT, direction TEXT, amount_credits INTEGER, hold_id TEXT)");
      const rows: Row[] = [];
      for (const type of ENTRY_TYPES)
        for (const direction of DIRECTIONS)
          for (const holdId of [null, "hld_1"]) rows.push({ type, direction, amountCredits: 7, holdId });
      for (const r of rows)
        sql.exec("INSERT INTO scratch_effects VALUES (?, ?, ?, ?)", r.type, r.direction, r.amountCredits, r.holdId);
      const got = sql
        .exec<Row & { available: number; held: number }>(
          `SELECT type, direction, amount_credits AS amountCredits, hold_id AS holdId,
                  ${AVAILABLE_EFFECT_SQL} AS available, ${HELD_EFFECT_SQL} AS held
           FROM scratch_effects ORDER BY rowid`,
        )
        .toArray();
      expect(got).toEqual(
        rows
          .map((r) => ({ ...r, ...entryEffect(r) }))
          .map((r) => ({ ...r, available: r.available + 0, held: r.held + 0 })),
      );
    });
  });
});
