// Caps on an agency's pooled credits (domain/pools.ts): per subaccount (settings.capCreditsPerPeriod)
// and per member (PUT …/member-caps/{actorId}), enforced in the spend's transaction, pending holds
// counted until they resolve, batches within caps, parallel spends never past a cap, and who may set one.
import { describe, expect, it } from "vitest";
import {
  api,
  assertInvariants,
  balance,
  call,
  createHold,
  createTeam,
  expectProblem,
  expectStatus,
  grant,
  holdAction,
  newKey,
  newTeamId,
  snapshot,
  spend,
} from "../support";
import type { BatchReplyT } from "../support/wire";

const as = (id: string, role: string) => ({ "x-actor-id": id, "x-actor-role": role });

async function pool(credits = 10_000): Promise<string> {
  const id = newTeamId("cap-agency");
  await createTeam(id, { kind: "agency", settings: { shareCreditsWithSubaccounts: true } });
  if (credits > 0) await grant(id, credits);
  return id;
}

async function cappedSub(agencyId: string, cap: number | null): Promise<string> {
  const id = newTeamId("cap-sub");
  await createTeam(id, { kind: "subaccount", parentTeamId: agencyId, settings: { capCreditsPerPeriod: cap } });
  return id;
}

interface CapProblem {
  scope: string;
  subject: string;
  cap: number;
  used: number;
  held: number;
  remaining: number;
  required: number;
  periodStart: string;
}

describe("a subaccount's cap", () => {
  it("402 cap_exceeded past it, with the cap, what was used and what remains; nothing written", async () => {
    const agencyId = await pool();
    const sub = await cappedSub(agencyId, 100);
    expect(
      (await call<{ settings: { capCreditsPerPeriod: number } }>(`/v1/teams/${sub}`)).body.settings.capCreditsPerPeriod,
    ).toBe(100);
    expectStatus(await spend(sub, 60), 201);
    const before = await snapshot(agencyId);
    const over = expectProblem(await spend(sub, 50), 402, "cap_exceeded") as unknown as CapProblem;
    expect(over).toMatchObject({
      scope: "subaccount",
      subject: sub,
      cap: 100,
      used: 60,
      held: 0,
      remaining: 40,
      required: 50,
    });
    expect(Date.parse(over.periodStart)).toBeLessThanOrEqual(Date.now());
    expect(await snapshot(agencyId)).toEqual(before);
    expectStatus(await spend(sub, 40), 201);
    expect((await balance(sub)).caps).toEqual([
      expect.objectContaining({ scope: "subaccount", subject: sub, creditsPerPeriod: 100, used: 100, remaining: 0 }),
    ]);
    expect((await balance(agencyId)).available).toBe(9_900);
    await assertInvariants(agencyId);
  });

  it("pending holds count against it; a release gives it back, a capture counts what it took", async () => {
    const agencyId = await pool();
    const sub = await cappedSub(agencyId, 100);
    const h = await createHold(sub, 70, 600);
    expect((expectProblem(await spend(sub, 40), 402, "cap_exceeded") as unknown as CapProblem).held).toBe(70);
    expectStatus(await holdAction(sub, h.hold.id, "release"), 200);
    expectStatus(await spend(sub, 40), 201);
    const h2 = await createHold(sub, 60, 600);
    // Growing a hold counts too.
    const grow = await holdAction(sub, h2.hold.id, "extend", { amount: 1 });
    expectProblem(grow, 402, "cap_exceeded");
    expectStatus(await holdAction(sub, h2.hold.id, "capture", { amount: 25 }), 200);
    // Used: 40 spent + 25 captured; the 35 the capture gave back are free again.
    const [standing] = (await balance(sub)).caps ?? [];
    expect(standing).toMatchObject({ used: 65, held: 0, remaining: 35 });
    expectStatus(await spend(sub, 35), 201);
    expectProblem(await spend(sub, 1), 402, "cap_exceeded");
    await assertInvariants(agencyId);
  });

  it("batches: all_or_nothing within the cap or 402; until_insufficient stops at the item past it", async () => {
    const agencyId = await pool();
    const sub = await cappedSub(agencyId, 10);
    const batch = (mode: string, amounts: number[]) =>
      api<BatchReplyT>(`/v1/teams/${sub}/spends/batch`, {
        body: { mode, items: amounts.map((amount) => ({ feature: "f", amount })) },
        idempotencyKey: newKey(),
      });
    expectProblem(await batch("all_or_nothing", [4, 4, 4]), 402, "cap_exceeded");
    const partial = await batch("until_insufficient", [4, 4, 4, 1]);
    expectStatus(partial, 200);
    expect(partial.body.results.map((r) => r.status)).toEqual(["spent", "spent", "cap_exceeded", "skipped"]);
    expect(partial.body.results[2]).toMatchObject({
      required: 4,
      scope: "subaccount",
      subject: sub,
      cap: 10,
      remaining: 2,
    });
    expect((await balance(agencyId)).available).toBe(9_992);
    await assertInvariants(agencyId);
  });

  it("parallel spends never pass it", async () => {
    const agencyId = await pool();
    const sub = await cappedSub(agencyId, 100);
    const results = await Promise.all(Array.from({ length: 25 }, () => spend(sub, 10)));
    expect(results.filter((r) => r.status === 201)).toHaveLength(10);
    expect(results.filter((r) => r.status === 402)).toHaveLength(15);
    expect((await balance(agencyId)).available).toBe(9_900);
    await assertInvariants(agencyId);
  });

  it("is set by the agency's owner or admin, never with the subaccount's own key; null removes it", async () => {
    const agencyId = await pool();
    const sub = await cappedSub(agencyId, 5);
    const put = (cap: number | null, headers?: Record<string, string>, auth?: string) =>
      api(`/v1/teams/${sub}`, { method: "PUT", body: { settings: { capCreditsPerPeriod: cap } }, headers, auth });
    expect(expectProblem(await put(500, as("mia", "manager")), 403, "forbidden").reason).toBe("role");
    const made = await api<{ key: string }>("/v1/api-keys", {
      body: { name: "sub's own", scopes: ["admin"], teamId: sub },
    });
    expectStatus(made, 201);
    const ownKey = made.body.key;
    expect(expectProblem(await put(500, undefined, `Bearer ${ownKey}`), 403, "forbidden").reason).toBe("agency_only");
    expectProblem(await spend(sub, 6), 402, "cap_exceeded");
    expectStatus(await put(null, as("olga", "owner")), 200);
    expectStatus(await spend(sub, 6), 201);
    expect((await balance(sub)).caps).toEqual([]);
    expectProblem(
      await api(`/v1/teams/${sub}`, { method: "PUT", body: { settings: { capCreditsPerPeriod: -1 } } }),
      400,
      "invalid_request",
    );
  });
});

