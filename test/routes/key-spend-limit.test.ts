// A key's own spend limit (Unkey's credits per key): a key bound to a team may spend or hold at
// most N credits a calendar month; the team's object counts and refuses in the spend's own
// transaction (402 cap_exceeded, scope "key"), and other keys of the team are not limited by it.
import { describe, expect, it } from "vitest";
import {
  api,
  assertInvariants,
  balance,
  createTeam,
  expectProblem,
  expectStatus,
  grant,
  newKey,
  newTeamId,
  snapshot,
} from "../support";

interface MadeKey {
  id: string;
  key: string;
  spendLimitCreditsPerMonth: number | null;
}

async function makeKey(body: Record<string, unknown>): Promise<MadeKey> {
  const res = await api<MadeKey>("/v1/api-keys", { body: { name: "limited", ...body } });
  expectStatus(res, 201);
  return res.body;
}

const spendWith = (teamId: string, key: MadeKey | null, amount: number) =>
  api(`/v1/teams/${teamId}/spends`, {
    body: { feature: "f", amount },
    idempotencyKey: newKey(),
    ...(key ? { auth: `Bearer ${key.key}` } : {}),
  });

describe("a key's own spend limit", () => {
  it("limits what the key spends and holds a month; other keys are not limited by it", async () => {
    const teamId = newTeamId("key-limit");
    await createTeam(teamId);
    await grant(teamId, 10_000);
    const limited = await makeKey({ scopes: ["spend"], teamId, spendLimitCreditsPerMonth: 100 });
    expect(limited.spendLimitCreditsPerMonth).toBe(100);
    const listed = await api<{ apiKeys: MadeKey[] }>("/v1/api-keys?limit=200");
    expect(listed.body.apiKeys.find((k) => k.id === limited.id)?.spendLimitCreditsPerMonth).toBe(100);

    expectStatus(await spendWith(teamId, limited, 60), 201);
    const before = await snapshot(teamId);
    const over = expectProblem(await spendWith(teamId, limited, 50), 402, "cap_exceeded");
    expect(over).toMatchObject({ scope: "key", subject: limited.id, cap: 100, used: 60, remaining: 40, required: 50 });
    // Nothing but the refusal under its key was written.
    expect(await snapshot(teamId)).toEqual(before);
    // A hold counts when it is made, and its release does not give it back.
    const hold = await api<{ hold: { id: string } }>(`/v1/teams/${teamId}/holds`, {
      body: { amount: 40, ttlSeconds: 600 },
      idempotencyKey: newKey(),
      auth: `Bearer ${limited.key}`,
    });
    expectStatus(hold, 201);
    expectStatus(
      await api(`/v1/teams/${teamId}/holds/${hold.body.hold.id}/release`, {
        body: {},
        idempotencyKey: newKey(),
        auth: `Bearer ${limited.key}`,
      }),
      200,
    );
    expectProblem(await spendWith(teamId, limited, 1), 402, "cap_exceeded");
    const batch = await api(`/v1/teams/${teamId}/spends/batch`, {
      body: { mode: "all_or_nothing", items: [{ feature: "f", amount: 1 }] },
      idempotencyKey: newKey(),
      auth: `Bearer ${limited.key}`,
    });
    expect(expectProblem(batch, 402, "cap_exceeded").scope).toBe("key");
    // Another key of the team, and the admin key, are not limited by it.
    const other = await makeKey({ scopes: ["spend"], teamId });
    expectStatus(await spendWith(teamId, other, 500), 201);
    expectStatus(await spendWith(teamId, null, 500), 201);
    expect((await balance(teamId)).available).toBe(10_000 - 60 - 1_000);
    await assertInvariants(teamId);
  });

  it("parallel spends with the key never pass it", async () => {
    const teamId = newTeamId("key-limit-par");
    await createTeam(teamId);
    await grant(teamId, 10_000);
    const limited = await makeKey({ scopes: ["spend"], teamId, spendLimitCreditsPerMonth: 100 });
    const results = await Promise.all(Array.from({ length: 20 }, () => spendWith(teamId, limited, 10)));
    expect(results.filter((r) => r.status === 201)).toHaveLength(10);
    expect(results.filter((r) => r.status === 402)).toHaveLength(10);
    expect((await balance(teamId)).available).toBe(9_900);
    await assertInvariants(teamId);
  });

  it("only a key bound to a team has one, and it is a whole number of credits", async () => {
    for (const body of [
      { scopes: ["spend"], spendLimitCreditsPerMonth: 10 },
      { scopes: ["spend"], teamId: "t", spendLimitCreditsPerMonth: -1 },
      { scopes: ["spend"], teamId: "t", spendLimitCreditsPerMonth: 1.5 },
    ])
      expectProblem(await api("/v1/api-keys", { body: { name: "bad", ...body } }), 400, "invalid_request");
  });
});
