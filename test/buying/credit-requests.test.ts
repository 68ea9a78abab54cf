/**
 * Credit requests through the worker: a pack or a number of credits asked for by bank transfer,
 * crypto or another way, pending until an owner or admin accepts it (its credits granted once,
 * `paid`, never expiring, referencing the request) or rejects it (nothing granted). Who may ask
 * and who may decide, the price of a request without a pack, paging, idempotency, parallel
 * decisions, and the invariants after every scenario.
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
  expectProblem,
  expectStatus,
  newKey,
  newKeyFor,
  newTeamId,
  objectRows,
  putPlan,
  snapshot,
} from "../support";

interface CreditRequestT {
  id: string;
  status: "pending" | "accepted" | "rejected";
  credits: number;
  priceMinor?: number;
  currency?: string;
  packId?: string;
  method: string;
  reference?: string;
  requestedBy?: string;
  decidedBy?: string;
  reason?: string;
  grantId?: string;
  createdAt: string;
  decidedAt?: string;
}

interface PageT {
  creditRequests: CreditRequestT[];
  nextCursor: string | null;
}

/** The headers of a request that acts for a person with this role. */
const actingAs = (role: string, id = `user-${role}`) => ({ "x-actor-id": id, "x-actor-role": role });

/** A paid plan in pounds at 40 credits a pound, with a £25 pack (1,000 credits). */
async function paidPlan(extra: Record<string, unknown> = {}): Promise<string> {
  const planId = newKeyFor("pro");
  await putPlan(planId, {
    paid: true,
    currency: "gbp",
    creditsPerCurrencyUnit: 40,
    packs: [{ id: "p25", priceMinor: 2500 }],
    ...extra,
  });
  return planId;
}

async function teamOnPaidPlan(extra: Record<string, unknown> = {}): Promise<string> {
  const teamId = newTeamId("crq");
  await createTeam(teamId, { planId: await paidPlan(), ...extra });
  return teamId;
}

const requestsPath = (teamId: string) => `/v1/teams/${teamId}/credit-requests`;

async function ask(
  teamId: string,
  body: Record<string, unknown>,
  headers: Record<string, string> = {},
): Promise<CreditRequestT> {
  const res = await api<CreditRequestT>(requestsPath(teamId), { body, idempotencyKey: newKey(), headers });
  expectStatus(res, 201);
  return res.body;
}

function decide(
  teamId: string,
  requestId: string,
  action: "accept" | "reject",
  opts: { body?: Record<string, unknown>; headers?: Record<string, string>; key?: string | null } = {},
): Promise<CallResult<CreditRequestT>> {
  const key = opts.key === undefined ? newKey() : opts.key;
  return api<CreditRequestT>(`${requestsPath(teamId)}/${requestId}/${action}`, {
    method: "POST",
    ...(opts.body ? { body: opts.body } : {}),
    ...(key === null ? {} : { idempotencyKey: key }),
    headers: opts.headers ?? {},
  });
}

async function requestRows(teamId: string): Promise<number> {
  const [row] = await objectRows<{ n: number }>(teamId, "SELECT COUNT(*) AS n FROM credit_requests");
  return row?.n ?? 0;
}

/** The team's credit_request.* and grant.* events, oldest first (a plan's own events left out). */
async function eventTypes(teamId: string): Promise<string[]> {
  const res = await api<{ events: { type: string; data: Record<string, unknown> }[] }>(
    `/v1/teams/${teamId}/events?limit=200`,
  );
  expectStatus(res, 200);
  return res.body.events
    .map((e) => e.type)
    .filter((t) => t.startsWith("credit_request.") || t.startsWith("grant."))
    .reverse();
}

