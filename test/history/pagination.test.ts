/**
 * GET /entries from D1, completed by the team object: thousands of entries paged with no
 * duplicate and no gap, while spends run; with D1 lagging (its writes failing) every entry is
 * still there; and the filters agree with the whole history, on both sides of the outbox mark.
 */
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import {
  allPages,
  assertInvariants,
  batchSpends,
  call,
  d1With,
  descending,
  drainOutbox,
  type EntriesPageT,
  type EntryT,
  entriesPath,
  expectStatus,
  injectD1,
  newKey,
  newTeamId,
  objectEntries,
  outboxOf,
  restoreD1,
  spend,
  teamWithSpends,
} from "../support";

const failingD1 = (real: D1Database) => d1With(real, () => Promise.reject(new Error("D1 is down (injected)")));

async function d1Count(teamId: string): Promise<number> {
  const row = await env.DB.prepare("SELECT count(*) AS n FROM ledger_entries WHERE team_id = ?")
    .bind(teamId)
    .first<{ n: number }>();
  return row?.n ?? 0;
}

/** The object's own entries, newest first, as the wire shows them (the fields tests compare). */
async function objectIds(teamId: string): Promise<string[]> {
  return (await objectEntries(teamId)).map((e) => e.id).reverse();
}

describe("history pages from D1", () => {
  it("pages through 3,001 entries with no duplicates and no gaps, at every page size", async () => {
    const teamId = newTeamId();
    await teamWithSpends(teamId, 3_000);
    await drainOutbox(teamId);
    expect(await d1Count(teamId)).toBe(3_001);
    for (const limit of [200, 137, 50]) {
      const { entries, pages } = await allPages(teamId, { limit: String(limit) });
      expect(pages).toBe(Math.ceil(3_001 / limit));
      expect(entries.map((e) => e.seq)).toEqual(descending(3_001));
    }
    const { entries } = await allPages(teamId, { limit: "200" });
    expect(entries.map((e) => e.id)).toEqual(await objectIds(teamId));
    await assertInvariants(teamId);
  });

  it("stays complete and duplicate-free while spends run between and during page reads", async () => {
    const teamId = newTeamId();
    await teamWithSpends(teamId, 3_000);
    let spends = 0;
    let paging = true;
    // Spends race the reader: before, between and during its page reads; the outbox (the
    // object's alarm) delivers meanwhile, so the D1 / object boundary moves under the reader.
    const spender = (async () => {
      while (paging && spends < 400) {
        expectStatus(await spend(teamId, 1), 201);
        spends += 1;
      }
    })();
    const first = await call<EntriesPageT>(entriesPath(teamId, "limit=1"));
    const top = first.body.entries[0]?.seq ?? 0;
    const { entries } = await allPages(teamId, { limit: "100" }, async () => {
      await Promise.all([spend(teamId, 1), batchSpends(teamId, 3)]);
    });
    paging = false;
    await spender;
    const seqs = entries.map((e) => e.seq);
    expect(new Set(seqs).size, "no duplicates").toBe(seqs.length);
    const head = seqs[0] ?? 0;
    expect(head).toBeGreaterThanOrEqual(top);
    expect(seqs, "no gaps: every seq from the first page's newest down to 1").toEqual(descending(head));
    // Every entry as the object has it.
    const byId = new Map((await objectEntries(teamId)).map((e) => [e.id, e]));
    for (const e of entries) expect(byId.get(e.id)?.seq).toBe(e.seq);
    await assertInvariants(teamId);
  });

  it("with D1 lagging (its writes failing), a page still has every entry, merged in order", async () => {
    const teamId = newTeamId();
    await teamWithSpends(teamId, 1_000);
    await drainOutbox(teamId);
    await injectD1(teamId, failingD1);
    await batchSpends(teamId, 450);
    const state = await outboxOf(teamId);
    expect(state.deliveredSeq).toBe(1_001);
    expect(state.backlog).toBe(450);
    expect(await d1Count(teamId)).toBe(1_001);

    // The first pages come from the object, one straddles the mark, the rest come from D1.
    for (const limit of ["200", "61"]) {
      const { entries } = await allPages(teamId, { limit });
      expect(entries.map((e) => e.seq)).toEqual(descending(1_451));
      expect(entries.map((e) => e.id)).toEqual(await objectIds(teamId));
    }
    // The same page, entry for entry, whichever side serves it.
    const lagging = await allPages(teamId, { limit: "200" });
    await restoreD1(teamId);
    await drainOutbox(teamId);
    expect(await d1Count(teamId)).toBe(1_451);
    const caughtUp = await allPages(teamId, { limit: "200" });
    expect(caughtUp.entries).toEqual(lagging.entries);
    await assertInvariants(teamId);
  });

  it("a team that was never created is 404; an empty one an empty page", async () => {
    const missing = await call(entriesPath(newTeamId()));
    expect(missing.status).toBe(404);
    expect(missing.headers.get("content-type")).toContain("application/problem+json");
    const teamId = newTeamId();
    await teamWithSpends(teamId, 0);
    const page = await call<EntriesPageT>(entriesPath(teamId));
    expect(page.body.entries).toHaveLength(1);
    expect(page.body.nextCursor).toBeNull();
    await assertInvariants(teamId);
  });
});

