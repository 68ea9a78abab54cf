/**
 * Feature-restricted credits (lemlist's Multichannel Expert: 400 calling credits a seat a month,
 * usable only for calls): a grant restricted to a feature is drawn only by spends, holds and batch
 * items of that feature, before unrestricted credits of its category; another feature is refused
 * with 402 although restricted credits remain; the balance shows them by feature; a plan's feature
 * credits come with each period's allocation, once, and follow its seat rule. Every scenario ends
 * with assertInvariants; every test has its own team.
 */
import { abortAllDurableObjects } from "cloudflare:test";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  allEntries,
  anchorDaysAgo,
  api,
  assertInvariants,
  balance,
  createHold,
  createTeam,
  expectProblem,
  expectStatus,
  grant,
  holdAction,
  newKey,
  newKeyFor,
  newTeamId,
  objectRows,
  putFeature,
  putPlan,
  runAlarm,
  type SpendReplyT,
  snapshot,
  spend,
} from "../support";

/** A grant of `amount` restricted to `feature` (free allocation unless `extra` says otherwise). */
const restrictedGrant = (teamId: string, amount: number, feature: string, extra: Record<string, unknown> = {}) =>
  grant(teamId, amount, { category: "free", source: "allocation", restrictedToFeature: feature, ...extra });

/** Credits drawn from each grant (amount − remaining − held), by grant id, for grants drawn from. */
async function drawnByGrant(teamId: string): Promise<Map<string, number>> {
  const rows = await objectRows<{ id: string; amount: number; remaining: number; held: number }>(
    teamId,
    "SELECT id, amount, remaining, held FROM grants",
  );
  return new Map(
    rows.filter((r) => r.amount - r.remaining - r.held > 0).map((r) => [r.id, r.amount - r.remaining - r.held]),
  );
}

