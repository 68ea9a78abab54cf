/**
 * GET /usage: credits consumed per feature or per dimension value, from D1, with hold outcomes.
 * count is the number of charges (spends and captured holds), not of entries.
 */
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import {
  assertInvariants,
  balance,
  call,
  createTeam,
  drainOutbox,
  expectStatus,
  grant,
  makeHoldDue,
  newKey,
  newTeamId,
  spend,
} from "../support";

interface Outcome {
  count: number;
  credits: number;
  creditsExact: string;
}
interface Group {
  key: string | null;
  credits: number;
  creditsExact: string;
  count: number;
  holds?: { captured: Outcome; released: Outcome; expired: Outcome; captureRate: number | null };
}
interface UsageT {
  groups: Group[];
  truncated: boolean;
}

const usagePath = (teamId: string, query: string) => `/v1/teams/${teamId}/usage?${query}`;

async function hold(teamId: string, amount: number, dimensions?: Record<string, string>): Promise<string> {
  const res = await call<{ hold: { id: string } }>(`/v1/teams/${teamId}/holds`, {
    body: { feature: "render", amount, ttlSeconds: 600, ...(dimensions ? { dimensions } : {}) },
    idempotencyKey: newKey(),
  });
  expectStatus(res, 201);
  return res.body.hold.id;
}

/** Spends over several grants, and holds captured (in part), released and expired. */
async function usageTeam(): Promise<{ teamId: string; startedAt: string; endedAt: string }> {
  const teamId = newTeamId();
  await createTeam(teamId);
  const startedAt = new Date(Date.now() - 1).toISOString();
  await grant(teamId, 10);
  await grant(teamId, 10);
  await grant(teamId, 1_000);
  const charge = async (feature: string, amount: number, dimensions?: Record<string, string>) => {
    const res = await spend(teamId, amount, newKey(), { feature, ...(dimensions ? { dimensions } : {}) });
    expectStatus(res, 201);
    return res.body as { entries: unknown[] };
  };
  const first = await charge("search", 15);
  expect(first.entries, "one spend over two grants: two entries").toHaveLength(2);
  await charge("search", 3, { campaign: "spring" });
  await charge("export", 4, { campaign: "fall" });
  await charge("search", 15, { campaign: "spring" });
  const captured = await hold(teamId, 20, { campaign: "spring" });
  expectStatus(
    await call(`/v1/teams/${teamId}/holds/${captured}/capture`, { body: { amount: 5 }, idempotencyKey: newKey() }),
    200,
  );
  const released = await hold(teamId, 7);
  expectStatus(
    await call(`/v1/teams/${teamId}/holds/${released}/release`, { body: {}, idempotencyKey: newKey() }),
    200,
  );
  const expired = await hold(teamId, 9);
  await makeHoldDue(teamId, expired);
  await balance(teamId); // settles: the hold expires
  await hold(teamId, 2); // still pending: no outcome yet
  await drainOutbox(teamId);
  return { teamId, startedAt, endedAt: new Date(Date.now() + 1).toISOString() };
}

