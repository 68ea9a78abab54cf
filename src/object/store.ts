/**
 * The team object's SQL, and nothing else: typed reads and writes over its SQLite database.
 * No rule of money lives here (see rules.ts and ledger-core.ts); every call is synchronous so
 * it can run inside one transactionSync.
 */
import { chainHash, GENESIS_HASH } from "./chain";
import { type ObjectEntryRow as EntryRow, entryFromFields } from "./entry-fields";
import type { DrawableGrant } from "./rules";
import { assert } from "./rules";
import {
  CATEGORY_RANK,
  type Category,
  type Dimensions,
  type Direction,
  type Entry,
  type EntryFilter,
  type EntrySums,
  type EntryType,
  type Grant,
  type GrantSource,
  type GrantStatus,
  type Hold,
  type HoldStatus,
  type Tier,
} from "./types";

const INSERT_ENTRY = `INSERT INTO entries (seq, id, created_at, type, direction, amount, balance_after, grant_id,
   hold_id, spend_id, feature, quantity, dimensions, reference, actor, hash) VALUES (${Array(16).fill("?").join(", ")})`;

type GrantRow = {
  seq: number;
  id: string;
  amount: number;
  remaining: number;
  held: number;
  category: string;
  source: string;
  priority: number;
  expires_at: number | null;
  status: string;
  reference: string | null;
  created_at: number;
};

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
  dimensions: string | null;
  reference: string | null;
  reason: string | null;
  allocations: string;
};

export type { ObjectEntryRow as EntryRow } from "./entry-fields";

/** An entry before the store numbers it. */
export interface NewEntry {
  type: EntryType;
  direction: Direction;
  amount: number;
  balanceAfter: number;
  grantId?: string | undefined;
  holdId?: string | undefined;
  spendId?: string | undefined;
  feature?: string | undefined;
  quantity?: number | undefined;
  dimensions?: Dimensions | undefined;
  reference?: string | undefined;
  actor?: string | undefined;
}

export interface StoredHold extends Hold {
  allocations: { grantId: string; amount: number }[];
  tier?: Tier;
}

export interface StoredGrant extends Grant {
  seq: number;
  expiresAtMs: number | null;
}

/** An idempotency record: the request's fingerprint and the reply stored for it. */
export interface StoredReply {
  fingerprint: string;
  status: number;
  body: string;
}

/** What an operation starts from; see LedgerStore.openingState. */
export interface OpeningState {
  byCategory: Record<Category, number>;
  held: number;
  available: number;
  due: boolean;
  seen: StoredReply | null;
}

export const iso = (ms: number): string => new Date(ms).toISOString();

function grantFromRow(r: GrantRow): StoredGrant {
  return {
    id: r.id,
    seq: r.seq,
    amount: r.amount,
    remaining: r.remaining + r.held,
    held: r.held,
    category: r.category as Category,
    source: r.source as GrantSource,
    priority: r.priority,
    status: r.status as GrantStatus,
    expiresAt: r.expires_at === null ? null : iso(r.expires_at),
    expiresAtMs: r.expires_at,
    reference: r.reference,
    createdAt: iso(r.created_at),
  };
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
    allocations: JSON.parse(r.allocations) as { grantId: string; amount: number }[],
  };
  if (r.feature !== null) hold.feature = r.feature;
  if (r.quantity !== null) hold.quantity = r.quantity;
  if (r.tier !== null) hold.tier = r.tier as Tier;
  if (r.dimensions !== null) hold.dimensions = JSON.parse(r.dimensions) as Dimensions;
  if (r.reference !== null) hold.reference = r.reference;
  if (r.reason !== null) hold.reason = r.reason;
  return hold;
}

export class LedgerStore {
  /** Next entry number; derived from the table at load and after any rolled-back transaction. */
  private nextSeq = 0;
  /** Hash of the last entry (see chain.ts); derived and kept in sync with nextSeq. */
  private lastHash = GENESIS_HASH;
  /** The team whose entries these are: part of every entry's hash. Set by the object. */
  private teamId: string | null = null;

