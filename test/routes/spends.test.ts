import { SELF } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import {
  ADMIN_KEY,
  allEntries,
  api,
  assertInvariants,
  BAD_AMOUNTS,
  balance,
  createTeam,
  daysFromNow,
  expectProblem,
  expectStatus,
  grant,
  newKey,
  newTeamId,
  type SpendReplyT,
  snapshot,
} from "../support";

const spendsPath = (teamId: string) => `/v1/teams/${teamId}/spends`;

async function fundedTeam(amount = 100): Promise<string> {
  const teamId = newTeamId();
  await createTeam(teamId);
  await grant(teamId, amount);
  return teamId;
}

describe("POST /v1/teams/{teamId}/spends", () => {
  it("spends: 201 with the spend, one entry and the balance after", async () => {
    const teamId = await fundedTeam(100);
    const res = await api<SpendReplyT>(spendsPath(teamId), {
      body: {
        feature: "email_finder",
        amount: 12,
        quantity: 3,
        tier: "premium",
        dimensions: { campaign: "spring" },
        reference: "job-1",
      },
      idempotencyKey: newKey(),
    });
    expectStatus(res, 201);
    expect(res.body.spend).toMatchObject({
      amount: 12,
      feature: "email_finder",
      quantity: 3,
      tier: "premium",
      dimensions: { campaign: "spring" },
      reference: "job-1",
    });
    expect(res.body.spend.id).toMatch(/^spd_[0-9a-f]{32}$/);
    expect(res.body.entries).toHaveLength(1);
    expect(res.body.entries[0]).toMatchObject({
      type: "spend",
      direction: "out",
      amount: 12,
      balanceAfter: 88,
      spendId: res.body.spend.id,
      feature: "email_finder",
      quantity: 3,
      dimensions: { campaign: "spring" },
      reference: "job-1",
    });
    expect(res.body.balance).toMatchObject({ available: 88, held: 0, total: 88 });
    const minimal = await api<SpendReplyT>(spendsPath(teamId), {
      body: { feature: "f", amount: 1 },
      idempotencyKey: newKey(),
    });
    expectStatus(minimal, 201);
    expect(minimal.body.spend.quantity).toBe(1);
    expect((await balance(teamId)).available).toBe(87);
    await assertInvariants(teamId);
  });

  it("draws free → promotional → paid, then lower priority, soonest expiry, oldest; one entry per grant", async () => {
    const teamId = newTeamId();
    await createTeam(teamId);
    // Created in an order unlike the spending order.
    const paid = await grant(teamId, 10, { category: "paid", source: "purchase" });
    const promo = await grant(teamId, 10, { category: "promotional", source: "promotional" });
    const freeLowPriority = await grant(teamId, 10, { category: "free", source: "manual", priority: 5 });
    const freeNeverOld = await grant(teamId, 10, { category: "free", source: "allocation" });
    const freeLater = await grant(teamId, 10, {
      category: "free",
      source: "allocation",
      expiresAt: daysFromNow(2),
    });
    const freeNeverNew = await grant(teamId, 10, { category: "free", source: "starter" });
    const freeSoonest = await grant(teamId, 10, {
      category: "free",
      source: "allocation",
      expiresAt: daysFromNow(1),
    });
    const paidPriority = await grant(teamId, 10, { category: "paid", source: "purchase", priority: 1 });

    const res = await api<SpendReplyT>(spendsPath(teamId), {
      body: { feature: "f", amount: 75 },
      idempotencyKey: newKey(),
    });
    expectStatus(res, 201);
    expect(res.body.entries.map((e) => [e.grantId, e.amount, e.balanceAfter])).toEqual([
      [freeSoonest.grant.id, 10, 70],
      [freeLater.grant.id, 10, 60],
      [freeNeverOld.grant.id, 10, 50],
      [freeNeverNew.grant.id, 10, 40],
      [freeLowPriority.grant.id, 10, 30],
      [promo.grant.id, 10, 20],
      [paid.grant.id, 10, 10],
      [paidPriority.grant.id, 5, 5],
    ]);
    for (const e of res.body.entries) expect(e.spendId).toBe(res.body.spend.id);
    const bal = await balance(teamId);
    expect(bal.available).toBe(5);
    expect(bal.grants.map((g) => [g.id, g.remaining])).toEqual([[paidPriority.grant.id, 5]]);
    await assertInvariants(teamId);
  });

  it("402 insufficient_credits with available and required, and nothing written", async () => {
    const teamId = await fundedTeam(30);
    await grant(teamId, 5, { category: "free", source: "allocation" });
    const before = await snapshot(teamId);
    const res = await api(spendsPath(teamId), { body: { feature: "f", amount: 36 }, idempotencyKey: newKey() });
    const problem = expectProblem(res, 402, "insufficient_credits");
    expect(problem).toMatchObject({ available: 35, required: 36, status: 402 });
    expect(await snapshot(teamId)).toEqual(before);

    // One key, one outcome: the refusal is saved, and a retry with the same key after credits
    // arrived gets the same 402, byte for byte; nothing is spent. A new key spends.
    const key = newKey();
    const refused = await api(spendsPath(teamId), { body: { feature: "f", amount: 40 }, idempotencyKey: key });
    expectProblem(refused, 402, "insufficient_credits");
    await grant(teamId, 10);
    const retry = await api(spendsPath(teamId), { body: { feature: "f", amount: 40 }, idempotencyKey: key });
    expectProblem(retry, 402, "insufficient_credits");
    expect(retry.headers.get("idempotent-replayed")).toBe("true");
    expect(retry.text).toBe(refused.text);
    expect(retry.headers.get("original-request-id")).toBe(refused.headers.get("x-request-id"));
    expect((await balance(teamId)).available).toBe(45);
    expectStatus(await api(spendsPath(teamId), { body: { feature: "f", amount: 40 }, idempotencyKey: newKey() }), 201);
    expect((await balance(teamId)).available).toBe(5);
    await assertInvariants(teamId);
  });

  it("402 on a team with no credits at all", async () => {
    const teamId = newTeamId();
    await createTeam(teamId);
    const res = await api(spendsPath(teamId), { body: { feature: "f", amount: 1 }, idempotencyKey: newKey() });
    expect(expectProblem(res, 402, "insufficient_credits")).toMatchObject({ available: 0, required: 1 });
    expect(await allEntries(teamId)).toEqual([]);
    await assertInvariants(teamId);
  });

  it("replays the same key and body with Idempotent-Replayed: true and spends once", async () => {
    const teamId = await fundedTeam(50);
    const key = newKey();
    const body = { feature: "f", amount: 7, reference: "r-1" };
    const first = await api<SpendReplyT>(spendsPath(teamId), { body, idempotencyKey: key });
    expectStatus(first, 201);
    expect(first.headers.get("idempotent-replayed")).toBeNull();
    for (let i = 0; i < 3; i++) {
      const again = await api<SpendReplyT>(spendsPath(teamId), { body, idempotencyKey: key });
      expectStatus(again, 201);
      expect(again.headers.get("idempotent-replayed")).toBe("true");
      expect(again.body).toEqual(first.body);
    }
    // The same JSON with keys in another order is the same request once validated.
    const reordered = await api(spendsPath(teamId), {
      rawBody: '{"reference":"r-1","amount":7,"feature":"f"}',
      idempotencyKey: key,
    });
    expectStatus(reordered, 201);
    expect(reordered.headers.get("idempotent-replayed")).toBe("true");
    expect((await balance(teamId)).available).toBe(43);
    expect(await allEntries(teamId)).toHaveLength(2);
    await assertInvariants(teamId);
  });

  it("422 idempotency_key_reused for the same key with another body, or on another route", async () => {
    const teamId = await fundedTeam(50);
    const key = newKey();
    expectStatus(await api(spendsPath(teamId), { body: { feature: "f", amount: 7 }, idempotencyKey: key }), 201);
    const before = await snapshot(teamId);
    const bodies = [
      { feature: "f", amount: 8 },
      { feature: "g", amount: 7 },
      { feature: "f", amount: 7, reference: "x" },
    ];
    for (const body of bodies) {
      expectProblem(await api(spendsPath(teamId), { body, idempotencyKey: key }), 422, "idempotency_key_reused");
    }
    const onGrant = await api(`/v1/teams/${teamId}/grants`, {
      body: { amount: 7, category: "paid", source: "purchase" },
      idempotencyKey: key,
    });
    expectProblem(onGrant, 422, "idempotency_key_reused");
    const onHold = await api(`/v1/teams/${teamId}/holds`, { body: { amount: 7, ttlSeconds: 60 }, idempotencyKey: key });
    expectProblem(onHold, 422, "idempotency_key_reused");
    const onBatch = await api(`${spendsPath(teamId)}/batch`, {
      body: { mode: "all_or_nothing", items: [{ feature: "f", amount: 7 }] },
      idempotencyKey: key,
    });
    expectProblem(onBatch, 422, "idempotency_key_reused");
    expect(await snapshot(teamId)).toEqual(before);

    // Keys are scoped to a team: the same key is fresh on another team.
    const other = await fundedTeam(10);
    expectStatus(await api(spendsPath(other), { body: { feature: "f", amount: 7 }, idempotencyKey: key }), 201);
    await assertInvariants(teamId);
    await assertInvariants(other);
  });

  it("400 on a missing, empty, too long or non-ASCII Idempotency-Key", async () => {
    const teamId = await fundedTeam(10);
    const before = await snapshot(teamId);
    const body = { feature: "f", amount: 1 };
    const missing = await api(spendsPath(teamId), { body });
    expect(expectProblem(missing, 400, "invalid_request").detail).toContain("Idempotency-Key");
    for (const key of ["k".repeat(256), "has space"]) {
      expectProblem(await api(spendsPath(teamId), { body, idempotencyKey: key }), 400, "invalid_request");
    }
    expectProblem(await api(spendsPath(teamId), { body, headers: { "idempotency-key": "" } }), 400, "invalid_request");
    expectStatus(await api(spendsPath(teamId), { body, idempotencyKey: "k".repeat(255) }), 201);
    const after = await snapshot(teamId);
    expect(after.balance.available).toBe(before.balance.available - 1);
    await assertInvariants(teamId);
  });

  it("400 on malformed JSON, non-JSON content types and non-object bodies; nothing written", async () => {
    const teamId = await fundedTeam(10);
    const before = await snapshot(teamId);
    const path = spendsPath(teamId);
    for (const raw of ['{"feature": "f", "amount": 1', "{feature: f}", "", "[]", "null", "1", '"f"']) {
      const res = await api(path, { rawBody: raw, idempotencyKey: newKey() });
      expectProblem(res, 400, "invalid_request");
    }
    const json = JSON.stringify({ feature: "f", amount: 1 });
    for (const type of ["text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x"]) {
      const res = await api(path, { rawBody: json, idempotencyKey: newKey(), headers: { "content-type": type } });
      expect(expectProblem(res, 400, "invalid_request").detail).toContain("JSON");
    }
    const form = await api(path, {
      rawBody: "feature=f&amount=1",
      idempotencyKey: newKey(),
      headers: { "content-type": "application/x-www-form-urlencoded" },
    });
    expectProblem(form, 400, "invalid_request");
    // A body with no Content-Type at all is refused, not read as an empty object.
    const untyped = await SELF.fetch(`https://ledger.test${path}`, {
      method: "POST",
      headers: { authorization: `Bearer ${ADMIN_KEY}`, "idempotency-key": newKey() },
      body: new TextEncoder().encode(json),
    });
    expect(untyped.status).toBe(400);
    expect(untyped.headers.get("content-type")).toContain("application/problem+json");
    expect(((await untyped.json()) as { code: string }).code).toBe("invalid_request");
    // No body at all: validated as {}, so `feature` is missing.
    expectProblem(await api(path, { method: "POST", idempotencyKey: newKey() }), 400, "invalid_request");
    expect(await snapshot(teamId)).toEqual(before);

    // JSON with a charset parameter is still JSON.
    const charset = await api(path, {
      rawBody: json,
      idempotencyKey: newKey(),
      headers: { "content-type": "application/json; charset=utf-8" },
    });
    expectStatus(charset, 201);
    await assertInvariants(teamId);
  });

  it("400 without amount for a feature not in the price book, or with bad fields; nothing written", async () => {
    const teamId = await fundedTeam(10);
    const before = await snapshot(teamId);
    const noAmount = await api(spendsPath(teamId), { body: { feature: "email_finder" }, idempotencyKey: newKey() });
    expect(expectProblem(noAmount, 400, "invalid_request").detail).toContain("amount");
    const bad: Record<string, unknown>[] = [
      { amount: 1 },
      { feature: "", amount: 1 },
      { feature: "has space", amount: 1 },
      { feature: "f".repeat(65), amount: 1 },
      { feature: "f", amount: 1, quantity: 0 },
      { feature: "f", amount: 1, quantity: 1.0000001 },
      { feature: "f", amount: 1, quantity: 1_000_000_001 },
      { feature: "f", amount: 1, tier: "turbo" },
      { feature: "f", amount: 1, dimensions: { k: 1 } },
      { feature: "f", amount: 1, dimensions: { "": "v" } },
      { feature: "f", amount: 1, dimensions: Object.fromEntries(Array.from({ length: 17 }, (_, i) => [`k${i}`, "v"])) },
      { feature: "f", amount: 1, reference: "" },
      { feature: "f", amount: 1, cost: 1 },
    ];
    for (const body of bad) {
      expectProblem(await api(spendsPath(teamId), { body, idempotencyKey: newKey() }), 400, "invalid_request");
    }
    for (const [label, amount] of BAD_AMOUNTS) {
      const res = await api(spendsPath(teamId), { body: { feature: "f", amount }, idempotencyKey: newKey() });
      expect(res.status, label).toBe(400);
      expectProblem(res, 400, "invalid_request");
    }
    expect(await snapshot(teamId)).toEqual(before);
    await assertInvariants(teamId);
  });

  it("413 payload_too_large for a body over 64 KiB; nothing written", async () => {
    const teamId = await fundedTeam(10);
    const before = await snapshot(teamId);
    const big = JSON.stringify({ feature: "f", amount: 1, reference: "r".repeat(70 * 1024) });
    const res = await api(spendsPath(teamId), { rawBody: big, idempotencyKey: newKey() });
    expectProblem(res, 413, "payload_too_large");
    const over = `${JSON.stringify({ feature: "f", amount: 1 })}${" ".repeat(64 * 1024)}`;
    expect(over.length).toBeGreaterThan(64 * 1024);
    expectProblem(await api(spendsPath(teamId), { rawBody: over, idempotencyKey: newKey() }), 413, "payload_too_large");
    // The same limit guards other ordinary routes.
    const put = await api(`/v1/teams/${teamId}`, {
      method: "PUT",
      rawBody: JSON.stringify({ name: "n".repeat(70 * 1024) }),
    });
    expectProblem(put, 413, "payload_too_large");
    expect(await snapshot(teamId)).toEqual(before);
    // Just under the limit is read (and here accepted: JSON whitespace is fine).
    const under = `${JSON.stringify({ feature: "f", amount: 1 })}${" ".repeat(60 * 1024)}`;
    expectStatus(await api(spendsPath(teamId), { rawBody: under, idempotencyKey: newKey() }), 201);
    await assertInvariants(teamId);
  });
});
