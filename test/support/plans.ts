/**
 * Features, plans and time for plan tests: define a feature or plan with a fresh key, and move a
 * team's monthly periods back in time (inside its object, then restart it) so period boundaries
 * can be driven through the real alarm without waiting a month.
 */
import { runInDurableObject } from "cloudflare:test";
import { expect } from "vitest";
import { periodStartMs } from "../../src/domain/periods";
import type { TeamLedger } from "../../src/object/team-ledger";
import { api } from "./calls";
import { ledgerStub } from "./object";

let n = 0;
/** A feature or plan key no other test uses (the catalog is account-wide). */
export function newKeyFor(prefix: string): string {
  n += 1;
  return `${prefix}-${Date.now().toString(36)}-${n}-${crypto.randomUUID().slice(0, 6)}`;
}

export async function putFeature(key: string, body: Record<string, unknown>): Promise<Record<string, unknown>> {
  const res = await api(`/v1/features/${key}`, { method: "PUT", body });
  expect(res.status, res.text).toBeLessThan(300);
  return res.body;
}

export async function putPlan(id: string, body: Record<string, unknown>): Promise<Record<string, unknown>> {
  const res = await api(`/v1/plans/${id}`, {
    method: "PUT",
    body: { name: id, paid: false, currency: "usd", creditsPerCurrencyUnit: 100, ...body },
  });
  expect(res.status, res.text).toBeLessThan(300);
  return res.body;
}

/** When period `n` of an anchor starts (domain/periods.ts; a model test passes its own calendar). */
export type PeriodCalendar = (anchorMs: number, n: number) => number;

/**
 * Re-anchors the team's periods `daysAgo` days before now, as if it had been on its plan since
 * then with its periods opened on time: the team's anchor, every period row's bounds, the
 * allocation grants' expiries and the next boundary all move; nothing else does. The object
 * re-reads its team in the same event (TeamLedger.reloadTeam), so no request or alarm sees the old
 * anchor and no object is restarted (restarting every object, abortAllDurableObjects, was seen to
 * keep vitest from exiting).
 */
export async function anchorDaysAgo(
  teamId: string,
  daysAgo: number,
  periodStart: PeriodCalendar = periodStartMs,
): Promise<void> {
  const anchor = Date.now() - daysAgo * 24 * 3600 * 1000;
  await runInDurableObject(ledgerStub(teamId), (instance: TeamLedger, state) => {
    const sql = state.storage.sql;
    state.storage.transactionSync(() => {
      const doc = sql.exec<{ value: string }>("SELECT value FROM meta WHERE key = 'team'").one().value;
      const team = JSON.parse(doc) as { periodAnchor: string | null };
      team.periodAnchor = new Date(anchor).toISOString();
      sql.exec("UPDATE meta SET value = ? WHERE key = 'team'", JSON.stringify(team));
      let last = -1;
      for (const { idx } of sql.exec<{ idx: number }>("SELECT idx FROM periods ORDER BY idx").toArray()) {
        sql.exec(
          "UPDATE periods SET starts_at = ?, ends_at = ? WHERE idx = ?",
          periodStart(anchor, idx),
          periodStart(anchor, idx + 1),
          idx,
        );
        sql.exec("UPDATE grants SET expires_at = ? WHERE period = ?", periodStart(anchor, idx + 1), idx);
        last = idx;
      }
      if (last >= 0)
        sql.exec("UPDATE meta SET value = ? WHERE key = 'period.nextStartMs'", String(periodStart(anchor, last + 1)));
    });
    instance.reloadTeam();
  });
}
