/**
 * Fault injection around the team object's alarm: alarms that fire late (everything long due,
 * several expiries at once), alarms that fire twice (back to back, and two runs at the same time
 * in one object), and an alarm that throws mid-run followed by the runtime's retry. Each scenario
 * checks every entry reaches D1 exactly once, nothing is expired twice, and the object's state is
 * what a plain expectation computed here says.
 */
import { runInDurableObject } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { OUTBOX_FLUSH_DELAY_MS, OUTBOX_ROWS_PER_D1_BATCH } from "../../src/limits";
import type { TeamLedger } from "../../src/object/team-ledger";
import {
  assertInvariants,
  balance,
  call,
  createHold,
  createTeam,
  d1Entries,
  d1With,
  deferred,
  drainOutbox,
  expectD1MatchesObject,
  expectStatus,
  grant,
  injectD1,
  injectD1Down,
  ledgerStub,
  newKey,
  newTeamId,
  objectEntries,
  objectExec,
  objectRows,
  outboxIn,
  outboxOf,
  pauseOutbox,
  reachRetryTime,
  restoreD1,
  resumeOutbox,
  runAlarm,
  spend,
  storedAlarm,
} from "../support";

const DAY_MS = 86_400_000;
const inHours = (h: number): string => new Date(Date.now() + h * 3_600_000).toISOString();

/**
 * A team with several things that will all be due at once:
 * - paid 1000 (never expires); holds H1 30, H2 50, H3 70 and a spend of 100, all from it
 *   (made before the other grants exist, so they draw from paid alone);
 * - free F1 100 (a spend of 30 then draws from it), free F2 60, promotional G 80, all expiring.
 * Then F1, F2 and G are made due 3 days ago, H1 and H2 2 days ago; H3 stays pending.
 * With `bulk`, that many spends of 1 (from paid) are made before the expiring grants exist.
 */
async function longDueTeam(bulk = 0) {
  const teamId = newTeamId("late");
  await createTeam(teamId);
  // Nothing is delivered while the scenario is set up, however long that takes.
  await pauseOutbox(teamId);
  const { grant: paid } = await grant(teamId, 1000);
  const { hold: h1 } = await createHold(teamId, 30, 600);
  const { hold: h2 } = await createHold(teamId, 50, 600);
  const { hold: h3 } = await createHold(teamId, 70, 3600);
  expectStatus(await spend(teamId, 100), 201);
  if (bulk > 0) {
    // A backlog of `bulk` more entries (one spend of 1 each, from paid), before the other grants.
    const items = Array.from({ length: bulk }, () => ({ feature: "bulk", amount: 1 }));
    const res = await call(`/v1/teams/${teamId}/spends/batch`, {
      body: { mode: "all_or_nothing", items },
      idempotencyKey: newKey(),
    });
    expectStatus(res, 200);
  }
  const { grant: f1 } = await grant(teamId, 100, { category: "free", source: "allocation", expiresAt: inHours(1) });
  const { grant: f2 } = await grant(teamId, 60, { category: "free", source: "allocation", expiresAt: inHours(2) });
  const { grant: g } = await grant(teamId, 80, {
    category: "promotional",
    source: "promotional",
    expiresAt: inHours(1),
  });
  const s = await spend(teamId, 30);
  expectStatus(s, 201);
  expect(
    (s.body.entries as { grantId: string }[]).map((e) => e.grantId),
    "the spend draws from F1",
  ).toEqual([f1.id]);

  const longAgo = Date.now() - 3 * DAY_MS;
  for (const id of [f1.id, f2.id, g.id])
    expect(await objectExec(teamId, "UPDATE grants SET expires_at = ? WHERE id = ? RETURNING id", longAgo, id)).toBe(1);
  for (const id of [h1.id, h2.id])
    expect(
      await objectExec(teamId, "UPDATE holds SET expires_at = ? WHERE id = ? RETURNING id", longAgo + DAY_MS, id),
    ).toBe(1);
  await resumeOutbox(teamId);
  return { teamId, bulk, paid, f1, f2, g, h1, h2, h3 };
}

type Scenario = Awaited<ReturnType<typeof longDueTeam>>;

