import { abortAllDurableObjects } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import {
  assertInvariants,
  balance,
  createHold,
  createTeam,
  drainOutbox,
  expectStatus,
  getHold,
  grant,
  holdAction,
  inAnHour,
  makeGrantDue,
  makeHoldDue,
  newTeamId,
  objectEntries,
  objectRows,
  runAlarm,
  spend,
  storedAlarm,
  voidGrant,
} from "../support";

const inADay = (): string => new Date(Date.now() + 86_400_000).toISOString();

async function holdRow(teamId: string, holdId: string) {
  const [row] = await objectRows<{ status: string; expires_at: number; captured_amount: number }>(
    teamId,
    "SELECT status, expires_at, captured_amount FROM holds WHERE id = ?",
    holdId,
  );
  return row;
}

async function grantRow(teamId: string, grantId: string) {
  const [row] = await objectRows<{ status: string; remaining: number; held: number }>(
    teamId,
    "SELECT status, remaining, held FROM grants WHERE id = ?",
    grantId,
  );
  return row;
}

describe("holds expire through the alarm", () => {
  it("a hold past its deadline expires when the alarm runs: credits back, expire entries with holdId", async () => {
    const teamId = newTeamId();
    await createTeam(teamId);
    const { grant: a } = await grant(teamId, 20, { category: "free", source: "allocation" });
    const { grant: b } = await grant(teamId, 100);
    const { hold } = await createHold(teamId, 50, 1);
    expect(await balance(teamId)).toMatchObject({ available: 70, held: 50 });

    await makeHoldDue(teamId, hold.id);
    expect(await runAlarm(teamId)).toBe(true);
    expect((await holdRow(teamId, hold.id))?.status).toBe("expired");

    const expires = (await objectEntries(teamId)).filter((e) => e.type === "expire");
    expect(expires.map((e) => [e.direction, e.amount, e.grant_id, e.hold_id])).toEqual([
      ["in", 20, a.id, hold.id],
      ["in", 30, b.id, hold.id],
    ]);
    expect(await balance(teamId)).toMatchObject({ available: 120, held: 0, total: 120 });
    expect(await getHold(teamId, hold.id)).toMatchObject({ status: "expired", capturedAmount: 0 });
    // Resolved once: acting on it now is refused and writes nothing.
    const late = await holdAction(teamId, hold.id, "capture");
    expectStatus(late, 409);
    expect(late.body).toMatchObject({ code: "hold_not_pending" });
    expect((await objectEntries(teamId)).filter((e) => e.type === "expire")).toHaveLength(2);
    await assertInvariants(teamId);
  });

  it("the next operation settles a due hold even before the alarm", async () => {
    const teamId = newTeamId();
    await createTeam(teamId);
    await grant(teamId, 10);
    const { hold } = await createHold(teamId, 10);
    await makeHoldDue(teamId, hold.id);
    // The credits come back before the spend draws: it succeeds.
    expectStatus(await spend(teamId, 10), 201);
    expect((await holdRow(teamId, hold.id))?.status).toBe("expired");
    await runAlarm(teamId);
    const entries = await objectEntries(teamId);
    expect(entries.map((e) => [e.type, e.direction, e.amount])).toEqual([
      ["grant", "in", 10],
      ["hold", "out", 10],
      ["expire", "in", 10],
      ["spend", "out", 10],
    ]);
    await assertInvariants(teamId);
  });

  it("after the object restarts, the alarm is still set and still expires the hold", async () => {
    const teamId = newTeamId();
    await createTeam(teamId);
    await grant(teamId, 40);
    const { hold } = await createHold(teamId, 25, 600);
    // Let the first alarm deliver the outbox (D1 confirms it); the next alarm is then the hold's deadline.
    await drainOutbox(teamId);
    const row = await holdRow(teamId, hold.id);
    expect(row?.expires_at).toBe(Date.parse(hold.expiresAt));
    expect(await storedAlarm(teamId)).toBe(row?.expires_at);

    await abortAllDurableObjects();
    expect(await storedAlarm(teamId), "the alarm survives the restart").toBe(row?.expires_at);

    await makeHoldDue(teamId, hold.id);
    expect(await runAlarm(teamId)).toBe(true);
    expect((await holdRow(teamId, hold.id))?.status).toBe("expired");
    const expires = (await objectEntries(teamId)).filter((e) => e.type === "expire");
    expect(expires.map((e) => [e.direction, e.amount, e.hold_id])).toEqual([["in", 25, hold.id]]);
    expect(await balance(teamId)).toMatchObject({ available: 40, held: 0 });
    await assertInvariants(teamId);
  });

  it("a hold whose deadline is moved sooner by extend still has the alarm set for it", async () => {
    const teamId = newTeamId();
    await createTeam(teamId);
    await grant(teamId, 100);
    const { hold } = await createHold(teamId, 10, 3600);
    await drainOutbox(teamId); // delivers the outbox (D1 confirms it); the alarm is then set for the hold's deadline
    expect(await storedAlarm(teamId)).toBe(Date.parse(hold.expiresAt));
    // ttlSeconds counts from now, so this moves the deadline an hour earlier; it writes no entry.
    const ext = await holdAction(teamId, hold.id, "extend", { ttlSeconds: 5 });
    expectStatus(ext, 200);
    const deadline = Date.parse(ext.body.hold.expiresAt);
    expect(deadline).toBeLessThan(Date.parse(hold.expiresAt));
    const alarm = await storedAlarm(teamId);
    expect(alarm, "the alarm runs no later than the new deadline").not.toBeNull();
    expect(alarm ?? Number.POSITIVE_INFINITY).toBeLessThanOrEqual(deadline);

    await makeHoldDue(teamId, hold.id);
    expect(await runAlarm(teamId)).toBe(true);
    expect((await holdRow(teamId, hold.id))?.status).toBe("expired");
    await assertInvariants(teamId);
  });

  it("an extended hold expires at its new deadline, returning everything it reserved", async () => {
    const teamId = newTeamId();
    await createTeam(teamId);
    const { grant: g } = await grant(teamId, 100);
    const { hold } = await createHold(teamId, 10, 60);
    const ext = await holdAction(teamId, hold.id, "extend", { amount: 15, ttlSeconds: 600 });
    expectStatus(ext, 200);
    expect(ext.body.hold.amount).toBe(25);
    await makeHoldDue(teamId, hold.id);
    expect(await runAlarm(teamId)).toBe(true);
    const expires = (await objectEntries(teamId)).filter((e) => e.type === "expire");
    expect(expires.map((e) => [e.direction, e.amount, e.grant_id, e.hold_id])).toEqual([["in", 25, g.id, hold.id]]);
    expect(await balance(teamId)).toMatchObject({ available: 100, held: 0 });
    await assertInvariants(teamId);
  });
});

