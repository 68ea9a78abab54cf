/**
 * The entry's field table (src/domain/entry.ts) owns every shape an entry takes: the object's
 * INSERT and its table, D1's columns and drizzle's table, the wire Entry, the CSV. Each is read
 * from its own source here and compared with the table.
 */
import { getTableColumns } from "drizzle-orm";
import { getTableConfig } from "drizzle-orm/sqlite-core";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { ledgerEntries } from "../../src/db/schema";
import {
  CSV_FIELDS,
  csvValues,
  D1_COLUMNS,
  ENTRY_COLUMNS,
  type EntryFields,
  type EntryRow,
  entryFromFields,
  fieldsOfRow,
  INSERT_ENTRY_SQL,
  insertValues,
  OUTBOX_ROW_SQL,
  WIRE_FIELDS,
} from "../../src/domain/entry";
import type { Entry } from "../../src/domain/vocabulary";
import { migrate } from "../../src/object/schema";
import { Entry as EntrySchema } from "../../src/routes/schemas";
import { entryFields } from "./arbitraries";

/** A full entry; typed as EntryFields, so its keys are exactly EntryFields' keys. */
const sample: EntryFields = {
  teamId: "acme",
  seq: 7,
  id: "ent_1",
  createdAtMs: 1_767_225_600_000,
  type: "spend",
  direction: "out",
  amountCredits: 30,
  balanceAfterCredits: 70,
  grantId: "grt_1",
  holdId: "hld_1",
  spendId: "spd_1",
  feature: "email_finder",
  quantity: 3,
  dimensions: '{"campaign":"spring","é":"ü"}',
  reference: "order #1 — ✓",
  actor: "user:42",
  memberTeamId: "sub-1",
  chainVersion: 3,
  hash: "a".repeat(64),
  tier: "premium",
  unitCredits: 10,
  priceVersion: 4,
  shortfallCredits: 12,
};

/** Only the required fields; every optional one null. */
const bare: EntryFields = {
  ...sample,
  grantId: null,
  holdId: null,
  spendId: null,
  feature: null,
  quantity: null,
  dimensions: null,
  reference: null,
  actor: null,
  memberTeamId: null,
  hash: null,
  tier: null,
  unitCredits: null,
  priceVersion: null,
  shortfallCredits: null,
};

const COLUMNS = ENTRY_COLUMNS.map((c) => c.column);
const FIELDS = ENTRY_COLUMNS.map((c) => c.field);

/** The row the object's INSERT writes for `f`, keyed by column name. */
const rowOf = (f: EntryFields): EntryRow => Object.fromEntries(COLUMNS.map((c, i) => [c, insertValues(f)[i] ?? null]));

/** Every statement the object's schema runs on a fresh database, in order (read through migrate). */
function schemaStatements(): string[] {
  const statements: string[] = [];
  const fake = {
    exec(query: string) {
      statements.push(query);
      return { toArray: () => [] };
    },
  };
  migrate(fake as unknown as SqlStorage);
  return statements;
}

describe("the field table", () => {
  it("maps every EntryFields field but the team id to one column, once", () => {
    expect(["teamId", ...FIELDS]).toEqual(Object.keys(sample));
    expect(new Set(COLUMNS).size).toBe(COLUMNS.length);
  });

  it("is what the object's INSERT names, with one placeholder per column", () => {
    const m = /^INSERT INTO entries \(([^)]*)\)\s*VALUES \(([^)]*)\)$/.exec(INSERT_ENTRY_SQL.trim());
    expect(m, INSERT_ENTRY_SQL).not.toBeNull();
    expect(m?.[1]?.split(", ")).toEqual(COLUMNS);
    expect(m?.[2]?.split(", ")).toEqual(COLUMNS.map(() => "?"));
    expect(insertValues(sample)).toHaveLength(COLUMNS.length);
  });

  it("is the object's entries table (object/schema.ts, as migrate builds it), columns and types in order", () => {
    const statements = schemaStatements();
    const create = statements.filter((s) => /^CREATE TABLE entries\w*\s*\(/.test(s)).at(-1) ?? "";
    const name = /^CREATE TABLE (\w+)/.exec(create)?.[1];
    const later = statements.slice(statements.indexOf(create) + 1);
    // The last table built becomes `entries`; later versions may only append columns to it.
    if (name !== "entries") expect(later).toContain(`ALTER TABLE ${name} RENAME TO entries`);
    const alters = later.filter((s) => /^ALTER TABLE entries\b/.test(s));
    const appended = alters.map((s) => /^ALTER TABLE entries ADD COLUMN (\w+) (INTEGER|TEXT)$/.exec(s)?.slice(1, 3));
    expect(
      appended.every((a) => a !== undefined),
      `only ADD COLUMN: ${alters.join("; ")}`,
    ).toBe(true);
    const columns = create
      .slice(create.indexOf("(") + 1)
      .split("\n")
      .map((line) => line.trim())
      .filter((line) => /^[a-z_]+ (INTEGER|TEXT)\b/.test(line))
      .map((line) => line.split(/[\s,]+/).slice(0, 2));
    expect([...columns, ...appended]).toEqual(ENTRY_COLUMNS.map((c) => [c.column, c.sqlType]));
  });

  it("is D1's column list: the team id, then the entry's columns", () => {
    expect(D1_COLUMNS).toEqual(["team_id", ...COLUMNS]);
    expect(OUTBOX_ROW_SQL).toBe(`json_array(?, ${COLUMNS.join(", ")})`);
  });

  it("is drizzle's ledgerEntries: D1_COLUMNS as column names in order, EntryFields keys as properties", () => {
    const config = getTableConfig(ledgerEntries);
    expect(config.name).toBe("ledger_entries");
    expect(config.columns.map((c) => c.name)).toEqual(D1_COLUMNS);
    const properties = getTableColumns(ledgerEntries);
    expect(Object.keys(properties)).toEqual(Object.keys(sample));
    // Each property is the column of the same field, with the same SQL type.
    for (const c of ENTRY_COLUMNS) {
      const column = properties[c.field];
      expect(column.name, c.field).toBe(c.column);
      expect(column.getSQLType().toUpperCase(), c.field).toBe(c.sqlType);
    }
    expect(properties.teamId.name).toBe("team_id");
  });

  it("is the wire Entry schema (routes/schemas.ts): the same fields", () => {
    expect(new Set(Object.keys(EntrySchema.shape))).toEqual(new Set(WIRE_FIELDS));
    expect(WIRE_FIELDS).toHaveLength(new Set(WIRE_FIELDS).size);
  });
});

