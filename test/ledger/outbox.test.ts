/**
 * The outbox to D1. The first test goes the default way (the alarm sends to the history queue, the
 * consumer lands); the fault tests fail the object's own D1 through injectD1, which puts that
 * object on the direct path (it writes D1 itself), so their faults meet the object's outbox as
 * before. The queue's own faults: test/history/queue-faults.test.ts.
 */
import { runInDurableObject } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { historyMarkOf, ROWS_PER_STATEMENT } from "../../src/db/history";
import {
  OUTBOX_BACKOFF_BASE_MS,
  OUTBOX_BACKOFF_MAX_MS,
  OUTBOX_BATCHES_PER_ALARM,
  OUTBOX_D1_TIMEOUT_MS,
  OUTBOX_ROWS_PER_D1_BATCH,
} from "../../src/limits";
import type { TeamLedger } from "../../src/object/team-ledger";
import {
  type AlarmObservation,
  assertInvariants,
  call,
  createHold,
  createTeam,
  currentManualRun,
  d1Entries,
  d1With,
  drainOutbox,
  expectD1MatchesObject,
  expectStatus,
  grant,
  holdAction,
  injectD1,
  injectD1Down,
  ledgerStub,
  makeGrantDue,
  makeHoldDue,
  newKey,
  newTeamId,
  objectEntries,
  outboxIn,
  outboxOf,
  restoreD1,
  runAlarm,
  runManualAlarm,
  spend,
  storedAlarm,
  voidGrant,
} from "../support";

const backoffMs = (attempts: number): number =>
  Math.min(OUTBOX_BACKOFF_BASE_MS * 2 ** (attempts - 1), OUTBOX_BACKOFF_MAX_MS);

/** A failed run recorded its attempt and set the next one by the backoff, from its own clock. */
function expectBackoff(obs: AlarmObservation): void {
  const { after } = obs;
  expect(after.failedAttempts, "the failure is counted").toBeGreaterThan(obs.before.failedAttempts);
  const base = after.nextAttemptAtMs - backoffMs(after.failedAttempts);
  expect(base, "next attempt = run time + backoff(attempts)").toBeGreaterThanOrEqual(obs.startedMs);
  expect(base).toBeLessThanOrEqual(obs.endedMs);
  expect(obs.alarmAfter, "the alarm is set for the retry, not sooner").toBe(after.nextAttemptAtMs);
}

async function spendBatch(teamId: string, count: number, amount = 1) {
  const res = await call<{ results: { status: string }[] }>(`/v1/teams/${teamId}/spends/batch`, {
    body: { mode: "all_or_nothing", items: Array.from({ length: count }, () => ({ feature: "bulk", amount })) },
    idempotencyKey: newKey(),
  });
  expectStatus(res, 200);
  expect(res.body.results.every((r) => r.status === "spent")).toBe(true);
}

