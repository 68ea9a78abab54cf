import { describe, expect, it } from "vitest";
import {
  allEntries,
  api,
  assertInvariants,
  createHold,
  createTeam,
  type EntriesPageT,
  type EntryT,
  expectProblem,
  expectStatus,
  grant,
  newKey,
  newTeamId,
} from "../support";

const entriesPath = (teamId: string, query = "") => `/v1/teams/${teamId}/entries${query ? `?${query}` : ""}`;

/** A team with 250 entries: one grant, then 249 spends of 1 in one batch. */
async function teamWith250Entries(): Promise<string> {
  const teamId = newTeamId();
  await createTeam(teamId);
  await grant(teamId, 1000);
  const res = await api(`/v1/teams/${teamId}/spends/batch`, {
    body: { mode: "all_or_nothing", items: Array.from({ length: 249 }, (_, i) => ({ feature: `f${i}`, amount: 1 })) },
    idempotencyKey: newKey(),
  });
  expectStatus(res, 200);
  return teamId;
}

/** A team whose history has every common type and both directions. */
async function mixedTeam(): Promise<{ teamId: string; all: EntryT[] }> {
  const teamId = newTeamId();
  await createTeam(teamId);
  const g = await grant(teamId, 100);
  await grant(teamId, 10, { category: "free", source: "allocation" });
  expectStatus(
    await api(`/v1/teams/${teamId}/spends`, { body: { feature: "f", amount: 15 }, idempotencyKey: newKey() }),
    201,
  );
  const h1 = await createHold(teamId, 20);
  expectStatus(
    await api(`/v1/teams/${teamId}/holds/${h1.hold.id}/capture`, { body: { amount: 5 }, idempotencyKey: newKey() }),
    200,
  );
  const h2 = await createHold(teamId, 7);
  expectStatus(
    await api(`/v1/teams/${teamId}/holds/${h2.hold.id}/release`, { body: {}, idempotencyKey: newKey() }),
    200,
  );
  expectStatus(
    await api(`/v1/teams/${teamId}/grants/${g.grant.id}/void`, { method: "POST", idempotencyKey: newKey() }),
    200,
  );
  return { teamId, all: await allEntries(teamId) };
}