/** What the object must hold once everything due is settled, whatever ran it and how often. */
async function expectSettled(t: Scenario): Promise<void> {
  const expires = (await objectEntries(t.teamId)).filter((e) => e.type === "expire");
  expect(
    expires.map((e) => [e.direction, e.amount, e.grant_id, e.hold_id]).sort(),
    "each due grant and hold expired exactly once",
  ).toEqual(
    [
      ["out", 70, t.f1.id, null], // F1: 100 − the spend of 30
      ["out", 60, t.f2.id, null],
      ["out", 80, t.g.id, null],
      ["in", 30, t.paid.id, t.h1.id],
      ["in", 50, t.paid.id, t.h2.id],
    ].sort(),
  );
  const holds = await objectRows<{ id: string; status: string }>(t.teamId, "SELECT id, status FROM holds ORDER BY id");
  expect(Object.fromEntries(holds.map((h) => [h.id, h.status]))).toEqual({
    [t.h1.id]: "expired",
    [t.h2.id]: "expired",
    [t.h3.id]: "pending",
  });
  const grants = await objectRows<{ id: string; status: string }>(t.teamId, "SELECT id, status FROM grants");
  expect(Object.fromEntries(grants.map((g) => [g.id, g.status]))).toEqual({
    [t.paid.id]: "active",
    [t.f1.id]: "expired",
    [t.f2.id]: "expired",
    [t.g.id]: "expired",
  });
  // paid: 1000 − spend 100 − bulk remaining, of which H3 holds 70.
  const bal = await balance(t.teamId);
  expect(bal).toMatchObject({ available: 830 - t.bulk, held: 70, total: 900 - t.bulk });
  expect(bal.grants.map((g) => [g.id, g.remaining, g.held])).toEqual([[t.paid.id, 900 - t.bulk, 70]]);
  // 4 grants, 3 holds, 2 + bulk spends, 5 expiries.
  expect((await objectEntries(t.teamId)).length).toBe(14 + t.bulk);
}

/** Runs the alarm as the runtime does, without deleting the stored one first. */
function alarmNow(teamId: string): Promise<void> {
  return runInDurableObject(ledgerStub(teamId), (instance: TeamLedger) => instance.alarm());
}

describe("an alarm that fires late", () => {
  it("settles everything long due in one run: each expiry once, the balance as expected, D1 complete", async () => {
    const t = await longDueTeam();
    // Nothing has read the team since the deadlines passed: the alarm is the first to settle.
    expect(await runAlarm(t.teamId)).toBe(true);
    await expectSettled(t);
    await drainOutbox(t.teamId);
    await expectD1MatchesObject(t.teamId);
    // The alarm left behind is for H3, the only thing still pending.
    expect(await storedAlarm(t.teamId)).toBe(
      (await objectRows<{ e: number }>(t.teamId, "SELECT expires_at AS e FROM holds WHERE status = 'pending'"))[0]?.e,
    );
    await assertInvariants(t.teamId);
  });

  it("a late alarm with D1 behind as well: the expiries and the old backlog arrive together, once", async () => {
    const t = await longDueTeam();
    // D1 was down for everything so far; it comes back exactly when the late alarm runs.
    await injectD1Down(t.teamId);
    await alarmNow(t.teamId);
    expect((await outboxOf(t.teamId)).deliveredSeq).toBe(0);
    await expectSettled(t);
    await restoreD1(t.teamId);
    await drainOutbox(t.teamId);
    await expectSettled(t);
    await expectD1MatchesObject(t.teamId);
    await assertInvariants(t.teamId);
  });
});

