/**
 * The team object's own SQLite schema. Applied in the object's constructor; versioned in
 * a one-row table so a deployed object upgrades itself once, inside one transaction.
 * All times are integer milliseconds since the epoch; all amounts are integer credits.
 */

const V1 = [
  `CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)`,
  `CREATE TABLE grants (
     seq INTEGER PRIMARY KEY,
     id TEXT NOT NULL UNIQUE,
     amount INTEGER NOT NULL CHECK (amount > 0),
     remaining INTEGER NOT NULL CHECK (remaining >= 0),
     held INTEGER NOT NULL DEFAULT 0 CHECK (held >= 0),
     category TEXT NOT NULL,
     category_rank INTEGER NOT NULL,
     source TEXT NOT NULL,
     priority INTEGER NOT NULL,
     expires_at INTEGER,
     status TEXT NOT NULL,
     reference TEXT,
     created_at INTEGER NOT NULL,
     CHECK (remaining + held <= amount)
   )`,
  // The spend path's one read: live grants in spending order (domain/spending-order.ts).
  `CREATE INDEX grants_spend_order ON grants (category_rank, priority, expires_at IS NULL, expires_at, seq)
     WHERE status = 'active' AND remaining > 0`,
  `CREATE INDEX grants_expiry ON grants (expires_at) WHERE status = 'active' AND expires_at IS NOT NULL`,
  `CREATE TABLE holds (
     id TEXT PRIMARY KEY,
     amount INTEGER NOT NULL CHECK (amount > 0),
     captured_amount INTEGER NOT NULL DEFAULT 0,
     status TEXT NOT NULL,
     expires_at INTEGER NOT NULL,
     created_at INTEGER NOT NULL,
     resolved_at INTEGER,
     feature TEXT,
     quantity INTEGER,
     tier TEXT,
     dimensions TEXT,
     reference TEXT,
     reason TEXT,
     allocations TEXT NOT NULL,
     CHECK (captured_amount >= 0 AND captured_amount <= amount)
   )`,
  `CREATE INDEX holds_pending_expiry ON holds (expires_at) WHERE status = 'pending'`,
  `CREATE TABLE entries (
     seq INTEGER PRIMARY KEY,
     id TEXT NOT NULL,
     created_at INTEGER NOT NULL,
     type TEXT NOT NULL,
     direction TEXT NOT NULL CHECK (direction IN ('in', 'out')),
     amount INTEGER NOT NULL CHECK (amount >= 0),
     balance_after INTEGER NOT NULL CHECK (balance_after >= 0),
     grant_id TEXT,
     hold_id TEXT,
     spend_id TEXT,
     feature TEXT,
     quantity INTEGER,
     dimensions TEXT,
     reference TEXT,
     actor TEXT
   )`,
  `CREATE INDEX entries_created ON entries (created_at)`,
  `CREATE TABLE idempotency (
     key TEXT PRIMARY KEY,
     fingerprint TEXT NOT NULL,
     status INTEGER NOT NULL,
     body TEXT NOT NULL,
     created_at INTEGER NOT NULL
   )`,
  `CREATE INDEX idempotency_created ON idempotency (created_at)`,
];

/** v2: each entry carries its place in the team's hash chain (filled by the ledger at write time). */
const V2 = [`ALTER TABLE entries ADD COLUMN hash TEXT`];

/**
 * v3: the history adds up line by line. Captures move nothing and say so (`direction = 'none'`,
 * chain version 2; older captures are rewritten to 'none' and keep verifying under version 1,
 * see domain/chain.ts). Entries gain the member team a pooled charge was made for and the chain
 * version of their hash, and take D1's column names (domain/entry.ts owns them). SQLite cannot
 * change a CHECK, so the table is rebuilt, once, inside the migration's transaction.
 *
 * The idempotency table is unchanged, but now also saves refusals: `status` is 200 or 201 for a
 * success (body: the reply) and 0 for a refusal (body: {code, detail, extras?, requestId}).
 */
