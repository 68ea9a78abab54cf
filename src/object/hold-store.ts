/**
 * The team object's holds table: typed reads and writes. A hold remembers which grants its
 * credits came from (`allocations`), so a capture, release or expiry gives them back exactly.
 */

import { assert } from "../domain/assert";
import type { Allocation } from "../domain/draw";
import type { Attribution, Dimensions, Hold, HoldStatus, PricedAt, Tier } from "../domain/vocabulary";
import { iso } from "./time";

type HoldRow = {
  id: string;
  amount: number;
  captured_amount: number;
  status: string;
  expires_at: number;
  created_at: number;
  resolved_at: number | null;
  feature: string | null;
  quantity: number | null;
  tier: string | null;
  unit_credits: number | null;
  price_version: number | null;
  dimensions: string | null;
  reference: string | null;
  reason: string | null;
  allocations: string;
  actor: string | null;
  member_team_id: string | null;
};

export interface StoredHold extends Hold, Attribution {
  allocations: Allocation[];
}

export interface NewHold extends Attribution, PricedAt {
  id: string;
  amount: number;
  expiresAtMs: number;
  createdAtMs: number;
  feature?: string | undefined;
  quantity?: number | undefined;
  tier?: Tier | undefined;
  dimensions?: Dimensions | undefined;
  reference?: string | undefined;
  allocations: Allocation[];
}

function holdFromRow(r: HoldRow): StoredHold {
  const hold: StoredHold = {
    id: r.id,
    amount: r.amount,
    capturedAmount: r.captured_amount,
    status: r.status as HoldStatus,
    expiresAt: iso(r.expires_at),
    createdAt: iso(r.created_at),
    resolvedAt: r.resolved_at === null ? null : iso(r.resolved_at),
    allocations: JSON.parse(r.allocations) as Allocation[],
  };
  if (r.feature !== null) hold.feature = r.feature;
  if (r.quantity !== null) hold.quantity = r.quantity;
  if (r.tier !== null) hold.tier = r.tier as Tier;
  if (r.unit_credits !== null) hold.unitCredits = r.unit_credits;
  if (r.price_version !== null) hold.priceVersion = r.price_version;
  if (r.dimensions !== null) hold.dimensions = JSON.parse(r.dimensions) as Dimensions;
  if (r.reference !== null) hold.reference = r.reference;
  if (r.reason !== null) hold.reason = r.reason;
  if (r.actor !== null) hold.actor = r.actor;
  if (r.member_team_id !== null) hold.memberTeamId = r.member_team_id;
  return hold;
}

/** A hold as the API shows it. */
export function publicHold(h: StoredHold): Hold {
  const { allocations: _a, actor: _actor, memberTeamId: _member, ...rest } = h;
  return rest;
}

export class HoldStore {
  constructor(private readonly sql: SqlStorage) {}

  get(id: string): StoredHold | null {
    const row = this.sql.exec<HoldRow>("SELECT * FROM holds WHERE id = ?", id).toArray()[0];
    return row ? holdFromRow(row) : null;
  }

  insert(h: NewHold): void {
    this.sql.exec(
      `INSERT INTO holds (id, amount, captured_amount, status, expires_at, created_at, feature, quantity, tier, dimensions,
         reference, allocations, actor, member_team_id, unit_credits, price_version)
       VALUES (?, ?, 0, 'pending', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
      h.id,
      h.amount,
      h.expiresAtMs,
      h.createdAtMs,
      h.feature ?? null,
      h.quantity ?? null,
      h.tier ?? null,
      h.dimensions ? JSON.stringify(h.dimensions) : null,
      h.reference ?? null,
      JSON.stringify(h.allocations),
      h.actor ?? null,
      h.memberTeamId ?? null,
      h.unitCredits ?? null,
      h.priceVersion ?? null,
    );
  }

  extend(id: string, change: { amount: number; expiresAtMs: number; allocations: Allocation[] }): void {
    this.sql.exec(
      "UPDATE holds SET amount = ?, expires_at = ?, allocations = ? WHERE id = ? AND status = 'pending'",
      change.amount,
      change.expiresAtMs,
      JSON.stringify(change.allocations),
      id,
    );
  }

  resolve(
    id: string,
    status: Exclude<HoldStatus, "pending">,
    capturedAmount: number,
    resolvedAtMs: number,
    reason: string | null,
  ): void {
    const cursor = this.sql.exec(
      `UPDATE holds SET status = ?, captured_amount = ?, resolved_at = ?, reason = ?
       WHERE id = ? AND status = 'pending'`,
      status,
      capturedAmount,
      resolvedAtMs,
      reason,
      id,
    );
    assert(cursor.rowsWritten === 1, "a hold resolves exactly once");
  }

  /** Pending holds whose deadline has passed, soonest first, at most `limit`. */
  due(nowMs: number, limit: number): StoredHold[] {
    return this.sql
      .exec<HoldRow>(
        "SELECT * FROM holds WHERE status = 'pending' AND expires_at <= ? ORDER BY expires_at LIMIT ?",
        nowMs,
        limit,
      )
      .toArray()
      .map(holdFromRow);
  }
}
