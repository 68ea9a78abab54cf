/**
 * What an entry does to the balance, the rule that ties the history to it:
 *
 *   available = Σ in − Σ out            (`none` moves nothing: a capture of credits a hold reserved)
 *   held      = Σ hold − Σ capture − Σ (in entries that carry a holdId: credits a hold gave back)
 *   total     = available + held
 *
 * and for every prefix of a team's history, Σ in − Σ out = the last entry's balanceAfter. The
 * same rule, in memory (entryEffect) and in SQL over either table's columns (the object's
 * reconciliation sums, D1's), so the two sides of a reconciliation cannot disagree on it.
 */
import type { EntryFields } from "./entry";

export interface Effect {
  available: number;
  held: number;
}

export function entryEffect(e: Pick<EntryFields, "type" | "direction" | "amountCredits" | "holdId">): Effect {
  const available = e.direction === "in" ? e.amountCredits : e.direction === "out" ? -e.amountCredits : 0;
  let held = 0;
  if (e.type === "hold") held = e.amountCredits;
  else if (e.type === "capture") held = -e.amountCredits;
  else if (e.direction === "in" && e.holdId !== null) held = -e.amountCredits;
  return { available, held };
}

/** entryEffect(e).available over the columns of an entries table. */
export const AVAILABLE_EFFECT_SQL =
  "CASE direction WHEN 'in' THEN amount_credits WHEN 'out' THEN -amount_credits ELSE 0 END";

/** entryEffect(e).held over the columns of an entries table. */
export const HELD_EFFECT_SQL = `CASE WHEN type = 'hold' THEN amount_credits WHEN type = 'capture' THEN -amount_credits
  WHEN direction = 'in' AND hold_id IS NOT NULL THEN -amount_credits ELSE 0 END`;
