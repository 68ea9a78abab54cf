import { runInDurableObject } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { IDEMPOTENCY_PURGE_BATCH, IDEMPOTENCY_RETENTION_SECONDS } from "../../src/limits";
import type { TeamLedger } from "../../src/object/team-ledger";
import {
  assertInvariants,
  balance,
  createTeam,
  drainOutbox,
  expectStatus,
  grant,
  ledgerStub,
  newKey,
  newTeamId,
  objectEntries,
  objectExec,
  objectRows,
  runAlarm,
  spend,
} from "../support";

const RETENTION_MS = IDEMPOTENCY_RETENTION_SECONDS * 1000;

async function keyExists(teamId: string, key: string): Promise<boolean> {
  const rows = await objectRows<{ key: string }>(teamId, "SELECT key FROM idempotency WHERE key = ?", key);
  return rows.length === 1;
}

async function ageKey(teamId: string, key: string, createdAtMs: number): Promise<void> {
  const n = await objectExec(
    teamId,
    "UPDATE idempotency SET created_at = ? WHERE key = ? RETURNING key",
    createdAtMs,
    key,
  );
  expect(n, `key ${key} recorded`).toBe(1);
}

describe("idempotency records", () => {
  it("are purged by the alarm after the retention; a key within retention still replays", async () => {
    const teamId = newTeamId();
    await createTeam(teamId);
    await grant(teamId, 100);
    const oldKey = newKey();
    const edgeKey = newKey();
    const freshKey = newKey();
    const oldFirst = await spend(teamId, 10, oldKey);
    const edgeFirst = await spend(teamId, 11, edgeKey);
    const freshFirst = await spend(teamId, 12, freshKey);
    for (const r of [oldFirst, edgeFirst, freshFirst]) expectStatus(r, 201);

    await ageKey(teamId, oldKey, Date.now() - RETENTION_MS - 60_000);
    // Still inside the retention by a minute: kept.
    await ageKey(teamId, edgeKey, Date.now() - RETENTION_MS + 60_000);
    expect(await runAlarm(teamId)).toBe(true);

    expect(await keyExists(teamId, oldKey), "the old record is purged").toBe(false);
    expect(await keyExists(teamId, edgeKey)).toBe(true);
    expect(await keyExists(teamId, freshKey)).toBe(true);

    for (const [key, amount, first] of [
      [edgeKey, 11, edgeFirst],
      [freshKey, 12, freshFirst],
    ] as const) {
      const again = await spend(teamId, amount, key);
      expectStatus(again, 201);
      expect(again.headers.get("idempotent-replayed")).toBe("true");
      expect(again.body).toEqual(first.body);
    }
    expect((await balance(teamId)).available).toBe(100 - 10 - 11 - 12);
    expect((await objectEntries(teamId)).filter((e) => e.type === "spend")).toHaveLength(3);
    await assertInvariants(teamId);
  });

  it("a key used again after its record was purged is a new request (the promise is only for the retention)", async () => {
    const teamId = newTeamId();
    await createTeam(teamId);
    await grant(teamId, 100);
    const key = newKey();
    const first = await spend(teamId, 10, key);
    expectStatus(first, 201);
    await ageKey(teamId, key, Date.now() - RETENTION_MS - 1);
    expect(await runAlarm(teamId)).toBe(true);
    expect(await keyExists(teamId, key)).toBe(false);
    const again = await spend(teamId, 10, key);
    expectStatus(again, 201);
    expect(again.headers.get("idempotent-replayed")).toBeNull();
    expect((again.body.spend as { id: string }).id).not.toBe((first.body.spend as { id: string }).id);
    expect((await balance(teamId)).available).toBe(80);
    await assertInvariants(teamId);
  });

  it("the alarm is set for when the oldest record leaves the retention", async () => {
    const teamId = newTeamId();
    await createTeam(teamId);
    await grant(teamId, 5);
    await drainOutbox(teamId); // delivers the outbox (D1 confirms it); nothing else is due
    const [row] = await objectRows<{ t: number }>(teamId, "SELECT MIN(created_at) AS t FROM idempotency");
    const alarm = await runInDurableObject(ledgerStub(teamId), (_i: TeamLedger, state) => state.storage.getAlarm());
    expect(alarm).toBe((row?.t ?? 0) + RETENTION_MS);
    await assertInvariants(teamId);
  });

  it(`purges at most ${IDEMPOTENCY_PURGE_BATCH} records per alarm run and continues in the next`, async () => {
    const teamId = newTeamId();
    await createTeam(teamId);
    await grant(teamId, 5);
    const keep = newKey();
    expectStatus(await spend(teamId, 1, keep), 201);
    const OLD = IDEMPOTENCY_PURGE_BATCH + 120;
    const oldAt = Date.now() - RETENTION_MS - 60_000;
    await runInDurableObject(ledgerStub(teamId), (_i: TeamLedger, state) => {
      for (let i = 0; i < OLD; i++)
        state.storage.sql.exec(
          "INSERT INTO idempotency (key, fingerprint, status, body, created_at) VALUES (?, 'f', 201, '{}', ?)",
          `old-${i}`,
          oldAt + i,
        );
    });
    const countOld = async () =>
      (await objectRows<{ n: number }>(teamId, "SELECT COUNT(*) AS n FROM idempotency WHERE key LIKE 'old-%'"))[0]?.n ??
      -1;
    expect(await countOld()).toBe(OLD);

    // One alarm run, observed from inside the object: exactly one purge batch.
    const purged = await runInDurableObject(ledgerStub(teamId), async (instance: TeamLedger, state) => {
      const count = () =>
        state.storage.sql.exec<{ n: number }>("SELECT COUNT(*) AS n FROM idempotency WHERE key LIKE 'old-%'").one().n;
      const before = count();
      await state.storage.deleteAlarm();
      await instance.alarm();
      return before - count();
    });
    expect(purged).toBe(IDEMPOTENCY_PURGE_BATCH);

    for (let run = 0; run < 5 && (await countOld()) > 0; run++) await runAlarm(teamId);
    expect(await countOld()).toBe(0);
    expect(await keyExists(teamId, keep), "records within retention are untouched").toBe(true);
    await assertInvariants(teamId);
  });
});
