/**
 * GET /v1/teams/{teamId}/entries/verify: the chain recomputed over the D1 replica, page by page;
 * tampering with any row of D1 is found at exactly that row.
 */
import { describe, expect, it } from "vitest";
import { chainHash } from "../../src/domain/chain";
import { VERIFY_PAGE_ROWS } from "../../src/limits";
import {
  assertInvariants,
  assertObjectInvariants,
  call,
  createTeam,
  d1Hashes,
  d1Run,
  d1With,
  drainOutbox,
  everyKindOfOperation,
  expectObjectChainIntact,
  expectStatus,
  fieldsOf,
  grant,
  injectD1,
  newKey,
  newTeamId,
  newTeamWithEveryKind,
  objectChainRows,
  outboxOf,
  restoreD1,
  spend,
  type Verification,
  verify,
} from "../support";

async function replicatedTeam(prefix: string): Promise<{ teamId: string; count: number }> {
  const teamId = newTeamId(prefix);
  await newTeamWithEveryKind(teamId);
  await drainOutbox(teamId);
  const rows = await expectObjectChainIntact(teamId);
  return { teamId, count: rows.length };
}

describe("verify: an untouched history", () => {
  it("a fresh team's chain verifies ok; checked = its entries; D1 holds the object's hashes", async () => {
    const { teamId, count } = await replicatedTeam("chain-ok");
    expect(count).toBeGreaterThanOrEqual(12);
    const v = await verify(teamId);
    expect(v).toEqual({
      ok: true,
      checked: count,
      firstBreak: null,
      lastCheckedSeq: count,
      headSeq: count,
      replicatedSeq: count,
      unreplicated: 0,
      nextCursor: null,
    } satisfies Verification);
    const objectHashes = (await objectChainRows(teamId)).map((r) => ({ seq: r.seq, hash: r.hash }));
    expect(await d1Hashes(teamId)).toEqual(objectHashes);
    for (const h of objectHashes) expect(h.hash).toMatch(/^[0-9a-f]{64}$/);
    await assertInvariants(teamId);
  });

  it("replies carry each entry's hash, the one the object stored", async () => {
    const teamId = newTeamId("chain-wire");
    await createTeam(teamId);
    await grant(teamId, 100);
    const res = await spend(teamId, 10);
    expectStatus(res, 201);
    const entries = res.body.entries as { seq: number; hash?: string }[];
    const rows = await objectChainRows(teamId);
    expect(entries.length).toBeGreaterThan(0);
    for (const e of entries) expect(e.hash).toBe(rows.find((r) => r.seq === e.seq)?.hash);
    await assertInvariants(teamId);
  });

  it("a team with no entries verifies ok with nothing checked; an unknown team is 404; a bad cursor 400", async () => {
    const teamId = newTeamId("chain-empty");
    await createTeam(teamId);
    expect(await verify(teamId)).toMatchObject({ ok: true, checked: 0, firstBreak: null, headSeq: 0 });
    const missing = await call(`/v1/teams/${newTeamId("nobody")}/entries/verify`);
    expectStatus(missing, 404);
    const bad = await call(`/v1/teams/${teamId}/entries/verify?cursor=nope`);
    expectStatus(bad, 400);
    await assertInvariants(teamId);
  });

  it("entries not yet in D1 are reported as unreplicated, not checked; once delivered they verify", async () => {
    const { teamId, count } = await replicatedTeam("chain-backlog");
    await injectD1(teamId, (real) => d1With(real, () => Promise.reject(new Error("D1 unavailable (test)"))));
    await everyKindOfOperation(teamId, 1);
    const head = (await objectChainRows(teamId)).length;
    const waiting = head - count;
    expect(waiting).toBeGreaterThan(0);
    expect((await outboxOf(teamId)).backlog).toBe(waiting);
    expect(await verify(teamId)).toMatchObject({
      ok: true,
      checked: count,
      firstBreak: null,
      lastCheckedSeq: count,
      headSeq: head,
      replicatedSeq: count,
      unreplicated: waiting,
      nextCursor: null,
    });
    await restoreD1(teamId);
    await drainOutbox(teamId);
    expect(await verify(teamId)).toMatchObject({ ok: true, checked: head, unreplicated: 0 });
    await assertInvariants(teamId);
  });

  it(`reads in pages of ${VERIFY_PAGE_ROWS}: a history longer than a page verifies whole`, async () => {
    const teamId = newTeamId("chain-pages");
    await createTeam(teamId);
    await grant(teamId, 10_000);
    for (let b = 0; b < 2; b++) {
      const res = await call(`/v1/teams/${teamId}/spends/batch`, {
        body: {
          mode: "all_or_nothing",
          items: Array.from({ length: 600 }, (_, i) => ({ feature: `f${i}`, amount: 1 })),
        },
        idempotencyKey: newKey(),
      });
      expectStatus(res, 200);
    }
    await drainOutbox(teamId);
    const count = (await expectObjectChainIntact(teamId)).length;
    expect(count).toBeGreaterThan(VERIFY_PAGE_ROWS);
    expect(await verify(teamId)).toMatchObject({ ok: true, checked: count, firstBreak: null, nextCursor: null });
    // A break beyond the first page is found there.
    const seq = VERIFY_PAGE_ROWS + 50;
    await d1Run("UPDATE ledger_entries SET amount_credits = 2 WHERE team_id = ? AND seq = ?", teamId, seq);
    expect(await verify(teamId)).toMatchObject({
      ok: false,
      checked: seq - 1,
      firstBreak: { seq, reason: "hash_mismatch" },
    });
    await assertObjectInvariants(teamId);
  });

  it("with ?limit the work is split across requests by nextCursor; the pieces add up", async () => {
    const { teamId, count } = await replicatedTeam("chain-cursor");
    let cursor: string | null = null;
    let checked = 0;
    let requests = 0;
    do {
      const query = new URLSearchParams({ limit: "5" });
      if (cursor !== null) query.set("cursor", cursor);
      const v: Verification = await verify(teamId, query.toString());
      expect(v.ok).toBe(true);
      expect(v.checked).toBeLessThanOrEqual(5);
      checked += v.checked;
      cursor = v.nextCursor;
      requests += 1;
      expect(requests).toBeLessThan(count);
    } while (cursor !== null);
    expect(checked).toBe(count);
    expect(requests).toBe(Math.ceil(count / 5));

    // A cursor carries the hash it resumes from: a break after it is found, one before it is not read.
    const tampered = 8;
    await d1Run("UPDATE ledger_entries SET amount_credits = 999 WHERE team_id = ? AND seq = ?", teamId, tampered);
    const firstFive = await verify(teamId, "limit=5");
    expect(firstFive).toMatchObject({ ok: true, checked: 5 });
    const rest = await verify(teamId, new URLSearchParams({ cursor: firstFive.nextCursor ?? "" }).toString());
    expect(rest).toMatchObject({ ok: false, checked: tampered - 6, firstBreak: { seq: tampered } });
    await assertObjectInvariants(teamId);
  });
});

