/**
 * POST /v1/teams/{teamId}/checkout-sessions: who may buy (every 403 reason), what a pack or a
 * custom amount gives on the plan, and exactly what reaches Stripe's API (stubbed at the fetch
 * level): a payment session with the team and credits in the metadata of the session and of its
 * payment intent, our Idempotency-Key passed on, and nothing written to the ledger.
 */
import { createExecutionContext, env, waitOnExecutionContext } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import worker from "../../src/index";
import { api, expectProblem, expectStatus, newKey, newTeamId } from "../support/calls";
import { assertInvariants } from "../support/invariants";
import { allEntries, createTeam } from "../support/operations";
import { newKeyFor, putPlan } from "../support/plans";
import { stubStripeApi } from "../support/stripe";

const urls = { successUrl: "https://app.example.com/done", cancelUrl: "https://app.example.com/cancel" };

/** A paid plan selling £25 / £50 / £100 packs at 40 credits a pound, and custom amounts from £5 to £500. */
async function paidPlan(): Promise<string> {
  const id = newKeyFor("space-pro");
  await putPlan(id, {
    paid: true,
    currency: "gbp",
    creditsPerCurrencyUnit: 40,
    packs: [
      { id: "small", priceMinor: 2500 },
      { id: "medium", priceMinor: 5000 },
      { id: "large", priceMinor: 10000 },
    ],
    customAmount: { minMinor: 500, maxMinor: 50000 },
  });
  return id;
}

function sessionAnswer() {
  return stubStripeApi((call) => ({
    body: {
      id: `cs_test_${crypto.randomUUID().slice(0, 12)}`,
      object: "checkout.session",
      url: "https://checkout.stripe.com/c/pay/cs_test_x",
      mode: "payment",
      metadata: Object.fromEntries([...call.form].filter(([k]) => k.startsWith("metadata["))),
    },
  }));
}

