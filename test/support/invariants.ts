/**
 * The ledger's invariants, checked after every scenario: from the team object's own tables
 * (white box) and from the history as a client reads it (black box), plus a snapshot of a team's
 * state to prove that a refused request wrote nothing.
 */
import { expect } from "vitest";
import { api, expectProblem, expectStatus } from "./calls";
import { lineProblems } from "./history-lines";
import { objectRows } from "./object";
import { allEntries, balance } from "./operations";
import type { EntryT } from "./wire";

/** The history as a client reads it follows the line-by-line rule (history-lines.ts). */
export function expectHistoryAddsUp(entries: readonly EntryT[], available: number): void {
  expect(lineProblems(entries, available)).toEqual([]);
}

/** The signed amount of an entry: in +, out −, none 0 (domain/entry-effect.ts). */
const signed = (direction: string, amount: number): number =>
  direction === "in" ? amount : direction === "out" ? -amount : 0;

/**
 * Every invariant of a team:
 * - the history through the API (D1 completed by the object) adds up line by line to available;
 * - the object's own entries do too, and held = holds − captures − credits holds gave back;
 * - pending holds add up to held; each resolved hold is accounted for exactly once;
 * - grants: remaining and held are never negative, and live grants add up to available + held.
 */
export async function assertInvariants(teamId: string): Promise<void> {
  const bal = await balance(teamId);
  // A subaccount drawing from its agency's pool shows the pool's balance: the invariants are the
  // pool's (its own credits are checked once its agency stops sharing).
  if (bal.poolTeamId !== teamId) return assertInvariants(bal.poolTeamId);
  expectHistoryAddsUp(await allEntries(teamId), bal.available);
  await assertObjectInvariants(teamId);
}

/**
 * The invariants of the team object alone, for tests that tampered with the D1 replica on purpose
 * (the history read through the API then shows the tampering; the object must still hold).
 */
export async function assertObjectInvariants(teamId: string): Promise<void> {
  const bal = await balance(teamId);
  const entries = await objectRows<{
    seq: number;
    type: string;
    direction: string;
    amount: number;
    balance_after: number;
    hold_id: string | null;
  }>(
    teamId,
    `SELECT seq, type, direction, amount_credits AS amount, balance_after_credits AS balance_after, hold_id
     FROM entries ORDER BY seq`,
  );
  let running = 0;
  let held = 0;
  let prevSeq = 0;
  for (const e of entries) {
    expect(e.seq, "entries are numbered without gaps").toBe(prevSeq + 1);
    prevSeq = e.seq;
    running += signed(e.direction, e.amount);
    if (e.type === "hold") held += e.amount;
    else if (e.type === "capture") held -= e.amount;
    else if (e.direction === "in" && e.hold_id !== null) held -= e.amount;
    expect(running, `available never below zero (seq ${e.seq})`).toBeGreaterThanOrEqual(0);
    expect(e.balance_after, `balanceAfter of seq ${e.seq} follows from the entries before it`).toBe(running);
  }
  expect(running, "sum of entries = available").toBe(bal.available);
  expect(held, "held from entries = held").toBe(bal.held);
  expect(bal.total).toBe(bal.available + bal.held);

  const [holdTotals] = await objectRows<{ pending: number | null }>(
    teamId,
    "SELECT SUM(amount) AS pending FROM holds WHERE status = 'pending'",
  );
  expect(holdTotals?.pending ?? 0, "pending holds = held").toBe(bal.held);

  const holds = await objectRows<{ id: string; amount: number; status: string; captured_amount: number }>(
    teamId,
    "SELECT id, amount, status, captured_amount FROM holds",
  );
  const perHold = await objectRows<{ hold_id: string; reserved: number; captured: number; returned: number }>(
    teamId,
    `SELECT hold_id,
       SUM(CASE WHEN type = 'hold' THEN amount_credits ELSE 0 END) AS reserved,
       SUM(CASE WHEN type = 'capture' THEN amount_credits ELSE 0 END) AS captured,
       SUM(CASE WHEN direction = 'in' THEN amount_credits ELSE 0 END) AS returned
     FROM entries WHERE hold_id IS NOT NULL GROUP BY hold_id`,
  );
  const byHold = new Map(perHold.map((h) => [h.hold_id, h]));
  for (const h of holds) {
    const sums = byHold.get(h.id);
    expect(sums?.reserved, `hold ${h.id} reserved its amount`).toBe(h.amount);
    if (h.status === "pending") {
      expect(sums?.captured, `pending hold ${h.id} has no capture`).toBe(0);
      expect(sums?.returned, `pending hold ${h.id} returned nothing`).toBe(0);
    } else {
      expect(sums?.captured, `hold ${h.id} captured once`).toBe(h.captured_amount);
      expect((sums?.captured ?? 0) + (sums?.returned ?? 0), `hold ${h.id} resolved exactly once`).toBe(h.amount);
    }
  }

  const [grantTotals] = await objectRows<{ remaining: number | null; held: number | null; bad: number }>(
    teamId,
    `SELECT SUM(CASE WHEN status = 'active' THEN remaining ELSE 0 END) AS remaining, SUM(held) AS held,
       SUM(CASE WHEN remaining < 0 OR held < 0 THEN 1 ELSE 0 END) AS bad FROM grants`,
  );
  expect(grantTotals?.bad ?? 0, "no grant below zero").toBe(0);
  expect(grantTotals?.remaining ?? 0, "live grants hold the available credits").toBe(bal.available);
  expect(grantTotals?.held ?? 0, "grants hold the held credits").toBe(bal.held);
}

/**
 * Everything a request could have changed in a team: the balance with its grants, the number of
 * entries, the holds and the successes saved under idempotency keys. Equal snapshots mean nothing
 * was written but, possibly, the refusal a key now replays (see savedRefusals).
 */
export async function snapshot(teamId: string) {
  const bal = await balance(teamId);
  const [entries] = await objectRows<{ n: number; last: number | null }>(
    teamId,
    "SELECT COUNT(*) AS n, MAX(seq) AS last FROM entries",
  );
  const holds = await objectRows(
    teamId,
    "SELECT id, amount, captured_amount, status, expires_at FROM holds ORDER BY id",
  );
  const grants = await objectRows(teamId, "SELECT id, remaining, held, status FROM grants ORDER BY seq");
  const [idem] = await objectRows<{ n: number }>(teamId, "SELECT COUNT(*) AS n FROM idempotency WHERE status <> 0");
  const team = await api(`/v1/teams/${teamId}`);
  expectStatus(team, 200);
  return { balance: bal, entries, holds, grants, savedSuccesses: idem?.n, team: team.body };
}

/** The refusals saved under idempotency keys (status 0, see src/object/schema.ts v3), by key. */
export async function savedRefusals(teamId: string): Promise<Map<string, { code: string; requestId: string }>> {
  const rows = await objectRows<{ key: string; body: string }>(
    teamId,
    "SELECT key, body FROM idempotency WHERE status = 0",
  );
  return new Map(rows.map((r) => [r.key, JSON.parse(r.body) as { code: string; requestId: string }]));
}

/** The team does not exist (and a request did not create it). */
export async function expectNoTeam(teamId: string): Promise<void> {
  expectProblem(await api(`/v1/teams/${teamId}`), 404, "not_found");
}