describe("a member's cap", () => {
  const capPath = (agencyId: string, actorId: string) =>
    `/v1/teams/${agencyId}/member-caps/${encodeURIComponent(actorId)}`;

  it("limits an actor across the agency and its subaccounts; listed with what it used", async () => {
    const agencyId = await pool();
    const sub = await cappedSub(agencyId, null);
    const actor = "max:o'neil/1@example.com"; // a colon and a slash: the path and the cursor carry any id
    const set = await api<{ cap: Record<string, unknown> }>(capPath(agencyId, actor), {
      method: "PUT",
      body: { creditsPerPeriod: 50 },
    });
    expectStatus(set, 200);
    expect(set.body.cap).toMatchObject({
      scope: "member",
      subject: actor,
      creditsPerPeriod: 50,
      used: 0,
      remaining: 50,
    });
    const spendAs = (teamId: string, amount: number, who: string) =>
      api(`/v1/teams/${teamId}/spends`, {
        body: { feature: "f", amount },
        idempotencyKey: newKey(),
        headers: as(who, "author"),
      });
    expectStatus(await spendAs(agencyId, 30, actor), 201);
    expectStatus(await spendAs(sub, 15, actor), 201);
    const over = expectProblem(await spendAs(sub, 10, actor), 402, "cap_exceeded") as unknown as CapProblem;
    expect(over).toMatchObject({ scope: "member", subject: actor, cap: 50, used: 45, remaining: 5 });
    expectProblem(await spendAs(agencyId, 6, actor), 402, "cap_exceeded");
    // Another member is not limited by it.
    expectStatus(await spendAs(agencyId, 100, "someone-else"), 201);
    const list = await call<{ caps: { subject: string; used: number }[]; nextCursor: string | null }>(
      `/v1/teams/${agencyId}/member-caps`,
    );
    expectStatus(list, 200);
    expect(list.body).toEqual({
      caps: [expect.objectContaining({ subject: actor, used: 45, remaining: 5 })],
      nextCursor: null,
    });
    // Removed: no longer limited.
    const removed = await api<{ cap: unknown }>(capPath(agencyId, actor), {
      method: "PUT",
      body: { creditsPerPeriod: null },
    });
    expect(removed.body.cap).toBeNull();
    expectStatus(await spendAs(agencyId, 6, actor), 201);
    await assertInvariants(agencyId);
  });

  it("pages in member order; refusals: not an agency, a role that may not, bad input", async () => {
    const agencyId = await pool(0);
    for (const actor of ["a", "b", "c"])
      expectStatus(await api(capPath(agencyId, actor), { method: "PUT", body: { creditsPerPeriod: 1 } }), 200);
    const first = await call<{ caps: { subject: string }[]; nextCursor: string | null }>(
      `/v1/teams/${agencyId}/member-caps?limit=2`,
    );
    expect(first.body.caps.map((c) => c.subject)).toEqual(["a", "b"]);
    const next = await call<{ caps: { subject: string }[]; nextCursor: string | null }>(
      `/v1/teams/${agencyId}/member-caps?limit=2&cursor=${first.body.nextCursor}`,
    );
    expect(next.body).toEqual({ caps: [expect.objectContaining({ subject: "c" })], nextCursor: null });
    expectProblem(await call(`/v1/teams/${agencyId}/member-caps?cursor=bm9wZQ`), 400, "invalid_request");

    const plain = newTeamId("plain");
    await createTeam(plain);
    const notAgency = await api(capPath(plain, "a"), { method: "PUT", body: { creditsPerPeriod: 1 } });
    expect(expectProblem(notAgency, 409, "conflict").reason).toBe("not_agency");
    const author = await api(capPath(agencyId, "a"), {
      method: "PUT",
      body: { creditsPerPeriod: 100 },
      headers: as("x", "author"),
    });
    expect(expectProblem(author, 403, "forbidden").reason).toBe("role");
    for (const body of [{}, { creditsPerPeriod: 1.5 }, { creditsPerPeriod: -1 }, { creditsPerPeriod: 1, extra: 1 }])
      expectProblem(await api(capPath(agencyId, "a"), { method: "PUT", body }), 400, "invalid_request");
    expectProblem(
      await api(capPath(newTeamId("nobody"), "a"), { method: "PUT", body: { creditsPerPeriod: 1 } }),
      404,
      "not_found",
    );
  });
});
