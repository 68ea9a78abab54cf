// Agency pools (domain/pools.ts): who may be whose subaccount, spends and holds of subaccounts
// drawn from the agency's pool while it shares and from their own credits while it does not, one
// answer per Idempotency-Key across the switch, holds resolved where they were made, attribution,
// and 50 subaccounts spending the pool in parallel without overdrawing it.
import { describe, expect, it } from "vitest";
import {
  api,
  assertInvariants,
  balance,
  call,
  createHold,
  createTeam,
  drainOutbox,
  expectNoTeam,
  expectProblem,
  expectStatus,
  grant,
  holdAction,
  newKey,
  newKeyFor,
  newTeamId,
  objectEntries,
  objectRows,
  putFeature,
  spend,
} from "../support";
import type { BalanceT, HoldReplyT, HoldT, SpendReplyT } from "../support/wire";

const as = (id: string, role: string) => ({ "x-actor-id": id, "x-actor-role": role });

async function agency(credits = 1_000, share = true): Promise<string> {
  const id = newTeamId("agency");
  await createTeam(id, { kind: "agency", settings: { shareCreditsWithSubaccounts: share } });
  if (credits > 0) await grant(id, credits);
  return id;
}

async function subaccountOf(agencyId: string, body: Record<string, unknown> = {}): Promise<string> {
  const id = newTeamId("sub");
  await createTeam(id, { kind: "subaccount", parentTeamId: agencyId, ...body });
  return id;
}

function share(agencyId: string, on: boolean, headers?: Record<string, string>) {
  return api(`/v1/teams/${agencyId}`, {
    method: "PUT",
    body: { settings: { shareCreditsWithSubaccounts: on } },
    headers,
  });
}

describe("agency membership", () => {
  it("a subaccount names an existing agency of its jurisdiction when created, and never changes it", async () => {
    const agencyId = await agency(0);
    const plain = newTeamId("plain");
    await createTeam(plain);
    const parentSub = await subaccountOf(agencyId);
    const refusals: [Record<string, unknown>, number, string, string][] = [
      [{ kind: "subaccount" }, 400, "invalid_request", "names its agency"],
      [{ kind: "subaccount", parentTeamId: newTeamId("nobody") }, 400, "invalid_request", "is not an agency"],
      [{ kind: "subaccount", parentTeamId: plain }, 400, "invalid_request", "is not an agency"],
      // No chains: a subaccount is no agency, so it has no subaccounts.
      [{ kind: "subaccount", parentTeamId: parentSub }, 400, "invalid_request", "is not an agency"],
      [{ parentTeamId: agencyId }, 400, "invalid_request", 'only a team of kind "subaccount"'],
      [{ kind: "subaccount", parentTeamId: "eu:elsewhere" }, 400, "invalid_request", "jurisdiction"],
      [{ settings: { shareCreditsWithSubaccounts: true } }, 400, "invalid_request", "only an agency"],
      [{ settings: { capCreditsPerPeriod: 10 } }, 400, "invalid_request", "only a subaccount"],
    ];
    for (const [body, status, code, says] of refusals) {
      const id = newTeamId("refused");
      const res = await api(`/v1/teams/${id}`, { method: "PUT", body });
      expect(expectProblem(res, status, code).detail, JSON.stringify(body)).toContain(says);
      await expectNoTeam(id);
    }
    const sub = await subaccountOf(agencyId);
    const other = await agency(0);
    for (const body of [{ parentTeamId: other }, { kind: "team" }, { kind: "agency" }]) {
      const moved = await api(`/v1/teams/${sub}`, { method: "PUT", body });
      expect(expectProblem(moved, 409, "conflict").reason).toBe("membership_fixed");
    }
    const becomeSub = await api(`/v1/teams/${plain}`, {
      method: "PUT",
      body: { kind: "subaccount", parentTeamId: agencyId },
    });
    expect(expectProblem(becomeSub, 409, "conflict").reason).toBe("membership_fixed");
    const stopBeingAgency = await api(`/v1/teams/${agencyId}`, { method: "PUT", body: { kind: "team" } });
    expect(expectProblem(stopBeingAgency, 409, "conflict").reason).toBe("has_subaccounts");
    // The same PUT again is no change of membership.
    expectStatus(
      await api(`/v1/teams/${sub}`, { method: "PUT", body: { kind: "subaccount", parentTeamId: agencyId } }),
      200,
    );
    // An agency without subaccounts may become a plain team again.
    expectStatus(await api(`/v1/teams/${other}`, { method: "PUT", body: { kind: "team" } }), 200);
  });

  it("only an agency's owner or admin turns sharing on or off", async () => {
    const agencyId = await agency(0, false);
    for (const role of ["author", "designer", "viewer", "accountant", "manager"]) {
      const res = await share(agencyId, true, as(`p-${role}`, role));
      expect(expectProblem(res, 403, "forbidden").reason).toBe("role");
    }
    expect(
      (await call<{ settings: { shareCreditsWithSubaccounts: boolean } }>(`/v1/teams/${agencyId}`)).body.settings,
    ).toMatchObject({ shareCreditsWithSubaccounts: false });
    expectStatus(await share(agencyId, true, as("ada", "admin")), 200);
    expectStatus(await share(agencyId, false, as("olga", "owner")), 200);
  });
});