describe("credit requests: asking and deciding", () => {
  it("a pack request is pending until accepted; accepting grants its credits once, paid, never expiring", async () => {
    const teamId = await teamOnPaidPlan();
    const asked = await ask(
      teamId,
      { packId: "p25", method: "bank_transfer", reference: "BT-2026-0001" },
      actingAs("owner", "ann"),
    );
    expect(asked).toMatchObject({
      status: "pending",
      credits: 1000,
      priceMinor: 2500,
      currency: "gbp",
      packId: "p25",
      method: "bank_transfer",
      reference: "BT-2026-0001",
      requestedBy: "ann",
    });
    expect(asked.id).toMatch(/^crq_[0-9a-f]{32}$/);
    expect(asked.decidedAt).toBeUndefined();
    expect((await balance(teamId)).available, "a pending request grants nothing").toBe(0);

    const read = await api<CreditRequestT>(`${requestsPath(teamId)}/${asked.id}`);
    expectStatus(read, 200);
    expect(read.body).toEqual(asked);
    const pending = await api<PageT>(`${requestsPath(teamId)}?status=pending`);
    expect(pending.body.creditRequests.map((r) => r.id)).toEqual([asked.id]);

    const accepted = await decide(teamId, asked.id, "accept");
    expectStatus(accepted, 200);
    expect(accepted.body).toMatchObject({ id: asked.id, status: "accepted", credits: 1000 });
    expect(accepted.body.decidedBy, "the admin key acts for no one").toBeUndefined();
    expect(accepted.body.decidedAt).toBeTruthy();
    const bal = await balance(teamId);
    expect(bal.available).toBe(1000);
    expect(bal.byCategory.paid).toBe(1000);
    const granted = bal.grants.filter((g) => g.source === "credit_request");
    expect(granted).toHaveLength(1);
    expect(granted[0]).toMatchObject({
      id: accepted.body.grantId,
      amount: 1000,
      category: "paid",
      expiresAt: null,
      reference: asked.id,
    });
    const entries = await allEntries(teamId);
    expect(entries.filter((e) => e.type === "grant").map((e) => [e.amount, e.reference])).toEqual([[1000, asked.id]]);

    // Decided once: accepting or rejecting again is a 409, under any key; nothing more is granted.
    const again = expectProblem(await decide(teamId, asked.id, "accept"), 409, "conflict");
    expect(again.requestStatus).toBe("accepted");
    expectProblem(await decide(teamId, asked.id, "reject", { body: { reason: "late" } }), 409, "conflict");
    expectProblem(await decide(teamId, asked.id, "accept", { key: null }), 409, "conflict");
    expect((await balance(teamId)).available).toBe(1000);
    expect((await api<PageT>(`${requestsPath(teamId)}?status=pending`)).body.creditRequests).toEqual([]);
    expect(await eventTypes(teamId)).toEqual(["credit_request.created", "grant.created", "credit_request.accepted"]);
    await assertInvariants(teamId);
  });

  it("rejecting grants nothing and keeps the reason; a rejected request cannot be accepted", async () => {
    const teamId = await teamOnPaidPlan();
    const asked = await ask(teamId, { credits: 500, method: "crypto", reference: "0xabc" });
    const rejected = await decide(teamId, asked.id, "reject", {
      body: { reason: "no transfer received" },
      headers: actingAs("admin", "bob"),
    });
    expectStatus(rejected, 200);
    expect(rejected.body).toMatchObject({
      status: "rejected",
      reason: "no transfer received",
      decidedBy: "bob",
      credits: 500,
    });
    expect(rejected.body.grantId).toBeUndefined();
    const conflict = expectProblem(await decide(teamId, asked.id, "accept"), 409, "conflict");
    expect(conflict.requestStatus).toBe("rejected");
    // A reject without a body or a key is a decision like any other.
    const second = await ask(teamId, { credits: 7, method: "other" });
    expectStatus(await decide(teamId, second.id, "reject", { key: null }), 200);
    const bal = await balance(teamId);
    expect(bal.available).toBe(0);
    expect(bal.grants).toEqual([]);
    expect(await allEntries(teamId)).toEqual([]);
    expect(await eventTypes(teamId)).toEqual([
      "credit_request.created",
      "credit_request.rejected",
      "credit_request.created",
      "credit_request.rejected",
    ]);
    await assertInvariants(teamId);
  });

  it("a request for credits is priced at the plan's rate, rounded up to the next minor unit", async () => {
    const teamId = await teamOnPaidPlan();
    // 1,001 credits at 40 a pound: 100,100 / 40 = 2,502.5 pence → 2,503 (which buys 1,001.2 → 1,001).
    expect(await ask(teamId, { credits: 1001, method: "bank_transfer" })).toMatchObject({
      credits: 1001,
      priceMinor: 2503,
      currency: "gbp",
    });
    expect((await ask(teamId, { credits: 40, method: "bank_transfer" })).priceMinor).toBe(100);
    expect((await ask(teamId, { credits: 1, method: "bank_transfer" })).priceMinor).toBe(3);
    // A zero-decimal currency: 1,001 credits at 3 a yen cost ceil(333.67) = 334 yen.
    const yenPlan = newKeyFor("yen");
    await putPlan(yenPlan, { paid: true, currency: "jpy", creditsPerCurrencyUnit: 3 });
    const yenTeam = newTeamId("crq");
    await createTeam(yenTeam, { planId: yenPlan });
    const yen = await ask(yenTeam, { credits: 1001, method: "other" });
    expect(yen).toMatchObject({ priceMinor: 334, currency: "jpy" });
    expect(yen.packId).toBeUndefined();
    await assertInvariants(teamId);
    await assertInvariants(yenTeam);
  });
});

