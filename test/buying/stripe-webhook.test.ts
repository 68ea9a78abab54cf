/**
 * POST /webhooks/stripe: top-ups credited exactly once whatever Stripe sends (redelivered,
 * reordered, in parallel, unpaid first), refunds and disputes taken back once with the shortfall
 * recorded, signatures checked, unknown teams kept for an admin, and a fault answered with a 5xx
 * so Stripe retries. Payloads are Stripe's own example objects (test/fixtures/stripe/), signed
 * as Stripe signs them. After every scenario: the ledger's invariants and the purchases'.
 */
import { createExecutionContext, env, waitOnExecutionContext } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { creditsRefunded } from "../../src/domain/refunds";
import worker from "../../src/index";
import { api, expectProblem, expectStatus, newTeamId } from "../support/calls";
import { assertInvariants } from "../support/invariants";
import { objectRows } from "../support/object";
import { allEntries, balance, createTeam, grant, spend } from "../support/operations";
import {
  checkoutSession,
  deliver,
  disputeObject,
  eventBody,
  postStripeWebhook,
  refundObject,
  signatureFor,
  stripeId,
  stripeObject,
  stubStripeApi,
} from "../support/stripe";
import type { EntryT } from "../support/wire";

interface PurchaseRow {
  id: string;
  payment_intent_id: string | null;
  status: string;
  credits: number;
  amount_minor: number;
  grant_id: string | null;
  refunded_minor: number;
  clawed_credits: number;
  shortfall_credits: number;
  [k: string]: string | number | null;
}

/**
 * The purchases' own invariants: each credited purchase has exactly one grant and one
 * topup.succeeded event; what its refunds took plus their shortfall is its refunded share; and
 * the refund entries of its grant add up to what was taken.
 */
async function assertPurchaseInvariants(teamId: string): Promise<void> {
  const purchases = await objectRows<PurchaseRow>(teamId, "SELECT * FROM purchases");
  const entries = await allEntries(teamId);
  const events = await api<{ events: { type: string; data: Record<string, unknown> }[] }>(
    `/v1/teams/${teamId}/events?type=topup.succeeded&limit=200`,
  );
  for (const p of purchases) {
    const grants = entries.filter((e) => e.type === "grant" && e.reference === `stripe:${p.id}`);
    const succeeded = events.body.events.filter((e) => e.data.purchaseId === p.id);
    if (p.status === "credited") {
      expect(grants, `one grant for ${p.id}`).toHaveLength(1);
      expect(grants[0]?.amount).toBe(p.credits);
      expect(succeeded, `one topup.succeeded for ${p.id}`).toHaveLength(1);
    } else {
      expect(grants, `no grant for ${p.status} ${p.id}`).toEqual([]);
      expect(succeeded).toEqual([]);
    }
    expect(p.clawed_credits + p.shortfall_credits).toBe(creditsRefunded(p.credits, p.amount_minor, p.refunded_minor));
    // What refunds and disputes took, less what won disputes gave back, is what the purchase lost.
    const refunds = entries.filter((e) => e.type === "refund" && e.grantId === p.grant_id);
    const [back] = await objectRows<{ credits: number | null }>(
      teamId,
      "SELECT SUM(credits) AS credits FROM purchase_adjustments WHERE payment_intent_id = ? AND kind = 'dispute_reinstated'",
      p.payment_intent_id,
    );
    expect(refunds.reduce((s, e) => s + e.amount, 0) - (back?.credits ?? 0)).toBe(p.clawed_credits);
  }
  await assertInvariants(teamId);
}

const grantsOf = (entries: EntryT[]) => entries.filter((e) => e.type === "grant");

describe("signatures", () => {
  it("a missing, malformed, wrong-secret, altered or stale signature is 400 and writes nothing", async () => {
    const teamId = newTeamId("sig");
    await createTeam(teamId);
    const body = eventBody("checkout.session.completed", checkoutSession(teamId, 500));
    const now = Math.floor(Date.now() / 1000);
    const cases: [string, string, string | null][] = [
      ["missing", body, null],
      ["malformed", body, "not-a-signature"],
      ["wrong secret", body, await signatureFor(body, { secret: "whsec_someone_else" })],
      ["altered body", body.replace('"500"', '"50000"'), await signatureFor(body)],
      ["stale (301 s old)", body, await signatureFor(body, { timestamp: now - 301 })],
    ];
    for (const [what, sent, signature] of cases) {
      const res = await postStripeWebhook(sent, signature);
      expect(res.status, what).toBe(400);
      expect(res.headers.get("content-type"), what).toContain("application/problem+json");
      expect((res.body as { code: string }).code, what).toBe("invalid_request");
    }
    expect(await allEntries(teamId)).toEqual([]);
    // The same body, signed now, is taken: the refusals above were about the signature alone.
    expectStatus(await postStripeWebhook(body), 200);
    expect((await balance(teamId)).available).toBe(500);
  });
});

