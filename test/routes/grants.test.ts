import { describe, expect, it } from "vitest";
import {
  allEntries,
  api,
  assertInvariants,
  balance,
  createTeam,
  daysFromNow,
  expectProblem,
  expectStatus,
  type GrantReplyT,
  grant,
  type HoldReplyT,
  newKey,
  newTeamId,
  snapshot,
  unknownId,
} from "../support";

const CATEGORIES = ["free", "paid", "promotional"] as const;
const SOURCES = [
  "starter",
  "allocation",
  "purchase",
  "credit_request",
  "referral",
  "promotional",
  "manual",
  "adjustment",
] as const;

describe("POST /v1/teams/{teamId}/grants", () => {
  it("grants with every category and source, and the grant entry and balance follow", async () => {
    const teamId = newTeamId();
    await createTeam(teamId);
    let total = 0;
    const perCategory = { free: 0, paid: 0, promotional: 0 };
    for (const category of CATEGORIES) {
      for (const source of SOURCES) {
        const amount = 1 + SOURCES.indexOf(source) + 10 * CATEGORIES.indexOf(category);
        const res = await api<GrantReplyT>(`/v1/teams/${teamId}/grants`, {
          body: { amount, category, source, reference: `${category}/${source}` },
          idempotencyKey: newKey(),
        });
        expectStatus(res, 201);
        total += amount;
        perCategory[category] += amount;
        expect(res.body.grant).toMatchObject({
          amount,
          remaining: amount,
          held: 0,
          category,
          source,
          priority: 0,
          status: "active",
          expiresAt: null,
          reference: `${category}/${source}`,
        });
        expect(res.body.grant.id).toMatch(/^grt_[0-9a-f]{32}$/);
        expect(res.body.entries).toHaveLength(1);
        expect(res.body.entries[0]).toMatchObject({
          type: "grant",
          direction: "in",
          amount,
          balanceAfter: total,
          grantId: res.body.grant.id,
          reference: `${category}/${source}`,
        });
        expect(res.body.balance).toMatchObject({ teamId, available: total, held: 0, total });
      }
    }
    const bal = await balance(teamId);
    expect(bal.byCategory).toEqual(perCategory);
    expect(bal.grants).toHaveLength(CATEGORIES.length * SOURCES.length);
    await assertInvariants(teamId);
  });

  it("stores priority and expiresAt (with or without an offset) as given", async () => {
    const teamId = newTeamId();
    await createTeam(teamId);
    const expiresAt = daysFromNow(30);
    const a = await grant(teamId, 10, { priority: 7, expiresAt });
    expect(a.grant.priority).toBe(7);
    expect(a.grant.expiresAt).toBe(expiresAt);

    const inTwoDays = new Date(Date.now() + 2 * 86_400_000);
    inTwoDays.setUTCMilliseconds(0);
    const withOffset = `${inTwoDays.toISOString().slice(0, 19)}+00:00`;
    const b = await grant(teamId, 5, { priority: 1_000_000, expiresAt: withOffset });
    expect(b.grant.priority).toBe(1_000_000);
    expect(Date.parse(b.grant.expiresAt ?? "")).toBe(inTwoDays.getTime());
    await assertInvariants(teamId);
  });

  it("refuses bad amounts, categories, sources, priorities and expiries with 400; nothing written", async () => {
    const teamId = newTeamId();
    await createTeam(teamId);
    await grant(teamId, 10);
    const before = await snapshot(teamId);
    const valid = { amount: 10, category: "paid", source: "purchase" };
    const bad: Record<string, unknown>[] = [
      { ...valid, amount: -5 },
      { ...valid, amount: 0 },
      { ...valid, amount: 1.5 },
      { ...valid, amount: "10" },
      { ...valid, amount: 2 ** 53 + 2 },
      { ...valid, amount: 1_000_000_000_001 },
      { category: "paid", source: "purchase" },
      { ...valid, category: "gold" },
      { ...valid, category: undefined },
      { ...valid, source: "gift" },
      { ...valid, source: undefined },
      { ...valid, priority: -1 },
      { ...valid, priority: 1.5 },
      { ...valid, priority: 1_000_001 },
      { ...valid, expiresAt: new Date(Date.now() - 60_000).toISOString() },
      { ...valid, expiresAt: "2001-01-01T00:00:00Z" },
      { ...valid, expiresAt: new Date(Date.now() + 101 * 365 * 86_400_000).toISOString() },
      { ...valid, expiresAt: "tomorrow" },
      { ...valid, expiresAt: "2030-01-01" },
      { ...valid, expiresAt: 1_900_000_000_000 },
      { ...valid, reference: "" },
      { ...valid, reference: "r".repeat(201) },
      { ...valid, remaining: 10 },
    ];
    for (const body of bad) {
      const res = await api(`/v1/teams/${teamId}/grants`, { body, idempotencyKey: newKey() });
      expectProblem(res, 400, "invalid_request");
    }
    const past = await api(`/v1/teams/${teamId}/grants`, {
      body: { ...valid, expiresAt: new Date(Date.now() - 60_000).toISOString() },
      idempotencyKey: newKey(),
    });
    expect(expectProblem(past, 400, "invalid_request").detail).toContain("expiresAt");
    expect(await snapshot(teamId)).toEqual(before);
    await assertInvariants(teamId);
  });

  it("requires an Idempotency-Key and replays a repeated grant without granting twice", async () => {
    const teamId = newTeamId();
    await createTeam(teamId);
    const body = { amount: 40, category: "free", source: "manual" };
    expectProblem(await api(`/v1/teams/${teamId}/grants`, { body }), 400, "invalid_request");

    const key = newKey();
    const first = await api<GrantReplyT>(`/v1/teams/${teamId}/grants`, { body, idempotencyKey: key });
    expectStatus(first, 201);
    expect(first.headers.get("idempotent-replayed")).toBeNull();
    const again = await api<GrantReplyT>(`/v1/teams/${teamId}/grants`, { body, idempotencyKey: key });
    expectStatus(again, 201);
    expect(again.headers.get("idempotent-replayed")).toBe("true");
    expect(again.body).toEqual(first.body);
    const other = await api(`/v1/teams/${teamId}/grants`, { body: { ...body, amount: 41 }, idempotencyKey: key });
    expectProblem(other, 422, "idempotency_key_reused");
    expect((await balance(teamId)).available).toBe(40);
    expect(await allEntries(teamId)).toHaveLength(1);
    await assertInvariants(teamId);
  });
});

