/**
 * The price book through the worker: defining features, priced spends and holds (tiers, metered
 * quantities, per-unit rounding, charge on success, plan prices), what entries record, and the
 * staleness bound of the worker's copy of the catalog.
 */

import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { catalogStub } from "../../src/client/catalog-copy";
import { CATALOG_MAX_STALENESS_MS } from "../../src/limits";
import {
  allEntries,
  api,
  assertInvariants,
  createTeam,
  expectProblem,
  expectStatus,
  grant,
  type HoldReplyT,
  holdAction,
  newKey,
  newKeyFor,
  newTeamId,
  putFeature,
  putPlan,
  savedRefusals,
  spend,
} from "../support";

describe("the price book", () => {
  it("defines, reads and lists features; a change bumps the version", async () => {
    const key = newKeyFor("email-finder");
    const created = await api(`/v1/features/${key}`, {
      method: "PUT",
      body: { name: "Email finder", unit: "lead", creditsPerUnit: 5, chargeOnSuccess: true },
    });
    expectStatus(created, 201);
    expect(created.body).toMatchObject({
      key,
      unit: "lead",
      creditsPerUnit: 5,
      chargeOnSuccess: true,
      unitRounding: "ceil",
      tiers: null,
    });
    const updated = await api(`/v1/features/${key}`, {
      method: "PUT",
      body: { name: "Email finder", unit: "lead", creditsPerUnit: 6 },
    });
    expectStatus(updated, 200);
    expect(Number(updated.body.version)).toBeGreaterThan(Number(created.body.version));
    expect(updated.body.createdAt).toBe(created.body.createdAt);
    const one = await api(`/v1/features/${key}`);
    expect(one.body).toEqual(updated.body);
    const list = await api<{ version: number; features: { key: string }[] }>("/v1/features");
    expect(list.body.features.map((f) => f.key)).toContain(key);
    expect(list.body.version).toBeGreaterThanOrEqual(Number(updated.body.version));
    expectProblem(await api(`/v1/features/${newKeyFor("nope")}`), 404, "not_found");
  });

  it.each([
    ["a fractional price", { name: "x", unit: "lead", creditsPerUnit: 1.5 }],
    ["a zero price", { name: "x", unit: "lead", creditsPerUnit: 0 }],
    ["an unknown unit", { name: "x", unit: "parsec", creditsPerUnit: 1 }],
    ["an unknown tier", { name: "x", unit: "request", creditsPerUnit: 1, tiers: { ultra: 3 } }],
    ["an unknown rounding", { name: "x", unit: "minute", creditsPerUnit: 1, unitRounding: "floor" }],
    ["an unknown field", { name: "x", unit: "lead", creditsPerUnit: 1, currency: "usd" }],
  ])("refuses %s with 400", async (_what, body) => {
    const key = newKeyFor("bad");
    expectProblem(await api(`/v1/features/${key}`, { method: "PUT", body }), 400, "invalid_request");
    expectProblem(await api(`/v1/features/${key}`), 404, "not_found");
  });
});