describe("top-ups are credited exactly once", () => {
  it("completed and async_payment_succeeded, twice each, all at once: one paid grant that never expires", async () => {
    const teamId = newTeamId("once");
    await createTeam(teamId);
    const session = checkoutSession(teamId, 1000, { metadata: { packId: "small" } });
    const bodies = [
      "checkout.session.completed",
      "checkout.session.completed",
      "checkout.session.async_payment_succeeded",
      "checkout.session.async_payment_succeeded",
    ].map((type) => eventBody(type, session));
    const answers = await Promise.all(bodies.map((b) => postStripeWebhook(b)));
    for (const a of answers) expectStatus(a, 200);
    const outcomes = answers.map((a) => (a.body as { results: { outcome: string }[] }).results[0]?.outcome).sort();
    expect(outcomes).toEqual(["already_applied", "already_applied", "already_applied", "credited"]);
    // And redelivered later, once more each.
    for (const b of bodies) expectStatus(await postStripeWebhook(b), 200);

    const bal = await balance(teamId);
    expect(bal.available).toBe(1000);
    expect(bal.byCategory.paid).toBe(1000);
    const [g] = bal.grants;
    expect(bal.grants).toHaveLength(1);
    expect(g).toMatchObject({
      category: "paid",
      source: "purchase",
      expiresAt: null,
      reference: `stripe:${session.id}`,
    });
    const [row] = await objectRows<PurchaseRow>(teamId, "SELECT * FROM purchases");
    expect(row).toMatchObject({ id: session.id, payment_intent_id: session.payment_intent, pack_id: "small" });
    const events = await api<{ events: { type: string; data: Record<string, unknown> }[] }>(
      `/v1/teams/${teamId}/events?type=topup.succeeded`,
    );
    expect(events.body.events).toHaveLength(1);
    expect(events.body.events[0]?.data).toMatchObject({ purchaseId: session.id, credits: 1000, amountMinor: 2500 });
    await assertPurchaseInvariants(teamId);
  });

  it("unpaid (a bank debit clearing) credits nothing until the async success; reordered, it is still once", async () => {
    const teamId = newTeamId("async");
    await createTeam(teamId);
    const unpaid = checkoutSession(teamId, 800, { payment_status: "unpaid" });
    await deliver("checkout.session.completed", unpaid);
    expect((await balance(teamId)).available).toBe(0);
    const [pending] = await objectRows<PurchaseRow>(teamId, "SELECT * FROM purchases");
    expect(pending?.status).toBe("awaiting_payment");
    await deliver("checkout.session.async_payment_succeeded", { ...unpaid, payment_status: "paid" });
    expect((await balance(teamId)).available).toBe(800);
    // The unpaid completion redelivered after the success changes nothing.
    await deliver("checkout.session.completed", unpaid);
    expect((await balance(teamId)).available).toBe(800);

    // The success can come before the completion: credited on the first, once.
    const early = checkoutSession(teamId, 200, { payment_status: "unpaid" });
    await deliver("checkout.session.async_payment_succeeded", { ...early, payment_status: "paid" });
    await deliver("checkout.session.completed", early);
    expect((await balance(teamId)).available).toBe(1000);
    await assertPurchaseInvariants(teamId);
  });

  it("async_payment_failed never credits, whatever comes after it", async () => {
    const teamId = newTeamId("failed");
    await createTeam(teamId);
    const session = checkoutSession(teamId, 700, { payment_status: "unpaid" });
    await deliver("checkout.session.completed", session);
    await deliver("checkout.session.async_payment_failed", session);
    await deliver("checkout.session.async_payment_failed", session);
    await deliver("checkout.session.completed", session);
    expect((await balance(teamId)).available).toBe(0);
    const [row] = await objectRows<PurchaseRow>(teamId, "SELECT * FROM purchases");
    expect(row?.status).toBe("failed");
    // A failure first (the completion lost): still nothing.
    const other = checkoutSession(teamId, 300, { payment_status: "unpaid" });
    await deliver("checkout.session.async_payment_failed", other);
    expect((await balance(teamId)).available).toBe(0);
    await assertPurchaseInvariants(teamId);
  });

  it("events that do not concern credits are 200 and ignored; sessions we did not create too", async () => {
    const teamId = newTeamId("ignored");
    await createTeam(teamId);
    const invoice = await postStripeWebhook(eventBody("invoice.paid", stripeObject("payment_intent")));
    expectStatus(invoice, 200);
    expect(invoice.body).toMatchObject({ handled: "ignored" });
    const foreign = stripeObject("checkout.session", { id: stripeId("cs"), mode: "payment", payment_status: "paid" });
    expect((await postStripeWebhook(eventBody("checkout.session.completed", foreign))).body).toMatchObject({
      handled: "ignored",
    });
    const subscription = checkoutSession(teamId, 100, { mode: "subscription" });
    expect((await postStripeWebhook(eventBody("checkout.session.completed", subscription))).body).toMatchObject({
      handled: "ignored",
    });
    expect(await allEntries(teamId)).toEqual([]);
  });

  it("a team that does not exist, or metadata we cannot use, is kept for an admin, not dropped", async () => {
    const ghost = newTeamId("ghost");
    const session = checkoutSession(ghost, 500);
    const body = eventBody("checkout.session.completed", session);
    const res = await postStripeWebhook(body);
    expectStatus(res, 200);
    expect(res.body).toMatchObject({ handled: "unmatched" });
    const bad = checkoutSession(newTeamId("bad"), 1, { metadata: { credits: "12.5" } });
    const badBody = eventBody("checkout.session.completed", bad);
    expect((await postStripeWebhook(badBody)).body).toMatchObject({ handled: "unmatched" });

    const list = await api<{ events: { eventId: string; teamId: string | null; reason: string; payload: string }[] }>(
      "/v1/stripe/unmatched-events?limit=200",
    );
    expectStatus(list, 200);
    const mine = list.body.events.find((e) => e.eventId === JSON.parse(body).id);
    expect(mine).toMatchObject({ teamId: ghost });
    expect(mine?.reason).toContain("does not exist");
    expect(mine?.payload).toBe(body);
    const malformed = list.body.events.find((e) => e.eventId === JSON.parse(badBody).id);
    expect(malformed?.reason).toContain("metadata.credits");
    // The API also needs its key.
    expectProblem(await api("/v1/stripe/unmatched-events", { auth: false }), 401, "unauthorized");
  });
});

