/**
 * What one spend costs the platform, measured in the real runtime for the capacity model
 * (`npm run capacity`, scripts/capacity-model.mjs): SPENDS plain spends and SPENDS priced spends on
 * a fresh team through the worker (SELF.fetch, one request each, as a client sends them), with the
 * team object's SQLite statements counted from inside it (every cursor's rowsRead / rowsWritten,
 * `databaseSize` growth), then one alarm run delivering them all to D1 with D1's batches counted.
 * Prints one `CAPACITY_COSTS_JSON {…}` line; `npm run capacity:measure` (scripts/capacity-measure.mjs)
 * runs this file alone and writes the line to bench/costs.json. Asserts nothing about time.
 */
import { env, runInDurableObject } from "cloudflare:test";
import { expect, it } from "vitest";
import { insertEntryRows } from "../../src/db/history";
import type { LedgerStore } from "../../src/object/store";
import type { TeamLedger } from "../../src/object/team-ledger";
import { call, newKey, newTeamId } from "../../test/support/calls";
import { d1With, injectD1, ledgerStub, pauseOutbox, resumeOutbox, runAlarm } from "../../test/support/object";
import { takeCount, tapSql, untapSql } from "./sql-tap";

const SPENDS = 200;

interface ObjectSnapshot {
  databaseSizeBytes: number;
  lastSeq: number;
}

function snapshot(teamId: string): Promise<ObjectSnapshot> {
  return runInDurableObject(ledgerStub(teamId), (instance: TeamLedger, state) => {
    const store = (instance as unknown as { store: LedgerStore }).store;
    return { databaseSizeBytes: state.storage.sql.databaseSize, lastSeq: store.entries.lastSeq() };
  });
}

/** The JSON rows the outbox sends to D1 for entries after `afterSeq` (EntryStore.outboxRows), as UTF-8 bytes. */
function outboxRowBytes(teamId: string, afterSeq: number): Promise<number[]> {
  return runInDurableObject(ledgerStub(teamId), (instance: TeamLedger) => {
    const store = (instance as unknown as { store: LedgerStore }).store;
    const encoder = new TextEncoder();
    return store.entries.outboxRows(afterSeq, 10_000).rows.map((r) => encoder.encode(r).byteLength);
  });
}

/**
 * Sets what the object believes its alarm's time is (AlarmSchedule's mirror of storage). Due now:
 * the usual state of a spending team (an alarm is due within the flush delay), in which a spend
 * costs no scheduling query. Far: the state after a flush left nothing to deliver, in which the
 * next spend asks storage what is due and sets the alarm (once per flush).
 */
function believeAlarmAt(teamId: string, atMs: number): Promise<void> {
  return runInDurableObject(ledgerStub(teamId), (instance: TeamLedger) => {
    (instance as unknown as { alarms: { atMs: number | null } }).alarms.atMs = atMs;
  });
}

async function spends(teamId: string, body: Record<string, unknown>): Promise<number> {
  const t0 = performance.now();
  for (let i = 0; i < SPENDS; i++) {
    const res = await call(`/v1/teams/${teamId}/spends`, { body, idempotencyKey: newKey() });
    expect(res.status, res.text).toBe(201);
  }
  return (performance.now() - t0) / SPENDS;
}

const round = (x: number, digits = 2) => Number(x.toFixed(digits));

interface Phase {
  spends: number;
  entries: number;
  statementsPerSpend: number;
  rowsReadPerSpend: number;
  rowsWrittenPerSpend: number;
  entriesPerSpend: number;
  databaseBytesPerSpend: number;
  databaseBytesPerEntry: number;
  outboxJsonBytesPerEntry: number;
  requestWallMsPerSpend: number;
}

async function phase(teamId: string, body: Record<string, unknown>): Promise<Phase> {
  await believeAlarmAt(teamId, Date.now());
  const before = await snapshot(teamId);
  takeCount(teamId);
  const wallMs = await spends(teamId, body);
  const counted = takeCount(teamId);
  const after = await snapshot(teamId);
  takeCount(teamId); // the snapshot's own statements
  const entries = after.lastSeq - before.lastSeq;
  const rowBytes = await outboxRowBytes(teamId, before.lastSeq);
  takeCount(teamId);
  const grownBytes = after.databaseSizeBytes - before.databaseSizeBytes;
  return {
    spends: SPENDS,
    entries,
    statementsPerSpend: round(counted.statements / SPENDS),
    rowsReadPerSpend: round(counted.rowsRead / SPENDS),
    rowsWrittenPerSpend: round(counted.rowsWritten / SPENDS),
    entriesPerSpend: round(entries / SPENDS),
    databaseBytesPerSpend: Math.round(grownBytes / SPENDS),
    databaseBytesPerEntry: Math.round(grownBytes / entries),
    outboxJsonBytesPerEntry: Math.round(rowBytes.reduce((a, b) => a + b, 0) / rowBytes.length),
    requestWallMsPerSpend: round(wallMs, 3),
  };
}

/**
 * D1's time per replicated row: the median over 5 rounds of the outbox's insert of 400 of this
 * team's rows (its own JSON, under a fresh team id each round so that every row is new). The flush's
 * single batch is too short for workerd's coarse clock, and one round is at the mercy of the machine.
 */
