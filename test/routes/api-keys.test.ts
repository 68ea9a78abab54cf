/**
 * API keys and who may call what (issue 12, part 1): making, listing and revoking keys; every route
 * of the served document has an access rule; the matrix of route × caller (no key, malformed
 * header, wrong key, revoked key, expired key, each scope, a key bound to another team) gives the
 * status the rule says, writes nothing when it refuses, and never tells "not yours" from "not there".
 */
import { runInDurableObject } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { ACTOR_ROLES } from "../../src/domain/roles";
import { ACCESS, requirementOf } from "../../src/middleware/access";
import {
  api,
  assertInvariants,
  call,
  createTeam,
  expectProblem,
  expectStatus,
  grant,
  ledgerStub,
  newKey,
  newTeamId,
  objectRows,
  savedRefusals,
  snapshot,
} from "../support";

interface MadeKey {
  id: string;
  key: string;
  prefix: string;
  scopes: string[];
  teamId: string | null;
}

async function makeKey(body: Record<string, unknown>): Promise<MadeKey> {
  const res = await api<MadeKey>("/v1/api-keys", { body: { name: "test key", ...body } });
  expectStatus(res, 201);
  return res.body;
}

const bearer = (k: MadeKey | string) => `Bearer ${typeof k === "string" ? k : k.key}`;
const FAKE = { holdId: `hld_${"0".repeat(32)}`, grantId: `grt_${"0".repeat(32)}`, requestId: `crq_${"0".repeat(32)}` };

/** A request for an access row, on `teamId`: path parameters filled in, a small body for writes. */
function requestFor(row: (typeof ACCESS)[number], teamId: string): { path: string; method: string; body?: unknown } {
  const path = row.path
    .replace("{teamId}", teamId)
    .replace("{holdId}", FAKE.holdId)
    .replace("{grantId}", FAKE.grantId)
    .replace("{requestId}", FAKE.requestId)
    .replace("{featureKey}", "access-test")
    .replace("{planId}", "access-test")
    .replace("{endpointId}", "access-test")
    .replace("{deliveryId}", "access-test")
    .replace("{keyId}", "0000000000000000");
  const body = row.method === "POST" || row.method === "PUT" ? {} : undefined;
  return { path, method: row.method, ...(body === undefined ? {} : { body }) };
}

