/**
 * Referrals (each bonus exactly once, across retried deliveries and restarts), low-balance events
 * (once per crossing), and the credit planner (an estimate is exactly what a spend then does).
 */
import { abortAllDurableObjects, runInDurableObject } from "cloudflare:test";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import type { TeamLedger } from "../../src/object/team-ledger";
import {
  api,
  assertInvariants,
  balance,
  createTeam,
  drainOutbox,
  expectProblem,
  expectStatus,
  grant,
  ledgerStub,
  newKey,
  newKeyFor,
  newTeamId,
  objectRows,
  putFeature,
  putPlan,
  runAlarm,
  spend,
} from "../support";

const eventTypes = async (teamId: string) =>
  (await api<{ events: { type: string }[] }>(`/v1/teams/${teamId}/events?limit=200`)).body.events
    .map((e) => e.type)
    .reverse();

describe("referrals", () => {
  it("reward the referrer once on signup and once on the first paid plan, whatever is retried", async () => {
    const free = newKeyFor("free");
    const paid = newKeyFor("paid");
    await putPlan(free, { paid: false, referral: { signupCredits: 50, upgradeCredits: 200 } });
    await putPlan(paid, { paid: true });
    const referrer = newTeamId("referrer");
    const referred = newTeamId("referred");
    await createTeam(referrer, { planId: free });
    await createTeam(referred, { planId: free });
    const r = await api<{ id: string; signupCredits: number; upgradeCredits: number }>("/v1/referrals", {
      body: { referrerTeamId: referrer, referredTeamId: referred },
    });
    expectStatus(r, 201);
    expect(r.body).toMatchObject({ signupCredits: 50, upgradeCredits: 200 });
    // The same pair again: the same referral; another referrer: refused; oneself: refused.
    const again = await api<{ id: string }>("/v1/referrals", {
      body: { referrerTeamId: referrer, referredTeamId: referred },
    });
    expect(again.status).toBe(200);
    expect(again.body.id).toBe(r.body.id);
    const other = newTeamId();
    await createTeam(other);
    expectProblem(
      await api("/v1/referrals", { body: { referrerTeamId: other, referredTeamId: referred } }),
      409,
      "conflict",
    );
    expectProblem(
      await api("/v1/referrals", { body: { referrerTeamId: referred, referredTeamId: referred } }),
      400,
      "invalid_request",
    );
    expectProblem(
      await api("/v1/referrals", { body: { referrerTeamId: newTeamId(), referredTeamId: referred } }),
      404,
      "not_found",
    );

    await runAlarm(referred);
    await runAlarm(referred);
    // A delivery whose answer was lost is sent again: the referrer's object grants nothing twice.
    await runInDurableObject(ledgerStub(referrer), async (instance: TeamLedger) => {
      const replay = await instance.receiveReferralReward(referrer, {
        referralId: r.body.id,
        kind: "signup",
        credits: 50,
        referredTeamId: referred,
      });
      expect(replay).toMatchObject({ ok: true, body: { already: true } });
    });
    expect((await balance(referrer)).byCategory.promotional).toBe(50);

    await api(`/v1/teams/${referred}`, { method: "PUT", body: { planId: paid } });
    await abortAllDurableObjects();
    await runAlarm(referred);
    await api(`/v1/teams/${referred}`, { method: "PUT", body: { planId: free } });
    await api(`/v1/teams/${referred}`, { method: "PUT", body: { planId: paid } });
    await runAlarm(referred);
    await runAlarm(referred);
    const b = await balance(referrer);
    expect(b.byCategory.promotional).toBe(250);
    expect(
      b.grants
        .filter((g) => g.source === "referral")
        .map((g) => g.amount)
        .sort(),
    ).toEqual([200, 50]);
    expect((await eventTypes(referrer)).filter((t) => t === "referral.rewarded")).toHaveLength(2);
    await assertInvariants(referrer);
    await assertInvariants(referred);
  });
});

describe("low-balance events", () => {
  it("are told once per crossing: low, depleted, recovered", async () => {
    const teamId = newTeamId();
    await createTeam(teamId, { settings: { lowBalanceThreshold: 100 } });
    await grant(teamId, 300);
    for (const amount of [150, 60, 30]) expectStatus(await spend(teamId, amount), 201);
    expect((await balance(teamId)).lowBalance).toBe(true);
    expectStatus(await spend(teamId, 60), 201); // to zero
    expectStatus(await spend(teamId, 1), 402);
    await grant(teamId, 50); // above zero, still low: nothing
    await grant(teamId, 500); // back above the threshold
    expect((await balance(teamId)).lowBalance).toBe(false);
    const balanceEvents = (await eventTypes(teamId)).filter((t) => t.startsWith("balance."));
    expect(balanceEvents).toEqual(["balance.low", "balance.depleted", "balance.recovered"]);
    await drainOutbox(teamId);
    await assertInvariants(teamId);
  });
});