  constructor(private readonly sql: SqlStorage) {}

  bindTeam(teamId: string): void {
    assert(this.teamId === null || this.teamId === teamId, "a team object stores one team");
    this.teamId = teamId;
  }

  /** Next seq and the chain's head, from the last entry; at load and after any rollback. */
  reloadSeq(): void {
    const row = this.sql
      .exec<{ seq: number; hash: string | null }>("SELECT seq, hash FROM entries ORDER BY seq DESC LIMIT 1")
      .toArray()[0];
    this.nextSeq = (row?.seq ?? 0) + 1;
    // An entry without a hash (written before the chain) is a break the verifier reports; the
    // chain goes on from genesis after it.
    this.lastHash = row?.hash ?? GENESIS_HASH;
  }

  /** The stored hash of entry `seq`; null when there is no such entry or it has no hash. */
  entryHash(seq: number): string | null {
    const row = this.sql.exec<{ hash: string | null }>("SELECT hash FROM entries WHERE seq = ?", seq).toArray()[0];
    return row?.hash ?? null;
  }

  lastSeq(): number {
    return this.nextSeq - 1;
  }

  // ---- meta ---------------------------------------------------------------------------------

  getMeta(key: string): string | null {
    const row = this.sql.exec<{ value: string }>("SELECT value FROM meta WHERE key = ?", key).toArray()[0];
    return row?.value ?? null;
  }

  /** Several meta values in one statement; absent keys are absent from the map. */
  getMetas(keys: readonly string[]): Map<string, string> {
    const rows = this.sql
      .exec<{ key: string; value: string }>(
        `SELECT key, value FROM meta WHERE key IN (${keys.map(() => "?").join(", ")})`,
        ...keys,
      )
      .toArray();
    return new Map(rows.map((r) => [r.key, r.value]));
  }

  setMeta(key: string, value: string): void {
    this.sql.exec(
      "INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
      key,
      value,
    );
  }

  // ---- grants -------------------------------------------------------------------------------

  /** Live grants with spendable credits, in spending order, read lazily row by row. */
  *drawableGrants(nowMs: number): Generator<DrawableGrant> {
    const cursor = this.sql.exec<GrantRow>(
      `SELECT seq, id, remaining, category, priority, expires_at FROM grants
       WHERE status = 'active' AND remaining > 0 AND (expires_at IS NULL OR expires_at > ?)
       ORDER BY category_rank, priority, expires_at IS NULL, expires_at, seq`,
      nowMs,
    );
    for (const r of cursor) {
      yield {
        id: r.id,
        seq: r.seq,
        category: r.category as Category,
        priority: r.priority,
        expiresAtMs: r.expires_at,
        remaining: r.remaining,
      };
    }
  }

  /**
   * What every operation reads first, in one statement: the available credits per category and
   * the held credits (so a spend can answer with its balance without reading it again), whether
   * any grant or hold is due (so settling costs nothing on the common path where none is), and
   * the idempotency record stored under `idempotencyKey`, if any.
   */
  openingState(nowMs: number, idempotencyKey: string | null): OpeningState {
    const row = this.sql
      .exec<{
        free: number;
        paid: number;
        promotional: number;
        held: number;
        due: number;
        seen_fingerprint: string | null;
        seen_status: number | null;
        seen_body: string | null;
      }>(
        `SELECT
           COALESCE(SUM(CASE WHEN category = 'free' THEN remaining END), 0) AS free,
           COALESCE(SUM(CASE WHEN category = 'paid' THEN remaining END), 0) AS paid,
           COALESCE(SUM(CASE WHEN category = 'promotional' THEN remaining END), 0) AS promotional,
           (SELECT COALESCE(SUM(amount), 0) FROM holds WHERE status = 'pending') AS held,
           (EXISTS (SELECT 1 FROM grants WHERE status = 'active' AND expires_at IS NOT NULL AND expires_at <= ?1)
             OR EXISTS (SELECT 1 FROM holds WHERE status = 'pending' AND expires_at <= ?1)) AS due,
           (SELECT fingerprint FROM idempotency WHERE key = ?2) AS seen_fingerprint,
           (SELECT status FROM idempotency WHERE key = ?2) AS seen_status,
           (SELECT body FROM idempotency WHERE key = ?2) AS seen_body
         FROM grants
         WHERE status = 'active' AND remaining > 0 AND (expires_at IS NULL OR expires_at > ?1)`,
        nowMs,
        idempotencyKey,
      )
      .one();
    const byCategory = { free: row.free, paid: row.paid, promotional: row.promotional };
    const seen =
      row.seen_fingerprint !== null && row.seen_status !== null && row.seen_body !== null
        ? { fingerprint: row.seen_fingerprint, status: row.seen_status, body: row.seen_body }
        : null;
    return {
      byCategory,
      held: row.held,
      available: byCategory.free + byCategory.paid + byCategory.promotional,
      due: row.due === 1,
      seen,
    };
  }