describe("API keys", () => {
  it("are made with their secret shown once, listed without it, and revoked at once", async () => {
    const teamId = newTeamId("keys");
    await createTeam(teamId);
    await grant(teamId, 100);
    const made = await makeKey({ scopes: ["spend", "read"], teamId });
    expect(made.key).toMatch(/^ck_[a-z0-9]{16}_[A-Za-z0-9_-]{43}$/);
    expect(made.prefix).toBe(`ck_${made.id}`);

    const spent = await api(`/v1/teams/${teamId}/spends`, {
      body: { feature: "f", amount: 7 },
      idempotencyKey: newKey(),
      auth: bearer(made),
    });
    expectStatus(spent, 201);

    const list = await api<{ apiKeys: (MadeKey & { lastUsedAt: string | null })[] }>("/v1/api-keys?limit=200");
    expectStatus(list, 200);
    expect(list.text).not.toContain(made.key.slice(made.prefix.length + 1));
    const listed = list.body.apiKeys.find((k) => k.id === made.id);
    expect(listed).toMatchObject({ prefix: made.prefix, scopes: ["spend", "read"], teamId });

    const revoked = await call(`/v1/api-keys/${made.id}`, { method: "DELETE" });
    expectStatus(revoked, 204);
    const after = await api(`/v1/teams/${teamId}/balance`, { auth: bearer(made) });
    expectProblem(after, 401, "unauthorized");
    expectProblem(await call(`/v1/api-keys/${made.id}`, { method: "DELETE" }), 404, "not_found");
    const listedAfter = await api<{ apiKeys: MadeKey[] }>("/v1/api-keys?limit=200");
    expect(listedAfter.body.apiKeys.map((k) => k.id)).not.toContain(made.id);
    await assertInvariants(teamId);
  });

  it("a key bound to a team is refused by the team's object the moment DELETE answers, whatever a copy says", async () => {
    const agencyId = newTeamId("revoke-agency");
    await createTeam(agencyId, { kind: "agency", settings: { shareCreditsWithSubaccounts: true } });
    await grant(agencyId, 100);
    const teamId = newTeamId("revoke-sub");
    await createTeam(teamId, { kind: "subaccount", parentTeamId: agencyId });
    const made = await makeKey({ scopes: ["spend"], teamId });
    const spendWith = () =>
      api(`/v1/teams/${teamId}/spends`, {
        body: { feature: "f", amount: 1 },
        idempotencyKey: newKey(),
        auth: bearer(made),
      });
    expectStatus(await spendWith(), 201);
    expectStatus(await call(`/v1/api-keys/${made.id}`, { method: "DELETE" }), 204);
    // The team's object holds the revocation itself…
    expect(await objectRows(teamId, "SELECT key_id FROM revoked_keys")).toEqual([{ key_id: made.id }]);
    // …so a request an isolate still let through (a copy up to 2 s stale) is refused there, for
    // the team's own credits and its pool's, and nothing is written or saved under its key.
    const before = await snapshot(agencyId);
    const stub = ledgerStub(teamId);
    const idem = { key: newKey(), fingerprint: "f", requestId: "r", keyId: made.id };
    const charge = { feature: "f", amount: 1, memberTeamId: undefined };
    const refused = await stub.spend(teamId, charge, undefined, idem);
    expect(refused).toMatchObject({ ok: false, code: "unauthorized" });
    const held = await stub.createHold(teamId, { ...charge, ttlSeconds: 60 }, undefined, idem);
    expect(held).toMatchObject({ ok: false, code: "unauthorized" });
    expect(await snapshot(agencyId)).toEqual(before);
    expect(await savedRefusals(teamId)).toEqual(new Map());
    // Another key of the same team is not affected.
    const other = await makeKey({ scopes: ["spend"], teamId });
    const ok = await stub.spend(teamId, charge, undefined, { ...idem, key: newKey(), keyId: other.id });
    expect(ok).toMatchObject({ ok: true, status: 201 });
    // Revoking a key twice: the second is a 404 and changes nothing.
    expectProblem(await call(`/v1/api-keys/${made.id}`, { method: "DELETE" }), 404, "not_found");
  });

  it("answer a keyed creation again byte for byte, and keep no secret readable", async () => {
    const idem = newKey();
    const body = { name: "keyed", scopes: ["read"] };
    // api() sends it twice and checks the replay is the first answer, byte for byte.
    const first = await api<MadeKey>("/v1/api-keys", { body, idempotencyKey: idem });
    expectStatus(first, 201);
    const again = await call<MadeKey>("/v1/api-keys", { body, idempotencyKey: idem });
    expect(again.headers.get("idempotent-replayed")).toBe("true");
    expect(again.text).toBe(first.text);
    expectProblem(
      await call("/v1/api-keys", { body: { ...body, name: "other" }, idempotencyKey: idem }),
      422,
      "idempotency_key_reused",
    );
    const listed = await api<{ apiKeys: MadeKey[] }>("/v1/api-keys?limit=200");
    expect(listed.body.apiKeys.filter((k) => k.id === first.body.id)).toHaveLength(1);
    // The directory's storage holds neither the secret nor the Idempotency-Key in clear.
    const secret = first.body.key.slice(first.body.prefix.length + 1);
    const stub = env.API_KEYS.get(env.API_KEYS.idFromName("account"));
    const dump = await runInDurableObject(stub, (_i, state) =>
      ["keys", "replies", "meta"]
        .map((t) => JSON.stringify(state.storage.sql.exec(`SELECT * FROM ${t}`).toArray()))
        .join("\n"),
    );
    expect(dump).toContain(first.body.id);
    expect(dump).not.toContain(secret);
    expect(dump).not.toContain(idem);
  });

  it("refuse bad input with 400 and make nothing", async () => {
    const before = await api<{ apiKeys: MadeKey[] }>("/v1/api-keys?limit=200");
    for (const body of [
      {},
      { name: "x", scopes: [] },
      { name: "x", scopes: ["root"] },
      { name: "x", scopes: ["spend", "spend"] },
      { name: "x", scopes: ["spend"], teamId: "bad team" },
      { name: "x", scopes: ["spend"], expiresAt: "2000-01-01T00:00:00Z" },
      { name: "x", scopes: ["spend"], extra: 1 },
    ])
      expectProblem(await api("/v1/api-keys", { body }), 400, "invalid_request");
    const after = await api<{ apiKeys: MadeKey[] }>("/v1/api-keys?limit=200");
    expect(after.body.apiKeys.map((k) => k.id)).toEqual(before.body.apiKeys.map((k) => k.id));
  });

  it("list in pages", async () => {
    for (let i = 0; i < 3; i++) await makeKey({ scopes: ["read"] });
    const seen = new Set<string>();
    let cursor: string | null = null;
    let pages = 0;
    do {
      const page: { body: { apiKeys: MadeKey[]; nextCursor: string | null }; status: number } = await api(
        `/v1/api-keys?limit=2${cursor ? `&cursor=${cursor}` : ""}`,
      );
      expectStatus(page as never, 200);
      for (const k of page.body.apiKeys) {
        expect(seen.has(k.id), "no key on two pages").toBe(false);
        seen.add(k.id);
      }
      cursor = page.body.nextCursor;
      pages += 1;
    } while (cursor && pages < 10_000);
    expect(seen.size).toBeGreaterThanOrEqual(3);
    expectProblem(await api("/v1/api-keys?cursor=nonsense"), 400, "invalid_request");
  });

  it("stop working when they expire", async () => {
    const teamId = newTeamId("keys-exp");
    await createTeam(teamId);
    const soon = await makeKey({ scopes: ["read"], expiresAt: new Date(Date.now() + 1_500).toISOString() });
    expectStatus(await api(`/v1/teams/${teamId}/balance`, { auth: bearer(soon) }), 200);
    await new Promise((r) => setTimeout(r, 1_700));
    expectProblem(await api(`/v1/teams/${teamId}/balance`, { auth: bearer(soon) }), 401, "unauthorized");
  });
});

