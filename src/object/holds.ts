/**
 * Holds: credits reserved now and resolved exactly once later, by a capture (all or part spent,
 * the rest returned), a release (all returned) or the deadline (expire). Extend adds credits or
 * moves the deadline. The hold entry takes its credits out of `available`; the capture entry then
 * moves nothing (`direction: "none"`): the credits it spends left the balance with the hold.
 * A hold draws as a spend of its feature would (domain/spending-order.ts: unrestricted credits and
 * those restricted to that feature; a hold without a feature, unrestricted ones only), and every
 * credit it gives back returns to the grant it came from, restriction and all.
 */
import { assert } from "../domain/assert";
import { type Allocation, draw, mergeAllocations, splitCapture } from "../domain/draw";
import { type Failure, failure, insufficient } from "../domain/failure";
import type { Attribution, HoldInput, HoldReply, Outcome } from "../domain/vocabulary";
import { MAX_AMOUNT_CREDITS } from "../limits";
import { publicHold, type StoredHold } from "./hold-store";
import { type LedgerTx, newId } from "./ledger-tx";

export function createHold(tx: LedgerTx, input: HoldInput): Outcome<HoldReply> {
  const drawn = draw(tx.drawable(input.feature ?? null), input.amount);
  if (!drawn.ok) return insufficient(input.amount, drawn.available);
  const id = newId("hld");
  reserve(tx, id, drawn.allocations, input);
  tx.store.holds.insert({
    id,
    amount: input.amount,
    expiresAtMs: tx.nowMs + input.ttlSeconds * 1000,
    createdAtMs: tx.nowMs,
    feature: input.feature,
    quantity: input.quantity,
    tier: input.tier,
    unitCredits: input.unitCredits,
    priceVersion: input.priceVersion,
    dimensions: input.dimensions,
    reference: input.reference,
    allocations: drawn.allocations,
    actor: input.actor,
    memberTeamId: input.memberTeamId,
  });
  return holdReply(tx, id, 201);
}

export function captureHold(tx: LedgerTx, holdId: string, amount: number | undefined): Outcome<HoldReply> {
  const h = pendingHold(tx, holdId);
  if ("ok" in h) return h;
  const captureAmount = amount ?? h.amount;
  if (captureAmount > h.amount)
    return failure("invalid_request", `capture amount ${captureAmount} exceeds the hold's ${h.amount}`, {
      held: h.amount,
    });
  endHold(tx, h, "captured", captureAmount, null);
  return holdReply(tx, holdId, 200);
}

export function releaseHold(tx: LedgerTx, holdId: string, reason: string | undefined): Outcome<HoldReply> {
  const h = pendingHold(tx, holdId);
  if ("ok" in h) return h;
  endHold(tx, h, "released", 0, reason ?? null);
  return holdReply(tx, holdId, 200);
}

export function extendHold(
  tx: LedgerTx,
  holdId: string,
  extra: number | undefined,
  ttlSeconds: number | undefined,
): Outcome<HoldReply> {
  const h = pendingHold(tx, holdId);
  if ("ok" in h) return h;
  let allocations = h.allocations;
  if (extra !== undefined && extra > 0) {
    const drawn = draw(tx.drawable(h.feature ?? null), extra);
    if (!drawn.ok) return insufficient(extra, drawn.available);
    if (h.amount + extra > MAX_AMOUNT_CREDITS)
      return failure("invalid_request", `a hold carries at most ${MAX_AMOUNT_CREDITS} credits`);
    reserve(tx, holdId, drawn.allocations, h);
    allocations = mergeAllocations(h.allocations, drawn.allocations);
  }
  const expiresAtMs = ttlSeconds !== undefined ? tx.nowMs + ttlSeconds * 1000 : Date.parse(h.expiresAt);
  tx.store.holds.extend(holdId, { amount: h.amount + (extra ?? 0), expiresAtMs, allocations });
  return holdReply(tx, holdId, 200);
}

type HoldLabel = Pick<
  HoldInput,
  "feature" | "quantity" | "tier" | "unitCredits" | "priceVersion" | "dimensions" | "reference"
> &
  Attribution;