describe("verify: tampering with D1 is found at exactly that entry", () => {
  const edits: [string, string][] = [
    ["amount", "UPDATE ledger_entries SET amount_credits = amount_credits + 1 WHERE team_id = ? AND seq = ?"],
    ["balance_after", "UPDATE ledger_entries SET balance_after_credits = 0 WHERE team_id = ? AND seq = ?"],
    ["type", "UPDATE ledger_entries SET type = 'refund' WHERE team_id = ? AND seq = ?"],
    [
      "direction",
      "UPDATE ledger_entries SET direction = CASE direction WHEN 'in' THEN 'out' ELSE 'in' END WHERE team_id = ? AND seq = ?",
    ],
    ["created_at", "UPDATE ledger_entries SET created_at_ms = created_at_ms - 1 WHERE team_id = ? AND seq = ?"],
    ["dimensions", "UPDATE ledger_entries SET dimensions = '{}' WHERE team_id = ? AND seq = ?"],
  ];

  it.each(edits)("an edited %s", async (_column, sql) => {
    const { teamId, count } = await replicatedTeam("chain-edit");
    // The dimensioned spend is entry 3 (after the two grants); pick it for every edit.
    const seq = 3;
    expect(seq).toBeLessThan(count);
    expect(await d1Run(sql, teamId, seq)).toBe(1);
    const rows = await objectChainRows(teamId);
    const v = await verify(teamId);
    expect(v.ok).toBe(false);
    expect(v.checked).toBe(seq - 1);
    expect(v.lastCheckedSeq).toBe(seq - 1);
    expect(v.firstBreak).toMatchObject({ seq, reason: "hash_mismatch", found: rows[seq - 1]?.hash });
    expect(v.firstBreak?.expected).not.toBe(rows[seq - 1]?.hash);
    await assertObjectInvariants(teamId);
  });

  it("an edited hash", async () => {
    const { teamId } = await replicatedTeam("chain-hash");
    const seq = 5;
    const forged = "ab".repeat(32);
    await d1Run("UPDATE ledger_entries SET hash = ? WHERE team_id = ? AND seq = ?", forged, teamId, seq);
    const rows = await objectChainRows(teamId);
    expect(await verify(teamId)).toMatchObject({
      ok: false,
      checked: seq - 1,
      firstBreak: { seq, reason: "hash_mismatch", expected: rows[seq - 1]?.hash, found: forged },
    });
    await assertObjectInvariants(teamId);
  });

  it("a NULL hash (as on entries written before the chain) is a break", async () => {
    const { teamId } = await replicatedTeam("chain-null");
    const seq = 4;
    await d1Run("UPDATE ledger_entries SET hash = NULL WHERE team_id = ? AND seq = ?", teamId, seq);
    const rows = await objectChainRows(teamId);
    expect(await verify(teamId)).toMatchObject({
      ok: false,
      checked: seq - 1,
      firstBreak: { seq, reason: "missing_hash", expected: rows[seq - 1]?.hash, found: null },
    });
    await assertObjectInvariants(teamId);
  });

  it("a deleted entry (a gap in seq) is a break at the missing seq", async () => {
    const { teamId } = await replicatedTeam("chain-gap");
    const seq = 6;
    expect(await d1Run("DELETE FROM ledger_entries WHERE team_id = ? AND seq = ?", teamId, seq)).toBe(1);
    expect(await verify(teamId)).toMatchObject({
      ok: false,
      checked: seq - 1,
      firstBreak: { seq, reason: "missing_entry", expected: null, found: null },
    });
    await assertObjectInvariants(teamId);
  });

  it("deleted last entries (no gap left) are a break: the object says they were delivered", async () => {
    const { teamId, count } = await replicatedTeam("chain-tail");
    expect(await d1Run("DELETE FROM ledger_entries WHERE team_id = ? AND seq >= ?", teamId, count - 1)).toBe(2);
    expect(await verify(teamId)).toMatchObject({
      ok: false,
      checked: count - 2,
      firstBreak: { seq: count - 1, reason: "missing_entry" },
    });
    await assertObjectInvariants(teamId);
  });

  it("an edit with every later hash recomputed to match is still caught by the object's anchor", async () => {
    const { teamId, count } = await replicatedTeam("chain-rewrite");
    const rows = await objectChainRows(teamId);
    const seq = 3;
    // Rewrite D1 from seq on as a forger who knows the chain's definition would.
    let prev = rows[seq - 2]?.hash ?? "";
    for (const r of rows.slice(seq - 1)) {
      const fields = fieldsOf(teamId, r);
      if (r.seq === seq) fields.amountCredits += 100;
      const hash = chainHash(prev, fields);
      await d1Run(
        "UPDATE ledger_entries SET amount_credits = ?, hash = ? WHERE team_id = ? AND seq = ?",
        fields.amountCredits,
        hash,
        teamId,
        r.seq,
      );
      prev = hash;
    }
    const last = rows[count - 1]?.hash;
    expect(await verify(teamId)).toMatchObject({
      ok: false,
      checked: count,
      firstBreak: { seq: count, reason: "anchor_mismatch", expected: last, found: prev },
    });
    await assertObjectInvariants(teamId);
  });
});