describe("credit requests: who may ask and who may decide", () => {
  it("only owners and admins ask; every other role is a 403 with the reason, and writes nothing", async () => {
    const teamId = await teamOnPaidPlan();
    for (const role of ["owner", "admin"]) await ask(teamId, { credits: 10, method: "other" }, actingAs(role));
    const before = await snapshot(teamId);
    for (const role of ["author", "designer", "viewer", "accountant", "manager"]) {
      const res = await api(requestsPath(teamId), {
        body: { credits: 10, method: "other" },
        idempotencyKey: newKey(),
        headers: actingAs(role),
      });
      const problem = expectProblem(res, 403, "forbidden");
      expect(problem).toMatchObject({ reason: "role", role });
    }
    expect(await snapshot(teamId)).toEqual(before);
    expect(await requestRows(teamId)).toBe(2);
    await assertInvariants(teamId);
  });

  it("a subaccount, a team on no plan and a team on a free plan may not ask, with their reasons", async () => {
    const sub = newTeamId("crq-sub");
    const agency = newTeamId("agency");
    await createTeam(agency, { kind: "agency" });
    await createTeam(sub, { planId: await paidPlan(), kind: "subaccount", parentTeamId: agency });
    const none = newTeamId("crq-none");
    await createTeam(none);
    const freePlan = newKeyFor("free");
    await putPlan(freePlan, { paid: false });
    const free = newTeamId("crq-free");
    await createTeam(free, { planId: freePlan });
    for (const [teamId, reason] of [
      [sub, "subaccount"],
      [none, "no_plan"],
      [free, "free_plan"],
    ] as const) {
      const res = await api(requestsPath(teamId), { body: { credits: 10, method: "bank_transfer" } });
      expect(expectProblem(res, 403, "forbidden").reason).toBe(reason);
      expect(await requestRows(teamId)).toBe(0);
      await assertInvariants(teamId);
    }
    expectProblem(
      await api(requestsPath(newTeamId("ghost")), { body: { credits: 10, method: "other" } }),
      404,
      "not_found",
    );
  });

  it("only owners, admins and the admin key decide; others are a 403 and the request stays pending", async () => {
    const teamId = await teamOnPaidPlan();
    const asked = await ask(teamId, { credits: 300, method: "bank_transfer" });
    for (const role of ["author", "designer", "viewer", "accountant", "manager"])
      for (const action of ["accept", "reject"] as const) {
        const problem = expectProblem(
          await decide(teamId, asked.id, action, { headers: actingAs(role) }),
          403,
          "forbidden",
        );
        expect(problem).toMatchObject({ reason: "role", role });
      }
    const still = await api<CreditRequestT>(`${requestsPath(teamId)}/${asked.id}`);
    expect(still.body.status).toBe("pending");
    expect((await balance(teamId)).available).toBe(0);
    const byOwner = await decide(teamId, asked.id, "accept", { headers: actingAs("owner", "olga") });
    expectStatus(byOwner, 200);
    expect(byOwner.body).toMatchObject({ status: "accepted", decidedBy: "olga" });
    expect((await balance(teamId)).available).toBe(300);
    await assertInvariants(teamId);
  });
});