  getGrant(id: string): StoredGrant | null {
    const row = this.sql.exec<GrantRow>("SELECT * FROM grants WHERE id = ?", id).toArray()[0];
    return row ? grantFromRow(row) : null;
  }

  /** Grants still worth showing: live, or holding credits for a pending hold. */
  listLiveGrants(): StoredGrant[] {
    return this.sql
      .exec<GrantRow>(
        `SELECT * FROM grants WHERE status = 'active' OR held > 0
         ORDER BY category_rank, priority, expires_at IS NULL, expires_at, seq LIMIT 1000`,
      )
      .toArray()
      .map(grantFromRow);
  }

  insertGrant(g: {
    id: string;
    amount: number;
    category: Category;
    source: GrantSource;
    priority: number;
    expiresAtMs: number | null;
    reference: string | null;
    createdAtMs: number;
  }): void {
    this.sql.exec(
      `INSERT INTO grants (id, amount, remaining, held, category, category_rank, source, priority, expires_at, status, reference, created_at)
       VALUES (?, ?, ?, 0, ?, ?, ?, ?, ?, 'active', ?, ?)`,
      g.id,
      g.amount,
      g.amount,
      g.category,
      CATEGORY_RANK[g.category],
      g.source,
      g.priority,
      g.expiresAtMs,
      g.reference,
      g.createdAtMs,
    );
  }

  /** Moves credits of a grant: `spent` leave it, `reserved` go from remaining to held. */
  adjustGrant(id: string, delta: { remaining: number; held: number }): void {
    this.sql.exec(
      `UPDATE grants SET remaining = remaining + ?, held = held + ?,
         status = CASE WHEN status IN ('active', 'depleted')
                       THEN CASE WHEN remaining + ? = 0 AND held + ? = 0 THEN 'depleted' ELSE 'active' END
                       ELSE status END
       WHERE id = ?`,
      delta.remaining,
      delta.held,
      delta.remaining,
      delta.held,
      id,
    );
  }

  /** Ends a grant: what remains unreserved is gone; reserved credits stay with their holds. */
  endGrant(id: string, status: "expired" | "voided"): void {
    this.sql.exec("UPDATE grants SET remaining = 0, status = ? WHERE id = ?", status, id);
  }

  dueGrants(nowMs: number, limit: number): StoredGrant[] {
    return this.sql
      .exec<GrantRow>(
        `SELECT * FROM grants WHERE status = 'active' AND expires_at IS NOT NULL AND expires_at <= ?
         ORDER BY expires_at, seq LIMIT ?`,
        nowMs,
        limit,
      )
      .toArray()
      .map(grantFromRow);
  }

  totalGranted(): number {
    const row = this.sql.exec<{ total: number | null }>("SELECT SUM(remaining + held) AS total FROM grants").one();
    return row.total ?? 0;
  }

  // ---- holds --------------------------------------------------------------------------------