describe("GET /v1/teams/{teamId}/usage", () => {
  it("by feature: credits and charges (not entries), and hold outcomes for what is charged on success", async () => {
    const { teamId } = await usageTeam();
    const res = await call<UsageT>(usagePath(teamId, "groupBy=feature"));
    expectStatus(res, 200);
    expect(res.body).toEqual({
      truncated: false,
      groups: [
        { key: "search", credits: 33, creditsExact: "33", count: 3 },
        {
          key: "render",
          credits: 5,
          creditsExact: "5",
          count: 1,
          holds: {
            captured: { count: 1, credits: 5, creditsExact: "5" },
            released: { count: 1, credits: 22, creditsExact: "22" },
            expired: { count: 1, credits: 9, creditsExact: "9" },
            captureRate: 0.3333,
          },
        },
        { key: "export", credits: 4, creditsExact: "4", count: 1 },
      ],
    });
    await assertInvariants(teamId);
  });

  it("by a dimension: entries without it group under null", async () => {
    const { teamId } = await usageTeam();
    const res = await call<UsageT>(usagePath(teamId, "groupBy=campaign"));
    expectStatus(res, 200);
    expect(res.body.groups).toEqual([
      {
        key: "spring",
        credits: 23,
        creditsExact: "23",
        count: 3,
        holds: {
          captured: { count: 1, credits: 5, creditsExact: "5" },
          released: { count: 0, credits: 15, creditsExact: "15" },
          expired: { count: 0, credits: 0, creditsExact: "0" },
          captureRate: 1,
        },
      },
      {
        key: null,
        credits: 15,
        creditsExact: "15",
        count: 1,
        holds: {
          captured: { count: 0, credits: 0, creditsExact: "0" },
          released: { count: 1, credits: 7, creditsExact: "7" },
          expired: { count: 1, credits: 9, creditsExact: "9" },
          captureRate: 0,
        },
      },
      { key: "fall", credits: 4, creditsExact: "4", count: 1 },
    ]);
    const none = await call<UsageT>(usagePath(teamId, "groupBy=region"));
    expect(none.body.groups.map((g) => g.key)).toEqual([null]);
    await assertInvariants(teamId);
  });

  it("from (inclusive) and to (exclusive) bound the window", async () => {
    const { teamId, startedAt, endedAt } = await usageTeam();
    const all = await call<UsageT>(usagePath(teamId, "groupBy=feature"));
    const inWindow = await call<UsageT>(usagePath(teamId, `groupBy=feature&from=${startedAt}&to=${endedAt}`));
    expect(inWindow.body).toEqual(all.body);
    for (const q of [`from=${endedAt}`, `to=${startedAt}`, "to=2000-01-01T00:00:00Z"]) {
      const res = await call<UsageT>(usagePath(teamId, `groupBy=feature&${q}`));
      expectStatus(res, 200);
      expect(res.body, q).toEqual({ groups: [], truncated: false });
    }
    await assertInvariants(teamId);
  });

  it("400 on a bad groupBy or window, 404 for a team that was never created", async () => {
    const teamId = newTeamId();
    await createTeam(teamId);
    for (const q of [
      "",
      "groupBy=",
      "groupBy=bad%20key",
      "groupBy=feature&from=yesterday",
      `groupBy=feature&from=2026-02-01T00:00:00Z&to=2026-01-01T00:00:00Z`,
    ]) {
      const res = await call<{ code: string }>(usagePath(teamId, q));
      expect(res.status, q).toBe(400);
      expect(res.body.code).toBe("invalid_request");
    }
    expect((await call(usagePath(newTeamId(), "groupBy=feature"))).status).toBe(404);
    await assertInvariants(teamId);
  });
});

describe("usage totals past 2^53 and 2^63 credits", () => {
  it("are exact in creditsExact, whatever their size", async () => {
    const teamId = newTeamId("usage-huge");
    await createTeam(teamId);
    // A lifetime no single request can reach, written straight into the replica: three spends of
    // 2^53 − 1 (past 2^53 together), and three of 4·10^18 (past SQLite's own 2^63 together).
    const insert = env.DB.prepare(
      `INSERT INTO ledger_entries (team_id, seq, id, created_at_ms, type, direction, amount_credits,
         balance_after_credits, spend_id, feature, chain_version)
       VALUES (?, ?, ?, ?, 'spend', 'out', CAST(? AS INTEGER), 0, ?, ?, 2)`,
    );
    const rows: [number, string, bigint][] = [];
    for (let i = 0; i < 3; i++) rows.push([i + 1, "big", 2n ** 53n - 1n]);
    for (let i = 0; i < 3; i++) rows.push([i + 4, "huge", 4_000_000_000_000_000_000n]);
    await env.DB.batch(
      rows.map(([seq, feature, amount]) =>
        insert.bind(teamId, seq, `ent_${seq}`, Date.now(), amount.toString(), `spd_${seq}`, feature),
      ),
    );
    const res = await call<UsageT>(usagePath(teamId, "groupBy=feature"));
    expectStatus(res, 200);
    const big = (3n * (2n ** 53n - 1n)).toString();
    const huge = (3n * 4_000_000_000_000_000_000n).toString();
    expect(res.body.groups.map((g) => [g.key, g.creditsExact, g.count])).toEqual([
      ["huge", huge, 3],
      ["big", big, 3],
    ]);
    expect(res.body.groups[1]?.credits).toBe(Number(big));
  });
});
