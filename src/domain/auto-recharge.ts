/**
 * When a team's object starts an auto-recharge (every billing product we compared has one):
 *
 * - only while it is on, and only once `available` is below its threshold;
 * - never while another is in flight (started and not yet credited or failed);
 * - at most `maxPerMonth` started per calendar month (UTC), whatever their outcome;
 * - after AUTO_RECHARGE_MAX_FAILURES failed payments in a row, it turns itself off, and says so.
 *
 * The payment itself leaves from the object's alarm, never from inside the spend that crossed the
 * threshold; its credits arrive with Stripe's payment_intent.succeeded, exactly once. Pure.
 */
import type { AutoRecharge } from "./vocabulary";

/** The calendar month (UTC) a recharge counts against: "2026-12". */
export function rechargeMonth(nowMs: number): string {
  return new Date(nowMs).toISOString().slice(0, 7);
}

export type RechargeDecision = { start: true } | { start: false; why: string };

export function shouldRecharge(
  settings: AutoRecharge | null,
  available: number,
  state: { inFlight: boolean; startedThisMonth: number },
): RechargeDecision {
  if (!settings?.enabled) return { start: false, why: "off" };
  if (available >= settings.thresholdCredits) return { start: false, why: "above threshold" };
  if (state.inFlight) return { start: false, why: "one in flight" };
  if (state.startedThisMonth >= settings.maxPerMonth) return { start: false, why: "monthly cap reached" };
  return { start: true };
}

/** After a failed payment: the failures in a row, and whether auto-recharge turns itself off. */
export function afterFailure(consecutiveFailures: number, maxFailures: number): { failures: number; disable: boolean } {
  const failures = consecutiveFailures + 1;
  return { failures, disable: failures >= maxFailures };
}