  getHold(id: string): StoredHold | null {
    const row = this.sql.exec<HoldRow>("SELECT * FROM holds WHERE id = ?", id).toArray()[0];
    return row ? holdFromRow(row) : null;
  }

  insertHold(h: {
    id: string;
    amount: number;
    expiresAtMs: number;
    createdAtMs: number;
    feature?: string | undefined;
    quantity?: number | undefined;
    tier?: Tier | undefined;
    dimensions?: Dimensions | undefined;
    reference?: string | undefined;
    allocations: { grantId: string; amount: number }[];
  }): void {
    this.sql.exec(
      `INSERT INTO holds (id, amount, captured_amount, status, expires_at, created_at, feature, quantity, tier, dimensions, reference, allocations)
       VALUES (?, ?, 0, 'pending', ?, ?, ?, ?, ?, ?, ?, ?)`,
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
    );
  }

  extendHold(
    id: string,
    change: { amount: number; expiresAtMs: number; allocations: { grantId: string; amount: number }[] },
  ): void {
    this.sql.exec(
      "UPDATE holds SET amount = ?, expires_at = ?, allocations = ? WHERE id = ? AND status = 'pending'",
      change.amount,
      change.expiresAtMs,
      JSON.stringify(change.allocations),
      id,
    );
  }

