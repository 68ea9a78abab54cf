/**
 * Fuzzing the routes that write: PUT teams, spends, spends/batch, holds (create, capture, release,
 * extend) and grants (create, void). Requests are generated from the served OpenAPI document
 * (see schema-arbitraries.ts and fuzz-kit.ts for what is generated and what is checked).
 * Replay a failure with the command it prints; VITE_FUZZ_SCALE=<n> runs n times as many cases.
 */
import { afterAll, describe, it } from "vitest";
import { loadContract, routeName, SCALE } from "./fuzz-kit";
import { formatStats, fuzzRoute, type RouteStats } from "./run-route";

const contract = await loadContract();
const routes = contract.routes.filter((r) => r.method !== "GET");
/** Requests per route. Both fuzz files together: about 6,000 requests in about 50 s on a 2-core machine. */
const RUNS = Math.max(1, Math.round(350 * SCALE));
const stats: RouteStats[] = [];

describe("fuzz: routes that write", () => {
  for (const route of routes) {
    it(routeName(route), async () => {
      stats.push(await fuzzRoute(contract, route, RUNS));
    }, 300_000);
  }
  afterAll(() => {
    console.log(`fuzz (writes): ${formatStats(stats)}`);
  });
});