describe("grant expiry", () => {
  it("a due grant stops counting at once; one expire entry, however often it is settled", async () => {
    const teamId = newTeamId();
    await createTeam(teamId);
    await grant(teamId, 100);
    const { grant: g } = await grant(teamId, 50, { category: "free", source: "allocation", expiresAt: inADay() });
    expect((await balance(teamId)).available).toBe(150);

    await makeGrantDue(teamId, g.id);
    const bal = await balance(teamId);
    expect(bal.available).toBe(100);
    expect(bal.grants.map((x) => x.id)).not.toContain(g.id);

    await runAlarm(teamId);
    expectStatus(await spend(teamId, 1), 201);
    await runAlarm(teamId);
    const expires = (await objectEntries(teamId)).filter((e) => e.type === "expire");
    expect(expires.map((e) => [e.direction, e.amount, e.grant_id, e.hold_id])).toEqual([["out", 50, g.id, null]]);
    expect(await grantRow(teamId, g.id)).toEqual({ status: "expired", remaining: 0, held: 0 });
    expect((await balance(teamId)).available).toBe(99);
    await assertInvariants(teamId);
  });

  it("the alarm alone writes the expire entry; the spend after it does not draw from the grant", async () => {
    const teamId = newTeamId();
    await createTeam(teamId);
    const { grant: paid } = await grant(teamId, 10);
    const { grant: g } = await grant(teamId, 50, { category: "free", source: "allocation", expiresAt: inADay() });
    await makeGrantDue(teamId, g.id);
    expect(await runAlarm(teamId)).toBe(true);
    const entries = await objectEntries(teamId);
    expect(entries.filter((e) => e.type === "expire").map((e) => [e.amount, e.grant_id])).toEqual([[50, g.id]]);
    // The expire entry's balanceAfter is the balance without the grant.
    expect(entries.at(-1)).toMatchObject({ type: "expire", balance_after: 10 });

    const res = await spend(teamId, 11);
    expectStatus(res, 402);
    const ok = await spend(teamId, 10);
    expectStatus(ok, 201);
    expect((ok.body.entries as { grantId: string }[]).map((e) => e.grantId)).toEqual([paid.id]);
    expect((await objectEntries(teamId)).filter((e) => e.type === "expire")).toHaveLength(1);
    await assertInvariants(teamId);
  });

  it("a partly spent grant expires what remains", async () => {
    const teamId = newTeamId();
    await createTeam(teamId);
    const { grant: g } = await grant(teamId, 50, { expiresAt: inADay() });
    expectStatus(await spend(teamId, 20), 201);
    await makeGrantDue(teamId, g.id);
    expect(await runAlarm(teamId)).toBe(true);
    const expires = (await objectEntries(teamId)).filter((e) => e.type === "expire");
    expect(expires.map((e) => [e.direction, e.amount])).toEqual([["out", 30]]);
    expect(await balance(teamId)).toMatchObject({ available: 0, held: 0 });
    await assertInvariants(teamId);
  });

  describe("while part of it is held by a pending hold", () => {
    async function setup() {
      const teamId = newTeamId();
      await createTeam(teamId);
      const { grant: paid } = await grant(teamId, 100);
      const { grant: g } = await grant(teamId, 50, { category: "free", source: "allocation", expiresAt: inADay() });
      const { hold } = await createHold(teamId, 20);
      await makeGrantDue(teamId, g.id);
      expect(await runAlarm(teamId)).toBe(true);
      return { teamId, paid, g, hold };
    }

    it("the unreserved part expires; the held part stays with the hold", async () => {
      const { teamId, g, hold } = await setup();
      const expires = (await objectEntries(teamId)).filter((e) => e.type === "expire");
      expect(expires.map((e) => [e.direction, e.amount, e.grant_id, e.hold_id])).toEqual([["out", 30, g.id, null]]);
      expect(await grantRow(teamId, g.id)).toEqual({ status: "expired", remaining: 0, held: 20 });
      expect(await balance(teamId)).toMatchObject({ available: 100, held: 20, total: 120 });
      const bal = await balance(teamId);
      expect(bal.grants.find((x) => x.id === g.id)).toMatchObject({ status: "expired", remaining: 20, held: 20 });
      expect(await getHold(teamId, hold.id)).toMatchObject({ status: "pending", amount: 20 });
      await assertInvariants(teamId);
    });

    it("releasing the hold afterwards writes release (in) then expire (out) for that part", async () => {
      const { teamId, g, hold } = await setup();
      const seqBefore = (await objectEntries(teamId)).length;
      const res = await holdAction(teamId, hold.id, "release");
      expectStatus(res, 200);
      expect(res.body.hold.status).toBe("released");
      const after = (await objectEntries(teamId)).slice(seqBefore);
      expect(after.map((e) => [e.type, e.direction, e.amount, e.grant_id, e.hold_id, e.balance_after])).toEqual([
        ["release", "in", 20, g.id, hold.id, 120],
        ["expire", "out", 20, g.id, hold.id, 100],
      ]);
      expect(await grantRow(teamId, g.id)).toEqual({ status: "expired", remaining: 0, held: 0 });
      expect(await balance(teamId)).toMatchObject({ available: 100, held: 0 });
      await assertInvariants(teamId);
    });

    it("capturing it instead spends it", async () => {
      const { teamId, g, hold } = await setup();
      const seqBefore = (await objectEntries(teamId)).length;
      const res = await holdAction(teamId, hold.id, "capture");
      expectStatus(res, 200);
      expect(res.body.hold).toMatchObject({ status: "captured", capturedAmount: 20 });
      const after = (await objectEntries(teamId)).slice(seqBefore);
      expect(after.map((e) => [e.type, e.direction, e.amount, e.grant_id, e.hold_id])).toEqual([
        ["capture", "none", 20, g.id, hold.id],
      ]);
      expect(await grantRow(teamId, g.id)).toEqual({ status: "expired", remaining: 0, held: 0 });
      expect(await balance(teamId)).toMatchObject({ available: 100, held: 0 });
      await assertInvariants(teamId);
    });

    it("a partial capture spends part and expires the returned rest", async () => {
      const { teamId, g, hold } = await setup();
      const seqBefore = (await objectEntries(teamId)).length;
      expectStatus(await holdAction(teamId, hold.id, "capture", { amount: 5 }), 200);
      const after = (await objectEntries(teamId)).slice(seqBefore);
      expect(after.map((e) => [e.type, e.direction, e.amount, e.grant_id])).toEqual([
        ["capture", "none", 5, g.id],
        ["release", "in", 15, g.id],
        ["expire", "out", 15, g.id],
      ]);
      expect(await balance(teamId)).toMatchObject({ available: 100, held: 0 });
      await assertInvariants(teamId);
    });

    it("the hold expiring at its deadline returns the part and expires it", async () => {
      const { teamId, g, hold } = await setup();
      const seqBefore = (await objectEntries(teamId)).length;
      await makeHoldDue(teamId, hold.id);
      expect(await runAlarm(teamId)).toBe(true);
      const after = (await objectEntries(teamId)).slice(seqBefore);
      expect(after.map((e) => [e.type, e.direction, e.amount, e.grant_id, e.hold_id])).toEqual([
        ["expire", "in", 20, g.id, hold.id],
        ["expire", "out", 20, g.id, hold.id],
      ]);
      expect((await holdRow(teamId, hold.id))?.status).toBe("expired");
      await assertInvariants(teamId);
    });
  });

  it("a grant and a hold on it both due: settled in one alarm run", async () => {
    const teamId = newTeamId();
    await createTeam(teamId);
    const { grant: g } = await grant(teamId, 50, { expiresAt: inADay() });
    const { hold } = await createHold(teamId, 20);
    await makeGrantDue(teamId, g.id);
    await makeHoldDue(teamId, hold.id);
    expect(await runAlarm(teamId)).toBe(true);
    const entries = await objectEntries(teamId);
    expect(entries.map((e) => [e.type, e.direction, e.amount, e.hold_id])).toEqual([
      ["grant", "in", 50, null],
      ["hold", "out", 20, hold.id],
      ["expire", "out", 30, null],
      ["expire", "in", 20, hold.id],
      ["expire", "out", 20, hold.id],
    ]);
    expect(await balance(teamId)).toMatchObject({ available: 0, held: 0 });
    await assertInvariants(teamId);
  });

  it("the alarm is set for a grant's expiry", async () => {
    const teamId = newTeamId();
    await createTeam(teamId);
    const expiresAt = inAnHour();
    await grant(teamId, 5, { expiresAt });
    await drainOutbox(teamId); // delivers the outbox (D1 confirms it), then the next alarm is set
    expect(await storedAlarm(teamId)).toBe(Date.parse(expiresAt));
    await assertInvariants(teamId);
  });
});

