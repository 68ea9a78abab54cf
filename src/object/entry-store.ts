/**
 * The team object's entries table: the history, numbered 1, 2, 3, … without gaps, each entry
 * hashed onto the chain as it is appended. The table is also the outbox to D1 (outbox.ts): what
 * lies above the delivered mark is what D1 has not received. The columns, their order and each
 * mapping come from domain/entry.ts.
 */
import { assert } from "../domain/assert";
import { CHAIN_VERSION, chainHash, GENESIS_HASH } from "../domain/chain";
import {
  type EntryFields,
  type EntryRow,
  entryFromFields,
  fieldsOfRow,
  INSERT_ENTRY_SQL,
  insertValues,
  OUTBOX_ROW_SQL,
} from "../domain/entry";
import { AVAILABLE_EFFECT_SQL, HELD_EFFECT_SQL } from "../domain/entry-effect";
import type { Dimensions, Direction, Entry, EntryFilter, EntrySums, EntryType, Tier } from "../domain/vocabulary";

/** An entry before the store numbers, stamps and hashes it. */
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
  memberTeamId?: string | undefined;
  tier?: Tier | undefined;
  unitCredits?: number | undefined;
  priceVersion?: number | undefined;
  shortfallCredits?: number | undefined;
}

export class EntryStore {
  /** Next entry number; derived from the table at load and after any rolled-back transaction. */
  private nextSeq = 0;
  /** Hash of the last entry (see domain/chain.ts); derived and kept in sync with nextSeq. */
  private lastHash = GENESIS_HASH;
  /** The team whose entries these are: part of every entry's hash. Set by the object. */
  private teamId: string | null = null;

  constructor(private readonly sql: SqlStorage) {}

  bindTeam(teamId: string): void {
    assert(this.teamId === null || this.teamId === teamId, "a team object stores one team");
    this.teamId = teamId;
  }

  /**
   * Next seq and the chain's head, from the last entry: at load, and after a transaction rolled
   * back (its entries are gone, so the in-memory head must come from storage again).
   */
  reloadHead(): void {
    const row = this.sql
      .exec<{ seq: number; hash: string | null }>("SELECT seq, hash FROM entries ORDER BY seq DESC LIMIT 1")
      .toArray()[0];
    this.nextSeq = (row?.seq ?? 0) + 1;
    // An entry without a hash (written before the chain) is a break the verifier reports; the
    // chain goes on from genesis after it.
    this.lastHash = row?.hash ?? GENESIS_HASH;
  }

  lastSeq(): number {
    return this.nextSeq - 1;
  }

  /** The stored hash of entry `seq`; null when there is no such entry or it has no hash. */
  hashAt(seq: number): string | null {
    const row = this.sql.exec<{ hash: string | null }>("SELECT hash FROM entries WHERE seq = ?", seq).toArray()[0];
    return row?.hash ?? null;
  }

  append(e: NewEntry, nowMs: number): Entry {
    assert(Number.isSafeInteger(e.amount) && e.amount >= 0, "entry amount is a non-negative integer");
    assert(Number.isSafeInteger(e.balanceAfter) && e.balanceAfter >= 0, "available never below zero");
    assert((e.type === "capture") === (e.direction === "none"), "captures, and only captures, move nothing");
    assert(this.teamId !== null, "the store knows its team before writing entries");
    const stored: EntryFields = {
      teamId: this.teamId,
      seq: this.nextSeq,
      id: `ent_${crypto.randomUUID().replaceAll("-", "")}`,
      createdAtMs: nowMs,
      type: e.type,
      direction: e.direction,
      amountCredits: e.amount,
      balanceAfterCredits: e.balanceAfter,
      grantId: e.grantId ?? null,
      holdId: e.holdId ?? null,
      spendId: e.spendId ?? null,
      feature: e.feature ?? null,
      quantity: e.quantity ?? null,
      dimensions: e.dimensions ? JSON.stringify(e.dimensions) : null,
      reference: e.reference ?? null,
      actor: e.actor ?? null,
      memberTeamId: e.memberTeamId ?? null,
      tier: e.tier ?? null,
      unitCredits: e.unitCredits ?? null,
      priceVersion: e.priceVersion ?? null,
      shortfallCredits: e.shortfallCredits ?? null,
      chainVersion: CHAIN_VERSION,
      hash: null,
    };
    const hash = chainHash(this.lastHash, stored);
    stored.hash = hash;
    this.sql.exec(INSERT_ENTRY_SQL, ...insertValues(stored));
    this.nextSeq += 1;
    this.lastHash = hash;
    return entryFromFields(stored);
  }

  /** Entries matching the filter, newest first, at most `filter.limit`, as fields. */
  list(filter: EntryFilter): EntryFields[] {
    assert(this.teamId !== null, "the store knows its team before reading entries");
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
      where.push("created_at_ms >= ?");
      args.push(filter.fromMs);
    }
    if (filter.toMs !== undefined) {
      where.push("created_at_ms < ?");
      args.push(filter.toMs);
    }
    const clause = where.length > 0 ? `WHERE ${where.join(" AND ")}` : "";
    const teamId = this.teamId;
    return this.sql
      .exec<EntryRow>(`SELECT * FROM entries ${clause} ORDER BY seq DESC LIMIT ?`, ...args, filter.limit)
      .toArray()
      .map((r) => fieldsOfRow(teamId, r));
  }

  /** Sums (domain/entry-effect.ts) of the entries after `afterSeq`: what D1 has not received yet. */
  sums(afterSeq: number): EntrySums {
    const row = this.sql
      .exec<{ entries: number; available: number | null; held: number | null }>(
        `SELECT COUNT(*) AS entries, SUM(${AVAILABLE_EFFECT_SQL}) AS available, SUM(${HELD_EFFECT_SQL}) AS held
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
   * SQLite writes each as the JSON row D1's insert unpacks (domain/entry.ts D1_COLUMNS order), so
   * no entry becomes a JavaScript object on the way.
   */
  outboxRows(afterSeq: number, limit: number): { lastSeq: number; rows: string[] } {
    assert(this.teamId !== null, "the store knows its team before sending entries");
    const rows: string[] = [];
    let lastSeq = afterSeq;
    const cursor = this.sql
      .exec<{ seq: number; row: string }>(
        `SELECT seq, ${OUTBOX_ROW_SQL} AS row FROM entries WHERE seq > ? ORDER BY seq LIMIT ?`,
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
}
