/**
 * D1 schema (drizzle-orm). D1 holds the replicated history of every team: the team objects are
 * the source of truth and push their entries here through their outboxes. The primary key
 * (team_id, seq) makes every insert idempotent, so a retried flush never duplicates a line.
 * SQL migrations in migrations/ are generated from this file with `npm run db:generate`.
 *
 * The entry's columns are those of domain/entry.ts (ENTRY_COLUMNS), with the same names, in the
 * same order, after team_id; the property names are its EntryFields names, so a row read here is
 * an entry's fields as they are. test/domain/entry.test.ts checks both against the table.
 */
import { sql } from "drizzle-orm";
import { index, integer, primaryKey, sqliteTable, text } from "drizzle-orm/sqlite-core";

export const ledgerEntries = sqliteTable(
  "ledger_entries",
  {
    teamId: text("team_id").notNull(),
    seq: integer("seq").notNull(),
    id: text("id").notNull(),
    /** Milliseconds since the epoch, as in the team object. */
    createdAtMs: integer("created_at_ms").notNull(),
    type: text("type").notNull(),
    direction: text("direction").notNull(),
    amountCredits: integer("amount_credits").notNull(),
    balanceAfterCredits: integer("balance_after_credits").notNull(),
    grantId: text("grant_id"),
    holdId: text("hold_id"),
    spendId: text("spend_id"),
    feature: text("feature"),
    /** Whole, or fractional (≤ 6 decimals) for metered units: SQLite keeps 2.25 as a REAL in this column. */
    quantity: integer("quantity"),
    /** JSON object of string values. */
    dimensions: text("dimensions"),
    reference: text("reference"),
    actor: text("actor"),
    memberTeamId: text("member_team_id"),
    /** The canonical form the hash uses (domain/chain.ts); 1 for rows written before version 2. */
    chainVersion: integer("chain_version").notNull().default(1),
    /** SHA-256 chain over the team's entries (hex): hash(previous hash + canonical entry). */
    hash: text("hash"),
    /** A priced charge's tier, unit price and price-book version (domain/pricing.ts); migration 0004 appends them. */
    tier: text("tier"),
    unitCredits: integer("unit_credits"),
    priceVersion: integer("price_version"),
    /** On a refund entry: the credits it could not claw back; migration 0005 appends it. */
    shortfallCredits: integer("shortfall_credits"),
  },
  (t) => [
    primaryKey({ columns: [t.teamId, t.seq] }),
    index("ledger_entries_team_created").on(t.teamId, t.createdAtMs),
    // History pages filtered by type: one index range per type, already in seq order (no sort).
    index("ledger_entries_team_type_seq").on(t.teamId, t.type, t.seq),
    // Usage reports: the spends and captures of a time window, without reading the rest.
    index("ledger_entries_team_type_created").on(t.teamId, t.type, t.createdAtMs),
    // Hold outcomes find the hold's own entry (which carries its feature and dimensions).
    index("ledger_entries_team_hold").on(t.teamId, t.holdId).where(sql`${t.holdId} IS NOT NULL`),
  ],
);

/**
 * Stripe's payment intents and the team each paid for: how a refund or a dispute (which carry
 * the payment intent, not our metadata) finds its team without asking Stripe. Written when a
 * purchase is credited; a refund that finds no row asks Stripe for the intent's metadata once.
 */
export const stripePaymentIntents = sqliteTable("stripe_payment_intents", {
  paymentIntentId: text("payment_intent_id").primaryKey(),
  teamId: text("team_id").notNull(),
  purchaseId: text("purchase_id").notNull(),
  createdAtMs: integer("created_at_ms").notNull(),
});

/**
 * Stripe events the service could not apply to a team (the team does not exist, the metadata is
 * not ours or is malformed): kept for an admin (GET /v1/stripe/unmatched-events), never dropped.
 */
export const stripeUnmatchedEvents = sqliteTable(
  "stripe_unmatched_events",
  {
    eventId: text("event_id").primaryKey(),
    type: text("type").notNull(),
    teamId: text("team_id"),
    reason: text("reason").notNull(),
    payload: text("payload").notNull(),
    receivedAtMs: integer("received_at_ms").notNull(),
  },
  (t) => [index("stripe_unmatched_received").on(t.receivedAtMs)],
);

/**
 * How far D1 holds each team's history without a hole: every entry with seq <= contiguous_seq is
 * in ledger_entries. Entries arrive through a queue (src/history-queue/), so not in order; the
 * consumer moves the mark in the same D1 batch as the rows it lands, and history pages, the team
 * object's delivered mark and reconciliation read "what D1 has" from here.
 */
export const historyMarks = sqliteTable("history_marks", {
  teamId: text("team_id").primaryKey(),
  contiguousSeq: integer("contiguous_seq").notNull(),
});

/**
 * Messages of the history queue that failed every retry (its dead-letter queue's consumer writes
 * them here): which entries of which team. The entries themselves stay in the team's object; the
 * re-drive (POST /v1/admin/history/redrive) asks each team's object to send them again.
 */
export const historyDeadLetters = sqliteTable(
  "history_dead_letters",
  {
    teamId: text("team_id").notNull(),
    fromSeq: integer("from_seq").notNull(),
    toSeq: integer("to_seq").notNull(),
    attempts: integer("attempts").notNull(),
    deadAtMs: integer("dead_at_ms").notNull(),
  },
  (t) => [primaryKey({ columns: [t.teamId, t.fromSeq, t.toSeq] })],
);