/**
 * Which roles the role matrix (domain/roles.ts, the seeds' defaults) lets through each route that
 * acts for a person, with a body that reaches the rule; every other route ignores the actor.
 */
const USE = ["owner", "admin", "author", "designer", "manager"];
const OWNERS = ["owner", "admin"];
const ROLE_RULES: Record<string, { roles: string[]; body?: unknown }> = {
  "POST /v1/teams/{teamId}/spends": { roles: USE, body: { feature: "f", amount: 1 } },
  "POST /v1/teams/{teamId}/spends/batch": {
    roles: USE,
    body: { mode: "all_or_nothing", items: [{ feature: "f", amount: 1 }] },
  },
  "POST /v1/teams/{teamId}/holds": { roles: USE, body: { amount: 1, ttlSeconds: 60 } },
  "POST /v1/teams/{teamId}/holds/{holdId}/capture": { roles: USE, body: {} },
  "POST /v1/teams/{teamId}/holds/{holdId}/release": { roles: USE, body: {} },
  "POST /v1/teams/{teamId}/holds/{holdId}/extend": { roles: USE, body: { ttlSeconds: 60 } },
  "POST /v1/teams/{teamId}/payments": { roles: USE, body: { kind: "invoice", reference: "INV-roles", amount: 1 } },
  "POST /v1/teams/{teamId}/checkout-sessions": {
    roles: OWNERS,
    body: { packId: "small", successUrl: "https://app.example/ok", cancelUrl: "https://app.example/no" },
  },
  "POST /v1/teams/{teamId}/credit-requests": { roles: OWNERS, body: { credits: 10, method: "bank_transfer" } },
  "POST /v1/teams/{teamId}/credit-requests/{requestId}/accept": { roles: OWNERS, body: {} },
  "POST /v1/teams/{teamId}/credit-requests/{requestId}/reject": { roles: OWNERS, body: {} },
  "PUT /v1/teams/{teamId}": {
    roles: OWNERS,
    body: { kind: "agency", settings: { shareCreditsWithSubaccounts: true } },
  },
  "PUT /v1/teams/{teamId}/member-caps/{actorId}": { roles: OWNERS, body: { creditsPerPeriod: 10 } },
};