describe("credit requests: exactly once", () => {
  it("parallel accepts with different keys, and without keys: one wins, the others get 409", async () => {
    const teamId = await teamOnPaidPlan();
    const keyed = await ask(teamId, { credits: 250, method: "bank_transfer" });
    const unkeyed = await ask(teamId, { credits: 40, method: "crypto" });
    const path = (id: string) => `${requestsPath(teamId)}/${id}/accept`;
    const answers = await Promise.all([
      ...Array.from({ length: 8 }, () => call(path(keyed.id), { method: "POST", idempotencyKey: newKey() })),
      ...Array.from({ length: 8 }, () => call(path(unkeyed.id), { method: "POST" })),
    ]);
    for (const batch of [answers.slice(0, 8), answers.slice(8)]) {
      const statuses = batch.map((r) => r.status).sort();
      expect(statuses, batch.map((r) => r.text).join("\n")).toEqual([200, 409, 409, 409, 409, 409, 409, 409]);
      for (const r of batch.filter((x) => x.status === 409)) expectProblem(r, 409, "conflict");
    }
    const bal = await balance(teamId);
    expect(bal.available).toBe(290);
    expect(bal.grants.map((g) => g.reference).sort()).toEqual([keyed.id, unkeyed.id].sort());
    await assertInvariants(teamId);
  });

  it("an accept racing a reject: exactly one decides, and credits are granted only if the accept won", async () => {
    const teamId = await teamOnPaidPlan();
    const asked = await ask(teamId, { credits: 60, method: "other" });
    const base = `${requestsPath(teamId)}/${asked.id}`;
    const [accept, reject] = await Promise.all([
      call<CreditRequestT>(`${base}/accept`, { method: "POST", idempotencyKey: newKey() }),
      call<CreditRequestT>(`${base}/reject`, { body: { reason: "duplicate" }, idempotencyKey: newKey() }),
    ]);
    expect([accept?.status, reject?.status].sort()).toEqual([200, 409]);
    const final = await api<CreditRequestT>(base);
    expect((await balance(teamId)).available).toBe(final.body.status === "accepted" ? 60 : 0);
    await assertInvariants(teamId);
  });

  it("a retried creation or decision with its key replays the first answer; without a key each ask is new", async () => {
    const teamId = await teamOnPaidPlan();
    const key = newKey();
    const body = { packId: "p25", method: "bank_transfer", reference: "BT-9" };
    const first = await api<CreditRequestT>(requestsPath(teamId), { body, idempotencyKey: key });
    expectStatus(first, 201);
    const retry = await api<CreditRequestT>(requestsPath(teamId), { body, idempotencyKey: key });
    expect(retry.headers.get("idempotent-replayed")).toBe("true");
    expect(retry.body.id).toBe(first.body.id);
    expectProblem(
      await api(requestsPath(teamId), { body: { ...body, reference: "BT-10" }, idempotencyKey: key }),
      422,
      "idempotency_key_reused",
    );
    // The same key from another actor is another request.
    expectProblem(
      await api(requestsPath(teamId), { body, idempotencyKey: key, headers: actingAs("admin") }),
      422,
      "idempotency_key_reused",
    );
    const a = await api<CreditRequestT>(requestsPath(teamId), { body });
    const b = await api<CreditRequestT>(requestsPath(teamId), { body });
    expect(a.body.id).not.toBe(b.body.id);
    expect(await requestRows(teamId)).toBe(3);

    const decisionKey = newKey();
    const accepted = await decide(teamId, first.body.id, "accept", { key: decisionKey });
    expectStatus(accepted, 200);
    const replayed = await decide(teamId, first.body.id, "accept", { key: decisionKey });
    expect(replayed.headers.get("idempotent-replayed")).toBe("true");
    expect(replayed.text).toBe(accepted.text);
    expectProblem(await decide(teamId, first.body.id, "accept"), 409, "conflict");
    expect((await balance(teamId)).available).toBe(1000);
    await assertInvariants(teamId);
  });
});

