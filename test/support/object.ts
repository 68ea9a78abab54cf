/**
 * White-box helpers, inside the team object (runInDurableObject) and D1: read and write the
 * object's own SQLite (to make grants, holds and idempotency records due without sleeping), its
 * entries and outbox state, run its alarm, read the replica straight from D1, and swap the
 * object's D1 for a faulty wrapper.
 */
import { runDurableObjectAlarm, runInDurableObject } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { expect } from "vitest";
import type { OutboxState } from "../../src/object/outbox";
import type { LedgerStore } from "../../src/object/store";
import type { TeamLedger } from "../../src/object/team-ledger";
import { lineProblems } from "./history-lines";

/**
 * The team's history follows the line-by-line rule (history-lines.ts), read inside the object in
 * one synchronous step (an alarm cannot slip in between); the last balanceAfter is checked against
 * `available` when nothing is due but unsettled (settling writes the entries that make it so).
 * Returns what is wrong, if anything.
 */
export function historyProblems(teamId: string): Promise<string[]> {
  return runInDurableObject(ledgerStub(teamId), (instance: TeamLedger, state) => {
    const lines = state.storage.sql
      .exec<{ seq: number; type: string; direction: string; amount: number; balanceAfter: number }>(
        `SELECT seq, type, direction, amount_credits AS amount, balance_after_credits AS balanceAfter
         FROM entries ORDER BY seq`,
      )
      .toArray();
    const opening = (instance as unknown as { store: LedgerStore }).store.openingState(Date.now(), null);
    return lineProblems(lines, opening.due ? null : opening.available);
  });
}

export function ledgerStub(teamId: string) {
  return env.TEAM_LEDGER.get(env.TEAM_LEDGER.idFromName(teamId));
}

type Row = Record<string, SqlStorageValue>;

/** Reads rows from the team object's own SQLite database. */
export async function objectRows<T extends Row>(
  teamId: string,
  query: string,
  ...args: SqlStorageValue[]
): Promise<T[]> {
  return runInDurableObject(ledgerStub(teamId), (_instance: TeamLedger, state) =>
    state.storage.sql.exec<T>(query, ...args).toArray(),
  );
}

/** The columns of the object's entries these tests read (amounts under short names). */
export interface EntryRow {
  [k: string]: SqlStorageValue;
  seq: number;
  id: string;
  type: string;
  direction: string;
  amount: number;
  balance_after: number;
  grant_id: string | null;
  hold_id: string | null;
  spend_id: string | null;
  reference: string | null;
}

/** The object's entries, oldest first. */
export function objectEntries(teamId: string): Promise<EntryRow[]> {
  return objectRows<EntryRow>(
    teamId,
    `SELECT seq, id, type, direction, amount_credits AS amount, balance_after_credits AS balance_after, grant_id,
       hold_id, spend_id, reference FROM entries ORDER BY seq`,
  );
}

/** Runs a statement against the object's SQLite; returns the rows it returns (use RETURNING). */
export function objectExec(teamId: string, query: string, ...args: SqlStorageValue[]): Promise<number> {
  return runInDurableObject(
    ledgerStub(teamId),
    (_i: TeamLedger, state) => state.storage.sql.exec(query, ...args).toArray().length,
  );
}

/** Makes a hold due: its deadline one second in the past. Nothing is settled until the next call. */
export async function makeHoldDue(teamId: string, holdId: string): Promise<void> {
  const n = await objectExec(
    teamId,
    "UPDATE holds SET expires_at = ? WHERE id = ? RETURNING id",
    Date.now() - 1000,
    holdId,
  );
  expect(n, `hold ${holdId} exists`).toBe(1);
}

/** Makes a grant due: its expiry one second in the past. */
export async function makeGrantDue(teamId: string, grantId: string): Promise<void> {
  const n = await objectExec(
    teamId,
    "UPDATE grants SET expires_at = ? WHERE id = ? RETURNING id",
    Date.now() - 1000,
    grantId,
  );
  expect(n, `grant ${grantId} exists`).toBe(1);
}

/** The outbox state of a team's object, read inside it. */
export function outboxIn(instance: TeamLedger, teamId: string): OutboxState {
  const reply = instance.outbox(teamId);
  if (!reply.ok) throw new Error(`outbox of ${teamId}: ${reply.detail}`);
  return reply.body;
}

export function outboxOf(teamId: string): Promise<OutboxState> {
  return runInDurableObject(ledgerStub(teamId), (instance: TeamLedger) => outboxIn(instance, teamId));
}

export function storedAlarm(teamId: string): Promise<number | null> {
  return runInDurableObject(ledgerStub(teamId), (_i: TeamLedger, state) => state.storage.getAlarm());
}

/**
 * The runtime runs an alarm at the time it is set for; runDurableObjectAlarm runs it now. When the
 * outbox is backed off, the alarm is set for the retry time, so bring that time to now first, as
 * if the clock had reached it (the object skips D1 on an alarm that fires before its retry time).
 */
