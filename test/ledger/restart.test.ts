import { abortAllDurableObjects, runInDurableObject } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { OUTBOX_ROWS_PER_D1_BATCH } from "../../src/limits";
import type { TeamLedger } from "../../src/object/team-ledger";
import {
  assertInvariants,
  balance,
  call,
  createTeam,
  d1Entries,
  d1With,
  deferred,
  drainOutbox,
  expectD1MatchesObject,
  expectStatus,
  grant,
  injectD1,
  ledgerStub,
  newKey,
  newTeamId,
  objectEntries,
  objectRows,
  outboxOf,
  reachRetryTime,
  spend,
  storedAlarm,
} from "../support";

describe("aborts", () => {
  it("between operations: the same Idempotency-Key after a restart replays, not doubles", async () => {
    const teamId = newTeamId();
    await createTeam(teamId);
    await grant(teamId, 100);
    const key = newKey();
    const first = await spend(teamId, 30, key);
    expectStatus(first, 201);
    await abortAllDurableObjects();
    const again = await spend(teamId, 30, key);
    expectStatus(again, 201);
    expect(again.headers.get("idempotent-replayed")).toBe("true");
    expect(again.body).toEqual(first.body);
    expect((await balance(teamId)).available).toBe(70);
    expect((await objectEntries(teamId)).filter((e) => e.type === "spend")).toHaveLength(1);
    await assertInvariants(teamId);
  });

  it.each([1, 10, 30])(
    "during operations (abort after %i answers): every key takes effect exactly once after retries",
    async (abortAfter) => {
      const teamId = newTeamId();
      await createTeam(teamId);
      const GRANTED = 100_000;
      await grant(teamId, GRANTED);
      const N = 50;
      const requests = Array.from({ length: N }, (_, i) => ({ key: newKey(), amount: i + 1 }));
      const send = (r: { key: string; amount: number }) =>
        spend(teamId, r.amount, r.key, { reference: r.key }).catch((err: unknown) => ({
          status: 0,
          body: { error: String(err) } as Record<string, unknown>,
          headers: new Headers(),
          text: String(err),
        }));
      // Abort once the first answers arrive, while the rest are in flight.
      const someAnswered = deferred();
      let answered = 0;
      const inFlight = Promise.all(
        requests.map((r) =>
          send(r).then((res) => {
            answered += 1;
            if (answered === abortAfter) someAnswered.resolve();
            return res;
          }),
        ),
      );
      await someAnswered.promise;
      await abortAllDurableObjects();
      const firstTry = await inFlight;
      const failedFirst = firstTry.filter((r) => r.status !== 201);
      // Whatever failed failed as an error (never as a business refusal): balance is ample.
      for (const r of failedFirst) expect([0, 500, 503], r.text).toContain(r.status);

      const retried = await Promise.all(requests.map(send));
      const spendIdByKey = new Map<string, string>();
      for (const [i, r] of retried.entries()) {
        expectStatus(r, 201);
        const body = r.body as { spend: { id: string; amount: number; reference: string } };
        expect(body.spend).toMatchObject({ amount: requests[i]?.amount, reference: requests[i]?.key });
        const first = firstTry[i];
        if (first?.status === 201) {
          // Answered the first time: the retry replays that answer.
          expect(r.headers.get("idempotent-replayed")).toBe("true");
          expect(r.body).toEqual(first.body);
        }
        spendIdByKey.set(requests[i]?.key ?? "", body.spend.id);
      }
      expect(new Set(spendIdByKey.values()).size, "one spend per key").toBe(N);

      const entries = (await objectEntries(teamId)).filter((e) => e.type === "spend");
      const bySpend = new Map<string, { amount: number; refs: Set<string | null> }>();
      for (const e of entries) {
        const s = bySpend.get(e.spend_id ?? "") ?? { amount: 0, refs: new Set() };
        s.amount += e.amount;
        s.refs.add(e.reference);
        bySpend.set(e.spend_id ?? "", s);
      }
      expect(bySpend.size, "exactly one spend written per key, no orphans").toBe(N);
      for (const r of requests) {
        const id = spendIdByKey.get(r.key) ?? "";
        expect(bySpend.get(id), `key ${r.key}`).toEqual({ amount: r.amount, refs: new Set([r.key]) });
      }
      const total = requests.reduce((s, r) => s + r.amount, 0);
      expect((await balance(teamId)).available).toBe(GRANTED - total);
      const keys = await objectRows<{ n: number }>(teamId, "SELECT COUNT(*) AS n FROM idempotency");
      expect(keys[0]?.n).toBe(N + 1);
      const replayedAfterFailure = retried.filter(
        (r, i) => firstTry[i]?.status !== 201 && r.headers.get("idempotent-replayed") === "true",
      ).length;
      console.info(
        `abort after ${abortAfter} of ${N} parallel spends answered: ${failedFirst.length} failed on the first try, ` +
          `${replayedAfterFailure} of them had committed (replayed on retry)`,
      );
      await drainOutbox(teamId);
      await expectD1MatchesObject(teamId);
      await assertInvariants(teamId);
    },
  );

  it("during the alarm's D1 flush: the runtime's alarm survives, and everything reaches D1 exactly once", async () => {
    const teamId = newTeamId();
    await createTeam(teamId);
    const entered = deferred();
    let armed = false;
    let armedCalls = 0;
    await injectD1(teamId, (real) =>
      d1With(real, async (statements) => {
        if (!armed) throw new Error("D1 is down until the test arms it (injected)");
        armedCalls += 1;
        const results = await real.batch(statements);
        if (armedCalls === 1) return results;
        // The second batch is applied in D1 but its answer never comes: the object is aborted here.
        entered.resolve();
        return new Promise<D1Result[]>(() => {});
      }),
    );
    await grant(teamId, 1000);
    const res = await call(`/v1/teams/${teamId}/spends/batch`, {
      // 1,000 entries (grant + 999 spends): two D1 batches of OUTBOX_ROWS_PER_D1_BATCH (500).
      body: { mode: "all_or_nothing", items: Array.from({ length: 999 }, () => ({ feature: "bulk", amount: 1 })) },
      idempotencyKey: newKey(),
    });
    expectStatus(res, 200);
    expect((await outboxOf(teamId)).deliveredSeq).toBe(0);

    // Let the runtime run the alarm now (not runDurableObjectAlarm, which deletes it first).
    armed = true;
    await reachRetryTime(teamId);
    await runInDurableObject(ledgerStub(teamId), (_i: TeamLedger, state) => state.storage.setAlarm(Date.now()));
    await entered.promise;
    await abortAllDurableObjects();

    const out = await outboxOf(teamId);
    expect(out.deliveredSeq, "only the confirmed batch is marked delivered").toBe(OUTBOX_ROWS_PER_D1_BATCH);
    expect(out.backlog).toBe(1000 - OUTBOX_ROWS_PER_D1_BATCH);
    expect(await d1Entries(teamId), "D1 applied both batches").toHaveLength(1000);
    expect(await storedAlarm(teamId), "the interrupted alarm is still set, so it runs again").not.toBeNull();

    await drainOutbox(teamId);
    await expectD1MatchesObject(teamId);
    expect(await outboxOf(teamId)).toMatchObject({ deliveredSeq: 1000, backlog: 0 });
    await assertInvariants(teamId);
  });
});
