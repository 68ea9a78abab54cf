/**
 * Paying with credits through the worker: invoices and services paid from the balance, all or
 * nothing (a spend drawn in spending order and the payment's row in one transaction), an invoice
 * paid at most once, the payment options with every reason that applies, who may pay, parallel
 * payments, bad input, and the invariants after every scenario.
 */
import { describe, expect, it } from "vitest";
import {
  allEntries,
  api,
  assertInvariants,
  balance,
  type CallResult,
  call,
  createTeam,
  daysFromNow,
  expectProblem,
  expectStatus,
  grant,
  newKey,
  newKeyFor,
  newTeamId,
  objectRows,
  putFeature,
  savedRefusals,
  snapshot,
} from "../support";
import type { BalanceSummaryT, EntryT, SpendT } from "../support/wire";

interface PaymentReplyT {
  payment: {
    id: string;
    kind: "invoice" | "service";
    reference: string;
    serviceId?: string;
    amount: number;
    spendId: string;
    actor?: string;
    createdAt: string;
  };
  spend: SpendT;
  entries: EntryT[];
  balance: BalanceSummaryT;
}

interface OptionsT {
  available: boolean;
  reasons: { code: string; message: string }[];
  amount: number;
  availableCredits: number;
}

const actingAs = (role: string, id = `user-${role}`) => ({ "x-actor-id": id, "x-actor-role": role });

const paymentsPath = (teamId: string) => `/v1/teams/${teamId}/payments`;

function pay(
  teamId: string,
  body: Record<string, unknown>,
  opts: { key?: string; headers?: Record<string, string> } = {},
): Promise<CallResult<PaymentReplyT>> {
  return api<PaymentReplyT>(paymentsPath(teamId), {
    body,
    idempotencyKey: opts.key ?? newKey(),
    headers: opts.headers ?? {},
  });
}

async function options(
  teamId: string,
  query: Record<string, string | number>,
  headers: Record<string, string> = {},
): Promise<OptionsT> {
  const q = new URLSearchParams(Object.entries(query).map(([k, v]): [string, string] => [k, String(v)]));
  const res = await api<OptionsT>(`/v1/teams/${teamId}/payment-options?${q}`, { headers });
  expectStatus(res, 200);
  return res.body;
}

const codes = (o: OptionsT) => o.reasons.map((r) => r.code);

async function paymentRows(teamId: string): Promise<number> {
  const [row] = await objectRows<{ n: number }>(teamId, "SELECT COUNT(*) AS n FROM payments");
  return row?.n ?? 0;
}

/** A feature of the price book that may, or may not, be paid with credits. */
async function service(eligible: boolean): Promise<string> {
  const key = newKeyFor(eligible ? "consulting" : "setup");
  await putFeature(key, { name: key, unit: "request", creditsPerUnit: 10, creditPaymentEligible: eligible });
  return key;
}

async function teamWith(credits: number, settings: Record<string, unknown> = {}): Promise<string> {
  const teamId = newTeamId("pay");
  await createTeam(teamId, { settings });
  if (credits > 0) await grant(teamId, credits);
  return teamId;
}

