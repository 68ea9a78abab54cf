/**
 * The chain is written by the team object at write time: continuous over every kind of operation,
 * over an object restart (the head is derived from the last entry at load) and over rolled-back
 * transactions (the head is derived again, so nothing rolled back is chained to).
 */
import { abortAllDurableObjects } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { chainHash, GENESIS_HASH } from "../../src/domain/chain";
import {
  assertInvariants,
  call,
  createHold,
  createTeam,
  drainOutbox,
  everyKindOfOperation,
  expectObjectChainIntact,
  expectStatus,
  fieldsOf,
  grant,
  makeHoldDue,
  newKey,
  newTeamId,
  spend,
  verify,
} from "../support";

describe("the chain across operations and restarts", () => {
  it("is continuous over every kind of operation and over object restarts", async () => {
    const teamId = newTeamId("chain-restart");
    await createTeam(teamId);
    const seams: number[] = [];
    for (let round = 0; round < 3; round++) {
      await everyKindOfOperation(teamId, round);
      const before = await expectObjectChainIntact(teamId);
      const last = before[before.length - 1];
      if (!last) throw new Error("entries were written");
      seams.push(last.seq);
      await abortAllDurableObjects();
      // The first entry after the restart links to the last one before it.
      await grant(teamId, 5);
      expectStatus(await spend(teamId, 1), 201);
      const after = await expectObjectChainIntact(teamId);
      const next = after.find((r) => r.seq === last.seq + 1);
      if (!next) throw new Error("an entry after the restart");
      expect(next.hash).toBe(chainHash(last.hash ?? "", fieldsOf(teamId, next)));
    }
    const rows = await expectObjectChainIntact(teamId);
    const first = rows[0];
    if (!first) throw new Error("entries were written");
    expect(first.hash, "the first entry links to the genesis hash").toBe(
      chainHash(GENESIS_HASH, fieldsOf(teamId, first)),
    );
    const types = new Set(rows.map((r) => r.type));
    for (const t of ["grant", "spend", "hold", "capture", "release", "expire", "void"]) expect(types).toContain(t);
    await drainOutbox(teamId);
    expect(await verify(teamId)).toMatchObject({ ok: true, checked: rows.length, firstBreak: null });
    await assertInvariants(teamId);
  });

  it("a rolled-back transaction that had written entries leaves no trace in the chain", async () => {
    const teamId = newTeamId("chain-rollback");
    await createTeam(teamId);
    await grant(teamId, 10);
    const { hold } = await createHold(teamId, 4);
    await makeHoldDue(teamId, hold.id);
    // The spend settles the due hold (writing its expiry entry), then fails with 402: the whole
    // transaction, expiry entry included, rolls back.
    expectStatus(await spend(teamId, 1_000), 402);
    // And a reused key with another body rolls back the same way.
    const key = newKey();
    expectStatus(await spend(teamId, 1, key), 201);
    const { hold: hold2 } = await createHold(teamId, 2);
    await makeHoldDue(teamId, hold2.id);
    expectStatus(await spend(teamId, 2, key), 422);
    // The next entries chain on from the last committed one.
    expectStatus(await spend(teamId, 3), 201);
    expectStatus(
      await call(`/v1/teams/${teamId}/spends/batch`, {
        body: {
          mode: "until_insufficient",
          items: [
            { feature: "x", amount: 1 },
            { feature: "y", amount: 100 },
          ],
        },
        idempotencyKey: newKey(),
      }),
      200,
    );
    const rows = await expectObjectChainIntact(teamId);
    expect(rows.map((r) => r.seq)).toEqual(rows.map((_, i) => i + 1));
    await drainOutbox(teamId);
    expect(await verify(teamId)).toMatchObject({ ok: true, checked: rows.length });
    await assertInvariants(teamId);
  });
});