/** A team with a credited purchase of 1000 credits for 2500 (minor units). */
async function teamWithPurchase(prefix: string, credits = 1000, amountMinor = 2500) {
  const teamId = newTeamId(prefix);
  await createTeam(teamId);
  const session = checkoutSession(teamId, credits, { amount_total: amountMinor });
  await deliver("checkout.session.completed", session);
  return { teamId, session, paymentIntentId: String(session.payment_intent) };
}

describe("refunds", () => {
  it("after part was spent: takes back what remains, records the shortfall on the entry and as an event, once", async () => {
    const { teamId, paymentIntentId } = await teamWithPurchase("refund-spent");
    expectStatus(await spend(teamId, 700), 201);
    const refund = refundObject(paymentIntentId, 2500);
    const answers = await Promise.all([
      deliver("refund.created", refund),
      deliver("refund.created", refund),
      deliver("refund.updated", refund),
    ]);
    expect(answers.map((a) => (a.results as { outcome: string }[])[0]?.outcome).sort()).toEqual([
      "already_applied",
      "already_applied",
      "refunded",
    ]);
    // charge.refunded lists the same refund: nothing more.
    const charge = stripeObject("charge", {
      id: stripeId("ch"),
      payment_intent: paymentIntentId,
      amount: 2500,
      amount_refunded: 2500,
      refunded: true,
      metadata: { teamId },
      refunds: { object: "list", data: [refund], has_more: false, url: "/v1/refunds" },
    });
    await deliver("charge.refunded", charge);

    const entries = await allEntries(teamId);
    const refunds = entries.filter((e) => e.type === "refund");
    expect(refunds).toHaveLength(1);
    expect(refunds[0]).toMatchObject({
      direction: "out",
      amount: 300,
      shortfallCredits: 700,
      reference: `stripe:${refund.id}`,
    });
    expect((await balance(teamId)).available).toBe(0);
    const shortfall = await api<{ events: { data: Record<string, unknown> }[] }>(
      `/v1/teams/${teamId}/events?type=purchase.refund_shortfall`,
    );
    expect(shortfall.body.events).toHaveLength(1);
    expect(shortfall.body.events[0]?.data).toMatchObject({ shortfallCredits: 700, credits: 300, refundId: refund.id });
    const refunded = await api<{ events: unknown[] }>(`/v1/teams/${teamId}/events?type=topup.refunded`);
    expect(refunded.body.events).toHaveLength(1);
    await assertPurchaseInvariants(teamId);
  });

  it("partial refunds add up to exactly the whole (rounded up, cumulatively); more than was paid takes nothing more", async () => {
    const { teamId, paymentIntentId } = await teamWithPurchase("refund-partial", 1000, 3000);
    // 1000 of 3000 is 333.3 → 334; then 1000 more (2000 of 3000 is 666.7 → 667): 333; the rest: 333.
    for (const [amount, taken] of [
      [1000, 334],
      [1000, 333],
      [1000, 333],
      [500, 0],
    ] as const) {
      const res = await deliver("refund.created", refundObject(paymentIntentId, amount));
      expect((res.results as { credits: number }[])[0]?.credits).toBe(taken);
    }
    expect((await balance(teamId)).available).toBe(0);
    await assertPurchaseInvariants(teamId);
  });

  it("leaves other grants alone: a shortfall is never taken from credits bought or granted otherwise", async () => {
    const { teamId, paymentIntentId } = await teamWithPurchase("refund-others");
    await grant(teamId, 5000, { category: "free", source: "allocation" });
    // Spends draw free first: the purchase stays whole.
    expectStatus(await spend(teamId, 1000), 201);
    await deliver("refund.created", refundObject(paymentIntentId, 2500));
    const bal = await balance(teamId);
    expect(bal.byCategory).toMatchObject({ free: 4000, paid: 0 });
    await assertPurchaseInvariants(teamId);
  });

  it("failed or canceled refunds take nothing; a refund of a payment we do not know, found nowhere, is kept for an admin", async () => {
    const { teamId, paymentIntentId } = await teamWithPurchase("refund-failed");
    await deliver("refund.updated", refundObject(paymentIntentId, 2500, { status: "failed" }));
    await deliver("refund.updated", refundObject(paymentIntentId, 2500, { status: "canceled" }));
    expect((await balance(teamId)).available).toBe(1000);
    // Not in the index, and Stripe says the intent is not ours (no teamId in its metadata).
    const calls = stubStripeApi(() => ({ body: { ...stripeObject("payment_intent"), metadata: {} } }));
    const stranger = stripeId("pi");
    const res = await deliver("refund.created", refundObject(stranger, 100));
    expect(res).toMatchObject({ handled: "unmatched" });
    expect(calls.map((c) => c.path)).toEqual([`/v1/payment_intents/${stranger}`]);
    await assertPurchaseInvariants(teamId);
  });

  it("a refund that overtakes its purchase's completion waits for it, then applies once", async () => {
    const teamId = newTeamId("refund-early");
    await createTeam(teamId);
    const session = checkoutSession(teamId, 1000, { amount_total: 2500 });
    const pi = String(session.payment_intent);
    // The index does not know the intent yet: Stripe's own copy of it names the team.
    const calls = stubStripeApi(() => ({ body: { ...stripeObject("payment_intent"), id: pi, metadata: { teamId } } }));
    const refund = refundObject(pi, 1000);
    const early = await deliver("refund.created", refund);
    expect((early.results as { outcome: string }[])[0]?.outcome).toBe("waiting");
    expect(calls).toHaveLength(1);
    await deliver("checkout.session.completed", session);
    expect((await balance(teamId)).available).toBe(600);
    // From now on the index routes the intent: Stripe is not asked again, and the refund is not taken twice.
    await deliver("refund.updated", refund);
    expect(calls).toHaveLength(1);
    expect((await balance(teamId)).available).toBe(600);
    await assertPurchaseInvariants(teamId);
  });

  it("a fault is a 5xx and writes nothing, so Stripe retries; the retry applies it once", async () => {
    const teamId = newTeamId("refund-retry");
    await createTeam(teamId);
    const session = checkoutSession(teamId, 1000);
    const pi = String(session.payment_intent);
    let up = false;
    stubStripeApi(() =>
      up
        ? { body: { ...stripeObject("payment_intent"), id: pi, metadata: { teamId } } }
        : { status: 500, body: { error: { type: "api_error", message: "Stripe is down" } } },
    );
    await deliver("checkout.session.completed", session);
    // As if the index had missed it (D1 lost the write): the route must ask Stripe.
    await env.DB.prepare("DELETE FROM stripe_payment_intents WHERE payment_intent_id = ?").bind(pi).run();
    const body = eventBody("refund.created", refundObject(pi, 2500));
    const down = await postStripeWebhook(body);
    expect(down.status).toBe(500);
    expect(down.text).not.toContain("Stripe is down");
    expect((await balance(teamId)).available).toBe(1000);
    up = true;
    expectStatus(await postStripeWebhook(body), 200);
    expectStatus(await postStripeWebhook(body), 200);
    const refunds = (await allEntries(teamId)).filter((e) => e.type === "refund");
    expect(refunds).toHaveLength(1);
    await assertInvariants(teamId);
  });
});

