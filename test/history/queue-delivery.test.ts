/**
 * The history's way to D1 through the queue (src/history-queue/): entries sent by a team object's
 * alarm land in D1 through the real queue and its consumer, which tells the object its new mark;
 * many teams' messages land in one D1 batch per database; and history pages stay complete, with no
 * duplicate and no gap, while the consumer is held back.
 */
import { createExecutionContext, createMessageBatch, getQueueResult, runInDurableObject } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { afterEach, describe, expect, it } from "vitest";
import { historyMarkOf } from "../../src/db/history";
import { consumerSeams } from "../../src/history-queue/consumer";
import type { HistoryMessage } from "../../src/history-queue/message";
import worker from "../../src/index";
import { cutMessages } from "../../src/object/outbox";
import type { LedgerStore } from "../../src/object/store";
import type { TeamLedger } from "../../src/object/team-ledger";
import {
  assertInvariants,
  batchSpends,
  call,
  createTeam,
  d1Entries,
  d1With,
  deferred,
  expectD1MatchesObject,
  expectStatus,
  grant,
  ledgerStub,
  newTeamId,
  objectEntries,
  outboxOf,
  pauseOutbox,
  runAlarm,
  teamWithSpends,
  waitConfirmed,
} from "../support";

const realDatabase = consumerSeams.database;
afterEach(() => {
  consumerSeams.database = realDatabase;
});

/** The team's messages as its alarm would send them now: every entry after `afterSeq`. */
function pendingMessages(teamId: string, afterSeq = 0): Promise<HistoryMessage[]> {
  return runInDurableObject(ledgerStub(teamId), (instance: TeamLedger) => {
    const store = (instance as unknown as { store: LedgerStore }).store;
    const { rows } = store.entries.outboxRows(afterSeq, 1_000);
    return cutMessages(teamId, afterSeq, rows);
  });
}

