/**
 * GET /v1/admin/reconcile: the object's balance against the D1 replica plus the outbox backlog.
 * Zero drift when they agree, with or without a backlog; drift when a D1 row is lost or altered.
 */
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import {
  assertInvariants,
  assertObjectInvariants,
  balance,
  batchSpends,
  call,
  d1With,
  drainOutbox,
  expectStatus,
  injectD1,
  newKey,
  newTeamId,
  restoreD1,
  teamWithSpends,
} from "../support";

interface Measure {
  object: number;
  d1: number;
  backlog: number;
  drift: number;
}
interface ReconcileT {
  teamId: string;
  objectTotal: number;
  d1Total: number;
  outboxBacklog: number;
  drift: number;
  consistent: boolean;
  deliveredSeq: number;
  lastSeq: number;
  backlogEntries: number;
  d1Entries: number;
  missingEntries: number;
  available: Measure;
  held: Measure;
}

async function reconcile(teamId: string): Promise<ReconcileT> {
  const res = await call<ReconcileT>(`/v1/admin/reconcile?teamId=${teamId}`);
  expectStatus(res, 200);
  return res.body;
}

/** A team with spends, a captured hold, and a pending hold (so held is not zero). */
async function busyTeam(): Promise<string> {
  const teamId = newTeamId();
  await teamWithSpends(teamId, 40, 1_000);
  const hold = async (amount: number) => {
    const res = await call<{ hold: { id: string } }>(`/v1/teams/${teamId}/holds`, {
      body: { feature: "render", amount, ttlSeconds: 600 },
      idempotencyKey: newKey(),
    });
    expectStatus(res, 201);
    return res.body.hold.id;
  };
  const h = await hold(30);
  expectStatus(
    await call(`/v1/teams/${teamId}/holds/${h}/capture`, { body: { amount: 12 }, idempotencyKey: newKey() }),
    200,
  );
  await hold(25);
  return teamId;
}

describe("GET /v1/admin/reconcile", () => {
  it("zero drift once D1 has everything", async () => {
    const teamId = await busyTeam();
    await drainOutbox(teamId);
    const bal = await balance(teamId);
    const r = await reconcile(teamId);
    expect(r).toMatchObject({
      teamId,
      objectTotal: bal.total,
      d1Total: bal.total,
      outboxBacklog: 0,
      drift: 0,
      consistent: true,
      backlogEntries: 0,
      missingEntries: 0,
      available: { object: bal.available, d1: bal.available, backlog: 0, drift: 0 },
      held: { object: 25, d1: 25, backlog: 0, drift: 0 },
    });
    expect(r.d1Entries).toBe(r.lastSeq);
    await assertInvariants(teamId);
  });

  it("zero drift with a backlog D1 has not received: the backlog makes up the difference", async () => {
    const teamId = await busyTeam();
    await drainOutbox(teamId);
    await injectD1(teamId, (real) => d1With(real, () => Promise.reject(new Error("D1 is down (injected)"))));
    await batchSpends(teamId, 100);
    const r = await reconcile(teamId);
    expect(r.backlogEntries).toBe(100);
    expect(r.outboxBacklog).toBe(-100);
    expect(r.d1Total + r.outboxBacklog).toBe(r.objectTotal);
    expect(r.drift).toBe(0);
    expect(r.consistent).toBe(true);
    await restoreD1(teamId);
    await drainOutbox(teamId);
    expect(await reconcile(teamId)).toMatchObject({ drift: 0, outboxBacklog: 0, consistent: true });
    await assertInvariants(teamId);
  });

  it("reports the drift a lost or altered D1 row causes", async () => {
    const teamId = await busyTeam();
    await drainOutbox(teamId);
    // Lose a spend of 1 from D1: D1 now adds up to one credit more than the object has.
    const lost = await env.DB.prepare(
      "DELETE FROM ledger_entries WHERE team_id = ? AND seq = (SELECT max(seq) FROM ledger_entries WHERE team_id = ? AND type = 'spend') RETURNING amount_credits",
    )
      .bind(teamId, teamId)
      .first<{ amount_credits: number }>();
    expect(lost?.amount_credits).toBe(1);
    const afterLoss = await reconcile(teamId);
    expect(afterLoss).toMatchObject({ drift: -1, missingEntries: 1, consistent: false });
    expect(afterLoss.available.drift).toBe(-1);
    // Inflate the grant by 100 in D1 as well.
    await env.DB.prepare(
      "UPDATE ledger_entries SET amount_credits = amount_credits + 100 WHERE team_id = ? AND type = 'grant'",
    )
      .bind(teamId)
      .run();
    const afterEdit = await reconcile(teamId);
    expect(afterEdit).toMatchObject({ drift: -101, missingEntries: 1, consistent: false });
    // A capture turned into a plain spend: total agrees, but available and held drift apart.
    const other = await busyTeam();
    await drainOutbox(other);
    await env.DB.prepare(
      "UPDATE ledger_entries SET type = 'spend', direction = 'out' WHERE team_id = ? AND type = 'capture'",
    )
      .bind(other)
      .run();
    const swapped = await reconcile(other);
    expect(swapped).toMatchObject({ drift: 0, consistent: false, missingEntries: 0 });
    expect(swapped.available.drift).toBe(12);
    expect(swapped.held.drift).toBe(-12);
    // D1 was altered on purpose; the objects' own histories must still hold.
    await assertObjectInvariants(teamId);
    await assertObjectInvariants(other);
  });

  it("400 without a valid teamId, 404 for a team that was never created", async () => {
    for (const q of ["", "?teamId=", "?teamId=bad%20id"]) {
      const res = await call<{ code: string }>(`/v1/admin/reconcile${q}`);
      expect(res.status, q).toBe(400);
      expect(res.body.code).toBe("invalid_request");
    }
    const missing = await call<{ code: string }>(`/v1/admin/reconcile?teamId=${newTeamId()}`);
    expect(missing.status).toBe(404);
    expect((await call("/v1/admin/reconcile?teamId=x", { auth: false })).status).toBe(401);
  });
});