async function d1UsPerRow(teamId: string): Promise<number> {
  const rows = await runInDurableObject(ledgerStub(teamId), (instance: TeamLedger) => {
    const store = (instance as unknown as { store: LedgerStore }).store;
    return store.entries.outboxRows(0, 400).rows;
  });
  const perRow: number[] = [];
  for (let r = 0; r < 5; r++) {
    const copy = rows.map((row) => row.replace(JSON.stringify(teamId), JSON.stringify(`${teamId}-d1-${r}`)));
    const t0 = performance.now();
    await insertEntryRows(env.DB, copy);
    perRow.push(((performance.now() - t0) * 1000) / copy.length);
  }
  perRow.sort((a, b) => a - b);
  return round(perRow[2] ?? Number.NaN);
}

/** D1's size in bytes, as D1 reports it after a statement. */
async function d1SizeBytes(): Promise<number> {
  const r = await env.DB.prepare("SELECT 1").run();
  return Number(r.meta.size_after ?? 0);
}

it("capacity costs: a spend's rows, bytes and D1 statements", async () => {
  const teamId = newTeamId("capacity");
  expect((await call(`/v1/teams/${teamId}`, { method: "PUT", body: { name: "capacity" } })).status).toBe(201);
  const granted = await call(`/v1/teams/${teamId}/grants`, {
    body: { amount: 1_000_000_000, category: "paid", source: "purchase" },
    idempotencyKey: newKey(),
  });
  expect(granted.status, granted.text).toBe(201);
  const feature = `capacity-priced-${crypto.randomUUID().slice(0, 8)}`;
  const priced = await call(`/v1/features/${feature}`, {
    method: "PUT",
    body: { name: "Capacity priced", unit: "request", creditsPerUnit: 3 },
  });
  expect(priced.status, priced.text).toBe(201);

  // Deliver what the setup wrote, then hold the outbox so that no alarm runs between the spends:
  // the spends' own statements are counted alone, and one alarm run delivers all of them after.
  await runAlarm(teamId);
  await pauseOutbox(teamId);
  await tapSql(teamId);
  const plain = await phase(teamId, { feature: "capacity-plain", amount: 1 });
  const pricedPhase = await phase(teamId, { feature, quantity: 1 });

  // The first spend after a flush that left nothing waiting: the same spend plus the alarm's
  // scheduling (what storage says is due, then setAlarm), counted as the flush's cost below.
  await believeAlarmAt(teamId, Date.now() + 365 * 86_400_000);
  takeCount(teamId);
  const rescheduled = await call(`/v1/teams/${teamId}/spends`, {
    body: { feature: "capacity-plain", amount: 1 },
    idempotencyKey: newKey(),
  });
  expect(rescheduled.status, rescheduled.text).toBe(201);
  const reschedule = takeCount(teamId);

  // One alarm run: the outbox's flush of both phases' entries to D1, counted on both sides.
  const d1 = { batchCalls: 0, statements: 0, rowsWritten: 0, rowsRead: 0, wallMs: 0 };
  await injectD1(teamId, (real) =>
    d1With(real, async (statements) => {
      d1.batchCalls += 1;
      d1.statements += statements.length;
      const t = performance.now();
      const results = await real.batch(statements);
      d1.wallMs += performance.now() - t;
      for (const r of results) {
        d1.rowsWritten += Number(r.meta.rows_written ?? 0);
        d1.rowsRead += Number(r.meta.rows_read ?? 0);
      }
      return results;
    }),
  );
  const d1Before = await d1SizeBytes();
  await resumeOutbox(teamId);
  takeCount(teamId);
  const t0 = performance.now();
  await runAlarm(teamId);
  const alarmWallMs = performance.now() - t0;
  const alarm = takeCount(teamId);
  const d1After = await d1SizeBytes();
  untapSql(teamId);
  const d1MedianUsPerRow = await d1UsPerRow(teamId);
  const flushedEntries = plain.entries + pricedPhase.entries + 1;

  const costs = {
    spendsPerPhase: SPENDS,
    plainSpend: plain,
    pricedSpend: pricedPhase,
    outboxFlush: {
      entries: flushedEntries,
      d1BatchCalls: d1.batchCalls,
      d1Statements: d1.statements,
      d1RowsPerStatement: round(flushedEntries / d1.statements),
      d1RowsWrittenPerEntry: round(d1.rowsWritten / flushedEntries),
      d1RowsReadPerEntry: round(d1.rowsRead / flushedEntries),
      d1DatabaseBytesPerEntry: Math.round((d1After - d1Before) / flushedEntries),
      d1BatchWallMs: round(d1.wallMs, 3),
      d1WallUsPerRow: round((d1.wallMs * 1000) / flushedEntries),
      d1MedianUsPerRow,
      objectStatements: alarm.statements,
      objectRowsRead: alarm.rowsRead,
      objectRowsWritten: alarm.rowsWritten,
      alarmWallMs: round(alarmWallMs, 3),
      // The next spend's scheduling, once per flush: its statements and rows beyond a spend's.
      rescheduleStatements: reschedule.statements - Math.round(plain.statementsPerSpend),
      rescheduleRowsRead: round(reschedule.rowsRead - plain.rowsReadPerSpend),
      rescheduleRowsWritten: round(reschedule.rowsWritten - plain.rowsWrittenPerSpend),
    },
  };
  console.log(`CAPACITY_COSTS_JSON ${JSON.stringify(costs)}`);
  expect(d1.batchCalls).toBeGreaterThan(0);
});