describe("paying an invoice with credits", () => {
  it("draws the amount in spending order, references the invoice, and records the payment", async () => {
    const teamId = newTeamId("pay");
    await createTeam(teamId);
    await grant(teamId, 200);
    await grant(teamId, 50, { category: "free", source: "allocation", expiresAt: daysFromNow(30) });
    const res = await pay(
      teamId,
      { kind: "invoice", reference: "INV-1001", amount: 120 },
      { headers: actingAs("owner", "ann") },
    );
    expectStatus(res, 201);
    expect(res.body.payment).toMatchObject({
      kind: "invoice",
      reference: "INV-1001",
      amount: 120,
      spendId: res.body.spend.id,
      actor: "ann",
    });
    expect(res.body.payment.id).toMatch(/^pay_[0-9a-f]{32}$/);
    expect(res.body.payment.serviceId).toBeUndefined();
    expect(res.body.spend).toMatchObject({ amount: 120, feature: "invoice", reference: "INV-1001" });
    // Free credits first, then paid: one entry per grant.
    expect(res.body.entries.map((e) => [e.type, e.direction, e.amount, e.balanceAfter])).toEqual([
      ["spend", "out", 50, 200],
      ["spend", "out", 70, 130],
    ]);
    for (const e of res.body.entries)
      expect(e).toMatchObject({ feature: "invoice", reference: "INV-1001", actor: "ann" });
    expect(res.body.balance.available).toBe(130);
    expect(await paymentRows(teamId)).toBe(1);

    // Paid at most once: a second payment of the invoice under a new key is a 409 that takes nothing.
    const second = expectProblem(
      await pay(teamId, { kind: "invoice", reference: "INV-1001", amount: 120 }),
      409,
      "conflict",
    );
    expect(second.paymentId).toBe(res.body.payment.id);
    expectProblem(await pay(teamId, { kind: "invoice", reference: "INV-1001", amount: 5 }), 409, "conflict");
    expect((await balance(teamId)).available).toBe(130);
    expect(await paymentRows(teamId)).toBe(1);
    const history = await allEntries(teamId);
    expect(history.filter((e) => e.type === "spend").map((e) => e.reference)).toEqual(["INV-1001", "INV-1001"]);
    // Another invoice is another payment.
    expectStatus(await pay(teamId, { kind: "invoice", reference: "INV-1002", amount: 30 }), 201);
    expect((await balance(teamId)).available).toBe(100);
    await assertInvariants(teamId);
  });

  it("402 when the credits do not cover it: nothing written but the refusal under its key", async () => {
    const teamId = await teamWith(80);
    const before = await snapshot(teamId);
    const key = newKey();
    const problem = expectProblem(
      await pay(teamId, { kind: "invoice", reference: "INV-7", amount: 81 }, { key }),
      402,
      "insufficient_credits",
    );
    expect(problem).toMatchObject({ required: 81, available: 80 });
    expect(await snapshot(teamId)).toEqual(before);
    expect([...(await savedRefusals(teamId)).keys()]).toEqual([key]);
    expect(await paymentRows(teamId)).toBe(0);
    // The invoice was not paid: once credits arrive it can be.
    await grant(teamId, 1);
    expectStatus(await pay(teamId, { kind: "invoice", reference: "INV-7", amount: 81 }), 201);
    expect((await balance(teamId)).available).toBe(0);
    await assertInvariants(teamId);
  });
});

describe("paying a service with credits", () => {
  it("an eligible service is paid, as often as it is bought; its spend is labelled with the service", async () => {
    const teamId = await teamWith(100);
    const consulting = await service(true);
    for (const reference of ["booking-1", "booking-1"]) {
      const res = await pay(teamId, { kind: "service", serviceId: consulting, reference, amount: 30 });
      expectStatus(res, 201);
      expect(res.body.payment).toMatchObject({ kind: "service", serviceId: consulting, reference, amount: 30 });
      expect(res.body.spend).toMatchObject({ feature: consulting, reference, amount: 30 });
    }
    expect((await balance(teamId)).available).toBe(40);
    expect(await paymentRows(teamId)).toBe(2);
    await assertInvariants(teamId);
  });

  it("a service not eligible, or not in the price book, is a 403 service_not_eligible", async () => {
    const teamId = await teamWith(100);
    const before = await snapshot(teamId);
    for (const serviceId of [await service(false), newKeyFor("unknown")]) {
      const problem = expectProblem(
        await pay(teamId, { kind: "service", serviceId, reference: "order-1", amount: 10 }),
        403,
        "forbidden",
      );
      expect(problem).toMatchObject({ reason: "service_not_eligible", serviceId });
    }
    expect((await snapshot(teamId)).balance).toEqual(before.balance);
    expect(await paymentRows(teamId)).toBe(0);
    await assertInvariants(teamId);
  });
});