describe("priced spends", () => {
  it("charge price × quantity, record the unit price and version, and history explains each amount after a price change", async () => {
    const teamId = newTeamId();
    const key = newKeyFor("phone-finder");
    const v1 = await putFeature(key, { name: "Phone finder", unit: "lead", creditsPerUnit: 20 });
    await createTeam(teamId);
    await grant(teamId, 1000);
    const first = await spend(teamId, 0, newKey(), { feature: key, quantity: 3, amount: undefined });
    expectStatus(first, 201);
    expect(first.body.spend).toMatchObject({ amount: 60, quantity: 3, unitCredits: 20, priceVersion: v1.version });
    const v2 = await putFeature(key, { name: "Phone finder", unit: "lead", creditsPerUnit: 25 });
    const second = await spend(teamId, 0, newKey(), { feature: key, quantity: 2, amount: undefined });
    expect(second.body.spend).toMatchObject({ amount: 50, unitCredits: 25, priceVersion: v2.version });
    const spends = (await allEntries(teamId)).filter((e) => e.type === "spend");
    for (const e of spends) expect(e.amount).toBe((e.unitCredits ?? 0) * (e.quantity ?? 0));
    expect(spends.map((e) => e.priceVersion).sort()).toEqual([v1.version, v2.version].sort());
    await assertInvariants(teamId);
  });

  it("price tiers, metered minutes rounded up, and per-unit rounding", async () => {
    const teamId = newTeamId();
    const ai = newKeyFor("ai-reply");
    const calling = newKeyFor("calling");
    const live = newKeyFor("livestream");
    await putFeature(ai, {
      name: "AI reply",
      unit: "request",
      creditsPerUnit: 2,
      tiers: { fast: 1, balanced: 2, premium: 5 },
    });
    await putFeature(calling, { name: "Calling", unit: "minute", creditsPerUnit: 4 });
    await putFeature(live, { name: "Livestream", unit: "minute", creditsPerUnit: 3, unitRounding: "per_unit" });
    await createTeam(teamId);
    await grant(teamId, 1000);
    const priced = async (body: Record<string, unknown>) => {
      const r = await api<{ spend: { amount: number } }>(`/v1/teams/${teamId}/spends`, {
        body,
        idempotencyKey: newKey(),
      });
      expectStatus(r, 201);
      return r.body.spend.amount;
    };
    expect(await priced({ feature: ai, tier: "premium", quantity: 2 })).toBe(10);
    expect(await priced({ feature: ai })).toBe(2);
    expect(await priced({ feature: calling, quantity: 2.25 })).toBe(9);
    expect(await priced({ feature: live, quantity: 2.25 })).toBe(9);
    const entries = await allEntries(teamId);
    expect(entries.find((e) => e.feature === calling)?.quantity).toBe(2.25);
    expect(entries.find((e) => e.feature === ai && e.tier === "premium")?.unitCredits).toBe(5);
    await assertInvariants(teamId);
  });

  it("refuse an unknown feature, an unknown tier or a fractional count with 400, saving nothing", async () => {
    const teamId = newTeamId();
    const lead = newKeyFor("lead");
    await putFeature(lead, { name: "Lead", unit: "lead", creditsPerUnit: 5 });
    await createTeam(teamId);
    await grant(teamId, 100);
    const key = newKey();
    const unknown = newKeyFor("unknown");
    expectProblem(
      await api(`/v1/teams/${teamId}/spends`, { body: { feature: unknown }, idempotencyKey: key }),
      400,
      "invalid_request",
    );
    expectProblem(
      await api(`/v1/teams/${teamId}/spends`, { body: { feature: lead, tier: "fast" }, idempotencyKey: newKey() }),
      400,
      "invalid_request",
    );
    expectProblem(
      await api(`/v1/teams/${teamId}/spends`, { body: { feature: lead, quantity: 1.5 }, idempotencyKey: newKey() }),
      400,
      "invalid_request",
    );
    expectProblem(
      await api(`/v1/teams/${teamId}/spends/batch`, {
        body: { mode: "all_or_nothing", items: [{ feature: lead }, { feature: unknown }] },
        idempotencyKey: newKey(),
      }),
      400,
      "invalid_request",
    );
    // Feature names that are Object.prototype members are names like any other (found by the fuzz test).
    for (const feature of ["constructor", "toString", "__proto__"]) {
      const labelled = await api(`/v1/teams/${teamId}/spends/batch`, {
        body: { mode: "all_or_nothing", items: [{ feature, amount: 1 }] },
        idempotencyKey: newKey(),
      });
      expectStatus(labelled, 200);
      expectProblem(
        await api(`/v1/teams/${teamId}/spends`, { body: { feature }, idempotencyKey: newKey() }),
        400,
        "invalid_request",
      );
    }
    expect((await savedRefusals(teamId)).size).toBe(0);
    // Nothing was saved under the key: once the feature exists, the same key spends.
    await putFeature(unknown, { name: "Now known", unit: "request", creditsPerUnit: 7 });
    const retried = await api<{ spend: { amount: number } }>(`/v1/teams/${teamId}/spends`, {
      body: { feature: unknown },
      idempotencyKey: key,
    });
    expectStatus(retried, 201);
    expect(retried.body.spend.amount).toBe(7);
    await assertInvariants(teamId);
  });

  it("charge a charge-on-success feature only through a hold and its capture, which record the price", async () => {
    const teamId = newTeamId();
    const verified = newKeyFor("verified-email");
    await putFeature(verified, { name: "Verified email", unit: "lead", creditsPerUnit: 5, chargeOnSuccess: true });
    await createTeam(teamId);
    await grant(teamId, 100);
    const refused = expectProblem(await spend(teamId, 5, newKey(), { feature: verified }), 400, "invalid_request");
    expect(refused.detail).toContain("hold");
    const held = await api<HoldReplyT>(`/v1/teams/${teamId}/holds`, {
      body: { feature: verified, quantity: 4, ttlSeconds: 60 },
      idempotencyKey: newKey(),
    });
    expectStatus(held, 201);
    const hold = held.body;
    expect(hold.hold).toMatchObject({ amount: 20, unitCredits: 5 });
    expectStatus(await holdAction(teamId, hold.hold.id, "capture", { amount: 10 }), 200);
    const captures = (await allEntries(teamId)).filter((e) => e.type === "capture");
    expect(captures.map((e) => [e.feature, e.unitCredits, e.amount])).toEqual([[verified, 5, 10]]);
    await assertInvariants(teamId);
  });

  it("charge the team's plan's price: a feature costs less on a higher plan", async () => {
    const enrich = newKeyFor("enrich");
    await putFeature(enrich, { name: "Enrich", unit: "record", creditsPerUnit: 10, tiers: { premium: 20 } });
    const pro = newKeyFor("pro");
    await putPlan(pro, { paid: true, featurePrices: { [enrich]: { creditsPerUnit: 6, tiers: { premium: 12 } } } });
    const onPro = newTeamId();
    const onNone = newTeamId();
    await createTeam(onPro, { planId: pro });
    await createTeam(onNone);
    for (const t of [onPro, onNone]) await grant(t, 1000);
    const cost = async (teamId: string, tier?: string) => {
      const r = await api<{ spend: { amount: number } }>(`/v1/teams/${teamId}/spends`, {
        body: { feature: enrich, quantity: 5, tier },
        idempotencyKey: newKey(),
      });
      expectStatus(r, 201);
      return r.body.spend.amount;
    };
    expect(await cost(onPro)).toBe(30);
    expect(await cost(onNone)).toBe(50);
    expect(await cost(onPro, "premium")).toBe(60);
    expect(await cost(onNone, "premium")).toBe(100);
    // A plan cannot price a feature or tier that does not exist.
    expectProblem(
      await api(`/v1/plans/${newKeyFor("bad")}`, {
        method: "PUT",
        body: {
          name: "x",
          paid: true,
          currency: "usd",
          creditsPerCurrencyUnit: 1,
          featurePrices: { [newKeyFor("ghost")]: 1 },
        },
      }),
      400,
      "invalid_request",
    );
    await assertInvariants(onPro);
  });

  it(`sees a price changed elsewhere within the staleness bound (${CATALOG_MAX_STALENESS_MS} ms)`, async () => {
    const teamId = newTeamId();
    const key = newKeyFor("render");
    await putFeature(key, { name: "Render", unit: "request", creditsPerUnit: 3 });
    await createTeam(teamId);
    await grant(teamId, 1000);
    const cost = async () => {
      const r = await api<{ spend: { amount: number } }>(`/v1/teams/${teamId}/spends`, {
        body: { feature: key },
        idempotencyKey: newKey(),
      });
      expectStatus(r, 201);
      return r.body.spend.amount;
    };
    expect(await cost()).toBe(3);
    // Another isolate's PUT: straight to the catalog object, so this isolate's copy is not dropped.
    const changed = await catalogStub(env).putFeature(key, { name: "Render", unit: "request", creditsPerUnit: 4 });
    expect(changed.ok).toBe(true);
    const changedAt = Date.now();
    // Within the bound either price may be charged; past it, only the new one.
    await new Promise((r) => setTimeout(r, CATALOG_MAX_STALENESS_MS + 50));
    expect(Date.now() - changedAt).toBeGreaterThan(CATALOG_MAX_STALENESS_MS);
    expect(await cost()).toBe(4);
    await assertInvariants(teamId);
  });
});
