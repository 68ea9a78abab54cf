/**
 * An entry's stored fields, whichever table holds it: the team object's `entries` (snake_case)
 * or D1's `ledger_entries` (drizzle's camelCase). Each row shape maps to these fields in one
 * place, and the wire Entry, the hash chain and the D1 insert are all built from them.
 */
import type { ChainFields } from "./chain";
import type { Dimensions, Direction, Entry, EntryType } from "./types";

/** The chain's fields plus the hash the row stores. */
export interface EntryFields extends ChainFields {
  hash: string | null;
}

/** The row the team object reads from its `entries` table. */
export type ObjectEntryRow = {
  seq: number;
  id: string;
  created_at: number;
  type: string;
  direction: string;
  amount: number;
  balance_after: number;
  grant_id: string | null;
  hold_id: string | null;
  spend_id: string | null;
  feature: string | null;
  quantity: number | null;
  dimensions: string | null;
  reference: string | null;
  actor: string | null;
  hash: string | null;
};

export function fieldsOfObjectRow(teamId: string, r: ObjectEntryRow): EntryFields {
  return {
    teamId,
    seq: r.seq,
    id: r.id,
    createdAtMs: r.created_at,
    type: r.type,
    direction: r.direction,
    amount: r.amount,
    balanceAfter: r.balance_after,
    grantId: r.grant_id,
    holdId: r.hold_id,
    spendId: r.spend_id,
    feature: r.feature,
    quantity: r.quantity,
    dimensions: r.dimensions,
    reference: r.reference,
    actor: r.actor,
    hash: r.hash,
  };
}

/** The wire Entry: absent optional fields are left out, dimensions parsed from their JSON. */
export function entryFromFields(f: EntryFields): Entry {
  const e: Entry = {
    id: f.id,
    seq: f.seq,
    createdAt: new Date(f.createdAtMs).toISOString(),
    type: f.type as EntryType,
    direction: f.direction as Direction,
    amount: f.amount,
    balanceAfter: f.balanceAfter,
  };
  if (f.grantId !== null) e.grantId = f.grantId;
  if (f.holdId !== null) e.holdId = f.holdId;
  if (f.spendId !== null) e.spendId = f.spendId;
  if (f.feature !== null) e.feature = f.feature;
  if (f.quantity !== null) e.quantity = f.quantity;
  if (f.dimensions !== null) e.dimensions = JSON.parse(f.dimensions) as Dimensions;
  if (f.reference !== null) e.reference = f.reference;
  if (f.actor !== null) e.actor = f.actor;
  if (f.hash !== null) e.hash = f.hash;
  return e;
}
