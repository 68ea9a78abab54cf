/**
 * Validation across every route that takes a body: amounts, unknown fields, content types,
 * malformed JSON and body size. Each refused request must write nothing.
 */
import { describe, expect, it } from "vitest";
import {
  api,
  assertInvariants,
  BAD_AMOUNTS,
  createHold,
  createTeam,
  expectProblem,
  expectStatus,
  grant,
  newKey,
  newTeamId,
  snapshot,
} from "../support";

interface BodyRoute {
  name: string;
  method: "POST" | "PUT";
  path: string;
  /** A body this route accepts. */
  valid: Record<string, unknown>;
  /** Puts an amount where this route reads one, or null when it has no amount. */
  withAmount: ((amount: unknown) => Record<string, unknown>) | null;
}

/** A team with credits and a pending hold, and every route that takes a body, aimed at it. */
async function setup(): Promise<{ teamId: string; routes: BodyRoute[] }> {
  const teamId = newTeamId();
  await createTeam(teamId);
  await grant(teamId, 1000);
  const held = await createHold(teamId, 100);
  const other = await createHold(teamId, 10);
  const t = `/v1/teams/${teamId}`;
  const h = `${t}/holds/${held.hold.id}`;
  const routes: BodyRoute[] = [
    {
      name: "grant",
      method: "POST",
      path: `${t}/grants`,
      valid: { amount: 1, category: "paid", source: "manual" },
      withAmount: (amount) => ({ amount, category: "paid", source: "manual" }),
    },
    {
      name: "spend",
      method: "POST",
      path: `${t}/spends`,
      valid: { feature: "f", amount: 1 },
      withAmount: (amount) => ({ feature: "f", amount }),
    },
    {
      name: "batch",
      method: "POST",
      path: `${t}/spends/batch`,
      valid: { mode: "all_or_nothing", items: [{ feature: "f", amount: 1 }] },
      withAmount: (amount) => ({ mode: "all_or_nothing", items: [{ feature: "f", amount }] }),
    },
    {
      name: "hold",
      method: "POST",
      path: `${t}/holds`,
      valid: { amount: 1, ttlSeconds: 60 },
      withAmount: (amount) => ({ amount, ttlSeconds: 60 }),
    },
    {
      name: "extend",
      method: "POST",
      path: `${h}/extend`,
      valid: { amount: 1 },
      withAmount: (amount) => ({ amount }),
    },
    {
      name: "capture",
      method: "POST",
      path: `${h}/capture`,
      valid: { amount: 1 },
      withAmount: (amount) => ({ amount }),
    },
    {
      name: "release",
      method: "POST",
      path: `${t}/holds/${other.hold.id}/release`,
      valid: { reason: "r" },
      withAmount: null,
    },
    { name: "team", method: "PUT", path: t, valid: { name: "n" }, withAmount: null },
  ];
  return { teamId, routes };
}

describe("amounts on every route", () => {
  it("negative, zero, fractional, string, null, boolean, unsafe and too large → 400; nothing written", async () => {
    const { teamId, routes } = await setup();
    const before = await snapshot(teamId);
    for (const route of routes) {
      if (!route.withAmount) continue;
      for (const [label, amount] of BAD_AMOUNTS) {
        const res = await api(route.path, {
          method: route.method,
          body: route.withAmount(amount),
          idempotencyKey: newKey(),
        });
        expect(res.status, `${route.name} with ${label}`).toBe(400);
        const problem = expectProblem(res, 400, "invalid_request");
        expect(problem.detail, `${route.name} with ${label}`).toContain("amount");
      }
    }
    expect(await snapshot(teamId)).toEqual(before);
    await assertInvariants(teamId);
  });

  it("the largest allowed amount (10^12) passes validation on every amount route", async () => {
    const { teamId, routes } = await setup();
    const before = await snapshot(teamId);
    for (const name of ["spend", "batch", "hold", "extend"]) {
      const route = routes.find((r) => r.name === name);
      if (!route?.withAmount) throw new Error(`no route ${name}`);
      const res = await api(route.path, {
        method: route.method,
        body: route.withAmount(1_000_000_000_000),
        idempotencyKey: newKey(),
      });
      // Valid, but more than the team has.
      expect(expectProblem(res, 402, "insufficient_credits").required, name).toBe(1_000_000_000_000);
    }
    const capture = routes.find((r) => r.name === "capture");
    if (!capture?.withAmount) throw new Error("no capture route");
    const over = await api(capture.path, { body: capture.withAmount(1_000_000_000_000), idempotencyKey: newKey() });
    expectProblem(over, 400, "invalid_request");
    expect(await snapshot(teamId)).toEqual(before);
    const grant = routes.find((r) => r.name === "grant");
    if (!grant?.withAmount) throw new Error("no grant route");
    const big = await api(grant.path, { body: grant.withAmount(1_000_000_000_000), idempotencyKey: newKey() });
    expectStatus(big, 201);
    await assertInvariants(teamId);
  });
});

