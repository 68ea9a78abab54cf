import { describe, expect, it } from "vitest";
import {
  ADMIN_KEY,
  api,
  assertInvariants,
  createHold,
  createTeam,
  expectNoTeam,
  expectProblem,
  expectStatus,
  grant,
  newKey,
  newTeamId,
  snapshot,
} from "../support";

interface RouteCase {
  name: string;
  method: "GET" | "POST" | "PUT";
  path: string;
  body?: unknown;
}

/** Every /v1 route, each with a request that would succeed with the right key. */
function everyRoute(teamId: string, ids: { grantId: string; holdIds: string[] }, newTeamIdForPut: string): RouteCase[] {
  const t = `/v1/teams/${teamId}`;
  const [h0, h1, h2] = ids.holdIds.map((id) => `${t}/holds/${id}`);
  return [
    { name: "PUT team (create)", method: "PUT", path: `/v1/teams/${newTeamIdForPut}`, body: { name: "x" } },
    { name: "PUT team (update)", method: "PUT", path: t, body: { name: "changed", seats: 9 } },
    { name: "GET team", method: "GET", path: t },
    { name: "GET balance", method: "GET", path: `${t}/balance` },
    { name: "POST spend", method: "POST", path: `${t}/spends`, body: { feature: "f", amount: 1 } },
    {
      name: "POST batch",
      method: "POST",
      path: `${t}/spends/batch`,
      body: { mode: "all_or_nothing", items: [{ feature: "f", amount: 1 }] },
    },
    { name: "POST hold", method: "POST", path: `${t}/holds`, body: { amount: 1, ttlSeconds: 60 } },
    { name: "GET hold", method: "GET", path: `${h0}` },
    { name: "POST capture", method: "POST", path: `${h0}/capture`, body: { amount: 1 } },
    { name: "POST release", method: "POST", path: `${h1}/release`, body: {} },
    { name: "POST extend", method: "POST", path: `${h2}/extend`, body: { amount: 1 } },
    {
      name: "POST grant",
      method: "POST",
      path: `${t}/grants`,
      body: { amount: 5, category: "paid", source: "purchase" },
    },
    { name: "POST void", method: "POST", path: `${t}/grants/${ids.grantId}/void` },
    { name: "GET entries", method: "GET", path: `${t}/entries` },
    { name: "GET replication", method: "GET", path: `${t}/replication` },
    { name: "GET ping", method: "GET", path: `${t}/ping` },
    { name: "unknown /v1 route", method: "GET", path: "/v1/nothing-here" },
  ];
}

const BAD_AUTH: [string, false | string][] = [
  ["no Authorization header", false],
  ["Basic credentials", "Basic x"],
  ["Basic with the admin key", `Basic ${btoa(`admin:${ADMIN_KEY}`)}`],
  ["Bearer without a key", "Bearer"],
  ["Bearer and a space only", "Bearer "],
  ["a bare key", ADMIN_KEY],
  ["another scheme", `Token ${ADMIN_KEY}`],
  ["a wrong key", "Bearer wrong-key"],
  ["the key with a suffix", `Bearer ${ADMIN_KEY}x`],
  ["a prefix of the key", `Bearer ${ADMIN_KEY.slice(0, -1)}`],
  ["the key twice", `Bearer ${ADMIN_KEY} ${ADMIN_KEY}`],
  ["an empty header", ""],
];

describe("auth on every /v1 route", () => {
  it("401 unauthorized problem+json for missing, malformed and wrong keys, and nothing written", async () => {
    const teamId = newTeamId();
    await createTeam(teamId, { name: "orig" });
    const g = await grant(teamId, 50);
    const holdIds: string[] = [];
    for (let i = 0; i < 3; i++) holdIds.push((await createHold(teamId, 5)).hold.id);
    const putTarget = newTeamId("never");
    const routes = everyRoute(teamId, { grantId: g.grant.id, holdIds }, putTarget);
    const before = await snapshot(teamId);

    const keys = new Map<string, string>();
    for (const route of routes) {
      const key = newKey();
      keys.set(route.name, key);
      for (const [label, auth] of BAD_AUTH) {
        const res = await api(route.path, { method: route.method, body: route.body, idempotencyKey: key, auth });
        expect(res.status, `${route.name} with ${label}`).toBe(401);
        const problem = expectProblem(res, 401, "unauthorized");
        expect(problem.detail).not.toContain(ADMIN_KEY);
        expect(res.headers.get("idempotent-replayed")).toBeNull();
      }
    }

    expect(await snapshot(teamId)).toEqual(before);
    await expectNoTeam(putTarget);

    // The same requests with the right key go through, and were not replays: nothing of the
    // refused attempts was stored under their keys.
    for (const route of routes) {
      if (route.name === "unknown /v1 route") continue;
      const res = await api(route.path, {
        method: route.method,
        body: route.body,
        idempotencyKey: keys.get(route.name),
      });
      expect(res.status, `${route.name}: ${res.text}`).toBeLessThan(300);
      expect(res.headers.get("idempotent-replayed"), route.name).toBeNull();
    }
    expectProblem(await api("/v1/nothing-here"), 404, "not_found");
    await assertInvariants(teamId);
    await assertInvariants(putTarget);
  });

  it("checks the key before the body: a bad request without a key is 401, not 400", async () => {
    const teamId = newTeamId();
    const res = await api(`/v1/teams/${teamId}/spends`, { rawBody: "{not json", auth: false });
    expectProblem(res, 401, "unauthorized");
    const wrongType = await api(`/v1/teams/${teamId}/spends`, {
      rawBody: "a=1",
      auth: "Bearer nope",
      headers: { "content-type": "application/x-www-form-urlencoded" },
    });
    expectProblem(wrongType, 401, "unauthorized");
    const badId = await api("/v1/teams/bad%20id!/balance", { auth: false });
    expectProblem(badId, 401, "unauthorized");
    await expectNoTeam(teamId);
  });

  it("routes outside /v1 need no key", async () => {
    for (const path of ["/healthz", "/openapi.json", "/docs"]) {
      const res = await api(path, { auth: false });
      expectStatus(res, 200);
    }
  });
});
