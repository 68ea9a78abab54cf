/**
 * Helpers for the black-box route tests: a `call` that also checks what every response must
 * carry (no 500, an X-Request-Id, problem+json on errors), problem assertions, and a snapshot of
 * a team's state to prove that a refused request wrote nothing.
 */
import { expect } from "vitest";
import type { Balance, BalanceSummary, Entry, Grant, Hold, Spend, Team } from "../../src/ledger/types";
import { ADMIN_KEY, type CallOptions, type CallResult, call, expectStatus, newKey, objectRows } from "../helpers";

export { ADMIN_KEY };

export interface Problem {
  type: string;
  title: string;
  status: number;
  detail: string;
  code: string;
  requestId: string;
  [extra: string]: unknown;
}

// What the API returns, typed with the service's own types (one definition, not a copy).
export type EntryT = Entry;
export type GrantT = Grant;
export type BalanceSummaryT = BalanceSummary;
export type BalanceT = Balance;
export type HoldT = Hold;
export type SpendT = Spend;
export type TeamT = Team;

export interface GrantReplyT {
  grant: GrantT;
  entries: EntryT[];
  balance: BalanceSummaryT;
}
export interface SpendReplyT {
  spend: SpendT;
  entries: EntryT[];
  balance: BalanceSummaryT;
}
export interface HoldReplyT {
  hold: HoldT;
  entries: EntryT[];
  balance: BalanceSummaryT;
}
export type BatchResultT =
  | { index: number; status: "spent"; spend: SpendT; entryCount: number }
  | { index: number; status: "insufficient"; required: number; available: number }
  | { index: number; status: "skipped" };
export interface BatchReplyT {
  results: BatchResultT[];
  balance: BalanceSummaryT;
}
export interface EntriesPageT {
  entries: EntryT[];
  nextCursor: string | null;
}

/**
 * `call` plus what every response must satisfy: never a 500, always an X-Request-Id, and every
 * error as application/problem+json with the full RFC 9457 shape and the same request id.
 */
export async function api<T = Record<string, unknown>>(path: string, opts: CallOptions = {}): Promise<CallResult<T>> {
  const res = await call<T>(path, opts);
  const what = `${opts.method ?? (opts.body === undefined && opts.rawBody === undefined ? "GET" : "POST")} ${path}`;
  expect(res.status, `no 500 on ${what}: ${res.text.slice(0, 500)}`).toBeLessThan(500);
  const requestId = res.headers.get("x-request-id");
  expect(requestId, `X-Request-Id on ${what}`).toBeTruthy();
  if (res.status >= 400) assertProblemShape(res, what);
  return res;
}

function assertProblemShape(res: CallResult<unknown>, what: string): void {
  expect(res.headers.get("content-type"), `problem+json on ${what}`).toContain("application/problem+json");
  const body = res.body as Partial<Problem> | null;
  expect(body, `a problem body on ${what}: ${res.text.slice(0, 300)}`).not.toBeNull();
  expect(typeof body?.type).toBe("string");
  expect(typeof body?.title).toBe("string");
  expect(body?.title?.length).toBeGreaterThan(0);
  expect(body?.status).toBe(res.status);
  expect(typeof body?.detail).toBe("string");
  expect(body?.detail?.length).toBeGreaterThan(0);
  expect(typeof body?.code).toBe("string");
  expect(body?.requestId).toBe(res.headers.get("x-request-id"));
}

