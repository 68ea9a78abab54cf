/**
 * The team object's storage: one SQLite database, a store per table (grants, holds, entries) and
 * the small ones here (meta, idempotency records), the statements that read across tables, and
 * `transaction(fn)`, the only way the object writes: fn runs in one transactionSync and commits
 * with everything it wrote, or throws and leaves nothing (the entry store's in-memory chain head
 * is reloaded, since the entries it counted are gone). No rule of money lives here.
 */
import { EntryStore } from "./entry-store";
import { EventStore } from "./event-store";
import { GrantStore } from "./grant-store";
import { HoldStore } from "./hold-store";
import { MessageStore } from "./message-store";
import { PeriodStore } from "./period-store";
import { PoolStore } from "./pool-store";
import { PurchaseStore } from "./purchase-store";
import { RechargeStore } from "./recharge-store";
import { migrate } from "./schema";

/** An idempotency record: the request's fingerprint and the reply saved for it (schema.ts v3). */
export interface StoredReply {
  fingerprint: string;
  /** 200 or 201 for a success; 0 for a refusal. */
  status: number;
  body: string;
}

/** Meta key: when the team's next monthly period starts (absent while it is on no plan). */
export const NEXT_PERIOD_KEY = "period.nextStartMs";

/** Meta key: the team's low-balance level (domain/low-balance.ts), so each crossing is told once. */
export const BALANCE_LEVEL_KEY = "balance.level";

/** Status under which a refusal is saved (its body says which failure). */
export const REFUSAL_STATUS = 0;

/** What an operation starts from; see LedgerStore.openingState. */
export interface OpeningState {
  byCategory: { free: number; paid: number; promotional: number };
  held: number;
  available: number;
  /** Of `available`, the credits restricted to a feature: 0 for most teams, who pay no more for them. */
  restricted: number;
  due: boolean;
  seen: StoredReply | null;
  /** The team's low-balance level as last told (ledger-tx.ts watchBalance); null before any. */
  balanceLevel: string | null;
}

export class LedgerStore {
  readonly grants: GrantStore;
  readonly holds: HoldStore;
  readonly entries: EntryStore;
  readonly periods: PeriodStore;
  readonly events: EventStore;
  readonly messages: MessageStore;
  readonly purchases: PurchaseStore;
  readonly recharges: RechargeStore;
  /** An agency's subaccounts, caps and their counters (empty for every other team). */
  readonly pools: PoolStore;
  private readonly sql: SqlStorage;

  constructor(private readonly storage: DurableObjectStorage) {
    this.sql = storage.sql;
    storage.transactionSync(() => migrate(this.sql));
    this.grants = new GrantStore(this.sql);
    this.holds = new HoldStore(this.sql);
    this.entries = new EntryStore(this.sql);
    this.periods = new PeriodStore(this.sql);
    this.events = new EventStore(this.sql);
    this.messages = new MessageStore(this.sql);
    this.purchases = new PurchaseStore(this.sql);
    this.recharges = new RechargeStore(this.sql);
    this.pools = new PoolStore(this.sql);
    this.entries.reloadHead();
  }

