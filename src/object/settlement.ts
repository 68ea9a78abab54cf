/**
 * Settlement: time passing. Grants whose expiry passed lose what remains (`expire`, out); holds
 * whose deadline passed give their credits back (`expire`, in). Every operation and every read
 * settles first, so nothing expired is ever shown as live; the alarm settles on time for teams
 * nobody calls. A monthly period that began opens here too (plans.ts), between the old
 * allocation's expiry and the holds, so its rollover is measured before the old credits expire. Bounded per call (SETTLE_BATCH); the alarm continues where a call stopped.
 */
import { SETTLE_BATCH } from "../limits";
import { endHold } from "./holds";
import type { LedgerTx } from "./ledger-tx";
import { openPeriod, periodBoundary } from "./plans";

/** Settles what is due; true when everything due was settled. */
export function settle(tx: LedgerTx, limit = SETTLE_BATCH): boolean {
  if (!tx.due) return true;
  // A period boundary passed: what of the old allocation rolls over is measured before it expires.
  const boundary = periodBoundary(tx);
  const grants = tx.store.grants.due(tx.nowMs, limit);
  // The balance already stopped counting these grants at their expiry instant (queries filter by
  // time). Count what they had left back in, so that each expire entry moves the running balance
  // by its own amount: with several grants expiring at once, every entry's balanceAfter still
  // follows from the entry before it, and the running balance ends where the grants say.
  for (const g of grants) tx.recount(g.remaining - g.held);
  for (const g of grants) {
    const unreserved = g.remaining - g.held;
    tx.store.grants.end(g.id, "expired");
    if (unreserved > 0) tx.entry({ type: "expire", direction: "out", amount: unreserved, grantId: g.id });
    tx.emit("grant.expired", { grantId: g.id, source: g.source, category: g.category, expiredCredits: unreserved });
  }
  if (boundary) openPeriod(tx, boundary);
  const holds = tx.store.holds.due(tx.nowMs, limit);
  for (const h of holds) {
    endHold(tx, h, "expired", 0, null);
    tx.emit("hold.expired", {
      holdId: h.id,
      amount: h.amount,
      feature: h.feature ?? null,
      reference: h.reference ?? null,
    });
  }
  return grants.length < limit && holds.length < limit;
}