describe("outbox to D1", () => {
  it("after operations and the alarm, every entry is in D1 exactly once, as in the object", async () => {
    const teamId = newTeamId();
    await createTeam(teamId);
    const { grant: paid } = await grant(teamId, 500);
    const { grant: free } = await grant(teamId, 100, {
      category: "free",
      source: "allocation",
      expiresAt: new Date(Date.now() + 86_400_000).toISOString(),
    });
    expectStatus(await spend(teamId, 30), 201);
    const { hold: h1 } = await createHold(teamId, 40);
    expectStatus(await holdAction(teamId, h1.id, "capture", { amount: 25 }), 200);
    const { hold: h2 } = await createHold(teamId, 50);
    expectStatus(await holdAction(teamId, h2.id, "release"), 200);
    const { hold: h3 } = await createHold(teamId, 10);
    await makeHoldDue(teamId, h3.id);
    await makeGrantDue(teamId, free.id);
    await runAlarm(teamId);
    await spendBatch(teamId, 3, 2);
    expectStatus(await voidGrant(teamId, paid.id), 200);
    await drainOutbox(teamId);

    const types = new Set((await objectEntries(teamId)).map((e) => e.type));
    for (const t of ["grant", "spend", "hold", "capture", "release", "expire", "void"]) expect(types).toContain(t);
    await expectD1MatchesObject(teamId);
    const out = await outboxOf(teamId);
    expect(out).toMatchObject({ backlog: 0, failedAttempts: 0 });
    expect(out.deliveredSeq).toBe((await objectEntries(teamId)).length);
    // Running the alarm again sends nothing twice.
    await runManualAlarm(teamId);
    await expectD1MatchesObject(teamId);
    await assertInvariants(teamId);
  });

  it("D1 down: spends still succeed, the backlog grows, retries back off; then all is delivered once", async () => {
    const teamId = newTeamId();
    await createTeam(teamId);
    const down = await injectD1Down(teamId);
    await grant(teamId, 1000);
    for (let i = 0; i < 5; i++) expectStatus(await spend(teamId, 10), 201);

    const first = await runManualAlarm(teamId);
    expect(down.calls).toBeGreaterThan(0);
    expect(first.after.deliveredSeq).toBe(0);
    expect(first.after.backlog).toBe(6);
    expect(first.after.lastError).toContain("D1 is down");
    expectBackoff(first);

    // More spends while D1 is down: they succeed and the backlog grows; they do not pull the
    // retry earlier than its backoff.
    for (let i = 0; i < 3; i++) expectStatus(await spend(teamId, 10), 201);
    expect((await outboxOf(teamId)).backlog).toBe(9);

    const second = await runManualAlarm(teamId);
    expectBackoff(second);
    const third = await runManualAlarm(teamId);
    expectBackoff(third);
    expect(third.after.failedAttempts).toBeGreaterThanOrEqual(3);
    expect(third.after.nextAttemptAtMs - third.startedMs).toBeGreaterThanOrEqual(backoffMs(3));
    expect(await d1Entries(teamId)).toHaveLength(0);

    await restoreD1(teamId);
    await drainOutbox(teamId);
    await expectD1MatchesObject(teamId);
    expect(await outboxOf(teamId)).toMatchObject({ backlog: 0, failedAttempts: 0, nextAttemptAtMs: 0 });
    await assertInvariants(teamId);
  });

  it("an alarm that fires before the retry time (for an expiry) leaves D1 alone", async () => {
    const teamId = newTeamId();
    await createTeam(teamId);
    const down = await injectD1Down(teamId);
    await grant(teamId, 100);
    const failed = await runManualAlarm(teamId);
    expect(failed.after.failedAttempts).toBe(1);
    const callsAfterFailure = down.calls;
    // Run the alarm early, as an expiry would, without letting the clock reach the retry time.
    const after = await runInDurableObject(ledgerStub(teamId), async (instance: TeamLedger) => {
      await instance.alarm();
      return outboxIn(instance, teamId);
    });
    expect(down.calls, "no D1 call before the retry time").toBe(callsAfterFailure);
    expect(after.failedAttempts).toBe(1);
    expect(after.nextAttemptAtMs).toBe(failed.after.nextAttemptAtMs);
    await restoreD1(teamId);
    await drainOutbox(teamId);
    await expectD1MatchesObject(teamId);
    await assertInvariants(teamId);
  });

  it("a spend while D1 is down does not move the retry alarm earlier", async () => {
    const teamId = newTeamId();
    await createTeam(teamId);
    await injectD1Down(teamId);
    await grant(teamId, 100);
    await runManualAlarm(teamId);
    const failed = await runManualAlarm(teamId);
    expectBackoff(failed);
    expectStatus(await spend(teamId, 1), 201);
    const [state, alarm] = await Promise.all([outboxOf(teamId), storedAlarm(teamId)]);
    expect(alarm).toBe(state.nextAttemptAtMs);
    await restoreD1(teamId);
    await drainOutbox(teamId);
    await expectD1MatchesObject(teamId);
    await assertInvariants(teamId);
  });

  it("a D1 batch that applies half its statements and then fails: after retry, no duplicates, none missing", async () => {
    const teamId = newTeamId();
    await createTeam(teamId);
    await injectD1(teamId, (real) =>
      d1With(real, async (statements) => {
        await real.batch(statements.slice(0, Math.floor(statements.length / 2)));
        throw new Error("D1 failed mid-batch (injected)");
      }),
    );
    await grant(teamId, 1000);
    // 450 entries: one D1 batch of 6 statements (inserts of 100 rows each, then 50, then D1's mark).
    await spendBatch(teamId, 449);

    const failed = await runManualAlarm(teamId);
    expectBackoff(failed);
    expect(failed.after.deliveredSeq).toBe(0);
    const partial = await d1Entries(teamId);
    // The first 3 of the 6 statements were applied; the mark, last in the batch, was not moved.
    const applied = 3 * ROWS_PER_STATEMENT;
    expect(partial.map((r) => r.seq)).toEqual(Array.from({ length: applied }, (_, i) => i + 1));
    expect(await historyMarkOf(env.DB, teamId), "D1's mark moves only with a whole batch").toBe(0);
    // Retrying with the same fault applies the same half again and changes nothing.
    await runManualAlarm(teamId);
    expect(await d1Entries(teamId)).toHaveLength(applied);

    await restoreD1(teamId);
    await drainOutbox(teamId);
    await expectD1MatchesObject(teamId);
    await assertInvariants(teamId);
  });

  it("a D1 batch that fails after being applied in full is resent without duplicates", async () => {
    const teamId = newTeamId();
    await createTeam(teamId);
    let failures = 0;
    await injectD1(teamId, (real) =>
      d1With(real, async (statements) => {
        const results = await real.batch(statements);
        if (failures < 2) {
          failures += 1;
          throw new Error("D1 reply lost (injected)");
        }
        return results;
      }),
    );
    await grant(teamId, 1000);
    await spendBatch(teamId, 120);
    for (let run = 0; run < 10 && (await outboxOf(teamId)).backlog > 0; run++) await runManualAlarm(teamId);
    expect(failures).toBe(2);
    expect((await outboxOf(teamId)).backlog).toBe(0);
    await expectD1MatchesObject(teamId);
    await assertInvariants(teamId);
  });

  it(`a D1 that never answers: the flush times out after ${OUTBOX_D1_TIMEOUT_MS} ms and spends go on meanwhile`, async () => {
    const teamId = newTeamId();
    await createTeam(teamId);
    await injectD1(teamId, (real) => d1With(real, () => new Promise<D1Result[]>(() => {})));
    await grant(teamId, 100);
    const flushing = runManualAlarm(teamId);
    // The object is not blocked by the hanging flush.
    expectStatus(await spend(teamId, 7), 201);
    const obs = await flushing;
    expect(obs.after.lastError).toContain("timed out");
    expect(obs.after.failedAttempts).toBeGreaterThanOrEqual(1);
    expect(obs.after.deliveredSeq).toBe(0);
    await restoreD1(teamId);
    await drainOutbox(teamId);
    await expectD1MatchesObject(teamId);
    await assertInvariants(teamId);
  }, 40_000);

  it("a large backlog (10,501 entries) drains in bounded alarm runs and ends complete", async () => {
    const teamId = newTeamId();
    await createTeam(teamId);
    // Only alarm runs the test starts may reach D1; the runtime's own alarm runs are refused, so
    // each run's work is measured exactly.
    await injectD1(teamId, (real) =>
      d1With(real, (statements) => {
        const run = currentManualRun();
        if (!run) return Promise.reject(new Error("not a test-run alarm (injected)"));
        run.batches.push(statements.length);
        return real.batch(statements);
      }),
    );
    const total = 10_501;
    await grant(teamId, total - 1);
    for (let i = 0; i < 10; i++) await spendBatch(teamId, 1000);
    await spendBatch(teamId, 500);
    expect((await outboxOf(teamId)).backlog).toBe(total);

    const perRun = OUTBOX_ROWS_PER_D1_BATCH * OUTBOX_BATCHES_PER_ALARM;
    expect(perRun, "the test needs more than one alarm run").toBeLessThan(total);
    const delivered: number[] = [];
    const batches: number[] = [];
    for (let run = 0; run < 10 && (await outboxOf(teamId)).backlog > 0; run++) {
      const obs = await runManualAlarm(teamId);
      delivered.push(obs.after.deliveredSeq - obs.before.deliveredSeq);
      batches.push(obs.batches.length);
      // The inserts, and the statement that moves D1's mark.
      for (const statements of obs.batches)
        expect(statements).toBeLessThanOrEqual(Math.ceil(OUTBOX_ROWS_PER_D1_BATCH / ROWS_PER_STATEMENT) + 1);
    }
    const expected: number[] = [];
    for (let left = total; left > 0; left -= perRun) expected.push(Math.min(left, perRun));
    expect(delivered).toEqual(expected);
    expect(batches).toEqual(expected.map((n) => Math.ceil(n / OUTBOX_ROWS_PER_D1_BATCH)));
    expect((await outboxOf(teamId)).backlog).toBe(0);
    await restoreD1(teamId);
    await expectD1MatchesObject(teamId);
    await assertInvariants(teamId);
  });
});
