import { describe, expect, it } from "vitest";
import {
  api,
  assertInvariants,
  type BalanceT,
  balance,
  createTeam,
  daysFromNow,
  expectNoTeam,
  expectProblem,
  expectStatus,
  grant,
  newKey,
  newKeyFor,
  newTeamId,
  putPlan,
  type TeamT,
  unknownId,
} from "../support";

describe("PUT /v1/teams/{teamId}", () => {
  it("creates a team (201) with defaults, then updates it (200) merging settings", async () => {
    const teamId = newTeamId();
    const created = await api<TeamT>(`/v1/teams/${teamId}`, {
      method: "PUT",
      body: { name: "Acme", seats: 3, settings: { lowBalanceThreshold: 25 } },
    });
    expectStatus(created, 201);
    expect(created.headers.get("content-type")).toContain("application/json");
    expect(created.body).toMatchObject({
      id: teamId,
      name: "Acme",
      planId: null,
      seats: 3,
      kind: "team",
      parentTeamId: null,
      settings: { shareCreditsWithSubaccounts: false, creditPaymentsEnabled: true, lowBalanceThreshold: 25 },
    });
    expect(Number.isNaN(Date.parse(created.body.createdAt))).toBe(false);

    const updated = await api<TeamT>(`/v1/teams/${teamId}`, {
      method: "PUT",
      body: { seats: 5, kind: "agency", settings: { creditPaymentsEnabled: false } },
    });
    expectStatus(updated, 200);
    expect(updated.body).toMatchObject({
      id: teamId,
      name: "Acme",
      seats: 5,
      kind: "agency",
      settings: { shareCreditsWithSubaccounts: false, creditPaymentsEnabled: false, lowBalanceThreshold: 25 },
    });
    expect(updated.body.createdAt).toBe(created.body.createdAt);
    expect(Date.parse(updated.body.updatedAt)).toBeGreaterThanOrEqual(Date.parse(created.body.createdAt));

    const again = await api<TeamT>(`/v1/teams/${teamId}`, {
      method: "PUT",
      body: { settings: { shareCreditsWithSubaccounts: true } },
    });
    expectStatus(again, 200);
    expect(again.body.settings).toEqual({
      shareCreditsWithSubaccounts: true,
      creditPaymentsEnabled: false,
      lowBalanceThreshold: 25,
      autoRecharge: null,
      roleMatrix: null,
      capCreditsPerPeriod: null,
    });
    expect(again.body.seats).toBe(5);

    const read = await api<TeamT>(`/v1/teams/${teamId}`);
    expectStatus(read, 200);
    expect(read.body).toEqual(again.body);
    await assertInvariants(teamId);
  });

  it("creates a team with an empty body and stores planId, kind and parentTeamId", async () => {
    const parent = newTeamId("agency");
    await createTeam(parent, { kind: "agency" });
    const teamId = newTeamId("sub");
    const pro = newKeyFor("pro");
    await putPlan(pro, { paid: true });
    const team = await createTeam(teamId, { kind: "subaccount", parentTeamId: parent, planId: pro });
    expect(team).toMatchObject({ kind: "subaccount", parentTeamId: parent, planId: pro, seats: 1 });

    const bare = newTeamId();
    const res = await api<TeamT>(`/v1/teams/${bare}`, { method: "PUT", body: {} });
    expectStatus(res, 201);
    expect(res.body).toMatchObject({ id: bare, name: null, seats: 1, kind: "team" });
    await assertInvariants(teamId);
    await assertInvariants(parent);
    await assertInvariants(bare);
  });

  it("accepts a 128-character team id and refuses malformed ones with 400", async () => {
    const long = newTeamId().padEnd(128, "x");
    expect(long).toHaveLength(128);
    const ok = await api<TeamT>(`/v1/teams/${long}`, { method: "PUT", body: {} });
    expectStatus(ok, 201);
    expect(ok.body.id).toBe(long);
    await assertInvariants(long);

    const bad = ["bad id!", "x".repeat(129), "é", "a/b", "a%b", "a b"];
    for (const id of bad) {
      const path = `/v1/teams/${encodeURIComponent(id)}`;
      expectProblem(await api(path, { method: "PUT", body: {} }), 400, "invalid_request");
      expectProblem(await api(path), 400, "invalid_request");
      expectProblem(await api(`${path}/balance`), 400, "invalid_request");
      expectProblem(await api(`${path}/entries`), 400, "invalid_request");
      expectProblem(
        await api(`${path}/spends`, { body: { feature: "f", amount: 1 }, idempotencyKey: newKey() }),
        400,
        "invalid_request",
      );
      expectProblem(
        await api(`${path}/grants`, {
          body: { amount: 1, category: "paid", source: "purchase" },
          idempotencyKey: newKey(),
        }),
        400,
        "invalid_request",
      );
    }
  });

  it("refuses unknown and invalid body fields with 400 and writes nothing", async () => {
    const teamId = newTeamId();
    const bodies: Record<string, unknown>[] = [
      { nmae: "typo" },
      { settings: { lowBalanceTreshold: 5 } },
      { seats: 0 },
      { seats: 1.5 },
      { seats: 100_001 },
      { kind: "company" },
      { name: "" },
      { name: "x".repeat(201) },
      { parentTeamId: "bad id!" },
      { settings: { lowBalanceThreshold: -1 } },
      { settings: { creditPaymentsEnabled: "yes" } },
      { settings: null },
    ];
    for (const body of bodies) {
      const res = await api(`/v1/teams/${teamId}`, { method: "PUT", body });
      const problem = expectProblem(res, 400, "invalid_request");
      expect(problem.detail, JSON.stringify(body)).not.toBe("");
    }
    for (const raw of ["[]", "null", '"team"', "42"]) {
      expectProblem(await api(`/v1/teams/${teamId}`, { method: "PUT", rawBody: raw }), 400, "invalid_request");
    }
    await expectNoTeam(teamId);

    // And on an existing team, a refused update changes nothing.
    await createTeam(teamId, { name: "Before", settings: { lowBalanceThreshold: 7 } });
    const before = await api<TeamT>(`/v1/teams/${teamId}`);
    for (const body of bodies) {
      expectProblem(await api(`/v1/teams/${teamId}`, { method: "PUT", body }), 400, "invalid_request");
    }
    const after = await api<TeamT>(`/v1/teams/${teamId}`);
    expect(after.body).toEqual(before.body);
    await assertInvariants(teamId);
  });

  it("names the offending field in a validation problem", async () => {
    const teamId = newTeamId();
    const res = await api(`/v1/teams/${teamId}`, { method: "PUT", body: { seats: "three" } });
    const problem = expectProblem(res, 400, "invalid_request");
    expect(problem.detail).toContain("seats");
    expect(Array.isArray(problem.issues)).toBe(true);
    await expectNoTeam(teamId);
  });
});

