/**
 * Placement and residency (issue 13, part 2): a location hint or a jurisdiction chosen when a team
 * is created and never changed; a jurisdiction is the team id's own (`eu:…`), so the worker routes
 * by the id alone; a team in a jurisdiction keeps its history in that jurisdiction's D1 database,
 * and a jurisdiction with none bound refuses to create teams. (Real placement cannot be exercised
 * locally: miniflare runs every object here; what is tested is what the code decides.)
 */
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { namespaceOf } from "../../src/client/ledger-client";
import { jurisdictionOfTeam } from "../../src/domain/placement";
import {
  allEntries,
  api,
  assertInvariants,
  call,
  drainOutbox,
  expectNoTeam,
  expectProblem,
  expectStatus,
  grant,
  newKey,
  newTeamId,
} from "../support";

interface TeamT {
  id: string;
  locationHint: string | null;
  jurisdiction: string | null;
}

describe("placement", () => {
  it("takes a location hint at creation and keeps it", async () => {
    const teamId = newTeamId("placed");
    const created = await api<TeamT>(`/v1/teams/${teamId}`, { method: "PUT", body: { locationHint: "weur" } });
    expectStatus(created, 201);
    expect(created.body).toMatchObject({ locationHint: "weur", jurisdiction: null });
    expectStatus(await api(`/v1/teams/${teamId}`, { method: "PUT", body: { locationHint: "weur", name: "x" } }), 200);
    const moved = await api(`/v1/teams/${teamId}`, { method: "PUT", body: { locationHint: "apac" } });
    expect(expectProblem(moved, 409, "conflict").reason).toBe("placement_fixed");
    const read = await api<TeamT>(`/v1/teams/${teamId}`);
    expect(read.body).toMatchObject({ locationHint: "weur", jurisdiction: null });
  });

  it("refuses what is not a placement with 400 and creates nothing", async () => {
    for (const body of [{ locationHint: "mars" }, { jurisdiction: "us" }, { jurisdiction: "eu" }]) {
      const teamId = newTeamId("unplaced");
      expectProblem(await api(`/v1/teams/${teamId}`, { method: "PUT", body }), 400, "invalid_request");
      await expectNoTeam(teamId);
    }
  });

  it("routes by the id: a jurisdiction is the id's prefix, and nothing else is one", () => {
    expect(jurisdictionOfTeam("eu:acme")).toBe("eu");
    expect(jurisdictionOfTeam("fedramp:agency.1")).toBe("fedramp");
    expect(jurisdictionOfTeam("acme")).toBeNull();
    expect(jurisdictionOfTeam("us:acme")).toBeNull();
    expect(jurisdictionOfTeam("europe:acme")).toBeNull();
    expect(jurisdictionOfTeam("eu")).toBeNull();
  });

  it("asks the runtime for the jurisdiction's namespace in production, and for none locally", () => {
    const asked: string[] = [];
    const namespace = env.TEAM_LEDGER;
    // A namespace whose subnamespaces are recorded (workerd has none to give).
    const recording = Object.assign(Object.create(namespace) as typeof namespace, {
      jurisdiction: (j: string) => {
        asked.push(j);
        return namespace;
      },
    });
    expect(namespaceOf({ TEAM_LEDGER: recording }, "eu:acme")).toBe(namespace);
    expect(namespaceOf({ TEAM_LEDGER: recording }, "fedramp:acme")).toBe(namespace);
    expect(namespaceOf({ TEAM_LEDGER: recording }, "acme")).toBe(recording);
    expect(asked).toEqual(["eu", "fedramp"]);
    expect(namespaceOf({ TEAM_LEDGER: recording, DO_JURISDICTIONS: "local" }, "eu:acme")).toBe(recording);
    expect(asked).toEqual(["eu", "fedramp"]);
  });

  it("keeps an EU team's history in the EU database, and reads it from there", async () => {
    const teamId = `eu:${newTeamId("resident")}`;
    const created = await api<TeamT>(`/v1/teams/${teamId}`, { method: "PUT", body: { jurisdiction: "eu" } });
    expectStatus(created, 201);
    expect(created.body.jurisdiction).toBe("eu");
    await grant(teamId, 100);
    expectStatus(
      await api(`/v1/teams/${teamId}/spends`, { body: { feature: "f", amount: 30 }, idempotencyKey: newKey() }),
      201,
    );
    await drainOutbox(teamId);
    const inEu = await env.DB_EU?.prepare("SELECT COUNT(*) AS n FROM ledger_entries WHERE team_id = ?")
      .bind(teamId)
      .first<{ n: number }>();
    const inAccount = await env.DB.prepare("SELECT COUNT(*) AS n FROM ledger_entries WHERE team_id = ?")
      .bind(teamId)
      .first<{ n: number }>();
    expect(inEu?.n).toBe(2);
    expect(inAccount?.n).toBe(0);
    const entries = await allEntries(teamId);
    expect(entries.map((e) => e.type).sort()).toEqual(["grant", "spend"]);
    const usage = await call<{ groups: { key: string; credits: number }[] }>(
      `/v1/teams/${teamId}/usage?groupBy=feature`,
    );
    expect(usage.body.groups).toEqual([expect.objectContaining({ key: "f", credits: 30 })]);
    const verify = await call<{ ok: boolean }>(`/v1/teams/${teamId}/entries/verify`);
    expectStatus(verify, 200);
    // The id says EU even when the body does not.
    const implied = `eu:${newTeamId("implied")}`;
    const made = await api<TeamT>(`/v1/teams/${implied}`, { method: "PUT", body: {} });
    expect(made.body.jurisdiction).toBe("eu");
    await assertInvariants(teamId);
  });

  it("refuses a team in a jurisdiction with no history database bound", async () => {
    const teamId = `fedramp:${newTeamId("nowhere")}`;
    const res = await api(`/v1/teams/${teamId}`, { method: "PUT", body: { jurisdiction: "fedramp" } });
    expect(expectProblem(res, 409, "conflict").reason).toBe("jurisdiction_not_configured");
    await expectNoTeam(teamId);
  });
});
