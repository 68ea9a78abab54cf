/**
 * The role matrix on spending (issue 12, part 2): with X-Actor-Id / X-Actor-Role, owners, admins,
 * authors, designers (and managers) may spend, hold and act on holds; viewers and accountants may
 * not (403, reason `role`, saved under the key like any refusal the ledger decides, nothing else
 * written). The actor is recorded on every entry it makes and shown in history and CSV. Without
 * the headers the key's scopes alone decide.
 */
import { describe, expect, it } from "vitest";
import {
  allEntries,
  api,
  assertInvariants,
  call,
  createTeam,
  drainOutbox,
  expectProblem,
  expectStatus,
  grant,
  newKey,
  newTeamId,
  snapshot,
} from "../support";

const as = (id: string, role: string) => ({ "x-actor-id": id, "x-actor-role": role });

describe("roles on spending", () => {
  it("let users spend and hold, record who did, and refuse viewers and accountants with nothing written", async () => {
    const teamId = newTeamId("roles");
    await createTeam(teamId);
    await grant(teamId, 1_000);
    for (const role of ["owner", "admin", "author", "designer", "manager"]) {
      const res = await api<{ entries: { actor?: string }[] }>(`/v1/teams/${teamId}/spends`, {
        body: { feature: "f", amount: 2 },
        idempotencyKey: newKey(),
        headers: as(`person-${role}`, role),
      });
      expectStatus(res, 201);
      expect(res.body.entries.map((e) => e.actor)).toEqual([`person-${role}`]);
    }
    const before = await snapshot(teamId);
    for (const role of ["viewer", "accountant"]) {
      const headers = as(`person-${role}`, role);
      for (const [path, body] of [
        [`/v1/teams/${teamId}/spends`, { feature: "f", amount: 2 }],
        [`/v1/teams/${teamId}/spends/batch`, { mode: "all_or_nothing", items: [{ feature: "f", amount: 1 }] }],
        [`/v1/teams/${teamId}/holds`, { amount: 5, ttlSeconds: 60 }],
      ] as const) {
        const res = await api(path, { body, idempotencyKey: newKey(), headers });
        const problem = expectProblem(res, 403, "forbidden");
        expect(problem.reason).toBe("role");
      }
    }
    expect(await snapshot(teamId)).toEqual(before);
    await assertInvariants(teamId);
  });

  it("apply to hold actions, and a hold's capture is recorded for the person who held", async () => {
    const teamId = newTeamId("roles-hold");
    await createTeam(teamId);
    await grant(teamId, 1_000);
    const held = await api<{ hold: { id: string } }>(`/v1/teams/${teamId}/holds`, {
      body: { amount: 50, ttlSeconds: 600 },
      idempotencyKey: newKey(),
      headers: as("ana", "author"),
    });
    expectStatus(held, 201);
    const holdId = held.body.hold.id;
    for (const action of ["capture", "release", "extend"]) {
      const res = await api(`/v1/teams/${teamId}/holds/${holdId}/${action}`, {
        body: action === "extend" ? { amount: 1 } : {},
        idempotencyKey: newKey(),
        headers: as("vic", "viewer"),
      });
      expectProblem(res, 403, "forbidden");
    }
    const captured = await api(`/v1/teams/${teamId}/holds/${holdId}/capture`, {
      body: { amount: 20 },
      idempotencyKey: newKey(),
      headers: as("olga", "owner"),
    });
    expectStatus(captured, 200);
    const entries = await allEntries(teamId);
    const mine = entries.filter((e) => (e as { holdId?: string }).holdId === holdId);
    expect(mine.length).toBeGreaterThan(0);
    for (const e of mine) expect((e as { actor?: string }).actor).toBe("ana");
    const csv = await call(`/v1/teams/${teamId}/entries.csv`);
    expectStatus(csv, 200);
    expect(csv.text).toContain("ana");
    await assertInvariants(teamId);
  });

  it("make the actor part of what a key asked: the same key for another actor is 422", async () => {
    const teamId = newTeamId("roles-key");
    await createTeam(teamId);
    await grant(teamId, 100);
    const key = newKey();
    const body = { feature: "f", amount: 3 };
    expectStatus(
      await api(`/v1/teams/${teamId}/spends`, { body, idempotencyKey: key, headers: as("a", "author") }),
      201,
    );
    const other = await call(`/v1/teams/${teamId}/spends`, { body, idempotencyKey: key, headers: as("b", "author") });
    expectProblem(other, 422, "idempotency_key_reused");
    const none = await call(`/v1/teams/${teamId}/spends`, { body, idempotencyKey: key });
    expectProblem(none, 422, "idempotency_key_reused");
    await assertInvariants(teamId);
  });

  it("roll usage up by actor, from the history in D1", async () => {
    const teamId = newTeamId("roles-usage");
    await createTeam(teamId);
    await grant(teamId, 1_000);
    const spendAs = async (amount: number, headers: Record<string, string>) =>
      expectStatus(
        await api(`/v1/teams/${teamId}/spends`, { body: { feature: "f", amount }, idempotencyKey: newKey(), headers }),
        201,
      );
    await spendAs(3, as("ana", "author"));
    await spendAs(4, as("ana", "author"));
    await spendAs(10, as("olga", "owner"));
    await spendAs(1, {});
    await drainOutbox(teamId);
    const res = await call<{ groups: { key: string | null; credits: number; count: number }[] }>(
      `/v1/teams/${teamId}/usage?groupBy=actor`,
    );
    expectStatus(res, 200);
    const byKey = Object.fromEntries(
      res.body.groups.map((g) => [String(g.key), { credits: g.credits, count: g.count }]),
    );
    expect(byKey).toEqual({
      ana: { credits: 7, count: 2 },
      olga: { credits: 10, count: 1 },
      null: { credits: 1, count: 1 },
    });
    // Without pools no charge is a member team's: one group, null.
    const sub = await call<{ groups: { key: string | null; credits: number }[] }>(
      `/v1/teams/${teamId}/usage?groupBy=subaccount`,
    );
    expect(sub.body.groups).toEqual([expect.objectContaining({ key: null, credits: 18 })]);
    await assertInvariants(teamId);
  });

  it("follow the team's own matrix when it sets one, and the defaults again when it clears it", async () => {
    const teamId = newTeamId("roles-matrix");
    await createTeam(teamId);
    await grant(teamId, 1_000);
    const matrix = { useCredits: ["viewer", "owner"], buyCredits: ["owner"], decideCreditRequests: ["owner"] };
    const set = await api<{ settings: { roleMatrix: unknown } }>(`/v1/teams/${teamId}`, {
      method: "PUT",
      body: { settings: { roleMatrix: matrix } },
    });
    expectStatus(set, 200);
    expect(set.body.settings.roleMatrix).toEqual(matrix);
    const spend = (role: string) =>
      api(`/v1/teams/${teamId}/spends`, {
        body: { feature: "f", amount: 1 },
        idempotencyKey: newKey(),
        headers: as(`p-${role}`, role),
      });
    expectStatus(await spend("viewer"), 201);
    const author = expectProblem(await spend("author"), 403, "forbidden");
    expect(author.detail).toContain("viewer, owner may");
    // Deciding credit requests: only owners now; an admin is refused before anything is looked up.
    const decided = await api(`/v1/teams/${teamId}/credit-requests/crq_${"0".repeat(32)}/reject`, {
      body: {},
      headers: as("adm", "admin"),
    });
    expectProblem(decided, 403, "forbidden");
    for (const bad of [{ useCredits: ["root"] }, { ...matrix, useCredits: ["owner", "owner"] }, { useCredits: [] }]) {
      const res = await api(`/v1/teams/${teamId}`, { method: "PUT", body: { settings: { roleMatrix: bad } } });
      expectProblem(res, 400, "invalid_request");
    }
    const cleared = await api<{ settings: { roleMatrix: unknown } }>(`/v1/teams/${teamId}`, {
      method: "PUT",
      body: { settings: { roleMatrix: null } },
    });
    expect(cleared.body.settings.roleMatrix).toBeNull();
    expectStatus(await spend("author"), 201);
    expectProblem(await spend("viewer"), 403, "forbidden");
    await assertInvariants(teamId);
  });
});