describe("grants restricted to a feature", () => {
  it("are shown with restrictedToFeature (null when unrestricted) and spent only by their feature", async () => {
    const teamId = newTeamId();
    await createTeam(teamId);
    const calling = await restrictedGrant(teamId, 100, "calling");
    const paid = await grant(teamId, 50);
    expect(calling.grant.restrictedToFeature).toBe("calling");
    expect(paid.grant.restrictedToFeature).toBeNull();

    // A plain amount labelled with the feature draws the calling credits first.
    const s = await spend(teamId, 30, newKey(), { feature: "calling" });
    expectStatus(s, 201);
    expect(s.body.entries.map((e) => [e.grantId, e.amount])).toEqual([[calling.grant.id, 30]]);
    // Another feature never touches them.
    const other = await spend(teamId, 20, newKey(), { feature: "email_finder" });
    expectStatus(other, 201);
    expect(other.body.entries.map((e) => [e.grantId, e.amount])).toEqual([[paid.grant.id, 20]]);
    expect(await drawnByGrant(teamId)).toEqual(
      new Map([
        [calling.grant.id, 30],
        [paid.grant.id, 20],
      ]),
    );
    await assertInvariants(teamId);
  });

  it("refuses another feature's spend with 402 although restricted credits remain, and writes nothing", async () => {
    const teamId = newTeamId();
    await createTeam(teamId);
    await restrictedGrant(teamId, 400, "calling");
    await grant(teamId, 10);
    const before = await snapshot(teamId);
    const key = newKey();
    const refused = await spend(teamId, 50, key, { feature: "email_finder" });
    const problem = expectProblem(refused, 402, "insufficient_credits");
    // `available` is what that feature could draw, not the team's 410.
    expect(problem).toMatchObject({ required: 50, available: 10 });
    expect(await snapshot(teamId)).toEqual(before);
    // A hold without a feature may draw only unrestricted credits.
    const hold = await api(`/v1/teams/${teamId}/holds`, {
      body: { amount: 11, ttlSeconds: 600 },
      idempotencyKey: newKey(),
    });
    expect(expectProblem(hold, 402, "insufficient_credits")).toMatchObject({ required: 11, available: 10 });
    // The feature itself may draw both: 400 + 10.
    expectStatus(await spend(teamId, 410, newKey(), { feature: "calling" }), 201);
    expect((await balance(teamId)).available).toBe(0);
    await assertInvariants(teamId);
  });

  it("are drawn before unrestricted credits of the same category, and free still goes before paid", async () => {
    const teamId = newTeamId();
    await createTeam(teamId);
    // Granted first and at a lower priority: the unrestricted free grant would go first without the rule.
    const freeAny = await grant(teamId, 100, { category: "free", source: "allocation", priority: 0 });
    const paidCalling = await restrictedGrant(teamId, 100, "calling", { category: "paid", source: "purchase" });
    const freeCalling = await restrictedGrant(teamId, 100, "calling", { priority: 5 });
    const paidAny = await grant(teamId, 100);
    const s = await spend(teamId, 350, newKey(), { feature: "calling" });
    expectStatus(s, 201);
    expect(s.body.entries.map((e) => [e.grantId, e.amount])).toEqual([
      [freeCalling.grant.id, 100],
      [freeAny.grant.id, 100],
      [paidCalling.grant.id, 100],
      [paidAny.grant.id, 50],
    ]);
    await assertInvariants(teamId);
  });

  it("a priced spend of the feature draws them too (the label is the feature)", async () => {
    const feature = newKeyFor("calling");
    await putFeature(feature, { name: "Calls", unit: "minute", creditsPerUnit: 4, unitRounding: "per_unit" });
    const teamId = newTeamId();
    await createTeam(teamId);
    const calls = await restrictedGrant(teamId, 40, feature);
    await grant(teamId, 100);
    const s = await api<SpendReplyT>(`/v1/teams/${teamId}/spends`, {
      body: { feature, quantity: 2.5 },
      idempotencyKey: newKey(),
    });
    expectStatus(s, 201);
    expect(s.body.entries.map((e) => [e.grantId, e.amount])).toEqual([[calls.grant.id, 12]]);
    await assertInvariants(teamId);
  });

  it("holds draw them for their feature; capture and release return credits to the restricted grant", async () => {
    const teamId = newTeamId();
    await createTeam(teamId);
    const calling = await restrictedGrant(teamId, 100, "calling");
    const paid = await grant(teamId, 100);
    const h1 = await createHold(teamId, 80, 600, { feature: "calling" });
    expect(h1.entries.map((e) => [e.grantId, e.amount])).toEqual([[calling.grant.id, 80]]);
    expect((await balance(teamId)).byFeature).toEqual({ calling: 20 });
    // Partial capture: 30 spent, 50 back to the calling grant.
    const cap = await holdAction(teamId, h1.hold.id, "capture", { amount: 30 });
    expectStatus(cap, 200);
    expect(cap.body.entries.filter((e) => e.type === "release").map((e) => [e.grantId, e.amount])).toEqual([
      [calling.grant.id, 50],
    ]);
    expect((await balance(teamId)).byFeature).toEqual({ calling: 70 });
    // Extending draws as the hold's feature does: 70 calling, then 10 paid.
    const h2 = await createHold(teamId, 60, 600, { feature: "calling" });
    const ext = await holdAction(teamId, h2.hold.id, "extend", { amount: 20 });
    expectStatus(ext, 200);
    expect(ext.body.entries.map((e) => [e.grantId, e.amount])).toEqual([
      [calling.grant.id, 10],
      [paid.grant.id, 10],
    ]);
    const rel = await holdAction(teamId, h2.hold.id, "release", { reason: "call failed" });
    expectStatus(rel, 200);
    expect(rel.body.entries.map((e) => [e.grantId, e.amount])).toEqual([
      [calling.grant.id, 70],
      [paid.grant.id, 10],
    ]);
    const b = await balance(teamId);
    expect(b.byFeature).toEqual({ calling: 70 });
    expect(b.available).toBe(170);
    // Another feature's hold is refused what only calls may use.
    const other = await api(`/v1/teams/${teamId}/holds`, {
      body: { feature: "render", amount: 101, ttlSeconds: 600 },
      idempotencyKey: newKey(),
    });
    expect(expectProblem(other, 402, "insufficient_credits")).toMatchObject({ available: 100 });
    await assertInvariants(teamId);
  });

  it("batch items draw per item, in both modes", async () => {
    const teamId = newTeamId();
    await createTeam(teamId);
    const calling = await restrictedGrant(teamId, 50, "calling");
    const paid = await grant(teamId, 30);
    const ok = await api<{ results: { status: string; spend?: { id: string } }[] }>(
      `/v1/teams/${teamId}/spends/batch`,
      {
        body: {
          mode: "all_or_nothing",
          items: [
            { feature: "email_finder", amount: 20 },
            { feature: "calling", amount: 40 },
            { feature: "calling", amount: 15 },
          ],
        },
        idempotencyKey: newKey(),
      },
    );
    expectStatus(ok, 200);
    expect(await drawnByGrant(teamId)).toEqual(
      new Map([
        [calling.grant.id, 50],
        [paid.grant.id, 25],
      ]),
    );
    // all_or_nothing: an item the others' restricted credits would cover is refused; nothing written.
    const teamB = newTeamId();
    await createTeam(teamB);
    await restrictedGrant(teamB, 100, "calling");
    await grant(teamB, 10);
    const before = await snapshot(teamB);
    const refused = await api(`/v1/teams/${teamB}/spends/batch`, {
      body: { mode: "all_or_nothing", items: [{ feature: "email_finder", amount: 11 }] },
      idempotencyKey: newKey(),
    });
    expect(expectProblem(refused, 402, "insufficient_credits")).toMatchObject({
      required: 11,
      available: 10,
      failedIndex: 0,
    });
    expect(await snapshot(teamB)).toEqual(before);
    // until_insufficient: the calling items fit, the email item stops the batch.
    const partial = await api<{ results: { status: string; available?: number }[] }>(
      `/v1/teams/${teamB}/spends/batch`,
      {
        body: {
          mode: "until_insufficient",
          items: [
            { feature: "calling", amount: 100 },
            { feature: "email_finder", amount: 11 },
            { feature: "calling", amount: 1 },
          ],
        },
        idempotencyKey: newKey(),
      },
    );
    expectStatus(partial, 200);
    expect(partial.body.results.map((r) => [r.status, r.available])).toEqual([
      ["spent", undefined],
      ["insufficient", 10],
      ["skipped", undefined],
    ]);
    expect((await balance(teamB)).byFeature).toEqual({});
    await assertInvariants(teamId);
    await assertInvariants(teamB);
  });

  it("the balance shows them by feature (empty when none) and counts them in available", async () => {
    const teamId = newTeamId();
    await createTeam(teamId);
    expect((await balance(teamId)).byFeature).toEqual({});
    await restrictedGrant(teamId, 400, "calling");
    await restrictedGrant(teamId, 25, "ai_reply", { category: "promotional", source: "promotional" });
    await grant(teamId, 75);
    const b = await balance(teamId);
    expect(b.byFeature).toEqual({ ai_reply: 25, calling: 400 });
    expect(b).toMatchObject({ available: 500, byCategory: { free: 400, promotional: 25, paid: 75 } });
    expectStatus(await spend(teamId, 400, newKey(), { feature: "calling" }), 201);
    expect((await balance(teamId)).byFeature).toEqual({ ai_reply: 25 });
    await assertInvariants(teamId);
  });

  it("30 parallel spends of two features never overdraw either", async () => {
    const teamId = newTeamId();
    await createTeam(teamId);
    await restrictedGrant(teamId, 100, "calling");
    await restrictedGrant(teamId, 100, "ai_reply");
    await grant(teamId, 40);
    const results = await Promise.all(
      Array.from({ length: 30 }, (_, i) =>
        spend(teamId, 10, newKey(), { feature: i % 2 === 0 ? "calling" : "ai_reply" }),
      ),
    );
    const statuses = results.map((r) => r.status);
    // 15 of each at 10 credits: 300 asked of 240 (100 + 100 restricted, 40 shared). Every amount is
    // a multiple of 10, so a feature is refused only once its own and the shared credits are gone.
    expect(statuses.filter((s) => s === 201).length).toBe(24);
    expect(statuses.filter((s) => s === 402).length).toBe(6);
    const b = await balance(teamId);
    expect(b.available).toBe(0);
    expect(b.byFeature).toEqual({});
    // Neither feature drew more than its own grant plus the shared credits.
    const entries = await allEntries(teamId);
    const out = (f: string) =>
      entries.filter((e) => e.type === "spend" && e.feature === f).reduce((s, e) => s + e.amount, 0);
    expect(out("calling")).toBeLessThanOrEqual(140);
    expect(out("ai_reply")).toBeLessThanOrEqual(140);
    expect(out("calling") + out("ai_reply")).toBe(240);
    await assertInvariants(teamId);
  });
});

