/**
 * Low-balance events: the app is told once when a team's available credits cross below its
 * threshold (`balance.low`), once when they reach zero (`balance.depleted`), and once when a grant
 * lifts them back to the threshold or above (`balance.recovered`), not on every spend in
 * between. The state that makes "once per crossing" hold is one of three levels, kept by the team
 * object and moved only here. Pure.
 *
 *   level(available) = depleted when available = 0, low when available < threshold, else ok
 *
 * With threshold 0 a team is never `low`: it goes from ok to depleted and back.
 */
import type { EventType } from "./events";

export const BALANCE_LEVELS = ["ok", "low", "depleted"] as const;
export type BalanceLevel = (typeof BALANCE_LEVELS)[number];

export function balanceLevel(available: number, threshold: number): BalanceLevel {
  if (available === 0) return "depleted";
  return available < threshold ? "low" : "ok";
}

/** The events a move from `before` to the level of `available` emits, in order. */
export function crossing(
  before: BalanceLevel,
  available: number,
  threshold: number,
): {
  level: BalanceLevel;
  events: EventType[];
} {
  const level = balanceLevel(available, threshold);
  const events: EventType[] = [];
  if (level === before) return { level, events };
  if (level === "ok") events.push("balance.recovered");
  else {
    // Passing below the threshold on the way to zero is a crossing too (when there is a threshold).
    if (before === "ok" && threshold > 0) events.push("balance.low");
    if (level === "depleted") events.push("balance.depleted");
  }
  return { level, events };
}