describe("history filters, across the outbox mark", () => {
  /** A team with every common type; half its history in D1, the rest only in the object. */
  async function mixedLaggingTeam(): Promise<{ teamId: string; all: EntryT[] }> {
    const teamId = newTeamId();
    await teamWithSpends(teamId, 30, 1_000);
    const hold = (amount: number) =>
      call<{ hold: { id: string } }>(`/v1/teams/${teamId}/holds`, {
        body: { feature: "render", amount, ttlSeconds: 600 },
        idempotencyKey: newKey(),
      });
    const h1 = await hold(20);
    expectStatus(h1, 201);
    expectStatus(
      await call(`/v1/teams/${teamId}/holds/${h1.body.hold.id}/capture`, {
        body: { amount: 5 },
        idempotencyKey: newKey(),
      }),
      200,
    );
    await drainOutbox(teamId);
    await injectD1(teamId, failingD1);
    const h2 = await hold(7);
    expectStatus(h2, 201);
    expectStatus(
      await call(`/v1/teams/${teamId}/holds/${h2.body.hold.id}/release`, { body: {}, idempotencyKey: newKey() }),
      200,
    );
    await batchSpends(teamId, 20);
    expectStatus(
      await call(`/v1/teams/${teamId}/grants`, {
        body: { amount: 50, category: "free", source: "allocation" },
        idempotencyKey: newKey(),
      }),
      201,
    );
    expect((await outboxOf(teamId)).backlog).toBeGreaterThan(20);
    const { entries } = await allPages(teamId, { limit: "200" });
    return { teamId, all: entries };
  }

  it("type (one or several), direction and from/to select exactly the matching entries, page by page", async () => {
    const { teamId, all } = await mixedLaggingTeam();
    expect(all.map((e) => e.seq)).toEqual(descending(all.length));
    const mid = all[Math.floor(all.length / 2)]?.createdAt ?? "";
    const cases: [Record<string, string>, (e: EntryT) => boolean][] = [
      [{ type: "spend" }, (e) => e.type === "spend"],
      [{ type: "grant,release" }, (e) => e.type === "grant" || e.type === "release"],
      [{ type: "hold, capture ,release" }, (e) => ["hold", "capture", "release"].includes(e.type)],
      [{ type: "refund" }, () => false],
      [{ direction: "in" }, (e) => e.direction === "in"],
      [{ direction: "out", type: "hold,spend" }, (e) => e.direction === "out" && ["hold", "spend"].includes(e.type)],
      [{ from: mid }, (e) => Date.parse(e.createdAt) >= Date.parse(mid)],
      [{ to: mid }, (e) => Date.parse(e.createdAt) < Date.parse(mid)],
      [{ from: "2000-01-01T00:00:00Z", to: "2999-01-01T00:00:00+02:00", type: "grant" }, (e) => e.type === "grant"],
    ];
    for (const [query, keep] of cases) {
      const expected = all.filter(keep);
      for (const limit of ["200", "3"]) {
        const { entries } = await allPages(teamId, { ...query, limit });
        expect(entries, `${JSON.stringify(query)} limit ${limit}`).toEqual(expected);
      }
    }
    await restoreD1(teamId);
    await drainOutbox(teamId);
    await assertInvariants(teamId);
  });

  it("400 on a bad filter or cursor, as problem+json", async () => {
    const teamId = newTeamId();
    await teamWithSpends(teamId, 3);
    for (const q of ["type=bogus", "direction=up", "from=yesterday", "cursor=zzz", "limit=201"]) {
      const res = await call<{ code: string }>(entriesPath(teamId, q));
      expect(res.status, q).toBe(400);
      expect(res.body.code).toBe("invalid_request");
    }
    await assertInvariants(teamId);
  });
});