describe("the credit planner", () => {
  it("prices lines with the plan, draws in spending order, suggests packs when short, and writes nothing", async () => {
    const clip = newKeyFor("clip");
    await putFeature(clip, { name: "AI clip", unit: "clip", creditsPerUnit: 40, tiers: { premium: 60 } });
    const plan = newKeyFor("space");
    await putPlan(plan, {
      paid: true,
      currency: "gbp",
      creditsPerCurrencyUnit: 40,
      packs: [
        { id: "gbp25", priceMinor: 2500 },
        { id: "gbp50", priceMinor: 5000 },
        { id: "gbp100", priceMinor: 10000 },
      ],
    });
    const teamId = newTeamId();
    await createTeam(teamId, { planId: plan });
    await grant(teamId, 100, { category: "promotional", source: "promotional" });
    await grant(teamId, 200);
    const before = await api(`/v1/teams/${teamId}/entries`);
    const e = await api<Record<string, unknown>>(`/v1/teams/${teamId}/estimate`, {
      body: {
        items: [
          { feature: clip, quantity: 10 },
          { feature: clip, tier: "premium", quantity: 5 },
        ],
      },
    });
    expectStatus(e, 200);
    expect(e.body).toMatchObject({
      total: 700,
      availableNow: 300,
      afterEstimate: 0,
      shortfall: 400,
      sufficient: false,
      suggestedPacks: [
        { id: "gbp25", priceMinor: 2500, credits: 1000 },
        { id: "gbp50", priceMinor: 5000, credits: 2000 },
        { id: "gbp100", priceMinor: 10000, credits: 4000 },
      ],
    });
    expect((e.body.drawdown as { category: string; amount: number }[]).map((d) => [d.category, d.amount])).toEqual([
      ["promotional", 100],
      ["paid", 200],
    ]);
    expect((await api(`/v1/teams/${teamId}/entries`)).text).toBe(before.text);
    expectProblem(
      await api(`/v1/teams/${teamId}/estimate`, { body: { items: [{ feature: newKeyFor("ghost") }] } }),
      400,
      "invalid_request",
    );
  });

  it("is exactly what a spend right after it charges and draws (property)", async () => {
    const unitFeature = newKeyFor("unit");
    const minuteFeature = newKeyFor("minute");
    await putFeature(unitFeature, { name: "U", unit: "request", creditsPerUnit: 3, tiers: { fast: 1, premium: 7 } });
    await putFeature(minuteFeature, { name: "M", unit: "minute", creditsPerUnit: 4 });
    await fc.assert(
      fc.asyncProperty(
        fc.array(
          fc.record({
            category: fc.constantFrom("free", "paid", "promotional"),
            amount: fc.integer({ min: 1, max: 60 }),
            priority: fc.integer({ min: 0, max: 3 }),
          }),
          { minLength: 1, maxLength: 5 },
        ),
        fc.array(
          fc.oneof(
            fc.record({
              feature: fc.constant(unitFeature),
              quantity: fc.integer({ min: 1, max: 5 }),
              tier: fc.constantFrom(undefined, "fast", "premium"),
            }),
            fc.record({
              feature: fc.constant(minuteFeature),
              quantity: fc.integer({ min: 1, max: 400 }).map((q) => q / 100),
            }),
          ),
          { minLength: 1, maxLength: 4 },
        ),
        async (grants, items) => {
          const teamId = newTeamId("planner");
          await createTeam(teamId);
          for (const g of grants)
            await grant(teamId, g.amount, { category: g.category, source: "manual", priority: g.priority });
          const clean = items.map((i) => Object.fromEntries(Object.entries(i).filter(([, v]) => v !== undefined)));
          const e = await api<{ total: number; sufficient: boolean; drawdown: { grantId: string; amount: number }[] }>(
            `/v1/teams/${teamId}/estimate`,
            { body: { items: clean } },
          );
          expectStatus(e, 200);
          const r = await api<{ results: { status: string }[] }>(`/v1/teams/${teamId}/spends/batch`, {
            body: { mode: "all_or_nothing", items: clean },
            idempotencyKey: newKey(),
          });
          if (!e.body.sufficient) {
            expect(r.status).toBe(402);
            return;
          }
          expectStatus(r, 200);
          const rows = await objectRows<{ id: string; amount: number; remaining: number }>(
            teamId,
            "SELECT id, amount, remaining FROM grants",
          );
          const drawn = new Map<string, number>();
          for (const g of rows) drawn.set(g.id, g.amount - g.remaining);
          const spent = [...drawn].filter(([, n]) => n > 0);
          expect(spent.reduce((s, [, n]) => s + n, 0)).toBe(e.body.total);
          expect(new Map(spent)).toEqual(new Map(e.body.drawdown.map((d) => [d.grantId, d.amount])));
        },
      ),
      { numRuns: 15 },
    );
  });
});