  /** Runs fn in one transaction: all of it commits, or (it threw) none of it. fn must not await. */
  transaction<T>(fn: () => T): T {
    try {
      return this.storage.transactionSync(fn);
    } catch (err) {
      this.entries.reloadHead();
      throw err;
    }
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

  deleteMeta(key: string): void {
    this.sql.exec("DELETE FROM meta WHERE key = ?", key);
  }

  // ---- API keys bound to the team, revoked (schema.ts v7) ----------------------------------------

  revokedKeys(): string[] {
    return this.sql
      .exec<{ key_id: string }>("SELECT key_id FROM revoked_keys")
      .toArray()
      .map((r) => r.key_id);
  }

  revokeKey(keyId: string, nowMs: number): void {
    this.sql.exec(
      "INSERT INTO revoked_keys (key_id, revoked_at_ms) VALUES (?, ?) ON CONFLICT (key_id) DO NOTHING",
      keyId,
      nowMs,
    );
  }

  // ---- referral rewards received (referrals.ts) -------------------------------------------------

  referralReward(referralId: string, kind: string): { grantId: string | null } | null {
    const row = this.sql
      .exec<{ grant_id: string | null }>(
        "SELECT grant_id FROM referral_rewards WHERE referral_id = ? AND kind = ?",
        referralId,
        kind,
      )
      .toArray()[0];
    return row ? { grantId: row.grant_id } : null;
  }

  putReferralReward(r: {
    referralId: string;
    kind: string;
    referredTeamId: string;
    grantId: string | null;
    credits: number;
    nowMs: number;
  }): void {
    this.sql.exec(
      `INSERT INTO referral_rewards (referral_id, kind, referred_team_id, grant_id, credits, created_at_ms)
       VALUES (?, ?, ?, ?, ?, ?)`,
      r.referralId,
      r.kind,
      r.referredTeamId,
      r.grantId,
      r.credits,
      r.nowMs,
    );
  }

  // ---- idempotency records --------------------------------------------------------------------

  putReply(key: string, reply: StoredReply, nowMs: number): void {
    this.sql.exec(
      "INSERT INTO idempotency (key, fingerprint, status, body, created_at) VALUES (?, ?, ?, ?, ?)",
      key,
      reply.fingerprint,
      reply.status,
      reply.body,
      nowMs,
    );
  }

  purgeReplies(olderThanMs: number, limit: number): number {
    const cursor = this.sql.exec(
      `DELETE FROM idempotency WHERE key IN
         (SELECT key FROM idempotency WHERE created_at < ? ORDER BY created_at LIMIT ?)`,
      olderThanMs,
      limit,
    );
    return cursor.rowsWritten;
  }

  // ---- across tables ------------------------------------------------------------------------

  /**
   * What every operation reads first, in one statement: the available credits per category and
   * the held credits (so a spend can answer with its balance without reading it again), whether
   * any grant or hold is due (so settling costs nothing on the common path where none is), and
   * the idempotency record saved under `idempotencyKey`, if any. It also sums the credits
   * restricted to a feature, so only a team that has some pays for reading them per feature.
   */
  openingState(nowMs: number, idempotencyKey: string | null): OpeningState {
    const row = this.sql
      .exec<{
        free: number;
        paid: number;
        promotional: number;
        restricted: number;
        held: number;
        due: number;
        seen_fingerprint: string | null;
        seen_status: number | null;
        seen_body: string | null;
        balance_level: string | null;
      }>(
        // The idempotency record is joined once (one index lookup), not read by three subqueries.
        `SELECT o.*, i.fingerprint AS seen_fingerprint, i.status AS seen_status, i.body AS seen_body
         FROM (
           SELECT
             COALESCE(SUM(CASE WHEN category = 'free' THEN remaining END), 0) AS free,
             COALESCE(SUM(CASE WHEN category = 'paid' THEN remaining END), 0) AS paid,
             COALESCE(SUM(CASE WHEN category = 'promotional' THEN remaining END), 0) AS promotional,
             COALESCE(SUM(CASE WHEN restricted_feature IS NOT NULL THEN remaining END), 0) AS restricted,
             (SELECT COALESCE(SUM(amount), 0) FROM holds WHERE status = 'pending') AS held,
             (EXISTS (SELECT 1 FROM grants WHERE status = 'active' AND expires_at IS NOT NULL AND expires_at <= ?1)
               OR EXISTS (SELECT 1 FROM holds WHERE status = 'pending' AND expires_at <= ?1)
               OR EXISTS (SELECT 1 FROM meta WHERE key = '${NEXT_PERIOD_KEY}' AND CAST(value AS INTEGER) <= ?1)) AS due,
             (SELECT value FROM meta WHERE key = '${BALANCE_LEVEL_KEY}') AS balance_level
           FROM grants
           WHERE status = 'active' AND remaining > 0 AND (expires_at IS NULL OR expires_at > ?1)
         ) AS o
         LEFT JOIN idempotency AS i ON i.key = ?2`,
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
      restricted: row.restricted,
      due: row.due === 1,
      seen,
      balanceLevel: row.balance_level,
    };
  }

  /**
   * The times the alarm's schedule depends on, in one statement: the next grant expiry, the next
   * hold deadline, and when the oldest idempotency record was saved (null when there is none).
   */
  nextDueTimes(): {
    grantExpiryMs: number | null;
    holdExpiryMs: number | null;
    oldestReplyMs: number | null;
    periodStartMs: number | null;
  } {
    const row = this.sql
      .exec<{ g: number | null; h: number | null; i: number | null; p: number | null }>(
        `SELECT
           (SELECT MIN(expires_at) FROM grants WHERE status = 'active' AND expires_at IS NOT NULL) AS g,
           (SELECT MIN(expires_at) FROM holds WHERE status = 'pending') AS h,
           (SELECT MIN(created_at) FROM idempotency) AS i,
           (SELECT CAST(value AS INTEGER) FROM meta WHERE key = '${NEXT_PERIOD_KEY}') AS p`,
      )
      .one();
    return { grantExpiryMs: row.g, holdExpiryMs: row.h, oldestReplyMs: row.i, periodStartMs: row.p };
  }
}
