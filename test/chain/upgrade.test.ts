/**
 * An object written before the history added up line by line (schema v2, chain version 1, its
 * captures stored as `out`) upgrades itself to schema v3 on its next start: captures become
 * `none`, every old entry keeps its hash and still verifies under version 1, new entries go on
 * under version 2, and the whole history, old and new, adds up line by line and verifies in D1.
 */
import { abortAllDurableObjects, runInDurableObject } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { CHAIN_VERSION, type ChainFields, chainHash, GENESIS_HASH } from "../../src/domain/chain";
import type { TeamLedger } from "../../src/object/team-ledger";
import {
  allEntries,
  assertInvariants,
  createTeam,
  drainOutbox,
  expectObjectChainIntact,
  expectStatus,
  ledgerStub,
  objectChainRows,
  spend,
  verify,
} from "../support";

/** The entries table as schema v1 + v2 made it (column names before v3). */
const V2_ENTRIES = `CREATE TABLE entries (
  seq INTEGER PRIMARY KEY, id TEXT NOT NULL, created_at INTEGER NOT NULL, type TEXT NOT NULL,
  direction TEXT NOT NULL CHECK (direction IN ('in', 'out')), amount INTEGER NOT NULL CHECK (amount >= 0),
  balance_after INTEGER NOT NULL CHECK (balance_after >= 0), grant_id TEXT, hold_id TEXT, spend_id TEXT,
  feature TEXT, quantity INTEGER, dimensions TEXT, reference TEXT, actor TEXT, hash TEXT)`;

describe("an object from before chain version 2", () => {
  it("upgrades once: old captures read as none, old hashes verify, new entries chain on", async () => {
    const teamId = `upgrade-${crypto.randomUUID().slice(0, 8)}`;
    await createTeam(teamId);
    const grantId = `grt_${"1".repeat(32)}`;
    const holdId = `hld_${"2".repeat(32)}`;
    const t0 = Date.now() - 60_000;
    // Grant 50, hold 30, capture 10 (written as out, leaving balanceAfter at 20), release 20.
    const old: Omit<
      ChainFields,
      "teamId" | "chainVersion" | "memberTeamId" | "tier" | "unitCredits" | "priceVersion" | "shortfallCredits"
    >[] = [
      ["grant", "in", 50, 50, null],
      ["hold", "out", 30, 20, holdId],
      ["capture", "out", 10, 20, holdId],
      ["release", "in", 20, 40, holdId],
    ].map(([type, direction, amount, after, hold], i) => ({
      seq: i + 1,
      id: `ent_${String(i + 1).padStart(32, "0")}`,
      createdAtMs: t0 + i,
      type: type as string,
      direction: direction as string,
      amountCredits: amount as number,
      balanceAfterCredits: after as number,
      grantId,
      holdId: hold as string | null,
      spendId: null,
      feature: hold === null ? null : "render",
      quantity: null,
      dimensions: null,
      reference: null,
      actor: null,
    }));
    await runInDurableObject(ledgerStub(teamId), (_i: TeamLedger, state) => {
      const sql = state.storage.sql;
      state.storage.transactionSync(() => {
        // What schemas v6 (agency pools) and v7 (revoked keys) added, undone first: their indexes
        // name holds' columns v1 did not have.
        sql.exec("DROP INDEX holds_pending_member");
        sql.exec("DROP INDEX holds_pending_actor");
        for (const table of ["pool_members", "member_caps", "cap_usage", "revoked_keys"])
          sql.exec(`DROP TABLE ${table}`);
        sql.exec("DROP TABLE entries");
        sql.exec(V2_ENTRIES);
        sql.exec("CREATE INDEX entries_created ON entries (created_at)");
        sql.exec("ALTER TABLE holds DROP COLUMN actor");
        sql.exec("ALTER TABLE holds DROP COLUMN member_team_id");
        // And what schema v4 (prices, plans, events) added.
        sql.exec("ALTER TABLE holds DROP COLUMN unit_credits");
        sql.exec("ALTER TABLE holds DROP COLUMN price_version");
        sql.exec("DROP INDEX grants_period");
        sql.exec("ALTER TABLE grants DROP COLUMN period");
        for (const table of ["periods", "events", "messages", "referral_rewards"]) sql.exec(`DROP TABLE ${table}`);
        // And what schema v5 (buying credits, feature-restricted grants) added and rebuilt.
        sql.exec("DROP INDEX grants_spend_order");
        sql.exec("ALTER TABLE grants DROP COLUMN restricted_feature");
        sql.exec(`CREATE INDEX grants_spend_order ON grants (category_rank, priority, expires_at IS NULL, expires_at, seq)
          WHERE status = 'active' AND remaining > 0`);
        for (const table of ["purchases", "purchase_adjustments", "recharges", "credit_requests", "payments"])
          sql.exec(`DROP TABLE ${table}`);
        let previous = GENESIS_HASH;
        for (const e of old) {
          previous = chainHash(previous, {
            ...e,
            teamId,
            chainVersion: 1,
            memberTeamId: null,
            tier: null,
            unitCredits: null,
            priceVersion: null,
            shortfallCredits: null,
          });
          sql.exec(
            `INSERT INTO entries (seq, id, created_at, type, direction, amount, balance_after, grant_id, hold_id, feature, hash)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
            e.seq,
            e.id,
            e.createdAtMs,
            e.type,
            e.direction,
            e.amountCredits,
            e.balanceAfterCredits,
            e.grantId,
            e.holdId,
            e.feature,
            previous,
          );
        }
        sql.exec(
          `INSERT INTO grants (id, amount, remaining, held, category, category_rank, source, priority, status, created_at)
           VALUES (?, 50, 40, 0, 'paid', 2, 'purchase', 0, 'active', ?)`,
          grantId,
          t0,
        );
        sql.exec(
          `INSERT INTO holds (id, amount, captured_amount, status, expires_at, created_at, resolved_at, feature, allocations)
           VALUES (?, 30, 10, 'captured', ?, ?, ?, 'render', ?)`,
          holdId,
          t0 + 600_000,
          t0 + 1,
          t0 + 2,
          JSON.stringify([{ grantId, amount: 30 }]),
        );
        sql.exec("UPDATE schema_version SET version = 2");
      });
    });

    // The next start migrates.
    await abortAllDurableObjects();
    const rows = await objectChainRows(teamId);
    expect(rows.map((r) => [r.type, r.direction, r.chain_version])).toEqual([
      ["grant", "in", 1],
      ["hold", "out", 1],
      ["capture", "none", 1],
      ["release", "in", 1],
    ]);
    await expectObjectChainIntact(teamId);

    // New entries chain on from the last old hash, under the current version.
    expectStatus(await spend(teamId, 15), 201);
    const after = await expectObjectChainIntact(teamId);
    expect(after.map((r) => r.chain_version)).toEqual([1, 1, 1, 1, CHAIN_VERSION]);
    const history = await allEntries(teamId);
    expect(history.map((e) => e.balanceAfter).reverse()).toEqual([50, 20, 20, 40, 25]);

    await drainOutbox(teamId);
    expect(await verify(teamId)).toMatchObject({ ok: true, checked: 5, firstBreak: null });
    await assertInvariants(teamId);
  });
});