describe("bodies on every route", () => {
  it("each valid body is accepted (the baseline the other cases differ from)", async () => {
    const { teamId, routes } = await setup();
    for (const route of routes) {
      const res = await api(route.path, { method: route.method, body: route.valid, idempotencyKey: newKey() });
      expect(res.status, `${route.name}: ${res.text}`).toBeLessThan(300);
    }
    await assertInvariants(teamId);
  });

  it("unknown fields → 400 naming the field; nothing written", async () => {
    const { teamId, routes } = await setup();
    const before = await snapshot(teamId);
    for (const route of routes) {
      const res = await api(route.path, {
        method: route.method,
        body: { ...route.valid, surprise: 1 },
        idempotencyKey: newKey(),
      });
      expect(expectProblem(res, 400, "invalid_request").detail, route.name).toContain("surprise");
    }
    expect(await snapshot(teamId)).toEqual(before);
    await assertInvariants(teamId);
  });

  it("malformed JSON and non-object JSON → 400; nothing written", async () => {
    const { teamId, routes } = await setup();
    const before = await snapshot(teamId);
    for (const route of routes) {
      for (const raw of ["{", '{"amount": 1,}', "[1]", "true", "null", "'x'"]) {
        const res = await api(route.path, { method: route.method, rawBody: raw, idempotencyKey: newKey() });
        expect(res.status, `${route.name} with ${raw}`).toBe(400);
        expectProblem(res, 400, "invalid_request");
      }
    }
    expect(await snapshot(teamId)).toEqual(before);
    await assertInvariants(teamId);
  });

  it("a valid body sent as text/plain or form data → 400; nothing written", async () => {
    const { teamId, routes } = await setup();
    const before = await snapshot(teamId);
    for (const route of routes) {
      for (const type of ["text/plain", "text/plain;charset=UTF-8", "application/x-www-form-urlencoded", "text/json"]) {
        const res = await api(route.path, {
          method: route.method,
          rawBody: JSON.stringify(route.valid),
          idempotencyKey: newKey(),
          headers: { "content-type": type },
        });
        expect(res.status, `${route.name} as ${type}`).toBe(400);
        expectProblem(res, 400, "invalid_request");
      }
    }
    expect(await snapshot(teamId)).toEqual(before);
    await assertInvariants(teamId);
  });

  it("a body over 64 KiB → 413 on every ordinary route; nothing written", async () => {
    const { teamId, routes } = await setup();
    const before = await snapshot(teamId);
    for (const route of routes) {
      if (route.name === "batch") continue;
      const raw = `${JSON.stringify(route.valid)}${" ".repeat(64 * 1024)}`;
      const res = await api(route.path, { method: route.method, rawBody: raw, idempotencyKey: newKey() });
      expect(res.status, route.name).toBe(413);
      expectProblem(res, 413, "payload_too_large");
    }
    const voidRes = await api(`/v1/teams/${teamId}/grants/${before.balance.grants[0]?.id}/void`, {
      method: "POST",
      rawBody: `{}${" ".repeat(64 * 1024)}`,
      idempotencyKey: newKey(),
    });
    expectProblem(voidRes, 413, "payload_too_large");
    expect(await snapshot(teamId)).toEqual(before);
    await assertInvariants(teamId);
  });

  it("string fields beyond their bounds → 400; nothing written", async () => {
    const { teamId, routes } = await setup();
    const before = await snapshot(teamId);
    const spend = routes.find((r) => r.name === "spend");
    const release = routes.find((r) => r.name === "release");
    if (!spend || !release) throw new Error("routes missing");
    const cases: [BodyRoute, Record<string, unknown>][] = [
      [spend, { ...spend.valid, reference: "r".repeat(201) }],
      [spend, { ...spend.valid, feature: "f".repeat(65) }],
      [spend, { ...spend.valid, dimensions: { ["k".repeat(41)]: "v" } }],
      [spend, { ...spend.valid, dimensions: { k: "v".repeat(201) } }],
      [release, { reason: "r".repeat(201) }],
    ];
    for (const [route, body] of cases) {
      const res = await api(route.path, { method: route.method, body, idempotencyKey: newKey() });
      expectProblem(res, 400, "invalid_request");
    }
    expect(await snapshot(teamId)).toEqual(before);
    // At the bounds, accepted.
    const atBounds = await api(spend.path, {
      body: {
        feature: "f".repeat(64),
        amount: 1,
        reference: "r".repeat(200),
        dimensions: Object.fromEntries(Array.from({ length: 16 }, (_, i) => [`${i}`.padEnd(40, "k"), "v".repeat(200)])),
      },
      idempotencyKey: newKey(),
    });
    expectStatus(atBounds, 201);
    await assertInvariants(teamId);
  });
});
