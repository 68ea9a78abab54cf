/**
 * Spends: one charge, or a batch of charges in one transaction (all or nothing, or until one does
 * not fit). A spend draws from the grants its feature may draw (unrestricted ones and those
 * restricted to that feature: domain/spending-order.ts), in spending order, and writes one `out`
 * entry per grant. A refusal's `available` is what that feature could draw.
 */

import { assert } from "../domain/assert";
import { type Allocation, draw } from "../domain/draw";
import { insufficient } from "../domain/failure";
import { mayDraw } from "../domain/spending-order";
import type {
  BatchItemResult,
  BatchMode,
  BatchReply,
  ChargeInput,
  Outcome,
  Spend,
  SpendReply,
} from "../domain/vocabulary";
import { type LedgerTx, newId } from "./ledger-tx";
import { iso } from "./time";

export function spend(tx: LedgerTx, input: ChargeInput): Outcome<SpendReply> {
  // Only the grants this feature may draw, filtered in SQL: a refusal's `available` is theirs.
  const drawn = draw(tx.drawable(input.feature), input.amount);
  if (!drawn.ok) return insufficient(input.amount, drawn.available);
  const written = writeSpend(tx, input, drawn.allocations);
  return { ok: true, status: 201, body: { spend: written, entries: tx.written, balance: tx.balance() } };
}

/**
 * Writes a spend's entries. `grantDebits` collects what to take from each grant when the caller
 * applies it once for many spends (a batch); without it each grant is updated here.
 */
function writeSpend(
  tx: LedgerTx,
  input: ChargeInput,
  allocations: Allocation[],
  grantDebits?: Map<string, number>,
): Spend {
  const spent: Spend = {
    id: newId("spd"),
    amount: input.amount,
    feature: input.feature,
    quantity: input.quantity ?? 1,
    createdAt: iso(tx.nowMs),
  };
  if (input.tier) spent.tier = input.tier;
  if (input.unitCredits !== undefined) spent.unitCredits = input.unitCredits;
  if (input.priceVersion !== undefined) spent.priceVersion = input.priceVersion;
  if (input.dimensions) spent.dimensions = input.dimensions;
  if (input.reference) spent.reference = input.reference;
  for (const a of allocations) {
    if (grantDebits) grantDebits.set(a.grantId, (grantDebits.get(a.grantId) ?? 0) + a.amount);
    else tx.store.grants.adjust(a.grantId, { remaining: -a.amount, held: 0 });
    tx.entry({
      type: "spend",
      direction: "out",
      amount: a.amount,
      grantId: a.grantId,
      spendId: spent.id,
      feature: input.feature,
      quantity: spent.quantity,
      tier: input.tier,
      unitCredits: input.unitCredits,
      priceVersion: input.priceVersion,
      dimensions: input.dimensions,
      reference: input.reference,
      actor: input.actor,
      memberTeamId: input.memberTeamId,
    });
  }
  return spent;
}

export function spendBatch(tx: LedgerTx, items: ChargeInput[], mode: BatchMode): Outcome<BatchReply> {
  // One read of the live grants for the whole batch; each item draws from those of this list its
  // feature may draw (the same order, so the same draw as its own spend would make).
  const grants = [...tx.drawable()];
  // What each restricted grant held before the batch drew from it; null for a team without any
  // (the usual case), whose items then draw from the whole list as before.
  const restrictedOpening = grants.some((g) => g.restrictedFeature !== null)
    ? grants.flatMap((g) =>
        g.restrictedFeature === null ? [] : [{ feature: g.restrictedFeature, remaining: g.remaining }],
      )
    : null;
  const plans: { index: number; input: ChargeInput; allocations: Allocation[] }[] = [];
  const results: BatchItemResult[] = [];
  let stopped = false;
  for (const [index, input] of items.entries()) {
    if (stopped) {
      results.push({ index, status: "skipped" });
      continue;
    }
    const usable = restrictedOpening ? grants.filter((g) => mayDraw(g, input.feature)) : grants;
    const drawn = draw(usable, input.amount);
    if (!drawn.ok) {
      if (mode === "all_or_nothing") {
        const required = items.reduce((sum, i) => sum + i.amount, 0);
        return insufficient(required, batchAvailable(tx.available, items, restrictedOpening), {
          failedIndex: index,
        });
      }
      results.push({ index, status: "insufficient", required: input.amount, available: drawn.available });
      stopped = true;
      continue;
    }
    for (const a of drawn.allocations) {
      const g = grants.find((x) => x.id === a.grantId);
      assert(g, "allocated grant is in the list");
      g.remaining -= a.amount;
    }
    plans.push({ index, input, allocations: drawn.allocations });
    results.push({ index, status: "skipped" }); // replaced below once written
  }
  // One UPDATE per grant touched, not one per item: a batch of 1,000 spends on one grant
  // writes the grant once.
  const grantDebits = new Map<string, number>();
  for (const plan of plans) {
    const before = tx.written.length;
    const written = writeSpend(tx, plan.input, plan.allocations, grantDebits);
    results[plan.index] = {
      index: plan.index,
      status: "spent",
      spend: written,
      entryCount: tx.written.length - before,
    };
  }
  for (const [grantId, amount] of grantDebits) tx.store.grants.adjust(grantId, { remaining: -amount, held: 0 });
  return { ok: true, status: 200, body: { results, balance: tx.balance() } };
}

/**
 * What a batch's features could draw between them before it began: `available`, less the credits
 * restricted to features none of its items is for (nothing to take off for a team without any).
 */
function batchAvailable(
  available: number,
  items: readonly ChargeInput[],
  restrictedOpening: readonly { feature: string; remaining: number }[] | null,
): number {
  if (!restrictedOpening) return available;
  const features = new Set(items.map((i) => i.feature));
  return restrictedOpening.reduce((sum, g) => (features.has(g.feature) ? sum : sum - g.remaining), available);
}