describe("a plan's monthly feature credits", () => {
  it("come with each period's allocation, per seat, exactly once, through the alarm", async () => {
    const calling = newKeyFor("calling");
    await putFeature(calling, { name: "Phone calling", unit: "minute", creditsPerUnit: 4, unitRounding: "per_unit" });
    const plan = newKeyFor("multichannel");
    await putPlan(plan, { paid: true, monthlyCreditsPerSeat: 1500, monthlyFeatureCreditsPerSeat: { [calling]: 400 } });
    const teamId = newTeamId();
    await createTeam(teamId, { planId: plan, seats: 2 });
    const b0 = await balance(teamId);
    expect(b0).toMatchObject({ available: 3800, byCategory: { free: 3800 }, byFeature: { [calling]: 800 } });
    const calling0 = b0.grants.filter((g) => g.restrictedToFeature === calling);
    expect(calling0.map((g) => [g.amount, g.source, g.category, g.expiresAt])).toEqual([
      [800, "allocation", "free", b0.grants.find((g) => g.amount === 3000)?.expiresAt],
    ]);
    expectStatus(await spend(teamId, 100, newKey(), { feature: calling }), 201);

    await anchorDaysAgo(teamId, 35);
    await runAlarm(teamId);
    await runAlarm(teamId);
    await abortAllDurableObjects();
    await runAlarm(teamId);
    const b1 = await balance(teamId);
    expect(b1).toMatchObject({ available: 3800, byFeature: { [calling]: 800 } });
    const periods = await objectRows<{ idx: number; granted_credits: number }>(
      teamId,
      "SELECT idx, granted_credits FROM periods ORDER BY idx",
    );
    expect(periods).toEqual([
      { idx: 0, granted_credits: 3800 },
      { idx: 1, granted_credits: 3800 },
    ]);
    const entries = await allEntries(teamId);
    // Period 0's unused calling credits (700) and allocation (3000) expired; 4 allocation grants in all.
    expect(
      entries
        .filter((e) => e.type === "expire")
        .map((e) => e.amount)
        .sort((a, b) => a - b),
    ).toEqual([700, 3000]);
    expect(entries.filter((e) => e.type === "grant").length).toBe(4);
    const events = await api<{ events: { type: string; data: { featureCredits: Record<string, number> } }[] }>(
      `/v1/teams/${teamId}/events?type=allocation.granted`,
    );
    expect(events.body.events.map((e) => e.data.featureCredits)).toEqual([{ [calling]: 800 }, { [calling]: 800 }]);
    await assertInvariants(teamId);
  });

  it("follow the seat rule: added seats get theirs at once, removed seats next period, no rollover", async () => {
    const calling = newKeyFor("calling");
    await putFeature(calling, { name: "Phone calling", unit: "minute", creditsPerUnit: 4, unitRounding: "per_unit" });
    const plan = newKeyFor("multichannel");
    await putPlan(plan, {
      paid: true,
      monthlyCreditsPerSeat: 100,
      rolloverMaxCredits: 1000,
      monthlyFeatureCreditsPerSeat: { [calling]: 40 },
    });
    const teamId = newTeamId();
    await createTeam(teamId, { planId: plan, seats: 1 });
    expectStatus(await api(`/v1/teams/${teamId}`, { method: "PUT", body: { seats: 3 } }), 200);
    expect((await balance(teamId)).byFeature).toEqual({ [calling]: 120 });
    // Down to 1 and back to 3 within the period adds nothing: those seats were paid for.
    expectStatus(await api(`/v1/teams/${teamId}`, { method: "PUT", body: { seats: 1 } }), 200);
    expect((await balance(teamId)).byFeature).toEqual({ [calling]: 120 });
    expectStatus(await api(`/v1/teams/${teamId}`, { method: "PUT", body: { seats: 3 } }), 200);
    expectStatus(await api(`/v1/teams/${teamId}`, { method: "PUT", body: { seats: 2 } }), 200);
    const b0 = await balance(teamId);
    expect(b0).toMatchObject({ available: 420, byFeature: { [calling]: 120 } });
    await anchorDaysAgo(teamId, 35);
    await runAlarm(teamId);
    const b1 = await balance(teamId);
    // Next period: 2 seats. The 300 unused unrestricted credits roll over; calling credits do not.
    expect(b1.byFeature).toEqual({ [calling]: 80 });
    expect(b1.available).toBe(200 + 80 + 300);
    await assertInvariants(teamId);
  });

  it("a plan names at most the limit's features, each in the price book", async () => {
    const ghost = newKeyFor("ghost");
    expectProblem(
      await api(`/v1/plans/${newKeyFor("bad")}`, {
        method: "PUT",
        body: {
          name: "bad",
          paid: false,
          currency: "usd",
          creditsPerCurrencyUnit: 1,
          monthlyFeatureCreditsPerSeat: { [ghost]: 10 },
        },
      }),
      400,
      "invalid_request",
    );
    const tooMany = Object.fromEntries(Array.from({ length: 17 }, (_, i) => [`f${i}`, 1]));
    expectProblem(
      await api(`/v1/plans/${newKeyFor("bad")}`, {
        method: "PUT",
        body: {
          name: "bad",
          paid: false,
          currency: "usd",
          creditsPerCurrencyUnit: 1,
          monthlyFeatureCreditsPerSeat: tooMany,
        },
      }),
      400,
      "invalid_request",
    );
  });
});