export function reachRetryTime(teamId: string): Promise<void> {
  return runInDurableObject(ledgerStub(teamId), (_i: TeamLedger, state) => {
    state.storage.sql.exec(
      "UPDATE meta SET value = ? WHERE key = 'outbox.nextAttemptAt' AND CAST(value AS INTEGER) > ?",
      String(Date.now()),
      Date.now(),
    );
  });
}

/**
 * Holds the outboxes back (the next attempt of the D1 outbox and of the events hand-off an hour
 * away, as after a failure but with no failure counted), so that a fixture's writes stay
 * undelivered, and no alarm comes early for them, whatever time the setup takes; then
 * `resumeOutbox` makes the next alarm run deliver at once.
 */
export function pauseOutbox(teamId: string): Promise<void> {
  return runInDurableObject(ledgerStub(teamId), (_i: TeamLedger, state) => {
    const later = Date.now() + 3_600_000;
    state.storage.sql.exec(
      "INSERT INTO meta (key, value) VALUES ('outbox.nextAttemptAt', ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
      String(later),
    );
    state.storage.sql.exec(
      "INSERT INTO meta (key, value) VALUES ('events.retry', ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
      JSON.stringify({ attempts: 0, nextAttemptAtMs: later }),
    );
  });
}

export function resumeOutbox(teamId: string): Promise<void> {
  return runInDurableObject(ledgerStub(teamId), (_i: TeamLedger, state) => {
    state.storage.sql.exec("UPDATE meta SET value = '0' WHERE key = 'outbox.nextAttemptAt'");
    state.storage.sql.exec("DELETE FROM meta WHERE key = 'events.retry'");
  });
}

export async function runAlarm(teamId: string): Promise<boolean> {
  await reachRetryTime(teamId);
  return runDurableObjectAlarm(ledgerStub(teamId));
}

/**
 * Waits (bounded) until D1 has confirmed every entry the object has sent: the history queue's
 * consumer lands them and tells the object. True when nothing sent is left unconfirmed.
 */
export async function waitConfirmed(teamId: string, timeoutMs = 10_000): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const out = await outboxOf(teamId);
    if (out.deliveredSeq >= out.sentSeq) return true;
    if (Date.now() > deadline) return false;
    await new Promise((r) => setTimeout(r, 20));
  }
}

/**
 * Runs the object's alarm until every entry is in D1, at most `maxRuns` times. A failed flush sets
 * the next alarm by its backoff; runDurableObjectAlarm runs whatever alarm is set, at once. Once
 * everything is sent, the queue's consumer must land it and say so (waitConfirmed). When no alarm
 * is set but entries wait, that is reported as a failure (the backlog would be stranded).
 */
export async function drainOutbox(teamId: string, maxRuns = 20): Promise<number> {
  for (let run = 0; run < maxRuns; run++) {
    const out = await outboxOf(teamId);
    if (out.backlog === 0) return run;
    if (out.unsent === 0) {
      expect(await waitConfirmed(teamId), "the history consumer confirms every sent entry").toBe(true);
      continue;
    }
    if (await runAlarm(teamId)) continue;
    // No alarm stored: the runtime may be running it right now. Wait (bounded) for it to finish
    // or to set the next one; a backlog with no alarm for good would be stranded.
    let alarm: number | null = null;
    for (let poll = 0; poll < 50 && alarm === null; poll++) {
      if ((await outboxOf(teamId)).backlog === 0) return run;
      await new Promise((r) => setTimeout(r, 100));
      alarm = await storedAlarm(teamId);
    }
    expect(alarm, "entries wait in the outbox, so an alarm must be set").not.toBeNull();
  }
  const left = (await outboxOf(teamId)).backlog;
  expect(left, `outbox drained within ${maxRuns} alarm runs`).toBe(0);
  return maxRuns;
}

export interface D1Row {
  [k: string]: unknown;
  seq: number;
  id: string;
  type: string;
  direction: string;
  amount_credits: number;
  balance_after_credits: number;
  grant_id: string | null;
  hold_id: string | null;
  spend_id: string | null;
}

/** The team's replicated history, read from D1 directly. */
export async function d1Entries(teamId: string): Promise<D1Row[]> {
  const res = await env.DB.prepare(
    `SELECT seq, id, type, direction, amount_credits, balance_after_credits, grant_id, hold_id, spend_id
     FROM ledger_entries WHERE team_id = ? ORDER BY seq`,
  )
    .bind(teamId)
    .all<D1Row>();
  return res.results;
}

/**
 * D1 holds every entry of the object exactly once (the primary key forbids two rows per seq, so
 * also check no extra rows exist), with the same id, type, direction, amount and balanceAfter.
 */
