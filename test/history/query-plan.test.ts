/**
 * The D1 indexes (migration 0002): a page of history and a usage report read through an index
 * that starts with team_id, without a full scan, and a page needs no sort. Shown with EXPLAIN
 * QUERY PLAN on the very queries the routes run, and measured with D1's rows_read on a team of
 * 1,000 entries and one of 1,000,000 (synthetic rows written straight into D1).
 */
import { env } from "cloudflare:workers";
import type { SQL } from "drizzle-orm";
import { SQLiteSyncDialect } from "drizzle-orm/sqlite-core";
import { describe, expect, it } from "vitest";
import { entryPageQuery } from "../../src/db/history";
import { holdOutcomesQuery, type UsageWindow, usageQuery } from "../../src/db/reports";
import { newTeamId } from "../support";

interface PlanRow {
  id: number;
  parent: number;
  detail: string;
}

const dialect = new SQLiteSyncDialect();

async function plan(query: { sql: string; params: unknown[] }): Promise<string[]> {
  const res = await env.DB.prepare(`EXPLAIN QUERY PLAN ${query.sql}`)
    .bind(...query.params)
    .all<PlanRow>();
  return res.results.map((r) => r.detail);
}

async function rowsRead(query: { sql: string; params: unknown[] }): Promise<{ rows: number; read: number }> {
  const res = await env.DB.prepare(query.sql)
    .bind(...query.params)
    .all();
  return { rows: res.results.length, read: res.meta.rows_read };
}

const fromSql = (q: SQL) => dialect.sqlToQuery(q);

/** Writes `n` synthetic entries for a team straight into D1: spends of features f0..f9, 1 ms apart. */
async function seed(teamId: string, n: number, startMs: number): Promise<void> {
  await env.DB.prepare(
    `WITH RECURSIVE s(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM s WHERE i < ?)
     INSERT INTO ledger_entries (team_id, seq, id, created_at_ms, type, direction, amount_credits,
       balance_after_credits, spend_id, feature, dimensions)
     SELECT ?, i, 'ent_' || i, ? + i, CASE WHEN i % 100 = 0 THEN 'grant' ELSE 'spend' END,
       CASE WHEN i % 100 = 0 THEN 'in' ELSE 'out' END, 1, 0,
       CASE WHEN i % 100 = 0 THEN NULL ELSE 'spd_' || i END, 'f' || (i % 10), '{"campaign":"c' || (i % 3) || '"}'
     FROM s`,
  )
    .bind(n, teamId, startMs)
    .run();
}

describe("query plans of history and usage", () => {
  it("a page (with and without a type, with a cursor) walks an index in seq order: no scan, no sort", async () => {
    const teamId = newTeamId();
    const base = { teamId, limit: 51, maxSeq: 10_000 };
    const cases = [
      { q: base, type: undefined, index: "sqlite_autoindex_ledger_entries_1" },
      { q: { ...base, beforeSeq: 500 }, type: undefined, index: "sqlite_autoindex_ledger_entries_1" },
      { q: { ...base, beforeSeq: 500 }, type: "spend" as const, index: "ledger_entries_team_type_seq" },
      {
        q: { ...base, direction: "out" as const, fromMs: 1, toMs: 2 },
        type: "hold" as const,
        index: "ledger_entries_team_type_seq",
      },
    ];
    for (const c of cases) {
      const details = await plan(entryPageQuery(env.DB, c.q, c.type).toSQL());
      const text = details.join(" | ");
      expect(text, JSON.stringify(c)).toContain(`SEARCH ledger_entries USING INDEX ${c.index} (team_id=? AND`);
      expect(text).not.toMatch(/\bSCAN ledger_entries\b/);
      expect(text).not.toContain("TEMP B-TREE");
    }
  });

  it("usage reads only the window, through (team_id, type, created_at_ms); hold outcomes find their hold by index", async () => {
    const teamId = newTeamId();
    const windows: UsageWindow[] = [
      { teamId, groupBy: { kind: "feature" }, fromMs: 1, toMs: 2, limit: 10 },
      { teamId, groupBy: { kind: "dimension", key: "campaign" }, fromMs: 1, limit: 10 },
      { teamId, groupBy: { kind: "feature" }, limit: 10 },
    ];
    for (const w of windows) {
      const text = (await plan(usageQuery(env.DB, w).toSQL())).join(" | ");
      const range = [
        "team_id=? AND type=?",
        w.fromMs !== undefined ? " AND created_at_ms>?" : "",
        w.toMs !== undefined ? " AND created_at_ms<?" : "",
      ].join("");
      expect(text, JSON.stringify(w)).toContain(
        `SEARCH ledger_entries USING INDEX ledger_entries_team_type_created (${range})`,
      );
      expect(text).not.toMatch(/\bSCAN ledger_entries\b/);
      const holds = (await plan(fromSql(holdOutcomesQuery(w)))).join(" | ");
      expect(holds).toContain(`SEARCH ledger_entries USING INDEX ledger_entries_team_type_created (${range})`);
      expect(holds).toContain("SEARCH h USING INDEX ledger_entries_team_hold (team_id=? AND hold_id=?)");
      expect(holds).not.toMatch(/\bSCAN (ledger_entries|h)\b/);
    }
  });

  it("rows read: a page and a one-day usage report cost the same at 1,000 and at 1,000,000 entries", async () => {
    const small = newTeamId("small");
    const large = newTeamId("large");
    const t0 = Date.UTC(2026, 0, 1);
    await seed(small, 1_000, t0);
    await seed(large, 1_000_000, t0);
    const measured: Record<string, { rows: number; read: number }[]> = {};
    for (const [label, teamId, n] of [
      ["1k", small, 1_000],
      ["1M", large, 1_000_000],
    ] as const) {
      const newest = t0 + n;
      const page = await rowsRead(entryPageQuery(env.DB, { teamId, limit: 51, maxSeq: n }, undefined).toSQL());
      const deep = await rowsRead(
        entryPageQuery(env.DB, { teamId, limit: 51, maxSeq: n, beforeSeq: n - 500 }, undefined).toSQL(),
      );
      const grants = await rowsRead(entryPageQuery(env.DB, { teamId, limit: 5, maxSeq: n }, "grant").toSQL());
      // The last 500 ms of history: 500 entries, 495 of them spends.
      const window: UsageWindow = { teamId, groupBy: { kind: "feature" }, fromMs: newest - 499, limit: 10 };
      const use = await rowsRead(usageQuery(env.DB, window).toSQL());
      const byDim = await rowsRead(
        usageQuery(env.DB, { ...window, groupBy: { kind: "dimension", key: "campaign" } }).toSQL(),
      );
      measured[label] = [page, deep, grants, use, byDim];
    }
    console.log(
      "rows_read [page, page deep, grants page, usage by feature, usage by campaign]",
      JSON.stringify(measured),
    );
    const [small1k, large1M] = [measured["1k"] ?? [], measured["1M"] ?? []];
    expect(large1M.map((m) => m.rows)).toEqual(small1k.map((m) => m.rows));
    // Pages read exactly their rows; a usage window reads its rows (index + table) and, at most,
    // the one index entry past its end, which belongs to another type or team.
    expect(large1M.slice(0, 3)).toEqual(small1k.slice(0, 3));
    for (const [i, m] of large1M.entries()) expect(Math.abs(m.read - (small1k[i]?.read ?? 0))).toBeLessThanOrEqual(2);
    for (const m of small1k) expect(m.read).toBeLessThanOrEqual(1_010);
    for (const m of small1k.slice(0, 3)) expect(m.read, "a page reads just its rows").toBe(m.rows);
  });
});