describe("credit requests: lists and bad input", () => {
  it("lists newest first, filters by status and pages with a cursor", async () => {
    const teamId = await teamOnPaidPlan();
    const made: CreditRequestT[] = [];
    for (let i = 0; i < 5; i++) made.push(await ask(teamId, { credits: 10 + i, method: "other" }));
    const first = made[0];
    const third = made[2];
    if (!first || !third) throw new Error("made five");
    expectStatus(await decide(teamId, first.id, "accept"), 200);
    expectStatus(await decide(teamId, third.id, "reject"), 200);
    const newestFirst = [...made].reverse().map((r) => r.id);
    const seen: string[] = [];
    let cursor: string | null = null;
    let pages = 0;
    do {
      const query: string = `?limit=2${cursor ? `&cursor=${cursor}` : ""}`;
      const page: CallResult<PageT> = await api<PageT>(`${requestsPath(teamId)}${query}`);
      expectStatus(page, 200);
      expect(page.body.creditRequests.length).toBeLessThanOrEqual(2);
      seen.push(...page.body.creditRequests.map((r) => r.id));
      cursor = page.body.nextCursor;
      pages += 1;
    } while (cursor !== null);
    expect(seen).toEqual(newestFirst);
    expect(pages).toBe(3);
    const pending = await api<PageT>(`${requestsPath(teamId)}?status=pending&limit=3`);
    expect(pending.body.creditRequests.map((r) => r.id)).toEqual(
      newestFirst.filter((id) => ![first.id, third.id].includes(id)),
    );
    expect(pending.body.nextCursor).toBeNull();
    const accepted = await api<PageT>(`${requestsPath(teamId)}?status=accepted`);
    expect(accepted.body.creditRequests.map((r) => [r.id, r.status])).toEqual([[first.id, "accepted"]]);
    await assertInvariants(teamId);
  });

  it.each([
    ["both a pack and credits", { packId: "p25", credits: 10, method: "other" }],
    ["neither a pack nor credits", { method: "other" }],
    ["zero credits", { credits: 0, method: "other" }],
    ["fractional credits", { credits: 1.5, method: "other" }],
    ["more credits than a request may ask", { credits: 1_000_000_001, method: "other" }],
    ["an unknown method", { credits: 10, method: "cheque" }],
    ["no method", { credits: 10 }],
    ["a pack the plan does not sell", { packId: "p999", method: "bank_transfer" }],
    ["an unknown field", { credits: 10, method: "other", amountMinor: 100 }],
    ["a reference too long", { credits: 10, method: "other", reference: "x".repeat(201) }],
  ])("refuses %s with 400 and writes nothing", async (_what, body) => {
    const teamId = await teamOnPaidPlan();
    const before = await snapshot(teamId);
    expectProblem(await api(requestsPath(teamId), { body, idempotencyKey: newKey() }), 400, "invalid_request");
    expect(await snapshot(teamId)).toEqual(before);
    expect(await requestRows(teamId)).toBe(0);
    await assertInvariants(teamId);
  });

  it("bad ids, cursors and queries are 400; an unknown request is 404", async () => {
    const teamId = await teamOnPaidPlan();
    for (const query of ["?limit=0", "?limit=201", "?status=done", "?cursor=nope", "?limit=x"])
      expectProblem(await api(`${requestsPath(teamId)}${query}`), 400, "invalid_request");
    expectProblem(await api(`${requestsPath(teamId)}/not-an-id`), 400, "invalid_request");
    expectProblem(await decide(teamId, "not-an-id", "accept"), 400, "invalid_request");
    const unknown = `crq_${"0".repeat(32)}`;
    expectProblem(await api(`${requestsPath(teamId)}/${unknown}`), 404, "not_found");
    expectProblem(await decide(teamId, unknown, "accept"), 404, "not_found");
    expectProblem(await decide(teamId, unknown, "reject", { key: null }), 404, "not_found");
    expectProblem(await decide(teamId, unknown, "reject", { body: { reason: "" }, key: null }), 400, "invalid_request");
    await assertInvariants(teamId);
  });
});
