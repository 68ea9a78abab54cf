/**
 * Monthly periods: a team on a plan gets its free allocation once per period, and periods are
 * calendar months counted from the team's anchor (the moment it first got a plan), in UTC:
 *
 *   period n starts at the anchor's time of day on day min(anchorDay, days in that month) of the
 *   month n months after the anchor's, and ends where period n + 1 starts.
 *
 * So an anchor on the 31st gives periods starting Jan 31, Feb 28 (29 in a leap year), Mar 31,
 * Apr 30, …: the day clamps to a shorter month's last day and returns to the 31st when the month
 * has one. Periods never overlap and leave no gap. Pure: only arithmetic on milliseconds.
 */
import { assert } from "./assert";

function daysInMonth(year: number, month0: number): number {
  return new Date(Date.UTC(year, month0 + 1, 0)).getUTCDate();
}

/** When period `index` (0 = the one containing the anchor) starts. */
export function periodStartMs(anchorMs: number, index: number): number {
  assert(Number.isSafeInteger(index) && index >= 0, "a period index is a non-negative integer");
  const a = new Date(anchorMs);
  const months = a.getUTCMonth() + index;
  const year = a.getUTCFullYear() + Math.floor(months / 12);
  const month0 = months % 12;
  const day = Math.min(a.getUTCDate(), daysInMonth(year, month0));
  const timeOfDayMs = anchorMs - Date.UTC(a.getUTCFullYear(), a.getUTCMonth(), a.getUTCDate());
  return Date.UTC(year, month0, day) + timeOfDayMs;
}

/** The index of the period that contains `atMs` (0 for any time before the anchor's second period). */
export function periodIndexAt(anchorMs: number, atMs: number): number {
  if (atMs <= anchorMs) return 0;
  const a = new Date(anchorMs);
  const t = new Date(atMs);
  let n = Math.max(0, (t.getUTCFullYear() - a.getUTCFullYear()) * 12 + (t.getUTCMonth() - a.getUTCMonth()));
  while (n > 0 && periodStartMs(anchorMs, n) > atMs) n -= 1;
  while (periodStartMs(anchorMs, n + 1) <= atMs) n += 1;
  return n;
}

/** Period `index`'s bounds: [startsAtMs, endsAtMs). */
export function periodBounds(anchorMs: number, index: number): { startsAtMs: number; endsAtMs: number } {
  return { startsAtMs: periodStartMs(anchorMs, index), endsAtMs: periodStartMs(anchorMs, index + 1) };
}
