/**
 * GET /entries.csv: RFC 4180 with formula cells defused, the same filters as /entries, and a
 * streamed body that is complete even while D1 lags.
 */
import { describe, expect, it } from "vitest";
import { csvCell, csvRow } from "../../src/routes/csv";
import {
  ADMIN_KEY,
  allPages,
  assertInvariants,
  batchSpends,
  call,
  createTeam,
  d1With,
  descending,
  drainOutbox,
  expectStatus,
  grant,
  injectD1,
  newTeamId,
  outboxOf,
  restoreD1,
  spend,
  teamWithSpends,
} from "../support";

/** A strict RFC 4180 parser (CRLF records, quoted fields), for checking what a client reads. */
function parseCsv(text: string): string[][] {
  const rows: string[][] = [];
  let row: string[] = [];
  let cell = "";
  let i = 0;
  let quoted = false;
  while (i < text.length) {
    const ch = text[i];
    if (quoted) {
      if (ch === '"' && text[i + 1] === '"') {
        cell += '"';
        i += 2;
      } else if (ch === '"') {
        quoted = false;
        i += 1;
      } else {
        cell += ch;
        i += 1;
      }
    } else if (ch === '"' && cell === "") {
      quoted = true;
      i += 1;
    } else if (ch === ",") {
      row.push(cell);
      cell = "";
      i += 1;
    } else if (ch === "\r" && text[i + 1] === "\n") {
      row.push(cell);
      rows.push(row);
      row = [];
      cell = "";
      i += 2;
    } else {
      expect(ch, `a bare ${JSON.stringify(ch)} outside quotes at ${i}`).not.toMatch(/[\r\n"]/);
      cell += ch;
      i += 1;
    }
  }
  expect(cell === "" && row.length === 0, "the file ends with CRLF").toBe(true);
  return rows;
}

const csvPath = (teamId: string, query = "") => `/v1/teams/${teamId}/entries.csv${query ? `?${query}` : ""}`;

describe("CSV cells", () => {
  it("quotes per RFC 4180 and defuses formulas", () => {
    expect(csvCell(undefined)).toBe("");
    expect(csvCell(-5)).toBe("-5");
    expect(csvCell("plain")).toBe("plain");
    expect(csvCell("a,b")).toBe('"a,b"');
    expect(csvCell('say "hi"')).toBe('"say ""hi"""');
    expect(csvCell("one\r\ntwo")).toBe('"one\r\ntwo"');
    expect(csvCell('=HYPERLINK("x")')).toBe(`"'=HYPERLINK(""x"")"`);
    expect(csvCell("+1")).toBe("'+1");
    expect(csvCell("-1")).toBe("'-1");
    expect(csvCell("@SUM(A1)")).toBe("'@SUM(A1)");
    expect(csvCell("\tx")).toBe("'\tx");
    expect(csvCell("\rx")).toBe(`"'\rx"`);
    expect(csvCell("a=b")).toBe("a=b");
    expect(
      csvRow({
        id: "ent_1",
        seq: 1,
        createdAt: "2026-01-01T00:00:00.000Z",
        type: "grant",
        direction: "in",
        amount: 3,
        balanceAfter: 3,
      }),
    ).toBe("1,ent_1,2026-01-01T00:00:00.000Z,grant,in,3,3,,,,,,,,,,,,,\r\n");
  });
});

describe("GET /v1/teams/{teamId}/entries.csv", () => {
  it("exports every entry with a header; references with formulas, commas, quotes and newlines survive", async () => {
    const teamId = newTeamId();
    await createTeam(teamId);
    await grant(teamId, 100, { reference: "=1+1" });
    const references = [
      '=HYPERLINK("http://evil.test","click")',
      "a, b",
      'say "hi"',
      "line1\nline2",
      "+cmd",
      "-2",
      "@x",
      "\tt",
      "ok",
    ];
    for (const reference of references)
      expectStatus(await spend(teamId, 1, undefined, { reference, dimensions: { campaign: "=x,y" } }), 201);
    const res = await call(csvPath(teamId));
    expectStatus(res, 200);
    expect(res.headers.get("content-type")).toBe("text/csv; charset=utf-8");
    expect(res.headers.get("content-disposition")).toBe(`attachment; filename="entries-${teamId}.csv"`);
    const rows = parseCsv(res.text);
    const [header, ...body] = rows;
    expect(header).toEqual([
      "seq",
      "id",
      "createdAt",
      "type",
      "direction",
      "amount",
      "balanceAfter",
      "grantId",
      "holdId",
      "spendId",
      "feature",
      "quantity",
      "dimensions",
      "reference",
      "actor",
      "memberTeamId",
      "tier",
      "unitCredits",
      "priceVersion",
      "shortfallCredits",
    ]);
    expect(body.map((r) => r[0])).toEqual(descending(references.length + 1).map(String));
    const refs = body.map((r) => r[13]).reverse();
    expect(refs).toEqual([
      "'=1+1",
      `'=HYPERLINK("http://evil.test","click")`,
      "a, b",
      'say "hi"',
      "line1\nline2",
      "'+cmd",
      "'-2",
      "'@x",
      "'\tt",
      "ok",
    ]);
    for (const r of body) {
      expect(r).toHaveLength(20);
      for (const cell of r) expect(cell, "no cell starts a formula").not.toMatch(/^[=+\-@\t\r]/);
    }
    expect(body[0]?.[12]).toBe(JSON.stringify({ campaign: "=x,y" }));
    // The same rows the JSON history has.
    const { entries } = await allPages(teamId, { limit: "200" });
    expect(body.map((r) => [Number(r[0]), r[1], r[3], r[4], Number(r[5]), Number(r[6])])).toEqual(
      entries.map((e) => [e.seq, e.id, e.type, e.direction, e.amount, e.balanceAfter]),
    );
    await assertInvariants(teamId);
  });

  it("applies the filters; 400 and 404 are problem+json", async () => {
    const teamId = newTeamId();
    await teamWithSpends(teamId, 5);
    const only = parseCsv((await call(csvPath(teamId, "type=grant"))).text);
    expect(only.slice(1).map((r) => r[3])).toEqual(["grant"]);
    const out = parseCsv((await call(csvPath(teamId, "direction=out&from=2000-01-01T00:00:00Z"))).text);
    expect(out.slice(1).map((r) => r[0])).toEqual(["6", "5", "4", "3", "2"]);
    const none = parseCsv((await call(csvPath(teamId, "to=2000-01-01T00:00:00Z"))).text);
    expect(none).toHaveLength(1);
    for (const [path, status] of [
      [csvPath(teamId, "type=nope"), 400],
      [csvPath(newTeamId()), 404],
    ] as const) {
      const res = await call(path);
      expect(res.status).toBe(status);
      expect(res.headers.get("content-type")).toContain("application/problem+json");
    }
    await assertInvariants(teamId);
  });

  it("streams a large export in pages, complete while D1 lags", async () => {
    const teamId = newTeamId();
    await teamWithSpends(teamId, 2_000);
    await drainOutbox(teamId);
    await injectD1(teamId, (real) => d1With(real, () => Promise.reject(new Error("D1 is down (injected)"))));
    await batchSpends(teamId, 1_200);
    expect((await outboxOf(teamId)).backlog).toBe(1_200);

    const { SELF } = await import("cloudflare:test");
    const res = await SELF.fetch(`https://ledger.test${csvPath(teamId)}`, {
      headers: { authorization: `Bearer ${ADMIN_KEY}` },
    });
    expect(res.status).toBe(200);
    const reader = res.body?.getReader();
    expect(reader).toBeDefined();
    const decoder = new TextDecoder();
    let text = "";
    let chunks = 0;
    while (reader) {
      const { done, value } = await reader.read();
      if (done) break;
      chunks += 1;
      text += decoder.decode(value, { stream: true });
    }
    text += decoder.decode();
    const rows = parseCsv(text).slice(1);
    expect(rows.map((r) => Number(r[0]))).toEqual(descending(3_201));
    // Read in pages of EXPORT_PAGE_ROWS (500): the body arrives in several chunks, not one.
    expect(chunks).toBeGreaterThan(1);
    await restoreD1(teamId);
    await drainOutbox(teamId);
    await assertInvariants(teamId);
  });
});
