/**
 * Auto-recharge: turned on only with a paid plan, a buying role and a saved card; one off-session
 * payment started from the alarm (never inside the spend that crossed the threshold), never two
 * at once, at most maxPerMonth a month, never once turned off; its credits arrive with
 * payment_intent.succeeded exactly once; three failures in a row turn it off and say so. Stripe's
 * API is stubbed at the fetch level; its webhooks are signed Stripe example objects.
 */

import { runInDurableObject } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import type { TeamLedger } from "../../src/object/team-ledger";
import { api, expectProblem, expectStatus, newKey, newTeamId } from "../support/calls";
import { assertInvariants } from "../support/invariants";
import { ledgerStub, objectRows, runAlarm } from "../support/object";
import { balance, createTeam, grant, spend } from "../support/operations";
import { newKeyFor, putPlan } from "../support/plans";
import { deliver, type StripeCall, stripeId, stripeIdle, stripeObject, stubStripeApi } from "../support/stripe";

/**
 * Runs the team's alarm, then waits for any call to Stripe to be answered: the alarm is due at
 * once after a spend crosses the threshold, so it may also have fired on its own.
 */
async function alarmRun(teamId: string): Promise<void> {
  await runAlarm(teamId);
  await stripeIdle();
}

async function paidPlan(): Promise<string> {
  const id = newKeyFor("recharge-plan");
  await putPlan(id, {
    paid: true,
    currency: "gbp",
    creditsPerCurrencyUnit: 40,
    packs: [{ id: "small", priceMinor: 2500 }],
  });
  return id;
}

/** Stripe's payment_intent.succeeded of a Checkout payment whose card was saved for later. */
async function saveCard(teamId: string): Promise<{ customerId: string; paymentMethodId: string }> {
  const customerId = stripeId("cus");
  const paymentMethodId = stripeId("pm");
  await deliver(
    "payment_intent.succeeded",
    stripeObject("payment_intent", {
      id: stripeId("pi"),
      status: "succeeded",
      customer: customerId,
      payment_method: paymentMethodId,
      setup_future_usage: "off_session",
      metadata: { teamId, credits: "1000" },
    }),
  );
  return { customerId, paymentMethodId };
}

const settings = (maxPerMonth = 2) => ({ thresholdCredits: 500, packId: "small", maxPerMonth });

/** A team on a paid plan with 1000 purchased credits, its card saved and auto-recharge on. */
async function rechargingTeam(maxPerMonth = 2) {
  const teamId = newTeamId("recharge");
  await createTeam(teamId, { planId: await paidPlan() });
  await grant(teamId, 1000, { category: "paid", source: "purchase" });
  const card = await saveCard(teamId);
  const on = await api(`/v1/teams/${teamId}`, {
    method: "PUT",
    body: { settings: { autoRecharge: settings(maxPerMonth) } },
  });
  expectStatus(on, 200);
  return { teamId, ...card };
}

type Answer = (call: StripeCall) => { status?: number; body: Record<string, unknown> };

/** Stripe creating the intent: succeeded by default, echoing what it was asked. */
const intentAnswer =
  (status = "succeeded"): Answer =>
  (call) => ({
    body: {
      ...stripeObject("payment_intent"),
      id: stripeId("pi"),
      status,
      amount: Number(call.form.get("amount")),
      currency: call.form.get("currency"),
      metadata: Object.fromEntries(
        [...call.form].filter(([k]) => k.startsWith("metadata[")).map(([k, v]) => [k.slice(9, -1), v]),
      ),
    },
  });

const declined: Answer = () => ({
  status: 402,
  body: {
    error: {
      type: "card_error",
      code: "card_declined",
      decline_code: "insufficient_funds",
      message: "Your card was declined.",
    },
  },
});

/** Stripe's webhook for an intent the object created: succeeded (or failed). */
async function intentWebhook(teamId: string, call: StripeCall, type = "payment_intent.succeeded", id = stripeId("pi")) {
  const metadata = Object.fromEntries(
    [...call.form].filter(([k]) => k.startsWith("metadata[")).map(([k, v]) => [k.slice(9, -1), v]),
  );
  expect(metadata.teamId).toBe(teamId);
  return deliver(
    type,
    stripeObject("payment_intent", {
      id,
      status: type === "payment_intent.succeeded" ? "succeeded" : "requires_payment_method",
      amount: Number(call.form.get("amount")),
      amount_received: type === "payment_intent.succeeded" ? Number(call.form.get("amount")) : 0,
      currency: "gbp",
      metadata,
    }),
  );
}

const recharges = (teamId: string) =>
  objectRows<{ id: string; status: string; error: string | null }>(
    teamId,
    "SELECT id, status, error FROM recharges ORDER BY created_at_ms",
  );