describe("checkout sessions", () => {
  it("a pack: the plan's credits, metadata on the session and its payment intent, nothing written", async () => {
    const teamId = newTeamId("checkout");
    await createTeam(teamId, { planId: await paidPlan() });
    const before = await allEntries(teamId);
    const calls = sessionAnswer();
    const key = newKey();
    const res = await api(`/v1/teams/${teamId}/checkout-sessions`, {
      body: { packId: "small", ...urls },
      headers: { "idempotency-key": key, "x-actor-id": "user-1", "x-actor-role": "owner" },
    });
    expectStatus(res, 201);
    expect(res.body).toMatchObject({ credits: 1000, priceMinor: 2500, currency: "gbp", packId: "small" });
    expect(res.body.url).toMatch(/^https:\/\/checkout\.stripe\.com\//);
    expect(calls).toHaveLength(1);
    const [call] = calls;
    expect(call?.method).toBe("POST");
    expect(call?.path).toBe("/v1/checkout/sessions");
    expect(call?.idempotencyKey).toBe(`checkout:${teamId}:${key}`);
    const form = Object.fromEntries(call?.form ?? []);
    expect(form).toMatchObject({
      mode: "payment",
      client_reference_id: teamId,
      success_url: urls.successUrl,
      cancel_url: urls.cancelUrl,
      "line_items[0][quantity]": "1",
      "line_items[0][price_data][currency]": "gbp",
      "line_items[0][price_data][unit_amount]": "2500",
      "metadata[teamId]": teamId,
      "metadata[credits]": "1000",
      "metadata[packId]": "small",
      "payment_intent_data[metadata][teamId]": teamId,
      "payment_intent_data[metadata][credits]": "1000",
      "payment_intent_data[metadata][packId]": "small",
    });
    // Nothing is credited until Stripe says the money is in.
    expect(await allEntries(teamId)).toEqual(before);
    await assertInvariants(teamId);
  });

  it("a custom amount within the plan's bounds; outside them, or neither or both, is a 400", async () => {
    const teamId = newTeamId("checkout");
    await createTeam(teamId, { planId: await paidPlan() });
    const calls = sessionAnswer();
    const ok = await api(`/v1/teams/${teamId}/checkout-sessions`, { body: { amountMinor: 1234, ...urls } });
    expectStatus(ok, 201);
    // 1234 pence × 40 credits a pound / 100 = 493.6, rounded down: a pack never gives more than paid for.
    expect(ok.body).toMatchObject({ credits: 493, priceMinor: 1234, packId: null });
    for (const body of [
      { amountMinor: 499, ...urls },
      { amountMinor: 50001, ...urls },
      { packId: "huge", ...urls },
      { ...urls },
      { packId: "small", amountMinor: 2500, ...urls },
      { packId: "small", successUrl: "javascript:alert(1)", cancelUrl: urls.cancelUrl },
      { packId: "small", successUrl: urls.successUrl },
    ])
      expectProblem(await api(`/v1/teams/${teamId}/checkout-sessions`, { body }), 400, "invalid_request");
    expect(calls).toHaveLength(1);
  });

  it("every 403: a role that may not buy, a subaccount, no plan, a free plan; the reason is in the body", async () => {
    const paid = await paidPlan();
    const free = newKeyFor("free");
    await putPlan(free, { paid: false, starterCredits: 100 });
    const calls = sessionAnswer();
    const agency = newTeamId("agency");
    await createTeam(agency, { kind: "agency" });
    const cases: [string, Record<string, unknown>, Record<string, string>, string][] = [
      ["author", { planId: paid }, { "x-actor-id": "a", "x-actor-role": "author" }, "role"],
      ["viewer", { planId: paid }, { "x-actor-id": "v", "x-actor-role": "viewer" }, "role"],
      ["accountant", { planId: paid }, { "x-actor-id": "c", "x-actor-role": "accountant" }, "role"],
      ["manager", { planId: paid }, { "x-actor-id": "m", "x-actor-role": "manager" }, "role"],
      [
        "subaccount",
        { planId: paid, kind: "subaccount", parentTeamId: agency },
        { "x-actor-id": "o", "x-actor-role": "owner" },
        "subaccount",
      ],
      ["no plan", {}, {}, "no_plan"],
      ["free plan", { planId: free }, { "x-actor-id": "o", "x-actor-role": "admin" }, "free_plan"],
    ];
    for (const [what, team, headers, reason] of cases) {
      const teamId = newTeamId("no-buy");
      await createTeam(teamId, team);
      const res = await api(`/v1/teams/${teamId}/checkout-sessions`, { body: { packId: "small", ...urls }, headers });
      const problem = expectProblem(res, 403, "forbidden");
      expect(problem.reason, what).toBe(reason);
    }
    expect(calls).toEqual([]);
  });

  it("a role outside the matrix, or one actor header without the other, is a 400", async () => {
    const teamId = newTeamId("checkout");
    await createTeam(teamId, { planId: await paidPlan() });
    const halfOrUnknown: Record<string, string>[] = [
      { "x-actor-id": "u", "x-actor-role": "superuser" },
      { "x-actor-role": "owner" },
    ];
    for (const headers of halfOrUnknown)
      expectProblem(
        await api(`/v1/teams/${teamId}/checkout-sessions`, { body: { packId: "small", ...urls }, headers }),
        400,
        "invalid_request",
      );
  });

  it("Stripe's idempotency error (the key reused with another body) is a 422; a missing team a 404", async () => {
    const teamId = newTeamId("checkout");
    await createTeam(teamId, { planId: await paidPlan() });
    stubStripeApi(() => ({
      status: 400,
      body: {
        error: {
          type: "idempotency_error",
          message: "Keys for idempotent requests can only be used with the same parameters",
        },
      },
    }));
    expectProblem(
      await api(`/v1/teams/${teamId}/checkout-sessions`, {
        body: { packId: "small", ...urls },
        idempotencyKey: newKey(),
      }),
      422,
      "idempotency_key_reused",
    );
    expectProblem(
      await api(`/v1/teams/${newTeamId("nobody")}/checkout-sessions`, { body: { packId: "small", ...urls } }),
      404,
      "not_found",
    );
  });

  it("without STRIPE_SECRET_KEY: 503 stripe_not_configured, and Stripe is never called", async () => {
    const teamId = newTeamId("checkout");
    await createTeam(teamId, { planId: await paidPlan() });
    const calls = sessionAnswer();
    const request = new Request(`https://ledger.test/v1/teams/${teamId}/checkout-sessions`, {
      method: "POST",
      headers: { authorization: `Bearer ${env.ADMIN_API_KEY}`, "content-type": "application/json" },
      body: JSON.stringify({ packId: "small", ...urls }),
    });
    const ctx = createExecutionContext();
    const res = await worker.fetch(request, { ...env, STRIPE_SECRET_KEY: undefined }, ctx);
    await waitOnExecutionContext(ctx);
    expect(res.status).toBe(503);
    expect(((await res.json()) as { code: string }).code).toBe("stripe_not_configured");
    expect(calls).toEqual([]);
  });
});