describe("unknown teams", () => {
  it("GET team, balance, entries and hold → 404 not_found; mutations → 404 and nothing is created", async () => {
    const teamId = newTeamId("ghost");
    const reads = [
      `/v1/teams/${teamId}`,
      `/v1/teams/${teamId}/balance`,
      `/v1/teams/${teamId}/entries`,
      `/v1/teams/${teamId}/holds/${unknownId("hld")}`,
      `/v1/teams/${teamId}/entries.csv`,
      `/v1/teams/${teamId}/entries/verify`,
      `/v1/teams/${teamId}/usage?groupBy=feature`,
      `/v1/teams/${teamId}/replication`,
    ];
    for (const path of reads) {
      const problem = expectProblem(await api(path), 404, "not_found");
      expect(problem.detail).toContain(teamId);
    }
    const writes: [string, Record<string, unknown> | undefined][] = [
      [`/v1/teams/${teamId}/spends`, { feature: "f", amount: 1 }],
      [`/v1/teams/${teamId}/spends/batch`, { mode: "all_or_nothing", items: [{ feature: "f", amount: 1 }] }],
      [`/v1/teams/${teamId}/holds`, { amount: 1, ttlSeconds: 60 }],
      [`/v1/teams/${teamId}/holds/${unknownId("hld")}/capture`, {}],
      [`/v1/teams/${teamId}/holds/${unknownId("hld")}/release`, {}],
      [`/v1/teams/${teamId}/holds/${unknownId("hld")}/extend`, { ttlSeconds: 60 }],
      [`/v1/teams/${teamId}/grants`, { amount: 5, category: "free", source: "manual" }],
      [`/v1/teams/${teamId}/grants/${unknownId("grt")}/void`, undefined],
    ];
    for (const [path, body] of writes) {
      const res = await api(path, { method: "POST", body, idempotencyKey: newKey() });
      expectProblem(res, 404, "not_found");
    }
    await expectNoTeam(teamId);
  });
});

describe("GET /v1/teams/{teamId}/balance", () => {
  it("reports available, held, total, byCategory, live grants and lowBalance", async () => {
    const teamId = newTeamId();
    await createTeam(teamId, { settings: { lowBalanceThreshold: 50 } });
    const empty = await balance(teamId);
    expect(empty).toEqual({
      teamId,
      poolTeamId: teamId,
      available: 0,
      held: 0,
      total: 0,
      byCategory: { free: 0, paid: 0, promotional: 0 },
      byFeature: {},
      lowBalance: true,
      grants: [],
    });

    const free = await grant(teamId, 10, { category: "free", source: "allocation", expiresAt: daysFromNow(5) });
    const promo = await grant(teamId, 20, { category: "promotional", source: "referral" });
    const paid = await grant(teamId, 30, { category: "paid", source: "purchase", priority: 3 });
    const hold = await api(`/v1/teams/${teamId}/holds`, {
      body: { amount: 15, ttlSeconds: 600 },
      idempotencyKey: newKey(),
    });
    expectStatus(hold, 201);

    const res = await api<BalanceT>(`/v1/teams/${teamId}/balance`);
    expectStatus(res, 200);
    const bal = res.body;
    expect(bal).toMatchObject({
      available: 45,
      held: 15,
      total: 60,
      byCategory: { free: 0, promotional: 15, paid: 30 },
      lowBalance: true,
    });
    expect(bal.grants.map((g) => g.id)).toEqual([free.grant.id, promo.grant.id, paid.grant.id]);
    expect(bal.grants[0]).toMatchObject({ remaining: 10, held: 10, status: "active" });
    expect(bal.grants[1]).toMatchObject({ remaining: 20, held: 5, status: "active" });
    expect(bal.grants[2]).toMatchObject({ remaining: 30, held: 0, priority: 3 });

    await grant(teamId, 10);
    expect((await balance(teamId)).lowBalance).toBe(false);
    await assertInvariants(teamId);
  });
});
