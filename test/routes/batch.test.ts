import { describe, expect, it } from "vitest";
import {
  allEntries,
  api,
  assertInvariants,
  BAD_AMOUNTS,
  type BatchReplyT,
  balance,
  createTeam,
  expectProblem,
  expectStatus,
  grant,
  newKey,
  newTeamId,
  snapshot,
} from "../support";

const batchPath = (teamId: string) => `/v1/teams/${teamId}/spends/batch`;

async function fundedTeam(amount: number): Promise<string> {
  const teamId = newTeamId();
  await createTeam(teamId);
  await grant(teamId, amount);
  return teamId;
}

const items = (amounts: number[]) => amounts.map((amount, i) => ({ feature: `item-${i}`, amount }));

describe("POST /v1/teams/{teamId}/spends/batch", () => {
  it("all_or_nothing: spends every item, one spend per item, entries across grants", async () => {
    const teamId = newTeamId();
    await createTeam(teamId);
    const free = await grant(teamId, 5, { category: "free", source: "allocation" });
    const paid = await grant(teamId, 100, { category: "paid", source: "purchase" });
    const res = await api<BatchReplyT>(batchPath(teamId), {
      body: { mode: "all_or_nothing", items: items([3, 4, 10]) },
      idempotencyKey: newKey(),
    });
    expectStatus(res, 200);
    expect(res.body.results.map((r) => [r.index, r.status])).toEqual([
      [0, "spent"],
      [1, "spent"],
      [2, "spent"],
    ]);
    const [first, second, third] = res.body.results;
    expect(first).toMatchObject({ status: "spent", entryCount: 1, spend: { amount: 3, feature: "item-0" } });
    // Item 1 takes the last 2 free credits and 2 paid ones: two entries.
    expect(second).toMatchObject({ status: "spent", entryCount: 2, spend: { amount: 4, feature: "item-1" } });
    expect(third).toMatchObject({ status: "spent", entryCount: 1, spend: { amount: 10 } });
    expect(res.body.balance).toMatchObject({ available: 88, held: 0, total: 88 });
    const spends = (await allEntries(teamId, "type=spend")).reverse();
    expect(spends.map((e) => [e.grantId, e.amount])).toEqual([
      [free.grant.id, 3],
      [free.grant.id, 2],
      [paid.grant.id, 2],
      [paid.grant.id, 10],
    ]);
    await assertInvariants(teamId);
  });

  it("all_or_nothing: 402 when the whole batch does not fit, and nothing is written", async () => {
    const teamId = await fundedTeam(10);
    const before = await snapshot(teamId);
    const res = await api(batchPath(teamId), {
      body: { mode: "all_or_nothing", items: items([4, 4, 4]) },
      idempotencyKey: newKey(),
    });
    const problem = expectProblem(res, 402, "insufficient_credits");
    expect(problem).toMatchObject({ required: 12, available: 10 });
    expect(await snapshot(teamId)).toEqual(before);
    await assertInvariants(teamId);
  });

  it("until_insufficient: spends in order, then one insufficient, the rest skipped", async () => {
    const teamId = await fundedTeam(10);
    const res = await api<BatchReplyT>(batchPath(teamId), {
      body: { mode: "until_insufficient", items: items([3, 4, 5, 1, 1]) },
      idempotencyKey: newKey(),
    });
    expectStatus(res, 200);
    expect(res.body.results).toHaveLength(5);
    expect(res.body.results[0]).toMatchObject({ index: 0, status: "spent", spend: { amount: 3 } });
    expect(res.body.results[1]).toMatchObject({ index: 1, status: "spent", spend: { amount: 4 } });
    expect(res.body.results[2]).toEqual({ index: 2, status: "insufficient", required: 5, available: 3 });
    // Items after the first that does not fit are skipped even when they would fit.
    expect(res.body.results[3]).toEqual({ index: 3, status: "skipped" });
    expect(res.body.results[4]).toEqual({ index: 4, status: "skipped" });
    expect(res.body.balance).toMatchObject({ available: 3 });
    expect(await allEntries(teamId, "type=spend")).toHaveLength(2);
    await assertInvariants(teamId);
  });

  it("until_insufficient: the first item not fitting spends nothing and still answers 200", async () => {
    const teamId = await fundedTeam(2);
    const before = await snapshot(teamId);
    const res = await api<BatchReplyT>(batchPath(teamId), {
      body: { mode: "until_insufficient", items: items([5, 1]) },
      idempotencyKey: newKey(),
    });
    expectStatus(res, 200);
    expect(res.body.results).toEqual([
      { index: 0, status: "insufficient", required: 5, available: 2 },
      { index: 1, status: "skipped" },
    ]);
    const after = await snapshot(teamId);
    expect(after.balance).toEqual(before.balance);
    expect(after.entries).toEqual(before.entries);
    await assertInvariants(teamId);
  });

  it("replays a batch with Idempotent-Replayed and refuses the key with another body", async () => {
    const teamId = await fundedTeam(10);
    const key = newKey();
    const body = { mode: "all_or_nothing", items: items([1, 2]) };
    const first = await api<BatchReplyT>(batchPath(teamId), { body, idempotencyKey: key });
    expectStatus(first, 200);
    const again = await api<BatchReplyT>(batchPath(teamId), { body, idempotencyKey: key });
    expectStatus(again, 200);
    expect(again.headers.get("idempotent-replayed")).toBe("true");
    expect(again.body).toEqual(first.body);
    const otherMode = await api(batchPath(teamId), {
      body: { ...body, mode: "until_insufficient" },
      idempotencyKey: key,
    });
    expectProblem(otherMode, 422, "idempotency_key_reused");
    expect((await balance(teamId)).available).toBe(7);
    await assertInvariants(teamId);
  });

  it("accepts exactly 1000 items and refuses 1001 or none with 400", async () => {
    const teamId = await fundedTeam(1000);
    const before = await snapshot(teamId);
    for (const list of [items(Array.from({ length: 1001 }, () => 1)), []]) {
      const res = await api(batchPath(teamId), {
        body: { mode: "all_or_nothing", items: list },
        idempotencyKey: newKey(),
      });
      expectProblem(res, 400, "invalid_request");
    }
    expect(await snapshot(teamId)).toEqual(before);

    const res = await api<BatchReplyT>(batchPath(teamId), {
      body: { mode: "all_or_nothing", items: items(Array.from({ length: 1000 }, () => 1)) },
      idempotencyKey: newKey(),
    });
    expectStatus(res, 200);
    expect(res.body.results).toHaveLength(1000);
    expect(res.body.results.every((r, i) => r.status === "spent" && r.index === i)).toBe(true);
    expect(res.body.balance).toMatchObject({ available: 0, total: 0 });
    expect(await allEntries(teamId)).toHaveLength(1001);
    await assertInvariants(teamId);
  });

  it("takes a body over 64 KiB (under 1 MiB) where the spend route refuses it; 413 above 1 MiB", async () => {
    const teamId = await fundedTeam(1000);
    const longItems = Array.from({ length: 400 }, (_, i) => ({
      feature: `f${i}`,
      amount: 1,
      reference: "r".repeat(200),
    }));
    const body = { mode: "all_or_nothing", items: longItems };
    const size = JSON.stringify(body).length;
    expect(size).toBeGreaterThan(64 * 1024);
    expect(size).toBeLessThan(1024 * 1024);
    const res = await api<BatchReplyT>(batchPath(teamId), { body, idempotencyKey: newKey() });
    expectStatus(res, 200);
    expect(res.body.balance.available).toBe(600);

    const before = await snapshot(teamId);
    const asSpend = await api(`/v1/teams/${teamId}/spends`, {
      rawBody: JSON.stringify({ feature: "f", amount: 1, reference: "r".repeat(size) }),
      idempotencyKey: newKey(),
    });
    expectProblem(asSpend, 413, "payload_too_large");
    const huge = `${JSON.stringify({ mode: "all_or_nothing", items: items([1]) })}${" ".repeat(1024 * 1024)}`;
    expectProblem(await api(batchPath(teamId), { rawBody: huge, idempotencyKey: newKey() }), 413, "payload_too_large");
    expect(await snapshot(teamId)).toEqual(before);
    await assertInvariants(teamId);
  });

  it("400 on a bad mode, bad items, missing amounts or bad amounts in any item; nothing written", async () => {
    const teamId = await fundedTeam(100);
    const before = await snapshot(teamId);
    const bad: unknown[] = [
      { items: items([1]) },
      { mode: "best_effort", items: items([1]) },
      { mode: "all_or_nothing" },
      { mode: "all_or_nothing", items: "x" },
      { mode: "all_or_nothing", items: [{ feature: "f", amount: 1, extra: true }] },
      { mode: "all_or_nothing", items: items([1]), dryRun: true },
    ];
    for (const body of bad) {
      expectProblem(await api(batchPath(teamId), { body, idempotencyKey: newKey() }), 400, "invalid_request");
    }
    const noAmount = await api(batchPath(teamId), {
      body: { mode: "until_insufficient", items: [{ feature: "a", amount: 1 }, { feature: "b" }] },
      idempotencyKey: newKey(),
    });
    expect(expectProblem(noAmount, 400, "invalid_request").detail).toContain("items[1]");
    for (const [label, amount] of BAD_AMOUNTS) {
      const res = await api(batchPath(teamId), {
        body: {
          mode: "until_insufficient",
          items: [
            { feature: "a", amount: 1 },
            { feature: "b", amount },
          ],
        },
        idempotencyKey: newKey(),
      });
      expect(res.status, label).toBe(400);
      expectProblem(res, 400, "invalid_request");
    }
    expectProblem(
      await api(batchPath(teamId), { body: { mode: "all_or_nothing", items: items([1]) } }),
      400,
      "invalid_request",
    );
    expect(await snapshot(teamId)).toEqual(before);
    await assertInvariants(teamId);
  });
});