describe("who may pay with credits", () => {
  it("credit payments disabled for the team: 403 credit_payments_disabled, for invoices and services", async () => {
    const teamId = await teamWith(100, { creditPaymentsEnabled: false });
    const consulting = await service(true);
    for (const body of [
      { kind: "invoice", reference: "INV-1", amount: 10 },
      { kind: "service", serviceId: consulting, reference: "o-1", amount: 10 },
    ]) {
      const problem = expectProblem(await pay(teamId, body), 403, "forbidden");
      expect(problem.reason).toBe("credit_payments_disabled");
    }
    expect((await balance(teamId)).available).toBe(100);
    // Enabled again, the team pays.
    expectStatus(
      await api(`/v1/teams/${teamId}`, { method: "PUT", body: { settings: { creditPaymentsEnabled: true } } }),
      200,
    );
    expectStatus(await pay(teamId, { kind: "invoice", reference: "INV-1", amount: 10 }), 201);
    await assertInvariants(teamId);
  });

  it("roles that use credits pay; viewers and accountants may not, not even invoices", async () => {
    const teamId = await teamWith(100);
    let n = 0;
    for (const role of ["owner", "admin", "author", "designer", "manager"]) {
      n += 1;
      expectStatus(
        await pay(teamId, { kind: "invoice", reference: `INV-${n}`, amount: 1 }, { headers: actingAs(role) }),
        201,
      );
    }
    for (const role of ["viewer", "accountant"]) {
      const problem = expectProblem(
        await pay(teamId, { kind: "invoice", reference: "INV-acc", amount: 1 }, { headers: actingAs(role) }),
        403,
        "forbidden",
      );
      expect(problem).toMatchObject({ reason: "role", role });
      expect(codes(await options(teamId, { kind: "invoice", amount: 1 }, actingAs(role)))).toEqual(["role"]);
    }
    expect((await balance(teamId)).available).toBe(95);
    // A subaccount's manager pays only while its agency shares credits.
    const sub = newTeamId("pay-sub");
    const agency = newTeamId("agency");
    await createTeam(agency, { kind: "agency" });
    await createTeam(sub, { kind: "subaccount", parentTeamId: agency });
    await grant(sub, 10);
    const off = expectProblem(
      await pay(sub, { kind: "invoice", reference: "INV-s", amount: 1 }, { headers: actingAs("manager") }),
      403,
      "forbidden",
    );
    expect(off.reason).toBe("sharing_off");
    // The switch is the agency's; the subaccount still pays from its own credits.
    await api(`/v1/teams/${agency}`, { method: "PUT", body: { settings: { shareCreditsWithSubaccounts: true } } });
    expectStatus(
      await pay(sub, { kind: "invoice", reference: "INV-s", amount: 1 }, { headers: actingAs("manager") }),
      201,
    );
    await assertInvariants(teamId);
    await assertInvariants(sub);
  });
});

describe("payment options", () => {
  it("available with no reasons when the payment can be made", async () => {
    const teamId = await teamWith(100);
    const consulting = await service(true);
    expect(await options(teamId, { kind: "invoice", amount: 100 })).toEqual({
      available: true,
      reasons: [],
      amount: 100,
      availableCredits: 100,
    });
    expect((await options(teamId, { kind: "service", amount: 100, serviceId: consulting })).available).toBe(true);
    await assertInvariants(teamId);
  });

  it("lists every reason that applies, each a stable code and a sentence", async () => {
    const teamId = await teamWith(50, { creditPaymentsEnabled: false });
    const setup = await service(false);
    const service3 = await options(teamId, { kind: "service", amount: 60, serviceId: setup });
    expect(service3.available).toBe(false);
    expect(codes(service3)).toEqual(["credit_payments_disabled", "service_not_eligible", "insufficient_credits"]);
    for (const r of service3.reasons) expect(r.message).toMatch(/^[A-Z].*\.$/);
    const unknown = await options(teamId, { kind: "service", amount: 10, serviceId: newKeyFor("ghost") });
    expect(codes(unknown)).toEqual(["credit_payments_disabled", "service_not_eligible"]);
    const invoice = await options(teamId, { kind: "invoice", amount: 60 });
    expect(codes(invoice)).toEqual(["credit_payments_disabled", "insufficient_credits", "invoice_exceeds_balance"]);
    expect(invoice.availableCredits).toBe(50);

    await api(`/v1/teams/${teamId}`, { method: "PUT", body: { settings: { creditPaymentsEnabled: true } } });
    expect(codes(await options(teamId, { kind: "invoice", amount: 60 }))).toEqual([
      "insufficient_credits",
      "invoice_exceeds_balance",
    ]);
    // A paid invoice is not payable again; options say so when given its reference.
    expectStatus(await pay(teamId, { kind: "invoice", reference: "INV-9", amount: 20 }), 201);
    expect(codes(await options(teamId, { kind: "invoice", amount: 20, reference: "INV-9" }))).toEqual([
      "invoice_already_paid",
    ]);
    expect((await options(teamId, { kind: "invoice", amount: 20, reference: "INV-10" })).available).toBe(true);
    await assertInvariants(teamId);
  });

  it("bad queries are 400", async () => {
    const teamId = await teamWith(10);
    for (const query of [
      "",
      "?kind=invoice",
      "?kind=refund&amount=1",
      "?kind=invoice&amount=0",
      "?kind=invoice&amount=1.5",
      "?kind=invoice&amount=abc",
      "?kind=service&amount=1",
      "?kind=invoice&amount=1&serviceId=x",
      "?kind=service&amount=1&serviceId=%20bad",
    ])
      expectProblem(await api(`/v1/teams/${teamId}/payment-options${query}`), 400, "invalid_request");
    expectProblem(await api(`/v1/teams/${newTeamId("ghost")}/payment-options?kind=invoice&amount=1`), 404, "not_found");
  });
});