  resolveHold(
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

  dueHolds(nowMs: number, limit: number): StoredHold[] {
    return this.sql
      .exec<HoldRow>(
        "SELECT * FROM holds WHERE status = 'pending' AND expires_at <= ? ORDER BY expires_at LIMIT ?",
        nowMs,
        limit,
      )
      .toArray()
      .map(holdFromRow);
  }

  /**
   * The times the alarm's schedule depends on, in one statement: the next grant expiry, the next
   * hold deadline, and when the oldest idempotency record was stored (null when there is none).
   */
  nextDueTimes(): { grantExpiryMs: number | null; holdExpiryMs: number | null; oldestIdempotencyMs: number | null } {
    const row = this.sql
      .exec<{ g: number | null; h: number | null; i: number | null }>(
        `SELECT
           (SELECT MIN(expires_at) FROM grants WHERE status = 'active' AND expires_at IS NOT NULL) AS g,
           (SELECT MIN(expires_at) FROM holds WHERE status = 'pending') AS h,
           (SELECT MIN(created_at) FROM idempotency) AS i`,
      )
      .one();
    return { grantExpiryMs: row.g, holdExpiryMs: row.h, oldestIdempotencyMs: row.i };
  }

  // ---- entries ------------------------------------------------------------------------------

  appendEntry(e: NewEntry, nowMs: number): Entry {
    assert(Number.isSafeInteger(e.amount) && e.amount >= 0, "entry amount is a non-negative integer");
    assert(Number.isSafeInteger(e.balanceAfter) && e.balanceAfter >= 0, "available never below zero");
    assert(this.teamId !== null, "the store knows its team before writing entries");
    const seq = this.nextSeq++;
    const id = `ent_${crypto.randomUUID().replaceAll("-", "")}`;
    const fields = {
      teamId: this.teamId,
      seq,
      id,
      createdAtMs: nowMs,
      type: e.type,
      direction: e.direction,
      amount: e.amount,
      balanceAfter: e.balanceAfter,
      grantId: e.grantId ?? null,
      holdId: e.holdId ?? null,
      spendId: e.spendId ?? null,
      feature: e.feature ?? null,
      quantity: e.quantity ?? null,
      dimensions: e.dimensions ? JSON.stringify(e.dimensions) : null,
      reference: e.reference ?? null,
      actor: e.actor ?? null,
    };
    const hash = chainHash(this.lastHash, fields);
    this.sql.exec(
      INSERT_ENTRY,
      seq,
      id,
      nowMs,
      fields.type,
      fields.direction,
      fields.amount,
      fields.balanceAfter,
      fields.grantId,
      fields.holdId,
      fields.spendId,
      fields.feature,
      fields.quantity,
      fields.dimensions,
      fields.reference,
      fields.actor,
      hash,
    );
    this.lastHash = hash;
    return entryFromFields({ ...fields, hash });
  }

  listEntries(filter: EntryFilter): EntryRow[] {
    const where: string[] = [];
    const args: (string | number)[] = [];
    if (filter.beforeSeq !== undefined) {
      where.push("seq < ?");
      args.push(filter.beforeSeq);
    }
    if (filter.afterSeq !== undefined) {
      where.push("seq > ?");
      args.push(filter.afterSeq);
    }
    if (filter.types && filter.types.length > 0) {
      where.push(`type IN (${filter.types.map(() => "?").join(", ")})`);
      args.push(...filter.types);
    }
    if (filter.direction) {
      where.push("direction = ?");
      args.push(filter.direction);
    }
    if (filter.fromMs !== undefined) {
      where.push("created_at >= ?");
      args.push(filter.fromMs);
    }
    if (filter.toMs !== undefined) {
      where.push("created_at < ?");
      args.push(filter.toMs);
    }
    const clause = where.length > 0 ? `WHERE ${where.join(" AND ")}` : "";
    return this.sql
      .exec<EntryRow>(`SELECT * FROM entries ${clause} ORDER BY seq DESC LIMIT ?`, ...args, filter.limit)
      .toArray();
  }

  /** Sums (see EntrySums) of the entries after `afterSeq`: what D1 has not received yet. */
  entrySums(afterSeq: number): EntrySums {
    const row = this.sql
      .exec<{ entries: number; available: number | null; held: number | null }>(
        `SELECT COUNT(*) AS entries,
           SUM(CASE WHEN direction = 'in' THEN amount WHEN type = 'capture' THEN 0 ELSE -amount END) AS available,
           SUM(CASE WHEN type = 'hold' THEN amount WHEN type = 'capture' THEN -amount
                    WHEN direction = 'in' AND hold_id IS NOT NULL THEN -amount ELSE 0 END) AS held
         FROM entries WHERE seq > ?`,
        afterSeq,
      )
      .one();
    const available = row.available ?? 0;
    const held = row.held ?? 0;
    return { entries: row.entries, available, held, total: available + held };
  }

  /**
   * Entries after `afterSeq`, oldest first, at most `limit`: what the outbox sends to D1 next.
   * SQLite writes each as the JSON row D1's insert unpacks (db/history.ts COLUMNS order: the team
   * id, the canonical fields, the hash), so no entry becomes a JavaScript object on the way.
   */
  outboxRows(afterSeq: number, limit: number): { lastSeq: number; rows: string[] } {
    assert(this.teamId !== null, "the store knows its team before sending entries");
    const rows: string[] = [];
    let lastSeq = afterSeq;
    const cursor = this.sql
      .exec<{ seq: number; row: string }>(
        `SELECT seq, json_array(?, seq, id, created_at, type, direction, amount, balance_after, grant_id, hold_id,
                spend_id, feature, quantity, dimensions, reference, actor, hash) AS row
         FROM entries WHERE seq > ? ORDER BY seq LIMIT ?`,
        this.teamId,
        afterSeq,
        limit,
      )
      .raw();
    for (const [seq, row] of cursor) {
      rows.push(row as string);
      lastSeq = seq as number;
    }
    return { lastSeq, rows };
  }

  // ---- idempotency --------------------------------------------------------------------------

  putIdempotency(key: string, fingerprint: string, status: number, body: string, nowMs: number): void {
    this.sql.exec(
      "INSERT INTO idempotency (key, fingerprint, status, body, created_at) VALUES (?, ?, ?, ?, ?)",
      key,
      fingerprint,
      status,
      body,
      nowMs,
    );
  }

  purgeIdempotency(olderThanMs: number, limit: number): number {
    const cursor = this.sql.exec(
      `DELETE FROM idempotency WHERE key IN
         (SELECT key FROM idempotency WHERE created_at < ? ORDER BY created_at LIMIT ?)`,
      olderThanMs,
      limit,
    );
    return cursor.rowsWritten;
  }
}