function reserve(tx: LedgerTx, holdId: string, allocations: Allocation[], label: HoldLabel): void {
  for (const a of allocations) {
    tx.store.grants.adjust(a.grantId, { remaining: -a.amount, held: a.amount });
    tx.entry({
      type: "hold",
      direction: "out",
      amount: a.amount,
      grantId: a.grantId,
      holdId,
      feature: label.feature,
      quantity: label.quantity,
      tier: label.tier,
      unitCredits: label.unitCredits,
      priceVersion: label.priceVersion,
      dimensions: label.dimensions,
      reference: label.reference,
      actor: label.actor,
      memberTeamId: label.memberTeamId,
    });
  }
}

function pendingHold(tx: LedgerTx, holdId: string): StoredHold | Failure {
  const h = tx.store.holds.get(holdId);
  if (!h) return failure("not_found", `hold ${holdId} not found`);
  if (h.status !== "pending")
    return failure("hold_not_pending", `hold ${holdId} is ${h.status}`, { holdStatus: h.status });
  return h;
}

/**
 * Resolves a pending hold once: the captured part is spent for good (a `none` entry: it left the
 * available balance when the hold was made); the rest goes back to the grants it came from, and
 * expires or is voided at once if that grant ended meanwhile.
 */
export function endHold(
  tx: LedgerTx,
  h: StoredHold,
  status: "captured" | "released" | "expired",
  captureAmount: number,
  reason: string | null,
): void {
  const { captured, returned } = splitCapture(h.allocations, captureAmount);
  const who = { actor: h.actor, memberTeamId: h.memberTeamId };
  for (const a of captured) {
    tx.store.grants.adjust(a.grantId, { remaining: 0, held: -a.amount });
    tx.entry({
      type: "capture",
      direction: "none",
      amount: a.amount,
      grantId: a.grantId,
      holdId: h.id,
      feature: h.feature,
      quantity: h.quantity,
      tier: h.tier,
      unitCredits: h.unitCredits,
      priceVersion: h.priceVersion,
      dimensions: h.dimensions,
      reference: h.reference,
      ...who,
    });
  }
  const returnType = status === "expired" ? "expire" : "release";
  for (const a of returned) {
    const g = tx.store.grants.get(a.grantId);
    assert(g && g.held >= a.amount, "returned credits were held by their grant");
    const grantLive =
      (g.status === "active" || g.status === "depleted") && (g.expiresAtMs === null || g.expiresAtMs > tx.nowMs);
    const giveBack = { type: returnType, direction: "in", amount: a.amount, grantId: a.grantId, holdId: h.id } as const;
    if (grantLive) {
      tx.store.grants.adjust(a.grantId, { remaining: a.amount, held: -a.amount });
      tx.entry({ ...giveBack, reference: h.reference, ...who });
      continue;
    }
    // The grant ended while the hold had its credits: they come back and leave in one step.
    if (g.status === "active") {
      // Due but not yet settled (settling is bounded per call): settle this grant now. As in
      // settle(): the balance stopped counting it at its expiry; count it back, then let the
      // expire entry move the balance.
      const unreserved = g.remaining - g.held;
      tx.store.grants.end(g.id, "expired");
      tx.recount(unreserved);
      if (unreserved > 0) tx.entry({ type: "expire", direction: "out", amount: unreserved, grantId: g.id });
    }
    tx.store.grants.adjust(a.grantId, { remaining: 0, held: -a.amount });
    tx.entry({ ...giveBack, reference: h.reference, ...who });
    tx.entry({
      type: g.status === "voided" ? "void" : "expire",
      direction: "out",
      amount: a.amount,
      grantId: a.grantId,
      holdId: h.id,
      ...who,
    });
  }
  tx.store.holds.resolve(h.id, status, captureAmount, tx.nowMs, reason);
}

function holdReply(tx: LedgerTx, holdId: string, status: 200 | 201): Outcome<HoldReply> {
  const h = tx.store.holds.get(holdId);
  assert(h, "hold just written");
  return { ok: true, status, body: { hold: publicHold(h), entries: tx.written, balance: tx.balance() } };
}