describe("object rows", () => {
  it("fieldsOfRow ∘ insertValues gives the entry back", () => {
    expect(fieldsOfRow("acme", rowOf(sample))).toEqual(sample);
    expect(fieldsOfRow("acme", rowOf(bare))).toEqual(bare);
  });

  it("round-trips any entry", () => {
    fc.assert(
      fc.property(entryFields, (f) => {
        expect(fieldsOfRow(f.teamId, rowOf(f))).toEqual(f);
      }),
      { numRuns: 300 },
    );
  });

  it("reads a missing column as null", () => {
    const row = rowOf(sample);
    delete row.member_team_id;
    expect(fieldsOfRow("acme", row).memberTeamId).toBeNull();
  });
});

describe("the wire Entry", () => {
  it("carries every field, with dimensions parsed and the time as ISO text", () => {
    expect(entryFromFields(sample)).toEqual({
      id: "ent_1",
      seq: 7,
      createdAt: "2026-01-01T00:00:00.000Z",
      type: "spend",
      direction: "out",
      amount: 30,
      balanceAfter: 70,
      grantId: "grt_1",
      holdId: "hld_1",
      spendId: "spd_1",
      feature: "email_finder",
      quantity: 3,
      dimensions: { campaign: "spring", é: "ü" },
      reference: "order #1 — ✓",
      actor: "user:42",
      memberTeamId: "sub-1",
      hash: "a".repeat(64),
      tier: "premium",
      unitCredits: 10,
      priceVersion: 4,
      shortfallCredits: 12,
    } satisfies Entry);
  });

  it("leaves out null optionals (absent keys, not undefined values)", () => {
    const e = entryFromFields(bare);
    expect(Object.keys(e).sort()).toEqual(["amount", "balanceAfter", "createdAt", "direction", "id", "seq", "type"]);
  });

  it("is always a valid Entry on the wire, with keys among WIRE_FIELDS", () => {
    fc.assert(
      fc.property(entryFields, (f) => {
        const e = entryFromFields(f);
        expect(EntrySchema.strict().parse(e)).toEqual(e);
        for (const k of Object.keys(e)) expect(WIRE_FIELDS).toContain(k);
        expect(e.dimensions).toEqual(f.dimensions === null ? undefined : JSON.parse(f.dimensions));
      }),
      { numRuns: 300 },
    );
  });
});

describe("CSV", () => {
  it("has the wire fields but the hash, in the same order", () => {
    expect(CSV_FIELDS).toEqual(WIRE_FIELDS.filter((f) => f !== "hash"));
    expect(CSV_FIELDS).not.toContain("hash");
  });

  it("gives dimensions as their JSON text and absent fields as undefined", () => {
    const values = csvValues(entryFromFields(sample));
    expect(values).toHaveLength(CSV_FIELDS.length);
    const byName = Object.fromEntries(CSV_FIELDS.map((f, i) => [f, values[i]]));
    expect(byName.dimensions).toBe('{"campaign":"spring","é":"ü"}');
    expect(byName.amount).toBe(30);
    expect(byName.createdAt).toBe("2026-01-01T00:00:00.000Z");
    const bareValues = Object.fromEntries(CSV_FIELDS.map((f, i) => [f, csvValues(entryFromFields(bare))[i]]));
    expect(bareValues.dimensions).toBeUndefined();
    expect(bareValues.grantId).toBeUndefined();
    expect(bareValues.seq).toBe(7);
  });
});