export async function expectD1MatchesObject(teamId: string): Promise<void> {
  const local = await objectEntries(teamId);
  const remote = await d1Entries(teamId);
  expect(remote.length, "D1 holds as many entries as the object").toBe(local.length);
  expect(new Set(remote.map((r) => r.seq)).size, "one D1 row per seq").toBe(remote.length);
  expect(
    remote.map((r) => [r.seq, r.id, r.type, r.direction, r.amount_credits, r.balance_after_credits, r.hold_id]),
  ).toEqual(local.map((e) => [e.seq, e.id, e.type, e.direction, e.amount, e.balance_after, e.hold_id]));
}

/** What a fault-injecting `batch` looks like (D1's own is generic over the row type). */
export type BatchFn = (statements: D1PreparedStatement[]) => Promise<D1Result[]>;

/** A D1Database that forwards everything to `real` except `batch`. */
export function d1With(real: D1Database, batch: BatchFn): D1Database {
  return {
    prepare: (query: string) => real.prepare(query),
    // Rows pass through untouched, so the row type D1's generic batch promises is kept.
    batch: batch as D1Database["batch"],
    exec: (query: string) => real.exec(query),
    withSession: (constraintOrBookmark?: string) => real.withSession(constraintOrBookmark),
    dump: () => real.dump(),
  };
}

/**
 * Replaces the object's D1 with `make(real)`; the object's own env.DB is passed as `real`. The
 * object then writes its history to that D1 itself (the direct path, no queue), so what the wrapper
 * does is what the object's outbox meets; restoreD1 puts back the queue. The queue's own faults
 * are injected in the consumer (test/history/queue-*.test.ts).
 */
export async function injectD1(teamId: string, make: (real: D1Database) => D1Database): Promise<void> {
  await runInDurableObject(ledgerStub(teamId), (instance: TeamLedger) => {
    instance.d1 = make(env.DB);
    instance.historyQueue = null;
  });
}

/** Makes every D1 batch of the object fail; `calls` counts the attempts. */
export async function injectD1Down(teamId: string): Promise<{ calls: number }> {
  const down = { calls: 0 };
  await injectD1(teamId, (real) =>
    d1With(real, () => {
      down.calls += 1;
      return Promise.reject(new Error("D1 is down (injected)"));
    }),
  );
  return down;
}

export async function restoreD1(teamId: string): Promise<void> {
  await runInDurableObject(ledgerStub(teamId), (instance: TeamLedger) => {
    instance.d1 = env.DB;
    instance.historyQueue = env.HISTORY_QUEUE ?? null;
  });
}

// ---- alarm runs the test can attribute D1 calls to -------------------------------------------

interface AsyncLocalStorageLike<T> {
  run<R>(store: T, fn: () => R): R;
  getStore(): T | undefined;
}
// Imported by a computed name so TypeScript needs no Node typings for it (workerd provides it
// through nodejs_compat).
const asyncHooks = "node:async_hooks";
const { AsyncLocalStorage } = (await import(/* @vite-ignore */ asyncHooks)) as {
  AsyncLocalStorage: new <T>() => AsyncLocalStorage<T>;
};
type AsyncLocalStorage<T> = AsyncLocalStorageLike<T>;

/** One alarm run started by the test; D1 calls made on its behalf are recorded here. */
export interface ManualRun {
  /** Statements per D1 batch this run sent. */
  batches: number[];
}
const manualRun = new AsyncLocalStorage<ManualRun>();

/** The alarm run (started by runManualAlarm) on whose behalf the current code runs, if any. */
export function currentManualRun(): ManualRun | undefined {
  return manualRun.getStore();
}

export interface AlarmObservation {
  before: OutboxState;
  after: OutboxState;
  /** The alarm the run left set. */
  alarmAfter: number | null;
  /** Date.now() just before and just after the run: the run's clock reading lies between. */
  startedMs: number;
  endedMs: number;
  batches: number[];
}

/**
 * Runs the object's alarm as the runtime would (the stored alarm is cleared first, as
 * runDurableObjectAlarm does) and observes the outbox around it, in one call into the object.
 */
export function runManualAlarm(teamId: string): Promise<AlarmObservation> {
  return runInDurableObject(ledgerStub(teamId), async (instance: TeamLedger, state) => {
    const before = outboxIn(instance, teamId);
    const startedMs = Date.now();
    // As the runtime would, run the alarm at its time: a backed-off retry is due now.
    state.storage.sql.exec(
      "UPDATE meta SET value = ? WHERE key = 'outbox.nextAttemptAt' AND CAST(value AS INTEGER) > ?",
      String(startedMs),
      startedMs,
    );
    await state.storage.deleteAlarm();
    const run: ManualRun = { batches: [] };
    await manualRun.run(run, () => instance.alarm());
    const after = outboxIn(instance, teamId);
    const alarmAfter = await state.storage.getAlarm();
    return { before, after, alarmAfter, startedMs, endedMs: Date.now(), batches: run.batches };
  });
}

export interface Deferred<T> {
  promise: Promise<T>;
  resolve: (value: T) => void;
}

export function deferred<T = void>(): Deferred<T> {
  let resolve: (value: T) => void = () => {};
  const promise = new Promise<T>((r) => {
    resolve = r;
  });
  return { promise, resolve };
}