describe("void with a pending hold on the grant", () => {
  async function setup() {
    const teamId = newTeamId();
    await createTeam(teamId);
    const { grant: other } = await grant(teamId, 10, { priority: 5 });
    const { grant: g } = await grant(teamId, 100, { priority: 0 });
    const { hold } = await createHold(teamId, 30);
    const res = await voidGrant(teamId, g.id);
    expectStatus(res, 200);
    return { teamId, other, g, hold, res };
  }

  it("only unreserved credits are voided", async () => {
    const { teamId, g, hold, res } = await setup();
    expect(res.body.grant).toMatchObject({ status: "voided", remaining: 30, held: 30 });
    const voids = (await objectEntries(teamId)).filter((e) => e.type === "void");
    expect(voids.map((e) => [e.direction, e.amount, e.grant_id, e.hold_id])).toEqual([["out", 70, g.id, null]]);
    expect(await balance(teamId)).toMatchObject({ available: 10, held: 30 });
    expect(await getHold(teamId, hold.id)).toMatchObject({ status: "pending" });
    // A voided grant cannot be voided again.
    expectStatus(await voidGrant(teamId, g.id), 409);
    await assertInvariants(teamId);
  });

  it("releasing the hold later voids the returned part", async () => {
    const { teamId, g, hold } = await setup();
    const seqBefore = (await objectEntries(teamId)).length;
    expectStatus(await holdAction(teamId, hold.id, "release"), 200);
    const after = (await objectEntries(teamId)).slice(seqBefore);
    expect(after.map((e) => [e.type, e.direction, e.amount, e.grant_id, e.hold_id, e.balance_after])).toEqual([
      ["release", "in", 30, g.id, hold.id, 40],
      ["void", "out", 30, g.id, hold.id, 10],
    ]);
    expect(await grantRow(teamId, g.id)).toEqual({ status: "voided", remaining: 0, held: 0 });
    expect(await balance(teamId)).toMatchObject({ available: 10, held: 0 });
    await assertInvariants(teamId);
  });

  it("a hold that expires later also voids the returned part", async () => {
    const { teamId, g, hold } = await setup();
    await makeHoldDue(teamId, hold.id);
    expect(await runAlarm(teamId)).toBe(true);
    const tail = (await objectEntries(teamId)).slice(-2);
    expect(tail.map((e) => [e.type, e.direction, e.amount, e.grant_id, e.hold_id])).toEqual([
      ["expire", "in", 30, g.id, hold.id],
      ["void", "out", 30, g.id, hold.id],
    ]);
    expect(await balance(teamId)).toMatchObject({ available: 10, held: 0 });
    await assertInvariants(teamId);
  });

  it("capturing part of the hold spends that part and voids the rest", async () => {
    const { teamId, g, hold } = await setup();
    const seqBefore = (await objectEntries(teamId)).length;
    expectStatus(await holdAction(teamId, hold.id, "capture", { amount: 12 }), 200);
    const after = (await objectEntries(teamId)).slice(seqBefore);
    expect(after.map((e) => [e.type, e.direction, e.amount, e.grant_id])).toEqual([
      ["capture", "none", 12, g.id],
      ["release", "in", 18, g.id],
      ["void", "out", 18, g.id],
    ]);
    expect(await balance(teamId)).toMatchObject({ available: 10, held: 0 });
    await assertInvariants(teamId);
  });
});