describe("disputes", () => {
  it("lost: created and funds_withdrawn take back the disputed share once; closed as lost changes nothing", async () => {
    const { teamId, paymentIntentId } = await teamWithPurchase("dispute-lost");
    expectStatus(await spend(teamId, 100), 201);
    const dispute = disputeObject(paymentIntentId, 2500, { status: "needs_response" });
    await Promise.all([deliver("charge.dispute.created", dispute), deliver("charge.dispute.funds_withdrawn", dispute)]);
    await deliver("charge.dispute.closed", { ...dispute, status: "lost" });
    const refunds = (await allEntries(teamId)).filter((e) => e.type === "refund");
    expect(refunds).toHaveLength(1);
    expect(refunds[0]).toMatchObject({ amount: 900, shortfallCredits: 100 });
    expect((await balance(teamId)).available).toBe(0);
    const disputed = await api<{ events: { data: Record<string, unknown> }[] }>(
      `/v1/teams/${teamId}/events?type=topup.disputed`,
    );
    expect(disputed.body.events.map((e) => e.data.stage)).toEqual(["funds_withdrawn"]);
    await assertPurchaseInvariants(teamId);
  });

  it("won: funds_reinstated gives back exactly what the dispute took, once (closed as won too)", async () => {
    const { teamId, paymentIntentId } = await teamWithPurchase("dispute-won");
    expectStatus(await spend(teamId, 100), 201);
    const dispute = disputeObject(paymentIntentId, 2500);
    const created = await deliver("charge.dispute.created", dispute);
    expect(created).toMatchObject({ handled: "applied" });
    expect((await balance(teamId)).available).toBe(0);
    await Promise.all([
      deliver("charge.dispute.funds_reinstated", dispute),
      deliver("charge.dispute.closed", { ...dispute, status: "won" }),
      deliver("charge.dispute.funds_reinstated", dispute),
    ]);
    const bal = await balance(teamId);
    expect(bal.available).toBe(900);
    expect(bal.byCategory.paid).toBe(900);
    const back = grantsOf(await allEntries(teamId)).filter((e) => e.reference?.includes("reinstated"));
    expect(back).toHaveLength(1);
    await assertPurchaseInvariants(teamId);
  });

  it("reinstated before withdrawn (reordered): the late withdrawal takes nothing", async () => {
    const { teamId, paymentIntentId } = await teamWithPurchase("dispute-reordered");
    const dispute = disputeObject(paymentIntentId, 2500);
    await deliver("charge.dispute.funds_reinstated", dispute);
    await deliver("charge.dispute.funds_withdrawn", dispute);
    await deliver("charge.dispute.created", dispute);
    expect((await balance(teamId)).available).toBe(1000);
    await assertPurchaseInvariants(teamId);
  });

  it("without STRIPE_WEBHOOK_SECRET: 503 stripe_not_configured, and nothing is read or written", async () => {
    const teamId = newTeamId("no-secret");
    await createTeam(teamId);
    const body = eventBody("checkout.session.completed", checkoutSession(teamId, 500));
    const request = new Request("https://ledger.test/webhooks/stripe", {
      method: "POST",
      headers: { "content-type": "application/json", "stripe-signature": await signatureFor(body) },
      body,
    });
    const ctx = createExecutionContext();
    const res = await worker.fetch(request, { ...env, STRIPE_WEBHOOK_SECRET: undefined }, ctx);
    await waitOnExecutionContext(ctx);
    expect(res.status).toBe(503);
    expect(((await res.json()) as { code: string }).code).toBe("stripe_not_configured");
    expect(await allEntries(teamId)).toEqual([]);
  });
});