describe("pooled spending", () => {
  it("draws from the agency's pool while it shares, from the subaccount's own credits while it does not", async () => {
    const agencyId = await agency(1_000, false);
    const sub = await subaccountOf(agencyId);
    await grant(sub, 50);
    // Sharing off: the subaccount's own balance.
    const own = await spend(sub, 10, newKey(), { reference: "own" });
    expectStatus(own, 201);
    expect(own.body.balance).toMatchObject({ teamId: sub, poolTeamId: sub, available: 40 });
    expect((await balance(sub)).poolTeamId).toBe(sub);

    expectStatus(await share(agencyId, true), 200);
    const pooled = await spend(sub, 30, newKey(), { reference: "pooled" });
    expectStatus(pooled, 201);
    expect(pooled.body.balance).toMatchObject({ teamId: sub, poolTeamId: agencyId, available: 970 });
    expect(pooled.body.entries.map((e) => e.memberTeamId)).toEqual([sub]);
    const shown = await balance(sub);
    expect(shown).toMatchObject({ teamId: sub, poolTeamId: agencyId, available: 970, caps: [] });
    expect((await balance(agencyId)).available).toBe(970);
    // The subaccount's own credits did not move; the pool's entry names it.
    const subRows = await objectEntries(sub);
    expect(subRows.filter((e) => e.type === "spend").map((e) => e.amount)).toEqual([10]);
    const agencyRows = await objectRows<{ amount_credits: number; member_team_id: string | null }>(
      agencyId,
      "SELECT amount_credits, member_team_id FROM entries WHERE type = 'spend'",
    );
    expect(agencyRows.map((e) => [e.amount_credits, e.member_team_id])).toEqual([[30, sub]]);

    expectStatus(await share(agencyId, false), 200);
    const back = await spend(sub, 5);
    expect(back.body.balance).toMatchObject({ poolTeamId: sub, available: 35 });
    await assertInvariants(agencyId);
    await assertInvariants(sub);
  });

  it("one Idempotency-Key, one answer: a retry after the switch moved gets the first answer", async () => {
    const agencyId = await agency(1_000, false);
    const sub = await subaccountOf(agencyId);
    await grant(sub, 100);
    const k1 = newKey();
    const first = await spend(sub, 7, k1);
    expect(first.body.balance.poolTeamId).toBe(sub);
    expectStatus(await share(agencyId, true), 200);
    const again = await spend(sub, 7, k1);
    expect(again.headers.get("idempotent-replayed")).toBe("true");
    expect(again.text).toBe(first.text);
    expect((await balance(agencyId)).available).toBe(1_000);

    const k2 = newKey();
    const pooled = await spend(sub, 9, k2);
    expect(pooled.body.balance.poolTeamId).toBe(agencyId);
    expectStatus(await share(agencyId, false), 200);
    const replay = await spend(sub, 9, k2);
    expect(replay.headers.get("idempotent-replayed")).toBe("true");
    expect(replay.text).toBe(pooled.text);
    // The same key with another body is still refused, on either side of the switch.
    expectProblem(await spend(sub, 10, k2), 422, "idempotency_key_reused");
    expect((await balance(sub)).available).toBe(93);
    expect((await balance(agencyId)).available).toBe(991);
    await assertInvariants(agencyId);
    await assertInvariants(sub);
  });

  it("a hold on the pool stays there: sharing off, it is still captured, released or extended in time against the pool", async () => {
    const agencyId = await agency(1_000);
    const sub = await subaccountOf(agencyId);
    await grant(sub, 100);
    const h1 = await createHold(sub, 200, 600);
    const h2 = await createHold(sub, 100, 600);
    expect((await balance(agencyId)).available).toBe(700);
    expectStatus(await share(agencyId, false), 200);
    // Reads find the pool's hold through the subaccount.
    const read = await call<HoldT>(`/v1/teams/${sub}/holds/${h1.hold.id}`);
    expect(read.body).toMatchObject({ id: h1.hold.id, status: "pending", amount: 200 });
    const grow = await api(`/v1/teams/${sub}/holds/${h1.hold.id}/extend`, {
      body: { amount: 10 },
      idempotencyKey: newKey(),
    });
    expect(expectProblem(grow, 403, "forbidden").reason).toBe("sharing_off");
    const later = await api<HoldReplyT>(`/v1/teams/${sub}/holds/${h1.hold.id}/extend`, {
      body: { ttlSeconds: 1_200 },
      idempotencyKey: newKey(),
    });
    expectStatus(later, 200);
    const captured = await holdAction(sub, h1.hold.id, "capture", { amount: 150 });
    expectStatus(captured, 200);
    expect(captured.body.balance).toMatchObject({ teamId: sub, poolTeamId: agencyId });
    expectStatus(await holdAction(sub, h2.hold.id, "release"), 200);
    expect(await balance(agencyId)).toMatchObject({ available: 850, held: 0 });
    // The subaccount's own credits never moved, and a hold on them is the subaccount's own.
    const ownHold = await createHold(sub, 40, 600);
    expect(ownHold.balance.poolTeamId).toBe(sub);
    expectStatus(await holdAction(sub, ownHold.hold.id, "release"), 200);
    expect((await balance(sub)).available).toBe(100);
    // A hold of one subaccount is not another's, nor the agency's to find under another id.
    const stranger = await subaccountOf(agencyId);
    expectProblem(await call(`/v1/teams/${stranger}/holds/${h1.hold.id}`), 404, "not_found");
    await assertInvariants(agencyId);
    await assertInvariants(sub);
  });

  it("roles: a subaccount's manager uses the pool only while it is shared; viewers never", async () => {
    const agencyId = await agency(1_000);
    const sub = await subaccountOf(agencyId);
    await grant(sub, 100);
    const spendAs = (headers: Record<string, string>) =>
      api<SpendReplyT>(`/v1/teams/${sub}/spends`, {
        body: { feature: "f", amount: 1 },
        idempotencyKey: newKey(),
        headers,
      });
    const managed = await spendAs(as("mia", "manager"));
    expectStatus(managed, 201);
    expect(managed.body.entries[0]).toMatchObject({ actor: "mia", memberTeamId: sub });
    expect(expectProblem(await spendAs(as("vic", "viewer")), 403, "forbidden").reason).toBe("role");
    // A hold on the subaccount's own credits, made before: while sharing is on, its manager may
    // resolve it; a pooled hold the manager made is resolved against the pool after sharing is off.
    expectStatus(await share(agencyId, false), 200);
    const ownHold = await createHold(sub, 5, 600);
    expectStatus(await share(agencyId, true), 200);
    const pooledHold = await api<HoldReplyT>(`/v1/teams/${sub}/holds`, {
      body: { amount: 3, ttlSeconds: 600 },
      idempotencyKey: newKey(),
      headers: as("mia", "manager"),
    });
    expectStatus(pooledHold, 201);
    const releaseAs = (holdId: string) =>
      api(`/v1/teams/${sub}/holds/${holdId}/release`, {
        body: {},
        idempotencyKey: newKey(),
        headers: as("mia", "manager"),
      });
    expectStatus(await releaseAs(ownHold.hold.id), 200);
    expectStatus(await share(agencyId, false), 200);
    expectStatus(await releaseAs(pooledHold.body.hold.id), 200);
    expect(expectProblem(await spendAs(as("mia", "manager")), 403, "forbidden").reason).toBe("sharing_off");
    expectStatus(await spendAs(as("olga", "owner")), 201);
    // A subaccount never buys, whatever the role.
    const buy = await api(`/v1/teams/${sub}/credit-requests`, {
      body: { credits: 100, method: "bank_transfer" },
      headers: as("olga", "owner"),
    });
    expect(expectProblem(buy, 403, "forbidden").reason).toBe("subaccount");
    expect((await balance(agencyId)).available).toBe(999);
    expect((await balance(sub)).available).toBe(99);
    await assertInvariants(agencyId);
    await assertInvariants(sub);
  });

  it("50 subaccounts spending in parallel never overdraw the pool", async () => {
    const agencyId = await agency(1_000);
    const subs = await Promise.all(Array.from({ length: 50 }, () => subaccountOf(agencyId)));
    const results = await Promise.all(
      subs.flatMap((sub) => [1, 2].map(() => spend(sub, 30, newKey(), { reference: sub }))),
    );
    const statuses = results.map((r) => r.status);
    expect(statuses.filter((s) => s === 201)).toHaveLength(33);
    expect(statuses.filter((s) => s === 402)).toHaveLength(67);
    for (const r of results)
      if (r.status === 402) expect((r.body as unknown as { code: string }).code).toBe("insufficient_credits");
    const pool = await balance(agencyId);
    expect(pool.available).toBe(10);
    // Each success is one entry of the pool, attributed to the subaccount that spent it.
    const rows = await objectRows<{ member_team_id: string | null; reference: string | null }>(
      agencyId,
      "SELECT member_team_id, reference FROM entries WHERE type = 'spend'",
    );
    expect(rows).toHaveLength(33);
    for (const row of rows) expect(row.member_team_id).toBe(row.reference);
    await assertInvariants(agencyId);
  });

  it("attribution: the agency's history, CSV and usage name the subaccount and the actor", async () => {
    const agencyId = await agency(1_000);
    const [a, b] = [await subaccountOf(agencyId), await subaccountOf(agencyId)];
    for (const [sub, amount, actor] of [
      [a, 5, "ana"],
      [a, 7, "ana"],
      [b, 11, "bob"],
    ] as const)
      expectStatus(
        await api(`/v1/teams/${sub}/spends`, {
          body: { feature: "render", amount },
          idempotencyKey: newKey(),
          headers: as(actor, "author"),
        }),
        201,
      );
    await spend(agencyId, 3);
    await drainOutbox(agencyId);
    const usage = await call<{ groups: { key: string | null; credits: number; count: number }[] }>(
      `/v1/teams/${agencyId}/usage?groupBy=subaccount`,
    );
    expectStatus(usage, 200);
    const bySub = Object.fromEntries(usage.body.groups.map((g) => [String(g.key), [g.credits, g.count]]));
    expect(bySub).toEqual({ [a]: [12, 2], [b]: [11, 1], null: [3, 1] });
    const csv = await call(`/v1/teams/${agencyId}/entries.csv`);
    expectStatus(csv, 200);
    const lines = csv.text.trim().split("\n");
    const header = lines[0]?.split(",") ?? [];
    const memberColumn = header.indexOf("memberTeamId");
    const actorColumn = header.indexOf("actor");
    expect(memberColumn).toBeGreaterThan(-1);
    const spends = lines.slice(1).filter((l) => l.includes(",spend,"));
    expect(spends.map((l) => [l.split(",")[memberColumn], l.split(",")[actorColumn]]).sort()).toEqual(
      [
        [a, "ana"],
        [a, "ana"],
        [b, "bob"],
        ["", ""],
      ].sort(),
    );
    await assertInvariants(agencyId);
  });
});

