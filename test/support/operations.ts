/**
 * The ledger's operations through the worker, one helper per verb: create a team, grant, spend,
 * batch, hold and act on it, void, read the balance and the whole history. Mutations go through
 * `api`, so each one is also replayed with its key and checked (support/calls.ts).
 */
import { expect } from "vitest";
import { api, type CallResult, expectStatus, newKey } from "./calls";
import type { BalanceT, EntriesPageT, EntryT, GrantReplyT, HoldReplyT, HoldT, SpendReplyT, TeamT } from "./wire";

/** A team created through PUT (201). */
export async function createTeam(teamId: string, body: Record<string, unknown> = {}): Promise<TeamT> {
  const res = await api<TeamT>(`/v1/teams/${teamId}`, { method: "PUT", body });
  expectStatus(res, 201);
  return res.body;
}

/** A grant through the API (paid purchase unless `extra` says otherwise); fails the test unless 201. */
export async function grant(teamId: string, amount: number, extra: Record<string, unknown> = {}): Promise<GrantReplyT> {
  const res = await api<GrantReplyT>(`/v1/teams/${teamId}/grants`, {
    body: { amount, category: "paid", source: "purchase", ...extra },
    idempotencyKey: newKey(),
  });
  expectStatus(res, 201);
  return res.body;
}

/** A spend of `amount` on `test_feature`; the answer as it came (201, 402, …). */
export function spend(
  teamId: string,
  amount: number,
  key = newKey(),
  extra: Record<string, unknown> = {},
): Promise<CallResult<SpendReplyT>> {
  return api<SpendReplyT>(`/v1/teams/${teamId}/spends`, {
    body: { feature: "test_feature", amount, ...extra },
    idempotencyKey: key,
  });
}

/** Spends `count` entries of 1 credit through the batch route, at most 1000 per request. */
export async function batchSpends(teamId: string, count: number, item: Record<string, unknown> = {}): Promise<void> {
  for (let done = 0; done < count; done += 1000) {
    const n = Math.min(1000, count - done);
    const res = await api(`/v1/teams/${teamId}/spends/batch`, {
      body: {
        mode: "all_or_nothing",
        items: Array.from({ length: n }, (_, i) => ({ feature: `f${(done + i) % 7}`, amount: 1, ...item })),
      },
      idempotencyKey: newKey(),
    });
    expectStatus(res, 200);
  }
}

/** A team with a grant of `credits` and `spends` spends of 1: spends + 1 entries. */
export async function teamWithSpends(teamId: string, spends: number, credits = 100_000): Promise<void> {
  await createTeam(teamId);
  await grant(teamId, credits);
  await batchSpends(teamId, spends);
}

/** A hold on `render` through the API; fails the test unless 201. */
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

export function holdAction(
  teamId: string,
  holdId: string,
  action: "capture" | "release" | "extend",
  body: Record<string, unknown> = {},
  key = newKey(),
): Promise<CallResult<HoldReplyT>> {
  return api<HoldReplyT>(`/v1/teams/${teamId}/holds/${holdId}/${action}`, { body, idempotencyKey: key });
}

export async function getHold(teamId: string, holdId: string): Promise<HoldT> {
  const res = await api<HoldT>(`/v1/teams/${teamId}/holds/${holdId}`);
  expectStatus(res, 200);
  return res.body;
}

export function voidGrant(teamId: string, grantId: string, key = newKey()): Promise<CallResult<GrantReplyT>> {
  return api<GrantReplyT>(`/v1/teams/${teamId}/grants/${grantId}/void`, { method: "POST", idempotencyKey: key });
}

export async function balance(teamId: string): Promise<BalanceT> {
  const res = await api<BalanceT>(`/v1/teams/${teamId}/balance`);
  expectStatus(res, 200);
  return res.body;
}

export const entriesPath = (teamId: string, query = "") => `/v1/teams/${teamId}/entries${query ? `?${query}` : ""}`;

/**
 * Every page of the history with `query` (newest first), following nextCursor, checking each
 * page's bound; `between` runs after each page (to write while a reader pages).
 */
export async function allPages(
  teamId: string,
  query: Record<string, string> = {},
  between?: () => Promise<void>,
): Promise<{ entries: EntryT[]; pages: number }> {
  const entries: EntryT[] = [];
  let cursor: string | null = null;
  let pages = 0;
  do {
    const params = new URLSearchParams(query);
    if (cursor !== null) params.set("cursor", cursor);
    const res: CallResult<EntriesPageT> = await api<EntriesPageT>(entriesPath(teamId, params.toString()));
    expectStatus(res, 200);
    const limit = Number(query.limit ?? "50");
    expect(res.body.entries.length).toBeLessThanOrEqual(limit);
    if (res.body.nextCursor !== null) expect(res.body.entries.length, "only the last page is short").toBe(limit);
    entries.push(...res.body.entries);
    cursor = res.body.nextCursor;
    pages += 1;
    if (between) await between();
  } while (cursor !== null && pages < 10_000);
  return { entries, pages };
}

/** Every entry of a team through the API, newest first (pages of 200). */
export async function allEntries(teamId: string, query = ""): Promise<EntryT[]> {
  const q = Object.fromEntries(new URLSearchParams(query));
  return (await allPages(teamId, { ...q, limit: "200" })).entries;
}

/** Seqs from `top` down to 1: what a complete read of a team's history returns. */
export const descending = (top: number): number[] => Array.from({ length: top }, (_, i) => top - i);

/** An id of the service's shape that it never issued. */
export function unknownId(prefix: "grt" | "hld"): string {
  return `${prefix}_${crypto.randomUUID().replaceAll("-", "")}`;
}

/** Days from now as an ISO string; far enough that nothing expires during a test. */
export function daysFromNow(days: number): string {
  return new Date(Date.now() + days * 86_400_000).toISOString();
}

export const inAnHour = (): string => new Date(Date.now() + 3_600_000).toISOString();

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
