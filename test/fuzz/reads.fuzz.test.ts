/**
 * Fuzzing the routes that read: teams, balance, a hold, entries (JSON and CSV), usage, chain
 * verification, replication, ping (including its durable variant), reconcile, and the system
 * routes /healthz, /openapi.json and /docs. Every route in the served document is fuzzed by this
 * file or writes.fuzz.test.ts (both generate the routes from the document); the first test checks
 * that none of the routes issue 5 names is missing from it.
 */
import { afterAll, describe, expect, it } from "vitest";
import { loadContract, routeName, SCALE } from "./fuzz-kit";
import { formatStats, fuzzRoute, type RouteStats } from "./run-route";

const contract = await loadContract();
const routes = contract.routes.filter((r) => r.method === "GET");
/** Requests per route (see writes.fuzz.test.ts for the time both files take). */
const RUNS = Math.max(1, Math.round(220 * SCALE));
const stats: RouteStats[] = [];

/** The routes issue 5 asks to fuzz; each must be in the document (or added by loadContract). */
const REQUIRED = [
  "PUT /v1/teams/{teamId}",
  "GET /v1/teams/{teamId}",
  "GET /v1/teams/{teamId}/balance",
  "POST /v1/teams/{teamId}/spends",
  "POST /v1/teams/{teamId}/spends/batch",
  "POST /v1/teams/{teamId}/holds",
  "GET /v1/teams/{teamId}/holds/{holdId}",
  "POST /v1/teams/{teamId}/holds/{holdId}/capture",
  "POST /v1/teams/{teamId}/holds/{holdId}/release",
  "POST /v1/teams/{teamId}/holds/{holdId}/extend",
  "POST /v1/teams/{teamId}/grants",
  "POST /v1/teams/{teamId}/grants/{grantId}/void",
  "GET /v1/teams/{teamId}/entries",
  "GET /v1/teams/{teamId}/entries.csv",
  "GET /v1/teams/{teamId}/usage",
  "GET /v1/teams/{teamId}/entries/verify",
  "GET /v1/teams/{teamId}/replication",
  "GET /v1/teams/{teamId}/ping",
  "GET /v1/admin/reconcile",
  "GET /openapi.json",
  "GET /docs",
  "GET /healthz",
];

describe("fuzz: routes that read", () => {
  it("covers every route", () => {
    const fuzzed = contract.routes.map(routeName);
    for (const r of REQUIRED) expect(fuzzed, `route ${r} is fuzzed`).toContain(r);
  });
  for (const route of routes) {
    it(routeName(route), async () => {
      stats.push(await fuzzRoute(contract, route, RUNS));
    }, 300_000);
  }
  afterAll(() => {
    console.log(`fuzz (reads): ${formatStats(stats)}`);
  });
});