const V3 = [
  `CREATE TABLE entries_v3 (
     seq INTEGER PRIMARY KEY,
     id TEXT NOT NULL,
     created_at_ms INTEGER NOT NULL,
     type TEXT NOT NULL,
     direction TEXT NOT NULL CHECK (direction IN ('in', 'out', 'none')),
     amount_credits INTEGER NOT NULL CHECK (amount_credits >= 0),
     balance_after_credits INTEGER NOT NULL CHECK (balance_after_credits >= 0),
     grant_id TEXT,
     hold_id TEXT,
     spend_id TEXT,
     feature TEXT,
     quantity INTEGER,
     dimensions TEXT,
     reference TEXT,
     actor TEXT,
     member_team_id TEXT,
     chain_version INTEGER NOT NULL,
     hash TEXT,
     CHECK (direction = 'none' OR type <> 'capture')
   )`,
  `INSERT INTO entries_v3 (seq, id, created_at_ms, type, direction, amount_credits, balance_after_credits, grant_id,
     hold_id, spend_id, feature, quantity, dimensions, reference, actor, member_team_id, chain_version, hash)
   SELECT seq, id, created_at, type, CASE WHEN type = 'capture' THEN 'none' ELSE direction END, amount, balance_after,
     grant_id, hold_id, spend_id, feature, quantity, dimensions, reference, actor, NULL, 1, hash
   FROM entries`,
  `DROP TABLE entries`,
  `ALTER TABLE entries_v3 RENAME TO entries`,
  `CREATE INDEX entries_created ON entries (created_at_ms)`,
  // A hold's later entries (capture, release, expire) carry who it was made for, like its own.
  `ALTER TABLE holds ADD COLUMN actor TEXT`,
  `ALTER TABLE holds ADD COLUMN member_team_id TEXT`,
];

/**
 * v4: prices, plans and events. Entries, holds and their charges record what the price book
 * charged (tier, unit price, price-book version). Allocation grants name their period. The
 * team's monthly periods (one row each, so a period's allocation is granted exactly once), its
 * events outbox (delivered to webhook endpoints by the alarm), the cross-team messages it must
 * deliver (referral rewards), and the referral rewards it received (each once, forever).
 */
const V4 = [
  `ALTER TABLE entries ADD COLUMN tier TEXT`,
  `ALTER TABLE entries ADD COLUMN unit_credits INTEGER`,
  `ALTER TABLE entries ADD COLUMN price_version INTEGER`,
  `ALTER TABLE holds ADD COLUMN unit_credits INTEGER`,
  `ALTER TABLE holds ADD COLUMN price_version INTEGER`,
  `ALTER TABLE grants ADD COLUMN period INTEGER`,
  `CREATE INDEX grants_period ON grants (period) WHERE period IS NOT NULL`,
  `CREATE TABLE periods (
     idx INTEGER PRIMARY KEY CHECK (idx >= 0),
     starts_at INTEGER NOT NULL,
     ends_at INTEGER NOT NULL CHECK (ends_at > starts_at),
     plan_id TEXT,
     seats INTEGER NOT NULL,
     granted_credits INTEGER NOT NULL DEFAULT 0 CHECK (granted_credits >= 0),
     opened_at INTEGER NOT NULL
   )`,
  `CREATE TABLE events (
     seq INTEGER PRIMARY KEY,
     id TEXT NOT NULL UNIQUE,
     type TEXT NOT NULL,
     created_at_ms INTEGER NOT NULL,
     data TEXT NOT NULL
   )`,
  `CREATE TABLE messages (
     id TEXT PRIMARY KEY,
     kind TEXT NOT NULL,
     target_team_id TEXT NOT NULL,
     payload TEXT NOT NULL,
     created_at_ms INTEGER NOT NULL,
     delivered_at_ms INTEGER,
     attempts INTEGER NOT NULL DEFAULT 0,
     next_attempt_at_ms INTEGER NOT NULL,
     last_error TEXT
   )`,
  `CREATE INDEX messages_pending ON messages (next_attempt_at_ms) WHERE delivered_at_ms IS NULL`,
  `CREATE TABLE referral_rewards (
     referral_id TEXT NOT NULL,
     kind TEXT NOT NULL,
     referred_team_id TEXT NOT NULL,
     grant_id TEXT,
     credits INTEGER NOT NULL,
     created_at_ms INTEGER NOT NULL,
     PRIMARY KEY (referral_id, kind)
   )`,
];

/**
 * v5: buying credits. Refund entries record what they could not claw back (`shortfall_credits`,
 * chain version 4). Purchases (one row per Checkout Session or auto-recharge PaymentIntent:
 * credited once), their refunds and disputes (one row per Stripe refund or dispute step: applied
 * once), credit requests (bank transfer, crypto: pending until an owner or admin decides, once),
 * and payments with credits (an invoice is paid at most once).
 */