describe("the history queue", () => {
  it("delivers through the real queue: the object sends, the consumer lands once and tells the object", async () => {
    const teamId = newTeamId("queued");
    await teamWithSpends(teamId, 30, 1_000);
    const lastSeq = (await objectEntries(teamId)).length;
    await runAlarm(teamId);
    const sent = await outboxOf(teamId);
    expect(sent.sentSeq, "the alarm sent everything to the queue").toBe(lastSeq);
    expect(await waitConfirmed(teamId), "the consumer landed it and told the object").toBe(true);
    expect(await outboxOf(teamId)).toMatchObject({ deliveredSeq: lastSeq, sentSeq: lastSeq, backlog: 0, unsent: 0 });
    expect(await historyMarkOf(env.DB, teamId), "D1's mark").toBe(lastSeq);
    await expectD1MatchesObject(teamId);
    // Sending the same entries again (a duplicate delivery) lands nothing twice.
    const again = await pendingMessages(teamId);
    const batch = createMessageBatch<HistoryMessage>(
      "credits-history",
      again.map((body, i) => ({ id: `dup-${i}`, timestamp: new Date(), attempts: 1, body })),
    );
    const ctx = createExecutionContext();
    await worker.queue(batch as MessageBatch<unknown>, env, ctx);
    const result = await getQueueResult(batch, ctx);
    expect(result.explicitAcks.sort()).toEqual(again.map((_, i) => `dup-${i}`).sort());
    await expectD1MatchesObject(teamId);
    await assertInvariants(teamId);
  });

  it("20 teams' entries in one consumer batch land in one D1 batch call; an EU team's in the EU database", async () => {
    const teams: string[] = [];
    for (let i = 0; i < 20; i++) {
      const teamId = newTeamId(`fan-${i}`);
      await createTeam(teamId);
      // Nothing leaves through the alarm: this test hands the consumer the batch itself.
      await pauseOutbox(teamId);
      await grant(teamId, 100);
      await batchSpends(teamId, 3);
      teams.push(teamId);
    }
    const euTeam = `eu:${newTeamId("fan-eu")}`;
    expectStatus(await call(`/v1/teams/${euTeam}`, { method: "PUT", body: { jurisdiction: "eu" } }), 201);
    await pauseOutbox(euTeam);
    await grant(euTeam, 50);

    const messages = (await Promise.all([...teams, euTeam].map((t) => pendingMessages(t)))).flat();
    expect(messages).toHaveLength(21);
    const calls = new Map<string, number[]>();
    const counting = (name: string, real: D1Database) =>
      d1With(real, (statements) => {
        calls.set(name, [...(calls.get(name) ?? []), statements.length]);
        return real.batch(statements);
      });
    const db = counting("DB", env.DB);
    const dbEu = env.DB_EU ? counting("DB_EU", env.DB_EU) : undefined;
    const batch = createMessageBatch<HistoryMessage>(
      "credits-history",
      messages.map((body, i) => ({ id: `m-${i}`, timestamp: new Date(), attempts: 1, body })),
    );
    const ctx = createExecutionContext();
    await worker.queue(batch as MessageBatch<unknown>, { ...env, DB: db, DB_EU: dbEu }, ctx);
    const result = await getQueueResult(batch, ctx);

    expect(result.retryMessages).toEqual([]);
    expect(result.explicitAcks).toHaveLength(21);
    // 20 teams × 4 entries = 80 rows: one INSERT and the marks' statement, in one batch call.
    expect(calls.get("DB"), "one D1 batch for the 20 teams").toEqual([2]);
    expect(calls.get("DB_EU"), "one for the EU team, in its own database").toEqual([2]);
    for (const teamId of teams) {
      expect(await d1Entries(teamId)).toHaveLength(4);
      // The consumer told each object its mark: its pages now complete from D1.
      expect((await outboxOf(teamId)).deliveredSeq).toBe(4);
    }
    const inEu = await env.DB_EU?.prepare("SELECT COUNT(*) AS n FROM ledger_entries WHERE team_id = ?")
      .bind(euTeam)
      .first<{ n: number }>();
    expect(inEu?.n).toBe(1);
    expect(await d1Entries(euTeam), "nothing of the EU team in the account's database").toHaveLength(0);
  });

  it("history pages stay complete, without duplicates or gaps, while the consumer is held back", async () => {
    const teamId = newTeamId("held");
    await teamWithSpends(teamId, 20, 1_000);
    await runAlarm(teamId);
    await waitConfirmed(teamId);
    const landed = (await outboxOf(teamId)).deliveredSeq;
    expect(landed).toBe(21);
    // The consumer is held at D1 for this team: sent, not landed.
    const gate = deferred();
    let held = 0;
    consumerSeams.database = (e, t) =>
      t === teamId
        ? d1With(env.DB, async (statements) => {
            held += 1;
            await gate.promise;
            return env.DB.batch(statements);
          })
        : realDatabase(e, t);
    await batchSpends(teamId, 25);
    await runAlarm(teamId);
    const lagging = await outboxOf(teamId);
    expect(lagging.sentSeq).toBe(46);
    expect(lagging.deliveredSeq, "D1 has not confirmed what was sent").toBe(21);
    for (let i = 0; i < 100 && held === 0; i++) await new Promise((r) => setTimeout(r, 20));
    expect(held, "the consumer is at D1, held").toBeGreaterThan(0);

    const seqs: number[] = [];
    let cursor: string | null = null;
    let pages = 0;
    do {
      const q: string = cursor ? `&cursor=${cursor}` : "";
      const res = await call<{ entries: { seq: number }[]; nextCursor: string | null }>(
        `/v1/teams/${teamId}/entries?limit=7${q}`,
      );
      expectStatus(res, 200);
      seqs.push(...res.body.entries.map((e) => e.seq));
      cursor = res.body.nextCursor;
      pages += 1;
      // Halfway through, the consumer lands and the object's mark moves: the pages still join up.
      if (pages === 3) {
        gate.resolve();
        expect(await waitConfirmed(teamId)).toBe(true);
      }
    } while (cursor !== null);
    expect(seqs, "every entry once, newest first").toEqual(Array.from({ length: 46 }, (_, i) => 46 - i));
    expect((await d1Entries(teamId)).length).toBe(46);
    await expectD1MatchesObject(teamId);
    await assertInvariants(teamId);
  });
});