describe("payments: exactly once, all or nothing", () => {
  it("parallel payments of one invoice with different keys: exactly one pays", async () => {
    const teamId = await teamWith(1000);
    const answers = await Promise.all(
      Array.from({ length: 8 }, () =>
        call(paymentsPath(teamId), {
          body: { kind: "invoice", reference: "INV-race", amount: 100 },
          idempotencyKey: newKey(),
        }),
      ),
    );
    const statuses = answers.map((r) => r.status).sort();
    expect(statuses, answers.map((r) => r.text).join("\n")).toEqual([201, 409, 409, 409, 409, 409, 409, 409]);
    expect((await balance(teamId)).available).toBe(900);
    expect(await paymentRows(teamId)).toBe(1);
    await assertInvariants(teamId);
  });

  it("parallel payments beyond the balance: each is paid whole or refused whole", async () => {
    const teamId = await teamWith(100);
    const consulting = await service(true);
    const answers = await Promise.all(
      Array.from({ length: 5 }, (_, i) =>
        call(paymentsPath(teamId), {
          body: { kind: "service", serviceId: consulting, reference: `o-${i}`, amount: 30 },
          idempotencyKey: newKey(),
        }),
      ),
    );
    expect(answers.map((r) => r.status).sort()).toEqual([201, 201, 201, 402, 402]);
    expect((await balance(teamId)).available).toBe(10);
    expect(await paymentRows(teamId)).toBe(3);
    const spends = (await allEntries(teamId)).filter((e) => e.type === "spend");
    expect(spends.reduce((sum, e) => sum + e.amount, 0)).toBe(90);
    await assertInvariants(teamId);
  });

  it("a retry with the key replays the payment; the same key with another body or actor is 422", async () => {
    const teamId = await teamWith(100);
    const key = newKey();
    const body = { kind: "invoice", reference: "INV-r", amount: 40 };
    const first = await pay(teamId, body, { key });
    expectStatus(first, 201);
    const again = await call(paymentsPath(teamId), { body, idempotencyKey: key });
    expect(again.headers.get("idempotent-replayed")).toBe("true");
    expect(again.text).toBe(first.text);
    expectProblem(await pay(teamId, { ...body, amount: 41 }, { key }), 422, "idempotency_key_reused");
    expectProblem(await pay(teamId, body, { key, headers: actingAs("owner") }), 422, "idempotency_key_reused");
    expect((await balance(teamId)).available).toBe(60);
    await assertInvariants(teamId);
  });

  it.each([
    ["no Idempotency-Key", { kind: "invoice", reference: "I", amount: 1 }, null],
    ["an unknown kind", { kind: "refund", reference: "I", amount: 1 }, "k"],
    ["no reference", { kind: "invoice", amount: 1 }, "k"],
    ["an empty reference", { kind: "invoice", reference: "", amount: 1 }, "k"],
    ["zero credits", { kind: "invoice", reference: "I", amount: 0 }, "k"],
    ["fractional credits", { kind: "invoice", reference: "I", amount: 2.5 }, "k"],
    ["a service without serviceId", { kind: "service", reference: "I", amount: 1 }, "k"],
    ["an invoice with a serviceId", { kind: "invoice", reference: "I", amount: 1, serviceId: "x" }, "k"],
    ["an unknown field", { kind: "invoice", reference: "I", amount: 1, currency: "usd" }, "k"],
  ])("refuses %s with 400 and writes nothing", async (_what, body, key) => {
    const teamId = await teamWith(100);
    const before = await snapshot(teamId);
    const res = await api(paymentsPath(teamId), { body, ...(key ? { idempotencyKey: newKey() } : {}) });
    expectProblem(res, 400, "invalid_request");
    expect(await snapshot(teamId)).toEqual(before);
    expect(await paymentRows(teamId)).toBe(0);
    await assertInvariants(teamId);
  });
});
