/**
 * What one entry costs the team object, below HTTP and RPC: the SQLite INSERT of an entry row
 * (one statement a row, as the ledger writes, and json_each packs, as the outbox reads), the hash
 * chain's SHA-256, and whole spends and batches run through the object's own methods. The figures
 * bound the batch throughput one team can reach in this runtime (see README, Performance).
 */
import { env, runInDurableObject } from "cloudflare:test";
import { it } from "vitest";
import { insertEntryRows } from "../../src/db/history";
import { CHAIN_VERSION, chainHash, GENESIS_HASH } from "../../src/domain/chain";
import { ENTRY_COLUMNS, INSERT_ENTRY_SQL } from "../../src/domain/entry";
import type { LedgerStore } from "../../src/object/store";
import type { TeamLedger } from "../../src/object/team-ledger";

/** A spend's reply as the idempotency record stores it (~600 bytes). */
function r0(hash: string) {
  return {
    spend: { id: `spd_${hex(1)}`, amount: 1, feature: "bench", quantity: 1, createdAt: new Date(0).toISOString() },
    entries: [
      {
        id: `ent_${hex(1)}`,
        seq: 2,
        createdAt: new Date(0).toISOString(),
        type: "spend",
        direction: "out",
        amount: 1,
        balanceAfter: 999,
        grantId: `grt_${hex(1)}`,
        spendId: `spd_${hex(1)}`,
        feature: "bench",
        quantity: 1,
        hash,
      },
    ],
    balance: {
      teamId: "micro",
      poolTeamId: "micro",
      available: 999,
      held: 0,
      total: 999,
      byCategory: { free: 0, paid: 999, promotional: 0 },
      lowBalance: false,
    },
  };
}

const ROWS = 5_000;
const ROUNDS = 5;
const COLUMNS = ENTRY_COLUMNS.map((c) => c.column).join(", ");

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)] ?? Number.NaN;
}

/** Median over ROUNDS of fn's µs per unit (workerd's clock is coarse: each round runs many units). */
function measure(units: number, fn: (round: number) => void): number {
  const perUnit: number[] = [];
  for (let round = 0; round < ROUNDS; round++) {
    const t0 = performance.now();
    fn(round);
    perUnit.push(((performance.now() - t0) * 1000) / units);
  }
  return Number(median(perUnit).toFixed(2));
}

const hex = (n: number) => n.toString(16).padStart(32, "0");

function entryRow(seq: number): (string | number | null)[] {
  return [
    seq,
    `ent_${hex(seq)}`,
    1767225600000 + seq,
    "spend",
    "out",
    1,
    1_000_000_000 - seq,
    `grt_${hex(1)}`,
    null,
    `spd_${hex(seq)}`,
    "bench",
    1,
    null,
    null,
    null,
    null,
    CHAIN_VERSION,
    "a".repeat(64),
  ];
}