/** The response is the problem with this status and code. */
export function expectProblem(res: CallResult<unknown>, status: number, code: string): Problem {
  expectStatus(res, status);
  assertProblemShape(res, `response with ${status}`);
  const body = res.body as Problem;
  expect(body.code, res.text).toBe(code);
  expect(body.type).toMatch(/^https:\/\//);
  return body;
}

/** A team created through PUT. */
export async function newTeam(teamId: string, body: Record<string, unknown> = {}): Promise<TeamT> {
  const res = await api<TeamT>(`/v1/teams/${teamId}`, { method: "PUT", body });
  expectStatus(res, 201);
  return res.body;
}

/** A grant through the API; fails the test unless 201. */
export async function addGrant(
  teamId: string,
  amount: number,
  extra: Record<string, unknown> = {},
): Promise<GrantReplyT> {
  const res = await api<GrantReplyT>(`/v1/teams/${teamId}/grants`, {
    body: { amount, category: "paid", source: "purchase", ...extra },
    idempotencyKey: newKey(),
  });
  expectStatus(res, 201);
  return res.body;
}

export async function getBalance(teamId: string): Promise<BalanceT> {
  const res = await api<BalanceT>(`/v1/teams/${teamId}/balance`);
  expectStatus(res, 200);
  return res.body;
}

export async function createHold(
  teamId: string,
  amount: number,
  ttlSeconds = 3600,
  extra: Record<string, unknown> = {},
): Promise<HoldReplyT> {
  const res = await api<HoldReplyT>(`/v1/teams/${teamId}/holds`, {
    body: { amount, ttlSeconds, feature: "render", ...extra },
    idempotencyKey: newKey(),
  });
  expectStatus(res, 201);
  return res.body;
}

/** Every entry of a team through the API, newest first, following cursors. */
export async function allEntries(teamId: string, query = ""): Promise<EntryT[]> {
  const out: EntryT[] = [];
  let cursor: string | null = null;
  for (let page = 0; page < 1000; page++) {
    const params = new URLSearchParams(query);
    params.set("limit", "200");
    if (cursor !== null) params.set("cursor", cursor);
    const res: CallResult<EntriesPageT> = await api<EntriesPageT>(`/v1/teams/${teamId}/entries?${params}`);
    expectStatus(res, 200);
    out.push(...res.body.entries);
    cursor = res.body.nextCursor;
    if (cursor === null) return out;
  }
  throw new Error("entries did not end");
}

/**
 * Everything a request could have changed in a team: the balance with its grants, the number of
 * entries, the holds and the stored idempotency keys. Equal snapshots mean nothing was written.
 */
export async function snapshot(teamId: string) {
  const balance = await getBalance(teamId);
  const [entries] = await objectRows<{ n: number; last: number | null }>(
    teamId,
    "SELECT COUNT(*) AS n, MAX(seq) AS last FROM entries",
  );
  const holds = await objectRows(
    teamId,
    "SELECT id, amount, captured_amount, status, expires_at FROM holds ORDER BY id",
  );
  const grants = await objectRows(teamId, "SELECT id, remaining, held, status FROM grants ORDER BY seq");
  const [idem] = await objectRows<{ n: number }>(teamId, "SELECT COUNT(*) AS n FROM idempotency");
  const team = await api(`/v1/teams/${teamId}`);
  expectStatus(team, 200);
  return { balance, entries, holds, grants, idempotencyKeys: idem?.n, team: team.body };
}

/** The team does not exist (and a request did not create it). */
export async function expectNoTeam(teamId: string): Promise<void> {
  expectProblem(await api(`/v1/teams/${teamId}`), 404, "not_found");
}

/** An id of the service's shape that it never issued. */
export function unknownId(prefix: "grt" | "hld"): string {
  return `${prefix}_${crypto.randomUUID().replaceAll("-", "")}`;
}

/** Days from now as an ISO string; far enough that nothing expires during a test. */
export function daysFromNow(days: number): string {
  return new Date(Date.now() + days * 86_400_000).toISOString();
}

/** The amounts no route may accept: not positive, not whole, not numbers, unsafe or too big. */
export const BAD_AMOUNTS: readonly [string, unknown][] = [
  ["negative", -5],
  ["zero", 0],
  ["fractional", 1.5],
  ["a string", "10"],
  ["null", null],
  ["a boolean", true],
  ["unsafe", 2 ** 53 + 2],
  ["above MAX_AMOUNT_CREDITS", 1_000_000_000_001],
];