describe("an agency's subaccounts", () => {
  it("are listed in id order with their caps as they stand, page by page", async () => {
    const agencyId = await agency(1_000);
    const subs = [];
    for (let i = 0; i < 3; i++)
      subs.push(await subaccountOf(agencyId, i === 1 ? { settings: { capCreditsPerPeriod: 50 } } : {}));
    const capped = subs[1] ?? "";
    expectStatus(await spend(capped, 20), 201);
    type Page = {
      subaccounts: { teamId: string; cap: { used: number; remaining: number } | null }[];
      nextCursor: string | null;
    };
    const first = await call<Page>(`/v1/teams/${agencyId}/subaccounts?limit=2`);
    expectStatus(first, 200);
    const second = await call<Page>(`/v1/teams/${agencyId}/subaccounts?limit=2&cursor=${first.body.nextCursor}`);
    expect(second.body.nextCursor).toBeNull();
    const all = [...first.body.subaccounts, ...second.body.subaccounts];
    expect(all.map((s) => s.teamId)).toEqual([...subs].sort());
    expect(all.find((s) => s.teamId === capped)?.cap).toMatchObject({ creditsPerPeriod: 50, used: 20, remaining: 30 });
    expect(all.filter((s) => s.cap === null)).toHaveLength(2);
    expectProblem(await call(`/v1/teams/${agencyId}/subaccounts?cursor=bm9wZQ`), 400, "invalid_request");
    // Ids with a jurisdiction's prefix (`eu:`) page too: the cursor carries their colon.
    const euAgency = `eu:${newTeamId("agency")}`;
    await createTeam(euAgency, { kind: "agency", jurisdiction: "eu" });
    const euSubs = [`eu:${newTeamId("a")}`, `eu:${newTeamId("b")}`];
    for (const id of euSubs) await createTeam(id, { kind: "subaccount", parentTeamId: euAgency, jurisdiction: "eu" });
    const euFirst = await call<Page>(`/v1/teams/${euAgency}/subaccounts?limit=1`);
    const euNext = await call<Page>(`/v1/teams/${euAgency}/subaccounts?limit=1&cursor=${euFirst.body.nextCursor}`);
    expect([...euFirst.body.subaccounts, ...euNext.body.subaccounts].map((x) => x.teamId)).toEqual([...euSubs].sort());
    // A team that is no agency has none.
    expect((await call<Page>(`/v1/teams/${capped}/subaccounts`)).body).toEqual({ subaccounts: [], nextCursor: null });
  });
});

