/**
 * Plans on teams: starter credits once, a free allocation each monthly period (driven through the
 * real alarm by re-anchoring the team's periods in the past), exactly once across restarts and
 * repeated alarms, only the current period after a long sleep, rollover only when configured and
 * capped, free before paid, and the rules for seats, plan changes and cancelling.
 */
import { abortAllDurableObjects } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import {
  allEntries,
  anchorDaysAgo,
  api,
  assertInvariants,
  balance,
  createTeam,
  expectProblem,
  expectStatus,
  type GrantT,
  grant,
  newKeyFor,
  newTeamId,
  objectRows,
  putPlan,
  runAlarm,
  spend,
} from "../support";

const allocations = (grants: GrantT[]) => grants.filter((g) => g.source === "allocation");

async function putTeam(teamId: string, body: Record<string, unknown>, status = 200) {
  const r = await api<{ planId: string | null; seats: number; currentPeriod: { index: number } | null }>(
    `/v1/teams/${teamId}`,
    { method: "PUT", body },
  );
  expectStatus(r, status);
  return r.body;
}

describe("plans and monthly allocations", () => {
  it("creating a team on a plan grants its starter credits once and opens its first period", async () => {
    const plan = newKeyFor("email-pro");
    await putPlan(plan, { paid: true, starterCredits: 500, monthlyCreditsPerSeat: 1000 });
    const teamId = newTeamId();
    const team = await createTeam(teamId, { planId: plan, seats: 3 });
    expect(team.currentPeriod).toMatchObject({ index: 0 });
    const b = await balance(teamId);
    expect(b.byCategory.free).toBe(3500);
    const starter = b.grants.filter((g) => g.source === "starter");
    expect(starter.map((g) => [g.amount, g.expiresAt])).toEqual([[500, null]]);
    const alloc = allocations(b.grants);
    expect(alloc.map((g) => [g.amount, g.category, g.expiresAt])).toEqual([[3000, "free", team.currentPeriod?.endsAt]]);
    // Putting the team on its plan again changes nothing.
    await putTeam(teamId, { planId: plan });
    expect((await balance(teamId)).byCategory.free).toBe(3500);
    expectProblem(
      await api(`/v1/teams/${newTeamId()}`, { method: "PUT", body: { planId: newKeyFor("ghost") } }),
      400,
      "invalid_request",
    );
    await assertInvariants(teamId);
  });

  it("grants each period's allocation at its start through the alarm, exactly once, with no rollover by default", async () => {
    const plan = newKeyFor("pro");
    await putPlan(plan, { paid: true, monthlyCreditsPerSeat: 1000 });
    const teamId = newTeamId();
    await createTeam(teamId, { planId: plan, seats: 1 });
    expectStatus(await spend(teamId, 400), 201);
    await anchorDaysAgo(teamId, 35);
    await runAlarm(teamId);
    await runAlarm(teamId);
    await abortAllDurableObjects();
    await runAlarm(teamId);
    const b = await balance(teamId);
    expect(b.byCategory.free).toBe(1000);
    const periods = await objectRows<{ idx: number; granted_credits: number }>(
      teamId,
      "SELECT idx, granted_credits FROM periods ORDER BY idx",
    );
    expect(periods).toEqual([
      { idx: 0, granted_credits: 1000 },
      { idx: 1, granted_credits: 1000 },
    ]);
    const entries = await allEntries(teamId);
    expect(entries.filter((e) => e.type === "expire").map((e) => e.amount)).toEqual([600]);
    expect(entries.filter((e) => e.type === "grant").length).toBe(2);
    const events = await api<{ events: { type: string }[] }>(`/v1/teams/${teamId}/events?type=allocation.granted`);
    expect(events.body.events).toHaveLength(2);
    await assertInvariants(teamId);
  });

  it("gives a team that slept through several periods the current period's allocation, not each missed one", async () => {
    const plan = newKeyFor("pro");
    await putPlan(plan, { paid: true, monthlyCreditsPerSeat: 100, rolloverMaxCredits: 1000 });
    const teamId = newTeamId();
    await createTeam(teamId, { planId: plan });
    await anchorDaysAgo(teamId, 100);
    // No alarm: the next request settles the boundary itself.
    const team = await api<{ currentPeriod: { index: number } }>(`/v1/teams/${teamId}`);
    expect(team.body.currentPeriod.index).toBe(3);
    const b = await balance(teamId);
    expect(allocations(b.grants).map((g) => g.amount)).toEqual([100]);
    const periods = await objectRows<{ idx: number }>(teamId, "SELECT idx FROM periods ORDER BY idx");
    expect(periods.map((p) => p.idx)).toEqual([0, 3]);
    await assertInvariants(teamId);
  });

  it("rolls unused free credits over only up to rolloverMaxCredits; the rest expires", async () => {
    const plan = newKeyFor("rollover");
    await putPlan(plan, { paid: true, monthlyCreditsPerSeat: 1000, rolloverMaxCredits: 300 });
    const teamId = newTeamId();
    await createTeam(teamId, { planId: plan });
    expectStatus(await spend(teamId, 200), 201);
    await anchorDaysAgo(teamId, 35);
    await runAlarm(teamId);
    const b = await balance(teamId);
    expect(
      allocations(b.grants)
        .map((g) => [g.amount, g.reference])
        .sort(),
    ).toEqual(
      [
        [1000, "allocation:period:1"],
        [300, "rollover:period:0"],
      ].sort(),
    );
    const expired = (await allEntries(teamId)).filter((e) => e.type === "expire");
    expect(expired.map((e) => e.amount)).toEqual([800]);
    await assertInvariants(teamId);
  });

  it("spends free allocations before purchased credits, and cancelling never touches purchased ones", async () => {
    const plan = newKeyFor("pro");
    await putPlan(plan, { paid: true, monthlyCreditsPerSeat: 100 });
    const teamId = newTeamId();
    await createTeam(teamId);
    await grant(teamId, 500); // purchased first
    await putTeam(teamId, { planId: plan });
    const r = await spend(teamId, 150);
    expectStatus(r, 201);
    expect(r.body.balance.byCategory).toEqual({ free: 0, paid: 450, promotional: 0 });
    await putTeam(teamId, { planId: null });
    const b = await balance(teamId);
    expect(b.byCategory).toEqual({ free: 0, paid: 450, promotional: 0 });
    expect(b.grants.filter((g) => g.source === "purchase").map((g) => g.remaining)).toEqual([450]);
    await assertInvariants(teamId);
  });

  it("added seats get their credits at once; removed seats keep the period's allocation; re-adding adds nothing", async () => {
    const plan = newKeyFor("seats");
    await putPlan(plan, { paid: true, monthlyCreditsPerSeat: 100 });
    const teamId = newTeamId();
    await createTeam(teamId, { planId: plan, seats: 2 });
    await putTeam(teamId, { seats: 5 });
    expect((await balance(teamId)).byCategory.free).toBe(500);
    await putTeam(teamId, { seats: 1 });
    expect((await balance(teamId)).byCategory.free).toBe(500);
    await putTeam(teamId, { seats: 5 });
    expect((await balance(teamId)).byCategory.free).toBe(500);
    await putTeam(teamId, { seats: 6 });
    expect((await balance(teamId)).byCategory.free).toBe(600);
    // Next period: the seats as they are then.
    await putTeam(teamId, { seats: 2 });
    await anchorDaysAgo(teamId, 35);
    await runAlarm(teamId);
    expect(allocations((await balance(teamId)).grants).map((g) => g.amount)).toEqual([200]);
    await assertInvariants(teamId);
  });

  it("a plan change voids the rest of the allocation and grants the new plan's for the rest of the period", async () => {
    const basic = newKeyFor("basic");
    const expert = newKeyFor("expert");
    await putPlan(basic, { paid: true, monthlyCreditsPerSeat: 1000 });
    await putPlan(expert, { paid: true, monthlyCreditsPerSeat: 1500 });
    const teamId = newTeamId();
    const before = await createTeam(teamId, { planId: basic });
    expectStatus(await spend(teamId, 250), 201);
    const after = await putTeam(teamId, { planId: expert });
    expect(after.currentPeriod).toEqual(before.currentPeriod);
    const b = await balance(teamId);
    expect(b.byCategory.free).toBe(1500);
    const voids = (await allEntries(teamId)).filter((e) => e.type === "void");
    expect(voids.map((e) => e.amount)).toEqual([750]);
    await assertInvariants(teamId);
  });
});