describe("GET /v1/teams/{teamId}/entries", () => {
  it("lists newest first with a default page of 50 and the documented entry fields", async () => {
    const { teamId, all } = await mixedTeam();
    const res = await api<EntriesPageT>(entriesPath(teamId));
    expectStatus(res, 200);
    expect(res.body.entries).toEqual(all);
    expect(res.body.nextCursor).toBeNull();
    const seqs = all.map((e) => e.seq);
    expect(seqs).toEqual([...seqs].sort((a, b) => b - a));
    expect(seqs.at(-1)).toBe(1);
    expect(all.map((e) => e.type).reverse()).toEqual([
      "grant",
      "grant",
      "spend",
      "spend",
      "hold",
      "capture",
      "release",
      "hold",
      "release",
      "void",
    ]);
    for (const e of all) {
      expect(e.id).toMatch(/^ent_[0-9a-f]{32}$/);
      expect(Number.isNaN(Date.parse(e.createdAt))).toBe(false);
      expect(["in", "out", "none"]).toContain(e.direction);
      expect(Number.isSafeInteger(e.amount)).toBe(true);
      expect(e.balanceAfter).toBeGreaterThanOrEqual(0);
    }
    const newest = all[0];
    expect(newest?.balanceAfter).toBe(0);

    const big = await teamWith250Entries();
    const page = await api<EntriesPageT>(entriesPath(big));
    expect(page.body.entries).toHaveLength(50);
    expect(page.body.entries[0]?.seq).toBe(250);
    expect(page.body.nextCursor).not.toBeNull();
    await assertInvariants(teamId);
    await assertInvariants(big);
  });

  it("pages through 250 entries with limit and cursor, with no duplicates or gaps", async () => {
    const teamId = await teamWith250Entries();
    for (const limit of [3, 50, 100, 125, 200]) {
      const seen: number[] = [];
      let cursor: string | null = null;
      let pages = 0;
      do {
        const query = new URLSearchParams({ limit: String(limit) });
        if (cursor !== null) query.set("cursor", cursor);
        const res: Awaited<ReturnType<typeof api<EntriesPageT>>> = await api<EntriesPageT>(
          entriesPath(teamId, query.toString()),
        );
        expectStatus(res, 200);
        expect(res.body.entries.length).toBeLessThanOrEqual(limit);
        expect(res.body.entries.length).toBeGreaterThan(0);
        seen.push(...res.body.entries.map((e) => e.seq));
        cursor = res.body.nextCursor;
        pages += 1;
      } while (cursor !== null && pages < 300);
      expect(pages, `limit ${limit}`).toBe(Math.ceil(250 / limit));
      expect(seen, `limit ${limit}`).toEqual(Array.from({ length: 250 }, (_, i) => 250 - i));
    }
    // limit 201 is refused; 200 is the maximum page.
    expectProblem(await api(entriesPath(teamId, "limit=201")), 400, "invalid_request");
    await assertInvariants(teamId);
  });

  it("a cursor keeps its place when new entries arrive", async () => {
    const teamId = await teamWith250Entries();
    const first = await api<EntriesPageT>(entriesPath(teamId, "limit=100"));
    const cursor = first.body.nextCursor;
    expect(cursor).not.toBeNull();
    expectStatus(
      await api(`/v1/teams/${teamId}/spends`, { body: { feature: "f", amount: 1 }, idempotencyKey: newKey() }),
      201,
    );
    const second = await api<EntriesPageT>(entriesPath(teamId, `limit=100&cursor=${cursor}`));
    expectStatus(second, 200);
    expect(second.body.entries[0]?.seq).toBe(150);
    await assertInvariants(teamId);
  });

  it("filters by one type, several types, direction, and combines filters with paging", async () => {
    const { teamId, all } = await mixedTeam();
    const cases: [string, (e: EntryT) => boolean][] = [
      ["type=spend", (e) => e.type === "spend"],
      ["type=grant,void", (e) => e.type === "grant" || e.type === "void"],
      ["type=hold, release ,capture", (e) => ["hold", "release", "capture"].includes(e.type)],
      ["type=refund", () => false],
      ["direction=in", (e) => e.direction === "in"],
      ["direction=out", (e) => e.direction === "out"],
      ["direction=none", (e) => e.direction === "none"],
      ["type=capture&direction=none", (e) => e.type === "capture"],
      ["type=release&direction=in", (e) => e.type === "release"],
      ["type=spend,grant&direction=out", (e) => e.type === "spend"],
    ];
    for (const [query, keep] of cases) {
      const expected = all.filter(keep);
      const res = await api<EntriesPageT>(entriesPath(teamId, query));
      expectStatus(res, 200);
      expect(res.body.entries, query).toEqual(expected);
      expect(res.body.nextCursor).toBeNull();
      // The same filter one entry at a time gives the same list.
      const paged = await allEntriesOneByOne(teamId, query);
      expect(paged, `${query} paged`).toEqual(expected);
    }
    await assertInvariants(teamId);
  });

  it("filters by from (inclusive) and to (exclusive)", async () => {
    const { teamId, all } = await mixedTeam();
    const times = [...new Set(all.map((e) => e.createdAt))];
    const cases: [string, string | undefined, string | undefined][] = [
      ["far past", "2000-01-01T00:00:00Z", undefined],
      ["far future", "2999-01-01T00:00:00Z", undefined],
      ["to far past", undefined, "2000-01-01T00:00:00.000Z"],
      ["to far future", undefined, "2999-01-01T00:00:00+02:00"],
    ];
    for (const t of times) cases.push([`from ${t}`, t, undefined], [`to ${t}`, undefined, t], [`at ${t}`, t, t]);
    const newestTime = all[0]?.createdAt;
    const oldestTime = all.at(-1)?.createdAt;
    if (newestTime && oldestTime) cases.push(["oldest to newest", oldestTime, newestTime]);
    for (const [label, from, to] of cases) {
      const query = new URLSearchParams();
      if (from) query.set("from", from);
      if (to) query.set("to", to);
      const expected = all.filter(
        (e) =>
          (from === undefined || Date.parse(e.createdAt) >= Date.parse(from)) &&
          (to === undefined || Date.parse(e.createdAt) < Date.parse(to)),
      );
      const res = await api<EntriesPageT>(entriesPath(teamId, query.toString()));
      expectStatus(res, 200);
      expect(res.body.entries, label).toEqual(expected);
    }
    await assertInvariants(teamId);
  });

  it("400 on a bad cursor, limit, type, direction, from or to", async () => {
    const teamId = await teamWith250Entries();
    const bad = [
      "cursor=not-a-cursor",
      "cursor=%25%25%25",
      `cursor=${btoa("s:abc").replaceAll("=", "")}`,
      `cursor=${btoa("x:10").replaceAll("=", "")}`,
      `cursor=${"A".repeat(65)}`,
      "limit=0",
      "limit=-1",
      "limit=201",
      "limit=1.5",
      "limit=ten",
      "type=bogus",
      "type=spend,bogus",
      "type=",
      "type=spend,",
      "type=SPEND",
      "direction=sideways",
      "direction=",
      "from=yesterday",
      "from=2026-01-01",
      "to=12345",
      "from=2026-02-30T00:00:00Z",
    ];
    for (const query of bad) {
      const res = await api(entriesPath(teamId, query));
      expect(res.status, query).toBe(400);
      expectProblem(res, 400, "invalid_request");
    }
    await assertInvariants(teamId);
  });

  it("an empty history is an empty page", async () => {
    const teamId = newTeamId();
    await createTeam(teamId);
    const res = await api<EntriesPageT>(entriesPath(teamId));
    expectStatus(res, 200);
    expect(res.body).toEqual({ entries: [], nextCursor: null });
    await assertInvariants(teamId);
  });
});

async function allEntriesOneByOne(teamId: string, query: string): Promise<EntryT[]> {
  const out: EntryT[] = [];
  let cursor: string | null = null;
  for (let i = 0; i < 100; i++) {
    const params = new URLSearchParams(query);
    params.set("limit", "1");
    if (cursor !== null) params.set("cursor", cursor);
    const res: Awaited<ReturnType<typeof api<EntriesPageT>>> = await api<EntriesPageT>(
      entriesPath(teamId, params.toString()),
    );
    expectStatus(res, 200);
    out.push(...res.body.entries);
    cursor = res.body.nextCursor;
    if (cursor === null) return out;
  }
  throw new Error("paging did not end");
}