async function failedEvents(teamId: string) {
  const res = await api<{ events: { data: Record<string, unknown> }[] }>(
    `/v1/teams/${teamId}/events?type=auto_recharge.failed`,
  );
  return res.body.events.map((e) => e.data).reverse();
}

describe("turning auto-recharge on", () => {
  it("needs a saved card (409), a paid plan, a buying role, never a subaccount (403), and one of the plan's packs (400)", async () => {
    const plan = await paidPlan();
    const noCard = newTeamId("no-card");
    await createTeam(noCard, { planId: plan });
    const put = (teamId: string, body: Record<string, unknown>, headers?: Record<string, string>) =>
      api(`/v1/teams/${teamId}`, { method: "PUT", body: { settings: { autoRecharge: body } }, headers });
    expect(expectProblem(await put(noCard, settings()), 409, "conflict").reason).toBe("no_payment_method");
    expectProblem(await put(noCard, { ...settings(), packId: "huge" }), 400, "invalid_request");
    expectProblem(await put(noCard, { ...settings(), maxPerMonth: 0 }), 400, "invalid_request");
    const author = await put(noCard, settings(), { "x-actor-id": "a", "x-actor-role": "author" });
    expect(expectProblem(author, 403, "forbidden").reason).toBe("role");
    const free = newTeamId("free");
    await createTeam(free);
    expect(expectProblem(await put(free, settings()), 403, "forbidden").reason).toBe("no_plan");
    const sub = newTeamId("sub");
    const parent = newTeamId("agency");
    await createTeam(parent, { kind: "agency" });
    await createTeam(sub, { planId: plan, kind: "subaccount", parentTeamId: parent });
    expect(expectProblem(await put(sub, settings()), 403, "forbidden").reason).toBe("subaccount");

    await saveCard(noCard);
    const on = await put(noCard, settings());
    expectStatus(on, 200);
    expect((on.body.settings as Record<string, unknown>).autoRecharge).toEqual({
      ...settings(),
      credits: 1000,
      priceMinor: 2500,
      currency: "gbp",
      enabled: true,
      disabledReason: null,
      consecutiveFailures: 0,
    });
  });
});