const V5_PURCHASES = [
  `ALTER TABLE entries ADD COLUMN shortfall_credits INTEGER`,
  `CREATE TABLE purchases (
     id TEXT PRIMARY KEY,
     payment_intent_id TEXT UNIQUE,
     kind TEXT NOT NULL CHECK (kind IN ('checkout', 'auto_recharge')),
     status TEXT NOT NULL CHECK (status IN ('awaiting_payment', 'credited', 'failed')),
     credits INTEGER NOT NULL CHECK (credits > 0),
     amount_minor INTEGER NOT NULL CHECK (amount_minor >= 0),
     currency TEXT NOT NULL,
     pack_id TEXT,
     customer_id TEXT,
     grant_id TEXT,
     refunded_minor INTEGER NOT NULL DEFAULT 0 CHECK (refunded_minor >= 0),
     clawed_credits INTEGER NOT NULL DEFAULT 0 CHECK (clawed_credits >= 0),
     shortfall_credits INTEGER NOT NULL DEFAULT 0 CHECK (shortfall_credits >= 0),
     created_at_ms INTEGER NOT NULL,
     credited_at_ms INTEGER
   )`,
  `CREATE TABLE purchase_adjustments (
     id TEXT PRIMARY KEY,
     payment_intent_id TEXT NOT NULL,
     kind TEXT NOT NULL CHECK (kind IN ('refund', 'dispute_withdrawn', 'dispute_reinstated')),
     amount_minor INTEGER NOT NULL CHECK (amount_minor >= 0),
     credits INTEGER NOT NULL DEFAULT 0 CHECK (credits >= 0),
     shortfall_credits INTEGER NOT NULL DEFAULT 0 CHECK (shortfall_credits >= 0),
     status TEXT NOT NULL CHECK (status IN ('applied', 'waiting')),
     created_at_ms INTEGER NOT NULL
   )`,
  `CREATE INDEX purchase_adjustments_intent ON purchase_adjustments (payment_intent_id)`,
  // Auto-recharges: one row per off-session payment the object decided to start (at most one in
  // flight: the partial unique index), started from the alarm, finished by Stripe's webhook.
  `CREATE TABLE recharges (
     id TEXT PRIMARY KEY,
     status TEXT NOT NULL CHECK (status IN ('pending', 'started', 'succeeded', 'failed', 'canceled')),
     month TEXT NOT NULL,
     credits INTEGER NOT NULL CHECK (credits > 0),
     price_minor INTEGER NOT NULL CHECK (price_minor > 0),
     currency TEXT NOT NULL,
     pack_id TEXT NOT NULL,
     payment_intent_id TEXT,
     attempts INTEGER NOT NULL DEFAULT 0,
     next_attempt_at_ms INTEGER NOT NULL,
     error TEXT,
     created_at_ms INTEGER NOT NULL,
     finished_at_ms INTEGER
   )`,
  `CREATE UNIQUE INDEX recharges_one_in_flight ON recharges ((1)) WHERE status IN ('pending', 'started')`,
  `CREATE INDEX recharges_month ON recharges (month)`,
  // Feature-restricted credits (domain/spending-order.ts): NULL = usable for any feature. The
  // spend path's index gains the restriction key right after the category, as the order does.
  `ALTER TABLE grants ADD COLUMN restricted_feature TEXT`,
  `DROP INDEX grants_spend_order`,
  `CREATE INDEX grants_spend_order ON grants (category_rank, restricted_feature IS NULL, priority, expires_at IS NULL, expires_at, seq)
     WHERE status = 'active' AND remaining > 0`,
];

/**
 * Credit requests: `seq` orders a team's requests (the list's cursor); a request is decided once
 * (accepted with its grant, or rejected), and the CHECKs say a pending request has neither a
 * decision time nor a grant. Payments: one row per payment with credits, written in the spend's
 * transaction; an invoice is paid at most once (the partial unique index).
 */