describe("a subaccount's balance", () => {
  it("is the pool's while shared, its own otherwise", async () => {
    const agencyId = await agency(500);
    const sub = await subaccountOf(agencyId);
    await grant(sub, 20);
    const pooled = await call<BalanceT>(`/v1/teams/${sub}/balance`);
    expect(pooled.body).toMatchObject({ teamId: sub, poolTeamId: agencyId, available: 500 });
    // The planner answers for the credits a spend would draw: the pool's.
    const feature = newKeyFor("render");
    await putFeature(feature, { name: "Render", unit: "video", creditsPerUnit: 100 });
    const estimate = (teamId: string) =>
      api<{ availableNow: number; sufficient: boolean }>(`/v1/teams/${teamId}/estimate`, {
        body: { items: [{ feature, quantity: 1 }] },
      });
    expect((await estimate(sub)).body).toMatchObject({ availableNow: 500, sufficient: true });
    expectStatus(await share(agencyId, false), 200);
    const own = await call<BalanceT>(`/v1/teams/${sub}/balance`);
    expect(own.body).toMatchObject({ teamId: sub, poolTeamId: sub, available: 20 });
    expect(own.body.caps).toBeUndefined();
    expect((await estimate(sub)).body).toMatchObject({ availableNow: 20, sufficient: false });
  });
});