describe("POST /v1/teams/{teamId}/grants/{grantId}/void", () => {
  it("voids what remains as one void entry; the balance drops; a second void is 409", async () => {
    const teamId = newTeamId();
    await createTeam(teamId);
    const keep = await grant(teamId, 25, { category: "paid", source: "purchase" });
    const target = await grant(teamId, 100, { category: "free", source: "allocation" });
    const spent = await api(`/v1/teams/${teamId}/spends`, {
      body: { feature: "export", amount: 30 },
      idempotencyKey: newKey(),
    });
    expectStatus(spent, 201);
    expect((await balance(teamId)).available).toBe(95);

    const key = newKey();
    const res = await api<GrantReplyT>(`/v1/teams/${teamId}/grants/${target.grant.id}/void`, {
      method: "POST",
      idempotencyKey: key,
    });
    expectStatus(res, 200);
    expect(res.body.grant).toMatchObject({ id: target.grant.id, status: "voided", remaining: 0, amount: 100 });
    expect(res.body.entries).toHaveLength(1);
    expect(res.body.entries[0]).toMatchObject({
      type: "void",
      direction: "out",
      amount: 70,
      grantId: target.grant.id,
      balanceAfter: 25,
    });
    expect(res.body.balance).toMatchObject({ available: 25, held: 0, total: 25 });
    const bal = await balance(teamId);
    expect(bal.available).toBe(25);
    expect(bal.grants.map((g) => g.id)).toEqual([keep.grant.id]);

    const replay = await api<GrantReplyT>(`/v1/teams/${teamId}/grants/${target.grant.id}/void`, {
      method: "POST",
      idempotencyKey: key,
    });
    expectStatus(replay, 200);
    expect(replay.headers.get("idempotent-replayed")).toBe("true");
    expect(replay.body).toEqual(res.body);

    const before = await snapshot(teamId);
    const twice = await api(`/v1/teams/${teamId}/grants/${target.grant.id}/void`, {
      method: "POST",
      idempotencyKey: newKey(),
    });
    expectProblem(twice, 409, "conflict");
    expect(await snapshot(teamId)).toEqual(before);
    await assertInvariants(teamId);
  });

  it("voids a fully spent grant with no entry, then refuses a second void", async () => {
    const teamId = newTeamId();
    await createTeam(teamId);
    const g = await grant(teamId, 10);
    const spent = await api(`/v1/teams/${teamId}/spends`, {
      body: { feature: "f", amount: 10 },
      idempotencyKey: newKey(),
    });
    expectStatus(spent, 201);
    const res = await api<GrantReplyT>(`/v1/teams/${teamId}/grants/${g.grant.id}/void`, {
      method: "POST",
      idempotencyKey: newKey(),
    });
    expectStatus(res, 200);
    expect(res.body.entries).toEqual([]);
    expect(res.body.grant.status).toBe("voided");
    const again = await api(`/v1/teams/${teamId}/grants/${g.grant.id}/void`, {
      method: "POST",
      idempotencyKey: newKey(),
    });
    expectProblem(again, 409, "conflict");
    await assertInvariants(teamId);
  });

  it("voids a grant whose credits are partly held: only the unreserved part leaves now", async () => {
    const teamId = newTeamId();
    await createTeam(teamId);
    const g = await grant(teamId, 50);
    const hold = await api<{ hold: { id: string } }>(`/v1/teams/${teamId}/holds`, {
      body: { amount: 20, ttlSeconds: 600 },
      idempotencyKey: newKey(),
    });
    expectStatus(hold, 201);
    const res = await api<GrantReplyT>(`/v1/teams/${teamId}/grants/${g.grant.id}/void`, {
      method: "POST",
      idempotencyKey: newKey(),
    });
    expectStatus(res, 200);
    expect(res.body.entries.map((e) => [e.type, e.amount])).toEqual([["void", 30]]);
    expect(res.body.balance).toMatchObject({ available: 0, held: 20, total: 20 });
    await assertInvariants(teamId);

    // Releasing the hold returns the credits to a voided grant, so they leave at once.
    const released = await api<HoldReplyT>(`/v1/teams/${teamId}/holds/${hold.body.hold.id}/release`, {
      body: {},
      idempotencyKey: newKey(),
    });
    expectStatus(released, 200);
    expect(released.body.entries.map((e) => [e.type, e.direction, e.amount])).toEqual([
      ["release", "in", 20],
      ["void", "out", 20],
    ]);
    expect(released.body.balance).toMatchObject({ available: 0, held: 0, total: 0 });
    await assertInvariants(teamId);
  });

  it("404 for a well-formed unknown grant, 400 for a malformed id or a missing key", async () => {
    const teamId = newTeamId();
    await createTeam(teamId);
    await grant(teamId, 10);
    const before = await snapshot(teamId);
    const missing = await api(`/v1/teams/${teamId}/grants/${unknownId("grt")}/void`, {
      method: "POST",
      idempotencyKey: newKey(),
    });
    expectProblem(missing, 404, "not_found");
    for (const id of ["grt_123", "grt_ZZ", `grt_${"0".repeat(33)}`, "GRT_0123456789abcdef0123456789abcdef", "x"]) {
      const res = await api(`/v1/teams/${teamId}/grants/${id}/void`, { method: "POST", idempotencyKey: newKey() });
      expectProblem(res, 400, "invalid_request");
    }
    const g = before.balance.grants[0];
    expect(g).toBeDefined();
    const noKey = await api(`/v1/teams/${teamId}/grants/${g?.id}/void`, { method: "POST" });
    expectProblem(noKey, 400, "invalid_request");
    expect(await snapshot(teamId)).toEqual(before);
    await assertInvariants(teamId);
  });
});
