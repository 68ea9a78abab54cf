/**
 * Features, plans and time for plan tests: define a feature or plan with a fresh key, and move a
 * team's monthly periods back in time (inside its object, then restart it) so period boundaries
 * can be driven through the real alarm without waiting a month.
 */
import { abortAllDurableObjects, runInDurableObject } from "cloudflare:test";
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

/**
 * Re-anchors the team's periods `daysAgo` days before now, as if it had been on its plan since
 * then with its periods opened on time: the team's anchor, every period row's bounds, the
 * allocation grants' expiries and the next boundary all move; nothing else does. The objects are
 * restarted so the team object reads its team again.
 */
export async function anchorDaysAgo(teamId: string, daysAgo: number): Promise<void> {
  const anchor = Date.now() - daysAgo * 24 * 3600 * 1000;
  await runInDurableObject(ledgerStub(teamId), (_i: TeamLedger, state) => {
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
          periodStartMs(anchor, idx),
          periodStartMs(anchor, idx + 1),
          idx,
        );
        sql.exec("UPDATE grants SET expires_at = ? WHERE period = ?", periodStartMs(anchor, idx + 1), idx);
        last = idx;
      }
      if (last >= 0)
        sql.exec("UPDATE meta SET value = ? WHERE key = 'period.nextStartMs'", String(periodStartMs(anchor, last + 1)));
    });
  });
  await abortAllDurableObjects();
}