it("storage floor, per entry", async () => {
  const stub = env.TEAM_LEDGER.get(env.TEAM_LEDGER.idFromName(`micro-${crypto.randomUUID()}`));
  const results: Record<string, number> = {};
  await runInDurableObject(stub, (_instance: TeamLedger, state) => {
    const sql = state.storage.sql;
    sql.exec("CREATE TABLE narrow (seq INTEGER PRIMARY KEY, v TEXT)");
    const insert = INSERT_ENTRY_SQL;
    const fromJson = `INSERT INTO entries (${COLUMNS}) SELECT ${ENTRY_COLUMNS.map((_, i) => `value ->> '$[${i}]'`).join(", ")} FROM json_each(?)`;
    let seq = 0;
    results["entries INSERT, one statement a row (µs/row)"] = measure(ROWS, () =>
      state.storage.transactionSync(() => {
        for (let i = 0; i < ROWS; i++) sql.exec(insert, ...entryRow(++seq));
      }),
    );
    results["entries INSERT, json_each 250 rows a statement (µs/row)"] = measure(ROWS, () => {
      const rows = Array.from({ length: ROWS }, () => JSON.stringify(entryRow(++seq)));
      state.storage.transactionSync(() => {
        for (let i = 0; i < ROWS; i += 250) sql.exec(fromJson, `[${rows.slice(i, i + 250).join(",")}]`);
      });
    });
    const text = "x".repeat(250);
    results["narrow table INSERT (2 columns, 250 bytes) (µs/row)"] = measure(ROWS, () =>
      state.storage.transactionSync(() => {
        for (let i = 0; i < ROWS; i++) sql.exec("INSERT INTO narrow (seq, v) VALUES (?, ?)", ++seq, text);
      }),
    );
    results["SELECT 1, one statement (µs/statement)"] = measure(ROWS, () => {
      for (let i = 0; i < ROWS; i++) sql.exec("SELECT 1").one();
    });
    let previous = GENESIS_HASH;
    results["chain hash, node:crypto SHA-256 (µs/entry)"] = measure(ROWS, () => {
      for (let i = 0; i < ROWS; i++)
        previous = chainHash(previous, {
          teamId: "micro",
          seq: i,
          id: `ent_${hex(i)}`,
          createdAtMs: 1767225600000,
          type: "spend",
          direction: "out",
          amountCredits: 1,
          balanceAfterCredits: 1000,
          grantId: `grt_${hex(1)}`,
          holdId: null,
          spendId: `spd_${hex(i)}`,
          feature: "bench",
          quantity: 1,
          dimensions: null,
          reference: null,
          actor: null,
          tier: null,
          unitCredits: null,
          priceVersion: null,
          shortfallCredits: null,
          memberTeamId: null,
          chainVersion: CHAIN_VERSION,
        });
    });
  });

  // The ledger itself, through the object's methods (no HTTP, no RPC serialization).
  const teamId = `micro-ledger-${crypto.randomUUID()}`;
  const ledger = env.TEAM_LEDGER.get(env.TEAM_LEDGER.idFromName(teamId));
  await runInDurableObject(ledger, async (instance: TeamLedger, state) => {
    instance.upsertTeam(teamId, { name: "micro" });
    const g = await instance.grant(
      teamId,
      { amount: 1_000_000_000, category: "paid", source: "manual" },
      { key: "g", fingerprint: "g", requestId: "g" },
    );
    if (!g.ok) throw new Error("grant failed");
    let key = 0;
    const spends = 2_000;
    const perSpend: number[] = [];
    for (let round = 0; round < ROUNDS; round++) {
      const t0 = performance.now();
      for (let i = 0; i < spends; i++) {
        key += 1;
        const r = await instance.spend(teamId, { feature: "bench", amount: 1 }, undefined, {
          key: `s${key}`,
          fingerprint: "f",
          requestId: "r",
        });
        if (!r.ok) throw new Error("spend failed");
      }
      perSpend.push(((performance.now() - t0) * 1000) / spends);
    }
    results["spend through the object's method (µs/spend)"] = Number(median(perSpend).toFixed(2));

    // The statements of one spend, one by one, through the object's own store.
    const store = (instance as unknown as { store: LedgerStore }).store;
    const nowMs = Date.now();
    const first = store.grants.drawable(nowMs).next();
    if (first.done) throw new Error("no drawable grant");
    const grantId = first.value.id;
    const reply = JSON.stringify(r0(g.body.entries[0]?.hash ?? ""));
    let n = 0;
    results["  opening read (balance, due, idempotency record) (µs)"] = measure(ROWS, () => {
      for (let i = 0; i < ROWS; i++) store.openingState(nowMs, `o${++n}`);
    });
    results["  first drawable grant, in spending order (µs)"] = measure(ROWS, () => {
      for (let i = 0; i < ROWS; i++) store.grants.drawable(nowMs).next();
    });
    results["  grant UPDATE (µs)"] = measure(ROWS, () =>
      state.storage.transactionSync(() => {
        for (let i = 0; i < ROWS; i++) store.grants.adjust(grantId, { remaining: -1, held: 0 });
      }),
    );
    results["  idempotency record INSERT, 600-byte reply (µs)"] = measure(ROWS, () =>
      state.storage.transactionSync(() => {
        for (let i = 0; i < ROWS; i++)
          store.putReply(`p${++n}`, { fingerprint: "f".repeat(64), status: 201, body: reply }, nowMs);
      }),
    );
    const items = Array.from({ length: 1000 }, () => ({ feature: "bench", amount: 1 }));
    const perItem: number[] = [];
    for (let round = 0; round < ROUNDS; round++) {
      const t0 = performance.now();
      for (let b = 0; b < 5; b++) {
        key += 1;
        const r = await instance.spendBatch(teamId, items, {}, "all_or_nothing", {
          key: `b${key}`,
          fingerprint: "f",
          requestId: "r",
        });
        if (!r.ok) throw new Error("batch failed");
      }
      perItem.push(((performance.now() - t0) * 1000) / 5000);
    }
    results["batch of 1,000 through the object's method (µs/spend)"] = Number(median(perItem).toFixed(2));
  });

  // D1's side of replication: the outbox's insert of 500-row batches.
  const d1Rows = Array.from({ length: 500 }, (_, i) => JSON.stringify(["micro-d1", ...entryRow(i + 1)]));
  const perRow: number[] = [];
  for (let round = 0; round < ROUNDS; round++) {
    const rows = d1Rows.map((r, i) => r.replace('"micro-d1"', `"micro-d1-${round}-${i % 1}"`));
    const t0 = performance.now();
    await insertEntryRows(env.DB, rows);
    perRow.push(((performance.now() - t0) * 1000) / rows.length);
  }
  results["D1 insert, 500-row batch (µs/row)"] = Number(median(perRow).toFixed(2));

  const width = Math.max(...Object.keys(results).map((k) => k.length));
  const lines = Object.entries(results).map(([k, v]) => `  ${k.padEnd(width)}  ${v.toFixed(2).padStart(8)}`);
  console.log(`storage floor (medians of ${ROUNDS} rounds, inside workerd):\n${lines.join("\n")}`);
});
