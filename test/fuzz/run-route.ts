/**
 * Runs one route's fuzz property: builds a pre-made team, then sends `runs` generated requests,
 * checking after each one the response properties and, for every 4xx, that nothing was written
 * (see fuzz-kit.ts). A failure prints the seed, the path and the request, and how to replay it:
 *
 *   VITE_FUZZ_SEED=<seed> VITE_FUZZ_PATH=<path> npx vitest run test/fuzz -t '<route>'
 *
 * (Vite passes only VITE_-prefixed variables into the workerd runtime the tests run in.) The path
 * replays the shrunk case against a freshly built team, so a case that depends on what earlier
 * requests did may need the seed alone, which replays the whole run.
 */
import fc from "fast-check";
import { expect } from "vitest";
import { ADMIN_KEY, ALWAYS_SAVED, historyProblems, NEVER_SAVED } from "../support";
import {
  buildRequest,
  type Contract,
  checkResponse,
  checkSuccess,
  describeWire,
  makeTeam,
  materialize,
  type Plan,
  planArb,
  REPLAY_PATH,
  REPLAY_SEED,
  type RouteSpec,
  routeName,
  type Sent,
  scopedKeys,
  sendRequest,
  snapshotTeam,
  TEAM_PATTERN,
  topUp,
  unexplainedChanges,
  VERBOSE,
  type World,
} from "./fuzz-kit";

export interface RouteStats {
  route: string;
  cases: number;
  statuses: Map<number, number>;
  /** Requests the runtime refused to build (e.g. a header value it rejects): not sent. */
  unsendable: number;
  undocumented: Set<number>;
  /** Problem codes and details seen, with counts (printed with VITE_FUZZ_VERBOSE=1). */
  details: Map<string, number>;
  ms: number;
}

let teamCounter = 0;
/** GET /v1/teams/{teamId}: 200 when the team exists. */
async function teamStatus(teamId: string): Promise<number> {
  const probe = await sendRequest(
    buildRequest({
      method: "GET",
      target: `/v1/teams/${teamId}`,
      headers: [["authorization", `Bearer ${ADMIN_KEY}`]],
      body: { kind: "none" },
    }),
  );
  return probe.status;
}