describe("access", () => {
  it("every route × each actor role: the role matrix refuses exactly the roles it names, 403 reason role", async () => {
    const teamId = newTeamId("acc-roles");
    await createTeam(teamId);
    await grant(teamId, 1_000);
    const mismatches: string[] = [];
    for (const row of ACCESS) {
      if (!row.path.startsWith("/v1/teams/")) continue;
      const what = `${row.method} ${row.path}`;
      const rule = ROLE_RULES[what];
      const base = requestFor(row, teamId);
      const path = base.path.replace("{actorId}", "member-1");
      for (const role of ACTOR_ROLES) {
        const body = rule?.body ?? base.body;
        const res = await api(path, {
          method: row.method,
          ...(body === undefined ? {} : { body }),
          ...(row.method === "POST" ? { idempotencyKey: newKey() } : {}),
          headers: { "x-actor-id": `p-${role}`, "x-actor-role": role },
        });
        const refusedForRole = res.status === 403 && (res.body as { reason?: string }).reason === "role";
        const shouldRefuse = rule !== undefined && !rule.roles.includes(role);
        if (refusedForRole !== shouldRefuse)
          mismatches.push(`${what} as ${role}: ${res.status} ${res.text.slice(0, 120)}`);
      }
    }
    expect(mismatches).toEqual([]);
    await assertInvariants(teamId);
  }, 120_000);

  it("has a rule for every route of the served document", async () => {
    const doc = await call<{ paths: Record<string, Record<string, unknown>> }>("/openapi.json");
    const missing: string[] = [];
    for (const [path, ops] of Object.entries(doc.body.paths))
      for (const method of Object.keys(ops)) {
        if (!path.startsWith("/v1/")) continue;
        const concrete = path.replaceAll(/\{[^}]+\}/g, "x");
        if (!requirementOf(method.toUpperCase(), concrete)) missing.push(`${method.toUpperCase()} ${path}`);
      }
    expect(missing).toEqual([]);
  });

  it("gives every route × caller the status its rule says, writes nothing when it refuses, and leaks no team", async () => {
    const teamA = newTeamId("acc-a");
    const teamB = newTeamId("acc-b");
    const ghost = newTeamId("acc-ghost");
    await createTeam(teamA);
    await createTeam(teamB);
    await grant(teamA, 1_000);
    await grant(teamB, 1_000);
    const keys = {
      spend: await makeKey({ scopes: ["spend"] }),
      read: await makeKey({ scopes: ["read"] }),
      billing: await makeKey({ scopes: ["billing"] }),
      boundAdmin: await makeKey({ scopes: ["admin"], teamId: teamA }),
      boundSpend: await makeKey({ scopes: ["spend"], teamId: teamA }),
    };
    const revoked = await makeKey({ scopes: ["admin"] });
    expectStatus(await call(`/v1/api-keys/${revoked.id}`, { method: "DELETE" }), 204);
    const wrongSecret = `ck_${keys.spend.id}_${"A".repeat(43)}`;
    const before = { a: await snapshot(teamA), b: await snapshot(teamB) };

    const refusals: string[] = [];
    for (const row of ACCESS) {
      const onB = requestFor(row, teamB);
      const what = `${row.method} ${row.path}`;
      const send = (auth: string | false, target = onB) =>
        api(target.path, {
          method: target.method,
          ...(target.body === undefined ? {} : { body: target.body }),
          ...(row.method === "POST" ? { idempotencyKey: newKey() } : {}),
          auth,
        });
      // Not authenticated: 401 whatever the route.
      for (const auth of [
        false,
        "Basic abc",
        "Bearer",
        bearer(wrongSecret),
        bearer(revoked),
        bearer("ck_short"),
      ] as const)
        expectProblem(await send(auth), 401, "unauthorized");
      // Scoped keys: allowed means the request got past access (whatever the route then says).
      for (const [name, key] of Object.entries({ spend: keys.spend, read: keys.read, billing: keys.billing })) {
        const res = await send(bearer(key));
        const allowed =
          row.need.kind === "anyKey" || (row.need.kind === "team" && row.need.scopes.includes(name as never));
        if (allowed) expect([401, 403], `${what} with a ${name} key: ${res.text}`).not.toContain(res.status);
        else {
          expectProblem(res, 403, "forbidden");
          refusals.push(`${what} ${name}`);
        }
      }
      // Keys bound to team A, on team B: a team route is B's 404 (the same as a team that is not
      // there), an account route is 403.
      for (const key of [keys.boundAdmin, keys.boundSpend]) {
        const res = await send(bearer(key));
        if (row.need.kind === "team") {
          const body = expectProblem(res, 404, "not_found");
          expect(body.detail).toBe(`team ${teamB} not found`);
          const there = await send(bearer(key), requestFor(row, ghost));
          const ghostBody = expectProblem(there, 404, "not_found");
          expect(ghostBody.detail).toBe(`team ${ghost} not found`);
          expect({ ...body, detail: "", requestId: "" }).toEqual({ ...ghostBody, detail: "", requestId: "" });
        } else if (row.need.kind === "account") expectProblem(res, 403, "forbidden");
        else expect([401, 403]).not.toContain(res.status);
      }
      // On its own team, the bound admin key gets past access everywhere but the account routes.
      const own = await send(bearer(keys.boundAdmin), requestFor(row, teamA));
      if (row.need.kind === "account") expectProblem(own, 403, "forbidden");
      else expect([401, 403], `${what} with A's admin key on A: ${own.text}`).not.toContain(own.status);
    }
    expect(refusals.length).toBeGreaterThan(20);
    // Every refusal above wrote nothing on B; A was only asked with bodies its routes refuse.
    const after = { b: await snapshot(teamB) };
    expect(after.b).toEqual(before.b);
    await assertInvariants(teamA);
    await assertInvariants(teamB);
  }, 120_000);
});
