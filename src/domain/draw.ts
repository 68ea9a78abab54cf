/**
 * Drawing credits as pure functions: taking an amount across grants already in spending order
 * (spending-order.ts), splitting a hold's allocations for a capture, merging allocations. No I/O
 * here, so the rules are testable without a runtime; the team object loads state, calls these, and
 * writes what they decide.
 */
import { assert } from "./assert";
import type { OrderedGrant } from "./spending-order";

/** What the draw needs to know about a grant that can still be spent. */
export interface DrawableGrant extends OrderedGrant {
  id: string;
  /** Spendable now: not spent and not reserved by a hold. */
  remaining: number;
}

export interface Allocation {
  grantId: string;
  amount: number;
}

export type DrawResult = { ok: true; allocations: Allocation[] } | { ok: false; available: number };

/**
 * Takes `amount` from grants already in spending order, first grant first. Returns one allocation
 * per grant touched, or, when they do not cover the amount, the credits they do hold.
 */
export function draw(grants: Iterable<DrawableGrant>, amount: number): DrawResult {
  assert(Number.isSafeInteger(amount) && amount > 0, "draw amount must be a positive safe integer");
  const allocations: Allocation[] = [];
  let left = amount;
  for (const grant of grants) {
    const take = Math.min(grant.remaining, left);
    if (take > 0) {
      allocations.push({ grantId: grant.id, amount: take });
      left -= take;
    }
    // Stop reading grants as soon as the amount is covered: the spend path reads no more rows
    // than it touches.
    if (left === 0) return { ok: true, allocations };
  }
  return { ok: false, available: amount - left };
}

/**
 * Splits a hold's allocations for a capture of `captureAmount`: the grants drawn first are
 * captured first; what is not captured goes back to the grants it came from.
 */
export function splitCapture(
  allocations: readonly Allocation[],
  captureAmount: number,
): { captured: Allocation[]; returned: Allocation[] } {
  const total = allocations.reduce((sum, a) => sum + a.amount, 0);
  assert(captureAmount >= 0 && captureAmount <= total, "capture must be within the hold");
  const captured: Allocation[] = [];
  const returned: Allocation[] = [];
  let left = captureAmount;
  for (const a of allocations) {
    const take = Math.min(a.amount, left);
    left -= take;
    if (take > 0) captured.push({ grantId: a.grantId, amount: take });
    if (a.amount - take > 0) returned.push({ grantId: a.grantId, amount: a.amount - take });
  }
  return { captured, returned };
}

/** Adds allocations for the same grant together, keeping first-seen order. */
export function mergeAllocations(a: readonly Allocation[], b: readonly Allocation[]): Allocation[] {
  const byGrant = new Map<string, number>();
  for (const x of [...a, ...b]) byGrant.set(x.grantId, (byGrant.get(x.grantId) ?? 0) + x.amount);
  return [...byGrant].map(([grantId, amount]) => ({ grantId, amount }));
}