describe("an alarm that fires twice", () => {
  it("back to back: the second run finds nothing due and sends nothing again", async () => {
    const t = await longDueTeam();
    let statements = 0;
    await injectD1(t.teamId, (real) =>
      d1With(real, (batch) => {
        statements += batch.length;
        return real.batch(batch);
      }),
    );
    await alarmNow(t.teamId);
    const afterFirst = await outboxOf(t.teamId);
    expect(afterFirst).toMatchObject({ backlog: 0, failedAttempts: 0 });
    const sent = statements;
    await alarmNow(t.teamId);
    expect(statements, "the second run sends nothing").toBe(sent);
    expect(await outboxOf(t.teamId)).toEqual(afterFirst);
    await expectSettled(t);
    await expectD1MatchesObject(t.teamId);
    await restoreD1(t.teamId);
    await assertInvariants(t.teamId);
  });

  it("twice at the same time in one object: each expiry once, each entry in D1 once, the mark never goes back", async () => {
    // 514 entries once settled: two D1 batches, so both runs are mid-flush at once.
    const t = await longDueTeam(OUTBOX_ROWS_PER_D1_BATCH);
    // D1 calls, in order: the first run's first batch waits until the second run has sent its
    // own first batch (the same rows: neither has marked anything yet); that one's answer is held
    // until the first run has finished. The second run then resumes on a mark already past it.
    const firstReached = deferred();
    const secondStarted = deferred();
    const firstRunDone = deferred();
    let calls = 0;
    const marks: number[] = [];
    await runInDurableObject(ledgerStub(t.teamId), async (instance: TeamLedger, state) => {
      // Only the two runs below may reach D1: the alarm the setup's writes scheduled would take one
      // of the two choreographed calls and wait for a run that waits for it.
      await state.storage.deleteAlarm();
      // The direct path: the two runs race on the object's own D1 writes (injectD1 does the same).
      instance.historyQueue = null;
      instance.d1 = d1With(env.DB, async (batch) => {
        calls += 1;
        const n = calls;
        marks.push(outboxIn(instance, t.teamId).deliveredSeq);
        if (n === 1) {
          firstReached.resolve();
          await secondStarted.promise;
        }
        if (n === 2) secondStarted.resolve();
        const results = await env.DB.batch(batch);
        if (n === 2) await firstRunDone.promise;
        return results;
      });
    });
    // The second run starts once the first is at D1: started together, either could reach D1
    // first, and the roles (and their waits) would swap into a deadlock broken only by the D1
    // timeout.
    const first = alarmNow(t.teamId);
    await firstReached.promise;
    const second = alarmNow(t.teamId);
    await first;
    marks.push((await outboxOf(t.teamId)).deliveredSeq);
    firstRunDone.resolve();
    await second;
    marks.push((await outboxOf(t.teamId)).deliveredSeq);
    await restoreD1(t.teamId);

    const lastSeq = 14 + OUTBOX_ROWS_PER_D1_BATCH;
    expect((await objectEntries(t.teamId)).length).toBe(lastSeq);
    expect(calls, "both runs reached D1").toBeGreaterThanOrEqual(3);
    for (let i = 1; i < marks.length; i++)
      expect(marks[i], `deliveredSeq never moves back (${marks.join(",")})`).toBeGreaterThanOrEqual(marks[i - 1] ?? 0);
    expect(await outboxOf(t.teamId)).toMatchObject({ deliveredSeq: lastSeq, backlog: 0, failedAttempts: 0 });
    await expectSettled(t);
    expect(await d1Entries(t.teamId)).toHaveLength(lastSeq);
    await expectD1MatchesObject(t.teamId);
    await assertInvariants(t.teamId);
  });

  it("many runs at once with D1 slow: still each entry once and each expiry once", async () => {
    const t = await longDueTeam();
    await injectD1(t.teamId, (real) =>
      d1With(real, async (batch) => {
        await new Promise((r) => setTimeout(r, 20));
        return real.batch(batch);
      }),
    );
    await Promise.all(Array.from({ length: 5 }, () => alarmNow(t.teamId)));
    await restoreD1(t.teamId);
    await expectSettled(t);
    expect(await outboxOf(t.teamId)).toMatchObject({ deliveredSeq: 14, backlog: 0, failedAttempts: 0 });
    await expectD1MatchesObject(t.teamId);
    await assertInvariants(t.teamId);
  });
});

