/**
 * An entry's fields, once. Every place an entry is stored, sent or shown maps from this one table:
 * the team object's `entries` row (insert and read), the outbox's JSON rows, D1's
 * `ledger_entries` (db/schema.ts checks its columns against this table), the wire Entry, the hash
 * chain's canonical form (chain.ts, version 2) and the CSV export. Adding a field is one line here
 * plus a migration of each table (object/schema.ts, migrations/).
 *
 * Column names are the same in the object and in D1; D1 adds `team_id` in front (an object holds
 * one team, so its rows do not repeat it). Pure: no I/O.
 */
import type { Dimensions, Direction, Entry, EntryType, Tier } from "./vocabulary";

/** The stored fields of an entry (names carry units), whichever table holds it. */
export interface EntryFields {
  teamId: string;
  seq: number;
  id: string;
  createdAtMs: number;
  type: string;
  direction: string;
  amountCredits: number;
  balanceAfterCredits: number;
  grantId: string | null;
  holdId: string | null;
  spendId: string | null;
  feature: string | null;
  quantity: number | null;
  /** JSON object of string values, as stored text (hashed as text, never re-serialized). */
  dimensions: string | null;
  reference: string | null;
  actor: string | null;
  memberTeamId: string | null;
  /** Which canonical form the entry's hash uses (chain.ts). */
  chainVersion: number;
  hash: string | null;
  /** The tier, unit price and price-book version a priced charge was charged at (pricing.ts). */
  tier: string | null;
  unitCredits: number | null;
  priceVersion: number | null;
  /** On a refund entry: the refunded credits it could not claw back (already spent). */
  shortfallCredits: number | null;
}

type StoredField = Exclude<keyof EntryFields, "teamId">;

interface Column {
  field: StoredField;
  column: string;
  sqlType: "INTEGER" | "TEXT";
  /** The field's name on the wire Entry (and in the CSV header), or null when it is not shown. */
  wire: keyof Entry | null;
  /**
   * The first chain version whose canonical form (chain.ts) commits to this field, in column
   * order; null when no version does. A version's form is frozen once written: a new field gets
   * a new version, never a place in an old one.
   */
  chainedSince: 2 | 3 | 4 | null;
}

const col = (
  field: StoredField,
  column: string,
  sqlType: Column["sqlType"],
  wire: Column["wire"],
  chainedSince: Column["chainedSince"] = 2,
): Column => ({ field, column, sqlType, wire, chainedSince });

/** The entry's columns, in their fixed order (also the chain's and the CSV's order). */
export const ENTRY_COLUMNS: readonly Column[] = [
  col("seq", "seq", "INTEGER", "seq"),
  col("id", "id", "TEXT", "id"),
  col("createdAtMs", "created_at_ms", "INTEGER", "createdAt"),
  col("type", "type", "TEXT", "type"),
  col("direction", "direction", "TEXT", "direction"),
  col("amountCredits", "amount_credits", "INTEGER", "amount"),
  col("balanceAfterCredits", "balance_after_credits", "INTEGER", "balanceAfter"),
  col("grantId", "grant_id", "TEXT", "grantId"),
  col("holdId", "hold_id", "TEXT", "holdId"),
  col("spendId", "spend_id", "TEXT", "spendId"),
  col("feature", "feature", "TEXT", "feature"),
  col("quantity", "quantity", "INTEGER", "quantity"),
  col("dimensions", "dimensions", "TEXT", "dimensions"),
  col("reference", "reference", "TEXT", "reference"),
  col("actor", "actor", "TEXT", "actor"),
  col("memberTeamId", "member_team_id", "TEXT", "memberTeamId"),
  col("chainVersion", "chain_version", "INTEGER", null, null),
  col("hash", "hash", "TEXT", "hash", null),
  // Added by object schema v4 and D1 migration 0004 (ALTER TABLE … ADD COLUMN appends): last.
  col("tier", "tier", "TEXT", "tier", 3),
  col("unitCredits", "unit_credits", "INTEGER", "unitCredits", 3),
  col("priceVersion", "price_version", "INTEGER", "priceVersion", 3),
  // Added by object schema v5 and D1 migration 0005: refunds record what they could not claw back.
  col("shortfallCredits", "shortfall_credits", "INTEGER", "shortfallCredits", 4),
];

type ChainedField = Exclude<StoredField, "chainVersion" | "hash">;

