/**
 * What a subaccount's pooled spend costs beside a plain team's (issue 12's agency pools), in the
 * real runtime: SPENDS spends of 1 credit each, one request at a time through the worker, on a
 * plain team, on an agency directly, through a subaccount drawing from the agency's pool, and the
 * same with a cap on the subaccount. It counts the SQLite statements of every object the spend
 * touches (the subaccount's and the agency's) and prints the median wall time per spend.
 * `npx vitest run --config bench/micro/vitest.config.ts bench/micro/pool-costs.micro.ts`.
 * Prints one `POOL_COSTS_JSON {…}` line; asserts nothing about time.
 */
import { expect, it } from "vitest";
import { call, newKey, newTeamId } from "../../test/support/calls";
import { takeCount, tapSql, untapSql } from "./sql-tap";

const SPENDS = 200;

async function put(teamId: string, body: Record<string, unknown>): Promise<void> {
  const res = await call(`/v1/teams/${teamId}`, { method: "PUT", body });
  expect(res.status, res.text).toBeLessThan(300);
}

async function grant(teamId: string, amount: number): Promise<void> {
  const res = await call(`/v1/teams/${teamId}/grants`, {
    body: { amount, category: "paid", source: "purchase" },
    idempotencyKey: newKey(),
  });
  expect(res.status, res.text).toBe(201);
}

/** SPENDS spends on `teamId`; the statements of the objects in `counted`, per spend, and the median ms. */
async function measure(teamId: string, counted: string[]) {
  for (const id of counted) await tapSql(id);
  for (const id of counted) takeCount(id);
  const ms: number[] = [];
  for (let i = 0; i < SPENDS; i++) {
    const t0 = performance.now();
    const res = await call(`/v1/teams/${teamId}/spends`, {
      body: { feature: "f", amount: 1 },
      idempotencyKey: newKey(),
      headers: { "x-actor-id": "member-1", "x-actor-role": "author" },
    });
    ms.push(performance.now() - t0);
    expect(res.status, res.text).toBe(201);
  }
  const statements = Object.fromEntries(counted.map((id) => [id, takeCount(id).statements / SPENDS]));
  for (const id of counted) untapSql(id);
  ms.sort((a, b) => a - b);
  return { statementsPerSpend: statements, medianMs: Number((ms[Math.floor(ms.length / 2)] ?? 0).toFixed(3)) };
}

it("counts what a pooled spend costs beside a plain one", async () => {
  const plain = newTeamId("plain");
  await put(plain, {});
  await grant(plain, 1_000_000);
  const agency = newTeamId("agency");
  await put(agency, { kind: "agency", settings: { shareCreditsWithSubaccounts: true } });
  await grant(agency, 1_000_000);
  const sub = newTeamId("sub");
  await put(sub, { kind: "subaccount", parentTeamId: agency });
  const capped = newTeamId("capped");
  await put(capped, { kind: "subaccount", parentTeamId: agency, settings: { capCreditsPerPeriod: 1_000_000 } });

  const plainCost = await measure(plain, [plain]);
  const agencyCost = await measure(agency, [agency]);
  const pooled = await measure(sub, [sub, agency]);
  const pooledCapped = await measure(capped, [capped, agency]);
  const name = (cost: { statementsPerSpend: Record<string, number> }, ids: Record<string, string>) =>
    Object.fromEntries(Object.entries(ids).map(([label, id]) => [label, cost.statementsPerSpend[id]]));
  const result = {
    spends: SPENDS,
    plain: { medianMs: plainCost.medianMs, statements: name(plainCost, { team: plain }) },
    agencyDirect: { medianMs: agencyCost.medianMs, statements: name(agencyCost, { agency }) },
    subaccountPooled: { medianMs: pooled.medianMs, statements: name(pooled, { subaccount: sub, agency }) },
    subaccountPooledCapped: {
      medianMs: pooledCapped.medianMs,
      statements: name(pooledCapped, { subaccount: capped, agency }),
    },
  };
  console.log(`POOL_COSTS_JSON ${JSON.stringify(result)}`);
});
