import { describe, expect, it } from "vitest";
import {
  api,
  assertInvariants,
  BAD_AMOUNTS,
  balance,
  createHold,
  createTeam,
  expectProblem,
  expectStatus,
  grant,
  type HoldReplyT,
  type HoldT,
  newKey,
  newTeamId,
  snapshot,
  unknownId,
} from "../support";

const holdsPath = (teamId: string) => `/v1/teams/${teamId}/holds`;
const holdPath = (teamId: string, holdId: string) => `/v1/teams/${teamId}/holds/${holdId}`;

async function fundedTeam(amount: number): Promise<string> {
  const teamId = newTeamId();
  await createTeam(teamId);
  await grant(teamId, amount);
  return teamId;
}

async function act(teamId: string, holdId: string, action: string, body?: unknown, key = newKey()) {
  return api<HoldReplyT>(`${holdPath(teamId, holdId)}/${action}`, { method: "POST", body, idempotencyKey: key });
}

describe("POST /v1/teams/{teamId}/holds", () => {
  it("creates a pending hold (201) whose deadline is createdAt + ttl; GET reads it", async () => {
    const teamId = await fundedTeam(100);
    const res = await api<HoldReplyT>(holdsPath(teamId), {
      body: { amount: 30, ttlSeconds: 900, feature: "render", quantity: 2, reference: "job-9", dimensions: { a: "b" } },
      idempotencyKey: newKey(),
    });
    expectStatus(res, 201);
    const hold = res.body.hold;
    expect(hold).toMatchObject({
      amount: 30,
      capturedAmount: 0,
      status: "pending",
      resolvedAt: null,
      feature: "render",
      quantity: 2,
      reference: "job-9",
    });
    expect(hold.id).toMatch(/^hld_[0-9a-f]{32}$/);
    expect(Date.parse(hold.expiresAt) - Date.parse(hold.createdAt)).toBe(900_000);
    expect(res.body.entries.map((e) => [e.type, e.direction, e.amount, e.holdId, e.balanceAfter])).toEqual([
      ["hold", "out", 30, hold.id, 70],
    ]);
    expect(res.body.balance).toMatchObject({ available: 70, held: 30, total: 100 });

    const read = await api<HoldT>(holdPath(teamId, hold.id));
    expectStatus(read, 200);
    expect(read.body).toEqual(hold);
    await assertInvariants(teamId);
  });

  it("accepts ttlSeconds of 1 and 7 days; refuses 0, more than 7 days, fractions and a missing ttl", async () => {
    const teamId = await fundedTeam(100);
    const week = 7 * 24 * 60 * 60;
    const max = await createHold(teamId, 1, week);
    expect(Date.parse(max.hold.expiresAt) - Date.parse(max.hold.createdAt)).toBe(week * 1000);
    const before = await snapshot(teamId);
    for (const ttlSeconds of [0, -1, week + 1, 1.5, "60", null, undefined]) {
      const res = await api(holdsPath(teamId), { body: { amount: 1, ttlSeconds }, idempotencyKey: newKey() });
      expect(res.status, String(ttlSeconds)).toBe(400);
      expectProblem(res, 400, "invalid_request");
    }
    expect(await snapshot(teamId)).toEqual(before);
    await assertInvariants(teamId);
    // ttlSeconds 1 passes validation: on a team without credits the answer is 402, not 400. (A
    // real one-second hold would expire while the test looks at it.)
    const empty = newTeamId();
    await createTeam(empty);
    const shortest = await api(holdsPath(empty), { body: { amount: 1, ttlSeconds: 1 }, idempotencyKey: newKey() });
    expectProblem(shortest, 402, "insufficient_credits");
    await assertInvariants(empty);
  });

  it("402 when the amount is not available, with nothing written", async () => {
    const teamId = await fundedTeam(20);
    await createHold(teamId, 15);
    const before = await snapshot(teamId);
    const res = await api(holdsPath(teamId), { body: { amount: 6, ttlSeconds: 60 }, idempotencyKey: newKey() });
    expect(expectProblem(res, 402, "insufficient_credits")).toMatchObject({ required: 6, available: 5 });
    expect(await snapshot(teamId)).toEqual(before);
    await assertInvariants(teamId);
  });

  it("400 for a missing amount, bad amounts or unknown fields; nothing written", async () => {
    const teamId = await fundedTeam(20);
    const before = await snapshot(teamId);
    const noAmount = await api(holdsPath(teamId), { body: { ttlSeconds: 60, feature: "f" }, idempotencyKey: newKey() });
    expect(expectProblem(noAmount, 400, "invalid_request").detail).toContain("amount");
    for (const [label, amount] of BAD_AMOUNTS) {
      const res = await api(holdsPath(teamId), { body: { amount, ttlSeconds: 60 }, idempotencyKey: newKey() });
      expect(res.status, label).toBe(400);
      expectProblem(res, 400, "invalid_request");
    }
    const extra = await api(holdsPath(teamId), {
      body: { amount: 1, ttlSeconds: 60, ttl: 5 },
      idempotencyKey: newKey(),
    });
    expectProblem(extra, 400, "invalid_request");
    expectProblem(await api(holdsPath(teamId), { body: { amount: 1, ttlSeconds: 60 } }), 400, "invalid_request");
    expect(await snapshot(teamId)).toEqual(before);
    await assertInvariants(teamId);
  });

  it("replays a hold with Idempotent-Replayed and reserves once", async () => {
    const teamId = await fundedTeam(20);
    const key = newKey();
    const body = { amount: 5, ttlSeconds: 60 };
    const first = await api<HoldReplyT>(holdsPath(teamId), { body, idempotencyKey: key });
    expectStatus(first, 201);
    const again = await api<HoldReplyT>(holdsPath(teamId), { body, idempotencyKey: key });
    expectStatus(again, 201);
    expect(again.headers.get("idempotent-replayed")).toBe("true");
    expect(again.body).toEqual(first.body);
    expect(await balance(teamId)).toMatchObject({ available: 15, held: 5 });
    await assertInvariants(teamId);
  });
});