/** The fields chain version `version`'s canonical form commits to, after the team id, in order. */
export function chainedFields(version: 2 | 3 | 4): readonly ChainedField[] {
  return ENTRY_COLUMNS.filter((c) => c.chainedSince !== null && c.chainedSince <= version).map(
    (c) => c.field,
  ) as ChainedField[];
}
if (ENTRY_COLUMNS.some((c) => (c.field === "chainVersion" || c.field === "hash") && c.chainedSince !== null))
  throw new Error("entry.ts: the chain commits to neither its own version column nor the hash");

// ---- the team object's rows ------------------------------------------------------------------

/** A row of the object's `entries` table, keyed by column name. */
export type EntryRow = Record<string, SqlValue>;
type SqlValue = string | number | null | ArrayBuffer;

/** The object's INSERT of one entry; bind insertValues(fields). */
export const INSERT_ENTRY_SQL = `INSERT INTO entries (${ENTRY_COLUMNS.map((c) => c.column).join(", ")})
   VALUES (${ENTRY_COLUMNS.map(() => "?").join(", ")})`;

export function insertValues(f: EntryFields): (string | number | null)[] {
  return ENTRY_COLUMNS.map((c) => f[c.field]);
}

/** An object row (or any row keyed by these column names) as fields. */
export function fieldsOfRow(teamId: string, row: EntryRow): EntryFields {
  const f: Record<string, unknown> = { teamId };
  for (const c of ENTRY_COLUMNS) f[c.field] = row[c.column] ?? null;
  return f as unknown as EntryFields;
}

// ---- replication to D1 -----------------------------------------------------------------------

/** D1's columns, in the order of the outbox's JSON rows: the team id, then the entry's columns. */
export const D1_COLUMNS: readonly string[] = ["team_id", ...ENTRY_COLUMNS.map((c) => c.column)];

/**
 * The SQLite expression that turns an object row into the JSON array D1's insert unpacks (in
 * D1_COLUMNS order), with the team id bound as its first parameter: the outbox sends rows that
 * never become JavaScript objects on the way.
 */
export const OUTBOX_ROW_SQL = `json_array(?, ${ENTRY_COLUMNS.map((c) => c.column).join(", ")})`;

// ---- the wire --------------------------------------------------------------------------------

/** The wire Entry: absent optional fields are left out, dimensions parsed from their JSON. */
export function entryFromFields(f: EntryFields): Entry {
  const e: Entry = {
    id: f.id,
    seq: f.seq,
    createdAt: new Date(f.createdAtMs).toISOString(),
    type: f.type as EntryType,
    direction: f.direction as Direction,
    amount: f.amountCredits,
    balanceAfter: f.balanceAfterCredits,
  };
  if (f.grantId !== null) e.grantId = f.grantId;
  if (f.holdId !== null) e.holdId = f.holdId;
  if (f.spendId !== null) e.spendId = f.spendId;
  if (f.feature !== null) e.feature = f.feature;
  if (f.quantity !== null) e.quantity = f.quantity;
  if (f.dimensions !== null) e.dimensions = JSON.parse(f.dimensions) as Dimensions;
  if (f.reference !== null) e.reference = f.reference;
  if (f.actor !== null) e.actor = f.actor;
  if (f.memberTeamId !== null) e.memberTeamId = f.memberTeamId;
  if (f.hash !== null) e.hash = f.hash;
  if (f.tier !== null) e.tier = f.tier as Tier;
  if (f.unitCredits !== null) e.unitCredits = f.unitCredits;
  if (f.priceVersion !== null) e.priceVersion = f.priceVersion;
  if (f.shortfallCredits !== null) e.shortfallCredits = f.shortfallCredits;
  return e;
}

/** The wire fields an Entry can carry, in column order. */
export const WIRE_FIELDS: readonly (keyof Entry)[] = ENTRY_COLUMNS.flatMap((c) => (c.wire === null ? [] : [c.wire]));

// ---- CSV -------------------------------------------------------------------------------------

/** The export's columns: the wire fields but the hash (verify is the chain's reader). */
export const CSV_FIELDS: readonly (keyof Entry)[] = WIRE_FIELDS.filter((f) => f !== "hash");

/** An entry's CSV values in CSV_FIELDS order; dimensions as their JSON text, absent fields undefined. */
export function csvValues(e: Entry): (string | number | undefined)[] {
  return CSV_FIELDS.map((name) => {
    const v = e[name];
    return typeof v === "object" ? JSON.stringify(v) : v;
  });
}
