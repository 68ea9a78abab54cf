import { describe, expect, it } from "vitest";
import { assertInvariants, balance, call, createTeam, expectStatus, grant, newKey, newTeamId, spend } from "../support";

describe("spends", () => {
  it("spends across grants in spending order, one entry per grant", async () => {
    const teamId = newTeamId();
    await createTeam(teamId);
    const { grant: paid } = await grant(teamId, 50, { category: "paid", source: "purchase" });
    const { grant: free } = await grant(teamId, 20, {
      category: "free",
      source: "allocation",
      expiresAt: new Date(Date.now() + 86_400_000).toISOString(),
    });
    const res = await spend(teamId, 30);
    expectStatus(res, 201);
    const entries = res.body.entries as { grantId: string; amount: number; balanceAfter: number }[];
    expect(entries.map((e) => [e.grantId, e.amount, e.balanceAfter])).toEqual([
      [free.id, 20, 50],
      [paid.id, 10, 40],
    ]);
    expect((await balance(teamId)).available).toBe(40);
    await assertInvariants(teamId);
  });

  it("N parallel spends of 1 against a balance B < N succeed exactly B times", async () => {
    const teamId = newTeamId();
    await createTeam(teamId);
    const B = 37;
    const N = 100;
    await grant(teamId, B);
    const results = await Promise.all(Array.from({ length: N }, () => spend(teamId, 1)));
    const ok = results.filter((r) => r.status === 201).length;
    const refused = results.filter((r) => r.status === 402).length;
    expect(ok).toBe(B);
    expect(refused).toBe(N - B);
    expect((await balance(teamId)).available).toBe(0);
    await assertInvariants(teamId);
  });

  it("replays the original response for the same key and body", async () => {
    const teamId = newTeamId();
    await createTeam(teamId);
    await grant(teamId, 10);
    const key = newKey();
    const first = await spend(teamId, 4, key);
    const again = await spend(teamId, 4, key);
    expectStatus(again, 201);
    expect(again.headers.get("idempotent-replayed")).toBe("true");
    expect(again.body).toEqual(first.body);
    const other = await spend(teamId, 5, key);
    expectStatus(other, 422);
    expect((other.body as unknown as { code: string }).code).toBe("idempotency_key_reused");
    expect((await balance(teamId)).available).toBe(6);
    await assertInvariants(teamId);
  });

  it("402 writes nothing", async () => {
    const teamId = newTeamId();
    await createTeam(teamId);
    await grant(teamId, 3);
    const res = await spend(teamId, 4);
    expectStatus(res, 402);
    expect(res.headers.get("content-type")).toContain("application/problem+json");
    expect(res.body).toMatchObject({ code: "insufficient_credits", available: 3, required: 4, status: 402 });
    const list = await call<{ entries: unknown[] }>(`/v1/teams/${teamId}/entries`);
    expect(list.body.entries).toHaveLength(1);
    await assertInvariants(teamId);
  });
});

describe("bounds", () => {
  it("a hold cannot be extended past the per-operation maximum", async () => {
    const teamId = newTeamId();
    await createTeam(teamId);
    await grant(teamId, 1_000_000_000_000);
    await grant(teamId, 1_000_000_000_000);
    const hold = await call<{ hold: { id: string } }>(`/v1/teams/${teamId}/holds`, {
      body: { amount: 1_000_000_000_000, ttlSeconds: 60 },
      idempotencyKey: newKey(),
    });
    expectStatus(hold, 201);
    const extend = await call(`/v1/teams/${teamId}/holds/${hold.body.hold.id}/extend`, {
      body: { amount: 1 },
      idempotencyKey: newKey(),
    });
    expectStatus(extend, 400);
    expect(extend.body.code).toBe("invalid_request");
    await assertInvariants(teamId);
  });

  it("rejects dimension keys that are not identifiers, such as __proto__", async () => {
    const teamId = newTeamId();
    await createTeam(teamId);
    await grant(teamId, 10);
    const res = await spend(teamId, 1, newKey(), { dimensions: JSON.parse('{"__proto__":"x"}') });
    expectStatus(res, 400);
    expect((await balance(teamId)).available).toBe(10);
    await assertInvariants(teamId);
  });
});