const V5_REQUESTS_AND_PAYMENTS = [
  `CREATE TABLE credit_requests (
     seq INTEGER PRIMARY KEY,
     id TEXT NOT NULL UNIQUE,
     status TEXT NOT NULL CHECK (status IN ('pending', 'accepted', 'rejected')),
     credits INTEGER NOT NULL CHECK (credits > 0),
     price_minor INTEGER CHECK (price_minor IS NULL OR price_minor >= 0),
     currency TEXT,
     pack_id TEXT,
     method TEXT NOT NULL CHECK (method IN ('bank_transfer', 'crypto', 'other')),
     reference TEXT,
     requested_by TEXT,
     decided_by TEXT,
     reason TEXT,
     grant_id TEXT,
     created_at_ms INTEGER NOT NULL,
     decided_at_ms INTEGER,
     CHECK ((status = 'pending') = (decided_at_ms IS NULL)),
     CHECK ((status = 'accepted') = (grant_id IS NOT NULL))
   )`,
  `CREATE INDEX credit_requests_status ON credit_requests (status, seq)`,
  `CREATE TABLE payments (
     seq INTEGER PRIMARY KEY,
     id TEXT NOT NULL UNIQUE,
     kind TEXT NOT NULL CHECK (kind IN ('invoice', 'service')),
     reference TEXT NOT NULL,
     service_id TEXT,
     amount_credits INTEGER NOT NULL CHECK (amount_credits > 0),
     spend_id TEXT NOT NULL,
     actor TEXT,
     created_at_ms INTEGER NOT NULL,
     CHECK ((kind = 'service') = (service_id IS NOT NULL))
   )`,
  // An invoice is paid at most once; a service may be paid for again (another booking).
  `CREATE UNIQUE INDEX payments_invoice ON payments (reference) WHERE kind = 'invoice'`,
];

const V5 = [...V5_PURCHASES, ...V5_REQUESTS_AND_PAYMENTS];

/**
 * Agency pools (domain/pools.ts): the agency's subaccounts and their caps, its members' caps, and
 * what each capped subject spent and captured per cap period (a counter, so a cap costs one row
 * read, not a scan of the history). Pending holds are summed per subject through partial indexes.
 */
const V6_POOLS = [
  `CREATE TABLE pool_members (
     team_id TEXT PRIMARY KEY,
     cap_credits INTEGER CHECK (cap_credits IS NULL OR cap_credits >= 0),
     joined_at_ms INTEGER NOT NULL
   )`,
  `CREATE TABLE member_caps (
     actor_id TEXT PRIMARY KEY,
     cap_credits INTEGER NOT NULL CHECK (cap_credits >= 0),
     updated_at_ms INTEGER NOT NULL
   )`,
  `CREATE TABLE cap_usage (
     subject TEXT NOT NULL,
     period_start_ms INTEGER NOT NULL,
     spent_credits INTEGER NOT NULL CHECK (spent_credits >= 0),
     PRIMARY KEY (subject, period_start_ms)
   )`,
  `CREATE INDEX holds_pending_member ON holds (member_team_id) WHERE status = 'pending' AND member_team_id IS NOT NULL`,
  `CREATE INDEX holds_pending_actor ON holds (actor) WHERE status = 'pending' AND actor IS NOT NULL`,
];

/**
 * API keys bound to the team that were revoked: its object refuses them on every mutation from
 * the moment DELETE /v1/api-keys/{id} answers (the isolates' copies of the directory may take
 * up to 2 s to learn it).
 */
const V7_REVOKED_KEYS = [
  `CREATE TABLE revoked_keys (
     key_id TEXT PRIMARY KEY,
     revoked_at_ms INTEGER NOT NULL
   )`,
];

const VERSIONS: readonly (readonly string[])[] = [V1, V2, V3, V4, V5, V6_POOLS, V7_REVOKED_KEYS];

/** Brings the object's database to the newest version. Call inside transactionSync. */
export function migrate(sql: SqlStorage): void {
  sql.exec("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)");
  const row = sql.exec<{ version: number }>("SELECT version FROM schema_version").toArray()[0];
  const current = row?.version ?? 0;
  for (let v = current; v < VERSIONS.length; v++) {
    for (const statement of VERSIONS[v] ?? []) sql.exec(statement);
  }
  if (!row) sql.exec("INSERT INTO schema_version (version) VALUES (?)", VERSIONS.length);
  else if (current !== VERSIONS.length) sql.exec("UPDATE schema_version SET version = ?", VERSIONS.length);
}
