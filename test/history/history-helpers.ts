/** Helpers for the history tests: teams with many entries, and reading every page of history. */
import { expect } from "vitest";
import type { Entry } from "../../src/ledger/types";
import { call, createTeam, expectStatus, grant, newKey } from "../helpers";

/** An entry as the API returns it: the service's own type. */
export type EntryT = Entry;

export interface PageT {
  entries: EntryT[];
  nextCursor: string | null;
}

export const entriesPath = (teamId: string, query = "") => `/v1/teams/${teamId}/entries${query ? `?${query}` : ""}`;

/** Spends `count` entries of 1 credit through the batch route, at most 1000 per request. */
export async function batchSpends(teamId: string, count: number, item: Record<string, unknown> = {}): Promise<void> {
  for (let done = 0; done < count; done += 1000) {
    const n = Math.min(1000, count - done);
    const res = await call(`/v1/teams/${teamId}/spends/batch`, {
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

/** Every page of the history with `query`, following nextCursor; checks each page's bound. */
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
    const res: Awaited<ReturnType<typeof call<PageT>>> = await call<PageT>(entriesPath(teamId, params.toString()));
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

/** Seqs from `top` down to 1: what a complete read of a team's history returns. */
export const descending = (top: number): number[] => Array.from({ length: top }, (_, i) => top - i);
