/**
 * Test helpers: calls through the worker (black box), a fresh team id per test, and the ledger's
 * invariants checked from inside the team object (white box) after every scenario.
 */
import { runInDurableObject, SELF } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { expect } from "vitest";
import type { TeamLedger } from "../src/ledger/team-ledger";

export const ADMIN_KEY = "test-admin-key";
const BASE = "https://ledger.test";

let counter = 0;
/** A team id no other test uses: storage persists within a test file. */
export function newTeamId(prefix = "team"): string {
  counter += 1;
  return `${prefix}-${Date.now().toString(36)}-${counter}-${crypto.randomUUID().slice(0, 8)}`;
}

let keyCounter = 0;
export function newKey(): string {
  keyCounter += 1;
  return `key-${keyCounter}-${crypto.randomUUID()}`;
}

export interface CallOptions {
  method?: string;
  body?: unknown;
  /** Raw body text, sent as is (for malformed JSON and oversized bodies). */
  rawBody?: string;
  idempotencyKey?: string;
  headers?: Record<string, string>;
  /** false: no Authorization header; a string: that header value. */
  auth?: false | string;
}

export interface CallResult<T = Record<string, unknown>> {
  status: number;
  headers: Headers;
  body: T;
  text: string;
}

/** Calls the worker with the admin key and JSON, and parses the reply. */
export async function call<T = Record<string, unknown>>(path: string, opts: CallOptions = {}): Promise<CallResult<T>> {
  const headers: Record<string, string> = { ...opts.headers };
  if (opts.auth !== false) headers.authorization = opts.auth ?? `Bearer ${ADMIN_KEY}`;
  let body: string | undefined;
  if (opts.rawBody !== undefined) body = opts.rawBody;
  else if (opts.body !== undefined) body = JSON.stringify(opts.body);
  if (body !== undefined && !("content-type" in headers)) headers["content-type"] = "application/json";
  if (opts.idempotencyKey) headers["idempotency-key"] = opts.idempotencyKey;
  const res = await SELF.fetch(`${BASE}${path}`, {
    method: opts.method ?? (body === undefined ? "GET" : "POST"),
    headers,
    body,
  });
  return readResponse<T>(res);
}

/** A response as a CallResult: status, headers, the text and its JSON (null when it is not JSON). */
export async function readResponse<T = Record<string, unknown>>(res: Response): Promise<CallResult<T>> {
  const text = await res.text();
  let parsed: unknown = null;
  try {
    parsed = text ? JSON.parse(text) : null;
  } catch {
    parsed = null;
  }
  return { status: res.status, headers: res.headers, body: parsed as T, text };
}

/** Fails with the whole response when the status is not the expected one. */
export function expectStatus(res: CallResult<unknown>, status: number): void {
  expect(res.status, `expected ${status}, got ${res.status}: ${res.text}`).toBe(status);
}

export async function createTeam(teamId: string, body: Record<string, unknown> = {}): Promise<void> {
  const res = await call(`/v1/teams/${teamId}`, { method: "PUT", body });
  expectStatus(res, 201);
}

export async function grant(
  teamId: string,
  amount: number,
  extra: Record<string, unknown> = {},
): Promise<{ id: string; [k: string]: unknown }> {
  const res = await call<{ grant: { id: string } }>(`/v1/teams/${teamId}/grants`, {
    body: { amount, category: "paid", source: "purchase", ...extra },
    idempotencyKey: newKey(),
  });
  expectStatus(res, 201);
  return res.body.grant;
}

export async function spend(teamId: string, amount: number, key = newKey(), extra: Record<string, unknown> = {}) {
  return call<Record<string, unknown>>(`/v1/teams/${teamId}/spends`, {
    body: { feature: "test_feature", amount, ...extra },
    idempotencyKey: key,
  });
}

export async function balance(teamId: string) {
  const res = await call<{ available: number; held: number; total: number; byCategory: Record<string, number> }>(
    `/v1/teams/${teamId}/balance`,
  );
  expectStatus(res, 200);
  return res.body;
}

export function ledgerStub(teamId: string) {
  return env.TEAM_LEDGER.get(env.TEAM_LEDGER.idFromName(teamId));
}

type Row = Record<string, SqlStorageValue>;

/** Reads rows from the team object's own SQLite database. */
export async function objectRows<T extends Row>(
  teamId: string,
  query: string,
  ...args: SqlStorageValue[]
): Promise<T[]> {
  return runInDurableObject(ledgerStub(teamId), (_instance: TeamLedger, state) =>
    state.storage.sql.exec<T>(query, ...args).toArray(),
  );
}

/**
 * The ledger's invariants, checked from the object's tables and the public balance:
 * - the signed sum of entries equals available (captures move held credits to spent, not available);
 * - held equals hold entries minus captures minus credits returned from holds, and the pending holds;
 * - every entry's balanceAfter follows from the one before it; none is negative;
 * - each resolved hold is accounted for exactly once: captured + returned = its amount;
 * - grants: remaining and held are never negative, and live grants add up to available + held.
 */
export async function assertInvariants(teamId: string): Promise<void> {
  const bal = await balance(teamId);
  const entries = await objectRows<{
    seq: number;
    type: string;
    direction: string;
    amount: number;
    balance_after: number;
    hold_id: string | null;
  }>(teamId, "SELECT seq, type, direction, amount, balance_after, hold_id FROM entries ORDER BY seq");
  let running = 0;
  let held = 0;
  let prevSeq = 0;
  for (const e of entries) {
    expect(e.seq, "entries are numbered without gaps").toBe(prevSeq + 1);
    prevSeq = e.seq;
    if (e.type === "capture") {
      held -= e.amount;
    } else {
      running += e.direction === "in" ? e.amount : -e.amount;
      if (e.type === "hold") held += e.amount;
      if (e.direction === "in" && e.hold_id !== null) held -= e.amount;
    }
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
       SUM(CASE WHEN type = 'hold' THEN amount ELSE 0 END) AS reserved,
       SUM(CASE WHEN type = 'capture' THEN amount ELSE 0 END) AS captured,
       SUM(CASE WHEN direction = 'in' THEN amount ELSE 0 END) AS returned
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
