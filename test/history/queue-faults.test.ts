/**
 * Faults on the history's way through the queue, all through the real queue (miniflare's, with
 * wrangler.toml's max_retries and dead-letter queue): D1 failing in the consumer is retried until
 * the entries land; a message that keeps failing goes to the dead-letter queue, is recorded, and the
 * re-drive lands it exactly once; a gap in D1 shows in reconciliation and a resend from its first
 * seq heals it. Nothing is lost and nothing doubled, checked row by row against the object.
 */
import { env } from "cloudflare:workers";
import { afterEach, describe, expect, it } from "vitest";
import { historyMarkOf } from "../../src/db/history";
import { consumerSeams } from "../../src/history-queue/consumer";
import { HISTORY_CONFIRM_AFTER_MS } from "../../src/limits";
import {
  assertInvariants,
  batchSpends,
  call,
  d1Entries,
  d1With,
  drainOutbox,
  expectD1MatchesObject,
  expectStatus,
  newTeamId,
  objectEntries,
  objectExec,
  outboxOf,
  runAlarm,
  teamWithSpends,
  waitConfirmed,
} from "../support";

const realDatabase = consumerSeams.database;
afterEach(() => {
  consumerSeams.database = realDatabase;
});

/** Fails the consumer's D1 batches for one team's messages while `failing()` says so; counts them. */
function failD1For(teamId: string, failing: (call: number) => boolean): { calls: number } {
  const seen = { calls: 0 };
  consumerSeams.database = (e, t) =>
    t === teamId
      ? d1With(env.DB, (statements) => {
          seen.calls += 1;
          if (failing(seen.calls)) return Promise.reject(new Error("D1 is down for the consumer (injected)"));
          return env.DB.batch(statements);
        })
      : realDatabase(e, t);
  return seen;
}