describe("writes while an alarm run is in flight", () => {
  it("spends made while the run awaits D1 are never left without an alarm (the run sets it from storage when it ends)", async () => {
    const teamId = newTeamId("alarm-inflight");
    await createTeam(teamId);
    await grant(teamId, 1_000);
    await drainOutbox(teamId);
    const gate = deferred();
    const entered = deferred();
    await injectD1(teamId, (real) =>
      d1With(real, async (batch) => {
        entered.resolve();
        await gate.promise;
        return real.batch(batch);
      }),
    );
    expectStatus(await spend(teamId, 1), 201);
    const run = alarmNow(teamId);
    await entered.promise;
    // The run is awaiting D1: these spends do not set the alarm themselves (alarm.ts afterWrite).
    for (let i = 0; i < 5; i++) expectStatus(await spend(teamId, 1), 201);
    gate.resolve();
    await run;
    // Nothing is left pending without an alarm due for it: the spends made during the run were
    // sent by it (its flush reads on until the outbox is empty), or the alarm is due soon.
    const alarm = await runInDurableObject(ledgerStub(teamId), (_i: TeamLedger, state) => state.storage.getAlarm());
    const out = await outboxOf(teamId);
    if (out.backlog > 0) expect(alarm ?? Infinity).toBeLessThanOrEqual(Date.now() + OUTBOX_FLUSH_DELAY_MS + 1_000);
    else expect(out.deliveredSeq).toBe(7);
    await restoreD1(teamId);
    await drainOutbox(teamId);
    await expectD1MatchesObject(teamId);
    await assertInvariants(teamId);
  });
});

describe("an alarm that throws mid-run", () => {
  it("D1 throws on the second batch: the first stays delivered, the retry sends the rest once", async () => {
    const t = await longDueTeam(OUTBOX_ROWS_PER_D1_BATCH);
    let calls = 0;
    await injectD1(t.teamId, (real) =>
      d1With(real, (batch) => {
        calls += 1;
        // Thrown synchronously, not a rejected promise: a driver bug, not a network error.
        if (calls === 2) throw new Error("D1 threw (injected)");
        return real.batch(batch);
      }),
    );
    await alarmNow(t.teamId);
    const out = await outboxOf(t.teamId);
    expect(out.deliveredSeq, "the first batch stays delivered").toBe(OUTBOX_ROWS_PER_D1_BATCH);
    expect(out.failedAttempts).toBe(1);
    expect(out.lastError).toContain("D1 threw");
    expect(await storedAlarm(t.teamId), "the retry is scheduled").toBe(out.nextAttemptAtMs);
    await expectSettled(t);

    // The runtime runs the retry at its time.
    await drainOutbox(t.teamId);
    expect(await outboxOf(t.teamId)).toMatchObject({ backlog: 0, failedAttempts: 0 });
    expect(calls).toBe(3);
    await restoreD1(t.teamId);
    await expectSettled(t);
    await expectD1MatchesObject(t.teamId);
    await assertInvariants(t.teamId);
  });

  it("the alarm itself throws after settling: the runtime retries it, nothing is expired twice, D1 ends complete", async () => {
    const t = await longDueTeam();
    let throws = 1;
    let reads = 0;
    await runInDurableObject(ledgerStub(t.teamId), (i: TeamLedger) => {
      // Reaching the database throws once (as a binding that fails to resolve would), after the
      // alarm has already committed its settlement: the handler itself fails.
      Object.defineProperty(i, "d1", {
        configurable: true,
        get() {
          reads += 1;
          if (throws > 0) {
            throws -= 1;
            throw new Error("D1 binding threw (injected)");
          }
          return env.DB;
        },
        set() {},
      });
    });
    // Let the runtime run the alarm (set for now): it throws, and the runtime retries it.
    await reachRetryTime(t.teamId);
    await runInDurableObject(ledgerStub(t.teamId), (_i: TeamLedger, state) => state.storage.setAlarm(Date.now()));
    const deadline = Date.now() + 20_000;
    while (Date.now() < deadline && (reads < 2 || (await outboxOf(t.teamId)).backlog > 0))
      await new Promise((r) => setTimeout(r, 100));
    expect(reads, "the alarm ran again after it threw").toBeGreaterThanOrEqual(2);
    expect((await outboxOf(t.teamId)).backlog, "the runtime's retry delivered everything").toBe(0);
    await runInDurableObject(ledgerStub(t.teamId), (i: TeamLedger) => {
      Object.defineProperty(i, "d1", { configurable: true, writable: true, value: env.DB });
    });
    await expectSettled(t);
    await expectD1MatchesObject(t.teamId);
    await assertInvariants(t.teamId);
  });
});