describe("GET /v1/teams/{teamId}/holds/{holdId}", () => {
  it("404 for an unknown hold, 400 for a malformed id", async () => {
    const teamId = await fundedTeam(10);
    expectProblem(await api(holdPath(teamId, unknownId("hld"))), 404, "not_found");
    for (const id of ["hld_1", "hold", `hld_${"A".repeat(32)}`]) {
      expectProblem(await api(holdPath(teamId, id)), 400, "invalid_request");
    }
    await assertInvariants(teamId);
  });
});

describe("hold actions", () => {
  it("capture with no amount captures everything", async () => {
    const teamId = await fundedTeam(100);
    const { hold } = await createHold(teamId, 40);
    const res = await act(teamId, hold.id, "capture", {});
    expectStatus(res, 200);
    expect(res.body.hold).toMatchObject({ status: "captured", amount: 40, capturedAmount: 40 });
    expect(res.body.hold.resolvedAt).not.toBeNull();
    expect(res.body.entries.map((e) => [e.type, e.direction, e.amount, e.balanceAfter])).toEqual([
      ["capture", "none", 40, 60],
    ]);
    expect(res.body.balance).toMatchObject({ available: 60, held: 0, total: 60 });
    await assertInvariants(teamId);
  });

  it("capture without any body captures everything too", async () => {
    const teamId = await fundedTeam(10);
    const { hold } = await createHold(teamId, 4);
    const res = await act(teamId, hold.id, "capture");
    expectStatus(res, 200);
    expect(res.body.hold).toMatchObject({ status: "captured", capturedAmount: 4 });
    expect(res.body.balance).toMatchObject({ available: 6, held: 0 });
    await assertInvariants(teamId);
  });

  it("capture and release read an empty body sent as JSON as {}", async () => {
    const teamId = await fundedTeam(10);
    const a = await createHold(teamId, 3);
    const b = await createHold(teamId, 2);
    const captured = await api<HoldReplyT>(`${holdPath(teamId, a.hold.id)}/capture`, {
      method: "POST",
      rawBody: "",
      idempotencyKey: newKey(),
    });
    expectStatus(captured, 200);
    expect(captured.body.hold).toMatchObject({ status: "captured", capturedAmount: 3 });
    const released = await api<HoldReplyT>(`${holdPath(teamId, b.hold.id)}/release`, {
      method: "POST",
      rawBody: "",
      idempotencyKey: newKey(),
    });
    expectStatus(released, 200);
    expect(released.body.hold.status).toBe("released");
    expect(released.body.balance).toMatchObject({ available: 7, held: 0 });
    await assertInvariants(teamId);
  });

  it("a partial capture returns the rest as release entries, grant by grant", async () => {
    const teamId = newTeamId();
    await createTeam(teamId);
    const free = await grant(teamId, 10, { category: "free", source: "allocation" });
    const paid = await grant(teamId, 100, { category: "paid", source: "purchase" });
    const created = await createHold(teamId, 30);
    expect(created.entries.map((e) => [e.grantId, e.amount])).toEqual([
      [free.grant.id, 10],
      [paid.grant.id, 20],
    ]);
    const res = await act(teamId, created.hold.id, "capture", { amount: 15 });
    expectStatus(res, 200);
    expect(res.body.hold).toMatchObject({ status: "captured", amount: 30, capturedAmount: 15 });
    expect(res.body.entries.map((e) => [e.type, e.direction, e.grantId, e.amount])).toEqual([
      ["capture", "none", free.grant.id, 10],
      ["capture", "none", paid.grant.id, 5],
      ["release", "in", paid.grant.id, 15],
    ]);
    expect(res.body.balance).toMatchObject({ available: 95, held: 0, total: 95 });
    const bal = await balance(teamId);
    expect(bal.grants.map((g) => [g.id, g.remaining, g.held])).toEqual([[paid.grant.id, 95, 0]]);
    await assertInvariants(teamId);
  });

  it("capture of more than the hold is 400; an amount of 0 or a bad amount is 400; nothing written", async () => {
    const teamId = await fundedTeam(100);
    const { hold } = await createHold(teamId, 10);
    const before = await snapshot(teamId);
    const over = await act(teamId, hold.id, "capture", { amount: 11 });
    expect(expectProblem(over, 400, "invalid_request")).toMatchObject({ held: 10 });
    for (const [label, amount] of BAD_AMOUNTS) {
      const res = await act(teamId, hold.id, "capture", { amount });
      expect(res.status, label).toBe(400);
      expectProblem(res, 400, "invalid_request");
    }
    expectProblem(await act(teamId, hold.id, "capture", { amount: 1, note: "x" }), 400, "invalid_request");
    expectProblem(
      await api(`${holdPath(teamId, hold.id)}/capture`, { body: {}, method: "POST" }),
      400,
      "invalid_request",
    );
    expect(await snapshot(teamId)).toEqual(before);
    expectStatus(await act(teamId, hold.id, "capture", { amount: 10 }), 200);
    await assertInvariants(teamId);
  });

  it("release returns every credit and records the reason", async () => {
    const teamId = await fundedTeam(50);
    const { hold } = await createHold(teamId, 20);
    const res = await act(teamId, hold.id, "release", { reason: "job failed" });
    expectStatus(res, 200);
    expect(res.body.hold).toMatchObject({ status: "released", capturedAmount: 0, reason: "job failed" });
    expect(res.body.entries.map((e) => [e.type, e.direction, e.amount, e.balanceAfter])).toEqual([
      ["release", "in", 20, 50],
    ]);
    expect(res.body.balance).toMatchObject({ available: 50, held: 0, total: 50 });
    const other = await createHold(teamId, 5);
    expectStatus(await act(teamId, other.hold.id, "release"), 200);
    expectProblem(await act(teamId, other.hold.id, "release", { reason: "" }), 400, "invalid_request");
    await assertInvariants(teamId);
  });

  it("extend adds credits to the hold, and 402 when they are not available", async () => {
    const teamId = await fundedTeam(50);
    const { hold } = await createHold(teamId, 20, 600);
    const res = await act(teamId, hold.id, "extend", { amount: 10 });
    expectStatus(res, 200);
    expect(res.body.hold).toMatchObject({ status: "pending", amount: 30, expiresAt: hold.expiresAt });
    expect(res.body.entries.map((e) => [e.type, e.amount, e.holdId])).toEqual([["hold", 10, hold.id]]);
    expect(res.body.balance).toMatchObject({ available: 20, held: 30, total: 50 });

    const before = await snapshot(teamId);
    const tooMuch = await act(teamId, hold.id, "extend", { amount: 21 });
    expect(expectProblem(tooMuch, 402, "insufficient_credits")).toMatchObject({ required: 21, available: 20 });
    expect(await snapshot(teamId)).toEqual(before);

    // The extended hold captures and releases as one amount.
    const captured = await act(teamId, hold.id, "capture", { amount: 25 });
    expectStatus(captured, 200);
    expect(captured.body.hold).toMatchObject({ amount: 30, capturedAmount: 25, status: "captured" });
    expect(captured.body.balance).toMatchObject({ available: 25, held: 0 });
    await assertInvariants(teamId);
  });

  it("extend with ttlSeconds moves the deadline to now + ttl", async () => {
    const teamId = await fundedTeam(50);
    const { hold } = await createHold(teamId, 20, 60);
    const ttl = 6 * 24 * 60 * 60;
    const t0 = Date.now();
    const res = await act(teamId, hold.id, "extend", { ttlSeconds: ttl });
    const t1 = Date.now();
    expectStatus(res, 200);
    const expiresAtMs = Date.parse(res.body.hold.expiresAt);
    expect(expiresAtMs).toBeGreaterThanOrEqual(t0 + ttl * 1000);
    expect(expiresAtMs).toBeLessThanOrEqual(t1 + ttl * 1000);
    expect(expiresAtMs).toBeGreaterThan(Date.parse(hold.expiresAt));
    expect(res.body.hold).toMatchObject({ amount: 20, status: "pending" });
    expect(res.body.entries).toEqual([]);
    const read = await api<HoldT>(holdPath(teamId, hold.id));
    expect(read.body.expiresAt).toBe(res.body.hold.expiresAt);

    const both = await act(teamId, hold.id, "extend", { amount: 5, ttlSeconds: 120 });
    expectStatus(both, 200);
    expect(both.body.hold.amount).toBe(25);
    await assertInvariants(teamId);
  });

  it("extend with an empty body, no body, or bad values is 400; nothing written", async () => {
    const teamId = await fundedTeam(50);
    const { hold } = await createHold(teamId, 20, 600);
    const before = await snapshot(teamId);
    expect(expectProblem(await act(teamId, hold.id, "extend", {}), 400, "invalid_request").detail).toContain(
      "ttlSeconds",
    );
    expectProblem(await act(teamId, hold.id, "extend"), 400, "invalid_request");
    for (const body of [
      { ttlSeconds: 0 },
      { ttlSeconds: 7 * 24 * 60 * 60 + 1 },
      { amount: 0 },
      { amount: 1.5 },
      { by: 1 },
    ]) {
      expectProblem(await act(teamId, hold.id, "extend", body), 400, "invalid_request");
    }
    for (const [label, amount] of BAD_AMOUNTS) {
      const res = await act(teamId, hold.id, "extend", { amount });
      expect(res.status, label).toBe(400);
    }
    expect(await snapshot(teamId)).toEqual(before);
    await assertInvariants(teamId);
  });

  it("capture, release and extend of a resolved hold are 409 hold_not_pending; nothing written", async () => {
    const teamId = await fundedTeam(100);
    const captured = await createHold(teamId, 10);
    expectStatus(await act(teamId, captured.hold.id, "capture", {}), 200);
    const released = await createHold(teamId, 10);
    expectStatus(await act(teamId, released.hold.id, "release", {}), 200);
    const before = await snapshot(teamId);
    for (const [holdId, status] of [
      [captured.hold.id, "captured"],
      [released.hold.id, "released"],
    ] as const) {
      for (const [action, body] of [
        ["capture", {}],
        ["capture", { amount: 1 }],
        ["release", {}],
        ["extend", { amount: 1 }],
        ["extend", { ttlSeconds: 60 }],
      ] as const) {
        const res = await act(teamId, holdId, action, body);
        expect(expectProblem(res, 409, "hold_not_pending")).toMatchObject({ holdStatus: status });
      }
      const read = await api<HoldT>(holdPath(teamId, holdId));
      expect(read.body.status).toBe(status);
    }
    expect(await snapshot(teamId)).toEqual(before);
    await assertInvariants(teamId);
  });

  it("a repeated action with the same key replays its answer instead of 409", async () => {
    const teamId = await fundedTeam(100);
    const { hold } = await createHold(teamId, 10);
    const key = newKey();
    const first = await act(teamId, hold.id, "capture", { amount: 4 }, key);
    expectStatus(first, 200);
    const again = await act(teamId, hold.id, "capture", { amount: 4 }, key);
    expectStatus(again, 200);
    expect(again.headers.get("idempotent-replayed")).toBe("true");
    expect(again.body).toEqual(first.body);
    expectProblem(await act(teamId, hold.id, "capture", { amount: 5 }, key), 422, "idempotency_key_reused");
    expectProblem(await act(teamId, hold.id, "release", { amount: 4 }, key), 400, "invalid_request");
    expectProblem(await act(teamId, hold.id, "release", {}, key), 422, "idempotency_key_reused");
    expect(await balance(teamId)).toMatchObject({ available: 96, held: 0 });
    await assertInvariants(teamId);
  });

  it("actions on an unknown hold are 404; on a malformed hold id 400", async () => {
    const teamId = await fundedTeam(10);
    const before = await snapshot(teamId);
    for (const [action, body] of [
      ["capture", {}],
      ["release", {}],
      ["extend", { ttlSeconds: 60 }],
    ] as const) {
      expectProblem(await act(teamId, unknownId("hld"), action, body), 404, "not_found");
      expectProblem(await act(teamId, "hld_nope", action, body), 400, "invalid_request");
    }
    expect(await snapshot(teamId)).toEqual(before);
    await assertInvariants(teamId);
  });
});