describe("recharging", () => {
  it("one payment from the alarm, none from the spend; none while one is in flight; credited once by the webhook", async () => {
    const { teamId, customerId, paymentMethodId } = await rechargingTeam();
    // Stripe answers nothing until the gate opens: a spend that waited on it would never return.
    let open = () => {};
    const gate = new Promise<void>((resolve) => {
      open = resolve;
    });
    let answered = 0;
    const calls = stubStripeApi(async (c) => {
      await gate;
      answered += 1;
      return intentAnswer()(c);
    });
    expectStatus(await spend(teamId, 600), 201);
    // The spend that crossed the threshold did not wait on Stripe.
    expect(answered).toBe(0);
    expect((await recharges(teamId)).map((r) => r.status)).toEqual(["pending"]);
    expectStatus(await spend(teamId, 50), 201);
    open();
    await alarmRun(teamId);
    expect(calls).toHaveLength(1);
    const [call] = calls;
    expect(call?.path).toBe("/v1/payment_intents");
    const [row] = await recharges(teamId);
    expect(call?.idempotencyKey).toBe(`recharge:${teamId}:${row?.id}`);
    expect(Object.fromEntries(call?.form ?? [])).toMatchObject({
      amount: "2500",
      currency: "gbp",
      customer: customerId,
      payment_method: paymentMethodId,
      off_session: "true",
      confirm: "true",
      "metadata[teamId]": teamId,
      "metadata[credits]": "1000",
      "metadata[kind]": "auto_recharge",
      "metadata[rechargeId]": row?.id,
    });
    // In flight: more spends below the threshold, more alarms, no second payment.
    expectStatus(await spend(teamId, 50), 201);
    await alarmRun(teamId);
    expect(calls).toHaveLength(1);
    expect((await recharges(teamId)).map((r) => r.status)).toEqual(["started"]);

    const pi = stripeId("pi");
    if (!call) throw new Error("no call");
    await Promise.all([intentWebhook(teamId, call, undefined, pi), intentWebhook(teamId, call, undefined, pi)]);
    await intentWebhook(teamId, call, undefined, pi);
    expect((await balance(teamId)).available).toBe(1000 - 700 + 1000);
    expect((await recharges(teamId)).map((r) => r.status)).toEqual(["succeeded"]);
    await assertInvariants(teamId);
  });

  it("at most maxPerMonth a month", async () => {
    const { teamId } = await rechargingTeam(2);
    const calls = stubStripeApi(intentAnswer());
    for (let i = 0; i < 3; i++) {
      expectStatus(await spend(teamId, (await balance(teamId)).available - 100), 201);
      await alarmRun(teamId);
      const last = calls.at(-1);
      if (last && calls.length === i + 1) await intentWebhook(teamId, last);
    }
    expect(calls).toHaveLength(2);
    expect((await recharges(teamId)).map((r) => r.status)).toEqual(["succeeded", "succeeded"]);
    await assertInvariants(teamId);
  });

  it("declines and requires_action fail and are told; three in a row turn it off and say so", async () => {
    const { teamId } = await rechargingTeam(10);
    let answer: Answer = declined;
    const calls = stubStripeApi((c) => answer(c));
    expectStatus(await spend(teamId, 600), 201);
    await alarmRun(teamId);
    expect((await recharges(teamId)).map((r) => [r.status, r.error])).toEqual([["failed", "card_declined"]]);
    answer = intentAnswer("requires_action");
    expectStatus(await spend(teamId, 10), 201);
    await alarmRun(teamId);
    answer = declined;
    expectStatus(await spend(teamId, 10), 201);
    await alarmRun(teamId);
    expect(calls).toHaveLength(3);
    const told = await failedEvents(teamId);
    expect(told.map((d) => [d.reason, d.consecutiveFailures, d.disabled])).toEqual([
      ["card_declined", 1, false],
      ["requires_action", 2, false],
      ["card_declined", 3, true],
    ]);
    const team = await api(`/v1/teams/${teamId}`);
    const ar = (team.body.settings as { autoRecharge: Record<string, unknown> }).autoRecharge;
    expect(ar).toMatchObject({ enabled: false, consecutiveFailures: 3 });
    expect(String(ar.disabledReason)).toContain("3 auto-recharge payments failed in a row");
    // Off: no more payments.
    expectStatus(await spend(teamId, 10), 201);
    await alarmRun(teamId);
    expect(calls).toHaveLength(3);
    // Turned on again, it starts over.
    expectStatus(
      await api(`/v1/teams/${teamId}`, { method: "PUT", body: { settings: { autoRecharge: settings(10) } } }),
      200,
    );
    answer = intentAnswer();
    expectStatus(await spend(teamId, 10), 201);
    await alarmRun(teamId);
    expect(calls).toHaveLength(4);
    await assertInvariants(teamId);
  });

  it("a payment that fails later (payment_intent.payment_failed) counts as a failure; a success resets the count", async () => {
    const { teamId } = await rechargingTeam(10);
    const calls = stubStripeApi(intentAnswer("processing"));
    expectStatus(await spend(teamId, 600), 201);
    await alarmRun(teamId);
    const [first] = calls;
    if (!first) throw new Error("no call");
    await intentWebhook(teamId, first, "payment_intent.payment_failed");
    expect((await failedEvents(teamId)).map((d) => d.reason)).toEqual(["payment_failed"]);
    expect((await balance(teamId)).available).toBe(400);
    expectStatus(await spend(teamId, 10), 201);
    await alarmRun(teamId);
    const second = calls[1];
    if (!second) throw new Error("no second call");
    await intentWebhook(teamId, second);
    const team = await api(`/v1/teams/${teamId}`);
    expect((team.body.settings as { autoRecharge: Record<string, unknown> }).autoRecharge).toMatchObject({
      enabled: true,
      consecutiveFailures: 0,
    });
    expect((await balance(teamId)).available).toBe(1390);
    await assertInvariants(teamId);
  });

  it("turned off before the alarm: the pending recharge is dropped and Stripe never called", async () => {
    const { teamId } = await rechargingTeam();
    const calls = stubStripeApi(intentAnswer());
    // The spend and the switch in one turn of the object, so no alarm can run between them.
    await runInDurableObject(ledgerStub(teamId), async (instance: TeamLedger) => {
      const idem = { key: newKey(), fingerprint: "spend-600", requestId: "test" };
      expect((await instance.spend(teamId, { feature: "test_feature", amount: 600 }, undefined, idem)).ok).toBe(true);
      expect((await instance.upsertTeam(teamId, { settings: { autoRecharge: null } })).ok).toBe(true);
    });
    await alarmRun(teamId);
    expect(calls).toEqual([]);
    expect((await recharges(teamId)).map((r) => r.status)).toEqual(["canceled"]);
  });

  it("Stripe unreachable: retried with the same idempotency key, then charged once", async () => {
    const { teamId } = await rechargingTeam();
    let down = true;
    const calls = stubStripeApi((c) =>
      down ? { status: 500, body: { error: { type: "api_error", message: "down" } } } : intentAnswer()(c),
    );
    expectStatus(await spend(teamId, 600), 201);
    await alarmRun(teamId);
    expect((await recharges(teamId)).map((r) => r.status)).toEqual(["pending"]);
    down = false;
    await objectRows(teamId, "UPDATE recharges SET next_attempt_at_ms = 0 RETURNING id");
    await alarmRun(teamId);
    expect((await recharges(teamId)).map((r) => r.status)).toEqual(["started"]);
    const keys = new Set(calls.map((c) => c.idempotencyKey));
    expect(keys.size).toBe(1);
    await assertInvariants(teamId);
  });
});