describe("the credit planner with restricted credits", () => {
  it("draws each line as its spend would: a batch right after it charges total and draws drawdown (property)", async () => {
    const calls = newKeyFor("calls");
    const leads = newKeyFor("leads");
    await putFeature(calls, { name: "C", unit: "minute", creditsPerUnit: 4 });
    await putFeature(leads, { name: "L", unit: "lead", creditsPerUnit: 5 });
    await fc.assert(
      fc.asyncProperty(
        fc.array(
          fc.record({
            category: fc.constantFrom("free", "paid", "promotional"),
            amount: fc.integer({ min: 1, max: 60 }),
            restrictedToFeature: fc.constantFrom(null, calls, leads),
          }),
          { minLength: 1, maxLength: 5 },
        ),
        fc.array(
          fc.oneof(
            fc.record({ feature: fc.constant(calls), quantity: fc.integer({ min: 1, max: 400 }).map((q) => q / 100) }),
            fc.record({ feature: fc.constant(leads), quantity: fc.integer({ min: 1, max: 6 }) }),
          ),
          { minLength: 1, maxLength: 4 },
        ),
        async (grants, items) => {
          const teamId = newTeamId("planner");
          await createTeam(teamId);
          for (const g of grants)
            await grant(teamId, g.amount, {
              category: g.category,
              source: "manual",
              ...(g.restrictedToFeature === null ? {} : { restrictedToFeature: g.restrictedToFeature }),
            });
          const e = await api<{
            total: number;
            sufficient: boolean;
            shortfall: number;
            drawdown: { grantId: string; amount: number }[];
          }>(`/v1/teams/${teamId}/estimate`, { body: { items } });
          expectStatus(e, 200);
          const r = await api(`/v1/teams/${teamId}/spends/batch`, {
            body: { mode: "all_or_nothing", items },
            idempotencyKey: newKey(),
          });
          if (!e.body.sufficient) {
            expect(e.body.shortfall).toBeGreaterThan(0);
            expect(r.status).toBe(402);
            return;
          }
          expectStatus(r, 200);
          const spent = await drawnByGrant(teamId);
          expect([...spent.values()].reduce((s, n) => s + n, 0)).toBe(e.body.total);
          expect(spent).toEqual(new Map(e.body.drawdown.map((d) => [d.grantId, d.amount])));
        },
      ),
      { numRuns: 12 },
    );
  });
});

describe("what restricted credits do not pay for", () => {
  it("payment options count only the credits an invoice could draw; the payment agrees (402)", async () => {
    const teamId = newTeamId("restricted-pay");
    await createTeam(teamId);
    await restrictedGrant(teamId, 400, "calling");
    await grant(teamId, 30);
    const options = await api(`/v1/teams/${teamId}/payment-options?kind=invoice&amount=100`);
    expectStatus(options, 200);
    expect(options.body).toMatchObject({ available: false, availableCredits: 30 });
    const codes = (options.body.reasons as { code: string }[]).map((r) => r.code);
    expect(codes).toContain("insufficient_credits");
    const before = await snapshot(teamId);
    const pay = await api(`/v1/teams/${teamId}/payments`, {
      body: { kind: "invoice", reference: "INV-R-1", amount: 100 },
      idempotencyKey: newKey(),
    });
    expect(expectProblem(pay, 402, "insufficient_credits").available).toBe(30);
    const after = await snapshot(teamId);
    expect(after.grants).toEqual(before.grants);
    expect(after.entries).toEqual(before.entries);
    await assertInvariants(teamId);
  });
});