export async function fuzzRoute(contract: Contract, route: RouteSpec, runs: number): Promise<RouteStats> {
  const started = Date.now();
  teamCounter += 1;
  const tag = `${route.method.toLowerCase()}${route.path.replaceAll(/[^A-Za-z0-9]+/g, "-")}`.slice(0, 60);
  const suffix = `${teamCounter}-${crypto.randomUUID().slice(0, 8)}`;
  const world: World = {
    fixtureTeam: `fz-${tag}-${suffix}`,
    ghostTeam: `fz-ghost-${suffix}`,
    tag,
    fixture: await (async () => {
      await makeTeam(`fz-${tag}-${suffix}`);
      return snapshotTeam(`fz-${tag}-${suffix}`);
    })(),
    usedKeys: [],
    keys: await scopedKeys(),
  };
  let ghost = await snapshotTeam(world.ghostTeam);
  const stats: RouteStats = {
    route: routeName(route),
    cases: 0,
    statuses: new Map(),
    unsendable: 0,
    undocumented: new Set(),
    details: new Map(),
    ms: 0,
  };
  let lastRequest = "";

  const property = fc.asyncProperty(planArb(route, contract.resolve), async (plan: Plan) => {
    // Each case is judged against the state it starts from (a failed case, re-run while shrinking,
    // leaves what it wrote behind).
    await topUp(world.fixture);
    world.fixture = await snapshotTeam(world.fixtureTeam);
    ghost = await snapshotTeam(world.ghostTeam);
    const m = materialize(route, plan, world);
    const what = describeWire(m.wire);
    lastRequest = what;
    let request: Request;
    try {
      request = buildRequest(m.wire);
    } catch {
      stats.unsendable += 1;
      return;
    }
    // A team named literally (not the pre-made one): did it exist before the request?
    const literalTeam = plan.team.kind === "literal" && TEAM_PATTERN.test(m.teamId);
    const existedBefore = literalTeam ? (await teamStatus(m.teamId)) === 200 : true;
    const res = await sendRequest(request);
    stats.cases += 1;
    stats.statuses.set(res.status, (stats.statuses.get(res.status) ?? 0) + 1);
    if (!route.documented.includes(String(res.status)) && res.status !== 404) stats.undocumented.add(res.status);
    if (res.status >= 400 && typeof res.json === "object" && res.json !== null) {
      const p = res.json as { code?: unknown; detail?: unknown };
      const detail = `${res.status} ${String(p.code)}: ${String(p.detail).replaceAll(/\d+/g, "N").slice(0, 100)}`;
      stats.details.set(detail, (stats.details.get(detail) ?? 0) + 1);
    }
    checkResponse(res, what, m.wire.method);
    checkSuccess(route, res, what, m.wire.method);
    // A key bound to another team never gets anything done on a team's route, nor on the
    // account's (only reading the price book and plans is open to it), whatever the path's form.
    const openRead = route.method === "GET" && /^\/v1\/(features|plans)/.test(route.path);
    if (plan.auth === "boundElsewhere" && route.path.startsWith("/v1/") && !openRead)
      expect(res.status, `a key bound to another team was let through:\n${what}`).toBeGreaterThanOrEqual(400);

    // One key, one outcome: the same request again is the first answer byte for byte when the
    // ledger decided it (replayed), or refused the same way when the worker refused it first.
    const keyed = m.wire.method.toUpperCase() === "POST" && m.key !== null;
    if (keyed && !NEVER_SAVED.includes(res.status)) {
      let again: Sent | null = null;
      try {
        again = await sendRequest(buildRequest(m.wire));
      } catch {
        again = null;
      }
      if (again !== null) {
        checkResponse(again, `${what} (sent again)`, m.wire.method);
        if (again.headers.get("idempotent-replayed") === "true") {
          expect(again.status, `a replay has the first status:\n${what}`).toBe(res.status);
          expect(again.text, `a replay is the first body byte for byte:\n${what}`).toBe(res.text);
        } else {
          expect(ALWAYS_SAVED, `the ledger decided ${res.status}, so the key must replay it:\n${what}`).not.toContain(
            res.status,
          );
        }
      }
    }

    const fixtureAfter = await snapshotTeam(world.fixtureTeam);
    const ghostAfter = await snapshotTeam(world.ghostTeam);
    const history = await historyProblems(world.fixtureTeam);
    if (history.length > 0)
      throw new Error(`the history no longer adds up:\n  ${history.join("\n  ")}\nafter: ${what}`);
    if (res.status >= 400) {
      // A refusal the ledger decided is saved under the request's own key, and nothing else is.
      const savedKey = keyed && !NEVER_SAVED.includes(res.status) ? m.key : null;
      const problems = [
        ...(await unexplainedChanges(world.fixture, fixtureAfter, savedKey)),
        ...(await unexplainedChanges(ghost, ghostAfter)),
      ];
      if (problems.length > 0)
        throw new Error(
          `a rejected request (${res.status}) wrote:\n  ${problems.join("\n  ")}\nrequest: ${what}\n  response: ${res.text.slice(0, 300)}`,
        );
      if (!existedBefore)
        expect(await teamStatus(m.teamId), `a rejected request created team ${m.teamId}:\n${what}`).toBe(404);
    } else if (m.mutating && m.key !== null) {
      world.usedKeys.push(m.key);
    }
    world.fixture = fixtureAfter;
    ghost = ghostAfter;
  });

  const replaying = REPLAY_SEED !== undefined;
  const params: fc.Parameters<[Plan]> = replaying
    ? { seed: Number(REPLAY_SEED), numRuns: runs, ...(REPLAY_PATH ? { path: REPLAY_PATH, endOnFailure: true } : {}) }
    : { numRuns: runs };
  const details = await fc.check(property, params);
  stats.ms = Date.now() - started;
  if (details.failed) {
    const error =
      details.errorInstance instanceof Error ? details.errorInstance.message : String(details.errorInstance);
    throw new Error(
      [
        `fuzz ${routeName(route)} failed after ${details.numRuns} run(s), shrunk ${details.numShrinks} time(s)`,
        `seed: ${details.seed}  path: ${details.counterexamplePath ?? ""}`,
        `replay: VITE_FUZZ_SEED=${details.seed} VITE_FUZZ_PATH=${details.counterexamplePath ?? ""} npx vitest run test/fuzz -t '${routeName(route)}'`,
        `plan: ${JSON.stringify(details.counterexample?.[0] ?? null).slice(0, 1500)}`,
        `last request sent: ${lastRequest}`,
        "error:",
        error,
      ].join("\n"),
    );
  }
  return stats;
}

export function formatStats(all: RouteStats[]): string {
  const lines = all.map((s) => {
    const statuses = [...s.statuses]
      .sort(([a], [b]) => a - b)
      .map(([status, n]) => `${status}×${n}`)
      .join(" ");
    const undocumented = s.undocumented.size > 0 ? `  undocumented: ${[...s.undocumented].join(",")}` : "";
    const unsendable = s.unsendable > 0 ? `  unsendable: ${s.unsendable}` : "";
    const top = VERBOSE
      ? [...s.details]
          .sort(([, a], [, b]) => b - a)
          .slice(0, 12)
          .map(([d, n]) => `\n      ${n}× ${d}`)
          .join("")
      : "";
    return `  ${s.route}: ${s.cases} cases in ${s.ms} ms  [${statuses}]${unsendable}${undocumented}${top}`;
  });
  const cases = all.reduce((n, s) => n + s.cases, 0);
  return `${cases} requests\n${lines.join("\n")}`;
}