async function until(what: string, check: () => Promise<boolean>, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting until ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

interface ReconcileT {
  drift: number;
  consistent: boolean;
  deliveredSeq: number;
  sentSeq: number;
  d1Seq: number;
  lastSeq: number;
  missingEntries: number;
  unlandedEntries: number;
  gap: boolean;
}

async function reconcile(teamId: string): Promise<ReconcileT> {
  const res = await call<ReconcileT>(`/v1/admin/reconcile?teamId=${teamId}`);
  expectStatus(res, 200);
  return res.body;
}

function deadLetters(teamId: string): Promise<number> {
  return env.DB.prepare("SELECT COUNT(*) AS n FROM history_dead_letters WHERE team_id = ?")
    .bind(teamId)
    .first<{ n: number }>()
    .then((r) => r?.n ?? 0);
}

describe("the history queue under faults", () => {
  it("D1 failing in the consumer: the batch is retried and lands, once", async () => {
    const teamId = newTeamId("retried");
    await teamWithSpends(teamId, 12, 1_000);
    const seen = failD1For(teamId, (n) => n <= 2);
    await runAlarm(teamId);
    expect(await waitConfirmed(teamId), "landed after the retries").toBe(true);
    expect(seen.calls, "two failures, then the landing").toBe(3);
    expect(await deadLetters(teamId)).toBe(0);
    await expectD1MatchesObject(teamId);
    expect(await outboxOf(teamId)).toMatchObject({ backlog: 0, unsent: 0, failedAttempts: 0 });
    await assertInvariants(teamId);
  });

  it("a message that keeps failing goes to the dead-letter queue; the re-drive lands it exactly once", async () => {
    const teamId = newTeamId("dead");
    await teamWithSpends(teamId, 9, 1_000);
    const lastSeq = (await objectEntries(teamId)).length;
    const seen = failD1For(teamId, () => true);
    await runAlarm(teamId);
    await until("the dead message is recorded", async () => (await deadLetters(teamId)) > 0);
    // wrangler.toml: max_retries = 5, so 6 attempts before the dead-letter queue.
    expect(seen.calls).toBe(6);
    expect(await d1Entries(teamId)).toHaveLength(0);
    const lost = await reconcile(teamId);
    expect(lost).toMatchObject({ sentSeq: lastSeq, deliveredSeq: 0, d1Seq: 0, unlandedEntries: lastSeq, drift: 0 });
    // Pages still read everything from the object meanwhile.
    const page = await call<{ entries: { seq: number }[] }>(`/v1/teams/${teamId}/entries?limit=200`);
    expect(page.body.entries.map((e) => e.seq)).toEqual(Array.from({ length: lastSeq }, (_, i) => lastSeq - i));

    // The cause is fixed; the operator re-drives the dead letters.
    consumerSeams.database = realDatabase;
    const redrive = await call<{ teams: number; deadLetters: number; resent: { teamId: string; fromSeq: number }[] }>(
      "/v1/admin/history/redrive",
      { method: "POST" },
    );
    expectStatus(redrive, 202);
    expect(redrive.body.resent).toContainEqual({ teamId, fromSeq: 1 });
    expect(await deadLetters(teamId), "re-driven letters are forgotten").toBe(0);
    await drainOutbox(teamId);
    await expectD1MatchesObject(teamId);
    expect(await reconcile(teamId)).toMatchObject({ drift: 0, consistent: true, gap: false, unlandedEntries: 0 });
    // A second re-drive finds nothing of this team, and nothing lands twice.
    const again = await call<{ resent: { teamId: string }[] }>("/v1/admin/history/redrive", { method: "POST" });
    expect(again.body.resent.map((r) => r.teamId)).not.toContain(teamId);
    await expectD1MatchesObject(teamId);
    await assertInvariants(teamId);
  });

  it("a gap in D1 shows in reconciliation; a resend from its first seq heals it, drift 0", async () => {
    const teamId = newTeamId("gap");
    await teamWithSpends(teamId, 14, 1_000);
    await drainOutbox(teamId);
    const lastSeq = (await objectEntries(teamId)).length;
    expect(await reconcile(teamId)).toMatchObject({ drift: 0, gap: false, d1Seq: lastSeq });
    // A deliberate gap: entries 4 to 6 disappear from D1 (an operator's mistake, a bad restore).
    await env.DB.prepare("DELETE FROM ledger_entries WHERE team_id = ? AND seq BETWEEN 4 AND 6").bind(teamId).run();
    const broken = await reconcile(teamId);
    expect(broken).toMatchObject({ gap: true, consistent: false, missingEntries: 3 });
    expect(broken.drift).not.toBe(0);

    const resent = await call<{ fromSeq: number; sentSeq: number; deliveredSeq: number }>(
      `/v1/admin/teams/${teamId}/history/resend`,
      { body: { fromSeq: 4 } },
    );
    expectStatus(resent, 202);
    expect(resent.body).toMatchObject({ fromSeq: 4, sentSeq: 3, deliveredSeq: 3 });
    expect(await historyMarkOf(env.DB, teamId), "D1's mark went down to the gap").toBe(3);
    await drainOutbox(teamId);
    await expectD1MatchesObject(teamId);
    expect(await reconcile(teamId)).toMatchObject({
      drift: 0,
      consistent: true,
      gap: false,
      missingEntries: 0,
      unlandedEntries: 0,
      d1Seq: lastSeq,
      deliveredSeq: lastSeq,
    });
    // New entries after the repair go on as usual.
    await batchSpends(teamId, 3);
    await drainOutbox(teamId);
    await expectD1MatchesObject(teamId);
    await assertInvariants(teamId);
  });

  it("a message lost on the way: the object hears nothing, reads D1's mark itself and sends again", async () => {
    const teamId = newTeamId("lost");
    await teamWithSpends(teamId, 6, 1_000);
    const lastSeq = (await objectEntries(teamId)).length;
    // The consumer takes the team's messages and lands nothing (a message lost for good).
    let swallowed = 0;
    consumerSeams.database = (e, t) =>
      t === teamId
        ? d1With(env.DB, () => {
            swallowed += 1;
            return Promise.resolve([]);
          })
        : realDatabase(e, t);
    await runAlarm(teamId);
    await until("the consumer took the message", async () => swallowed > 0);
    consumerSeams.database = realDatabase;
    const waiting = await outboxOf(teamId);
    expect(waiting).toMatchObject({ sentSeq: lastSeq, deliveredSeq: 0, unsent: 0 });
    expect(waiting.confirmDueAtMs, "the object checks D1 itself after the wait").toBeGreaterThan(Date.now());
    expect(await d1Entries(teamId)).toHaveLength(0);
    // The wait passes (as if HISTORY_CONFIRM_AFTER_MS went by): the alarm reads D1's mark, finds
    // nothing, and sends everything again.
    await objectExec(
      teamId,
      "UPDATE meta SET value = ? WHERE key = 'outbox.waitingSince' RETURNING key",
      String(Date.now() - HISTORY_CONFIRM_AFTER_MS - 1),
    );
    await runAlarm(teamId);
    expect(await waitConfirmed(teamId)).toBe(true);
    await expectD1MatchesObject(teamId);
    expect(await reconcile(teamId)).toMatchObject({ drift: 0, gap: false, unlandedEntries: 0 });
    await assertInvariants(teamId);
  });

  it("the resend route checks fromSeq and answers 404 for a team that does not exist", async () => {
    const teamId = newTeamId("guarded");
    await teamWithSpends(teamId, 1, 10);
    const bad = await call(`/v1/admin/teams/${teamId}/history/resend`, { body: { fromSeq: 0 } });
    expectStatus(bad, 400);
    const missing = await call(`/v1/admin/teams/${newTeamId("nobody")}/history/resend`, { body: { fromSeq: 1 } });
    expectStatus(missing, 404);
  });
});
