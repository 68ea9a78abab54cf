/**
 * The ledger's vocabulary as types: grant, spend, hold (captured | released | expired), void,
 * entry. One word per concept, never overloaded. These are the shapes the team object returns
 * over RPC and the routes put on the wire. Pure: nothing here knows about HTTP or storage.
 */

import type { Failure } from "./failure";
import type { Jurisdiction, LocationHint } from "./placement";
import type { CapView } from "./pools";
import type { RoleMatrix } from "./roles";

export const CATEGORIES = ["free", "paid", "promotional"] as const;
export type Category = (typeof CATEGORIES)[number];

/** Spending order across categories: free allocations first, then promotional, paid last. */
export const CATEGORY_RANK: Record<Category, number> = { free: 0, promotional: 1, paid: 2 };

export const GRANT_SOURCES = [
  "starter",
  "allocation",
  "purchase",
  "credit_request",
  "referral",
  "promotional",
  "manual",
  "adjustment",
] as const;
export type GrantSource = (typeof GRANT_SOURCES)[number];

/**
 * The entry types the ledger writes today. A `refund` takes back (direction out) what a Stripe
 * refund or dispute returned to the buyer, from the purchase's own grant; its `shortfallCredits`
 * says how much of that was already spent and could not be taken (object/purchases.ts).
 */
export const ENTRY_TYPES = ["grant", "spend", "hold", "capture", "release", "expire", "void", "refund"] as const;
export type EntryType = (typeof ENTRY_TYPES)[number];
/**
 * Types the contract (API.md) names for what later features write (adjustments). Nothing writes
 * them yet; a history filter may name them and matches nothing.
 */
export const RESERVED_ENTRY_TYPES = ["adjustment"] as const;
/** What a history filter may name: the written types and the reserved ones. */
export const HISTORY_TYPES = [...ENTRY_TYPES, ...RESERVED_ENTRY_TYPES] as const;
export type HistoryType = (typeof HISTORY_TYPES)[number];
/**
 * How an entry moves the available balance: `in` adds its amount, `out` takes it away, `none`
 * records an event that moves nothing (a capture of credits a hold already reserved).
 */
export const DIRECTIONS = ["in", "out", "none"] as const;
export type Direction = (typeof DIRECTIONS)[number];

export const TIERS = ["fast", "balanced", "premium"] as const;
export type Tier = (typeof TIERS)[number];

export const TEAM_KINDS = ["team", "agency", "subaccount"] as const;
export type TeamKind = (typeof TEAM_KINDS)[number];

export type GrantStatus = "active" | "depleted" | "expired" | "voided";
export type HoldStatus = "pending" | "captured" | "released" | "expired";

export type Dimensions = Record<string, string>;

export interface TeamSettings {
  shareCreditsWithSubaccounts: boolean;
  creditPaymentsEnabled: boolean;
  lowBalanceThreshold: number;
  /** Buy a pack automatically when available falls below a threshold (object/auto-recharge.ts); null: off. */
  autoRecharge: AutoRecharge | null;
  /** Which roles may use credits, buy them and decide credit requests (domain/roles.ts); null: the defaults. */
  roleMatrix: RoleMatrix | null;
  /** A subaccount's cap on its agency's pooled credits a period (domain/pools.ts); null: none. */
  capCreditsPerPeriod: number | null;
}

/**
 * Auto-recharge as a team turned it on: the threshold, the pack and the monthly cap it chose, and
 * what one recharge buys and costs (the pack on its plan at that moment: a later price change
 * never changes what is charged without the team agreeing again).
 */
export interface AutoRecharge {
  thresholdCredits: number;
  packId: string;
  maxPerMonth: number;
  credits: number;
  priceMinor: number;
  currency: string;
  /** False once the service turned it off (failed payments in a row); `disabledReason` says why. */
  enabled: boolean;
  disabledReason: string | null;
  /** Failed payments in a row (a success resets it). */
  consecutiveFailures: number;
}

export interface Team {
  id: string;
  name: string | null;
  planId: string | null;
  seats: number;
  kind: TeamKind;
  parentTeamId: string | null;
  /** Where the object was placed, and the jurisdiction it never leaves (domain/placement.ts). */
  locationHint: LocationHint | null;
  jurisdiction: Jurisdiction | null;
  settings: TeamSettings;
  /** When the team first got a plan: its monthly periods count from here (domain/periods.ts). */
  periodAnchor: string | null;
  /** The monthly period now, while the team is on a plan (computed when the team is read). */
  currentPeriod: { index: number; startsAt: string; endsAt: string } | null;
  createdAt: string;
  updatedAt: string;
}

export interface TeamInput {
  name?: string | undefined;
  /** A plan of the catalog, or null to leave the plan (cancel). */
  planId?: string | null | undefined;
  seats?: number | undefined;
  kind?: TeamKind | undefined;
  parentTeamId?: string | undefined;
  locationHint?: LocationHint | undefined;
  jurisdiction?: Jurisdiction | undefined;
  settings?: Partial<TeamSettings> | undefined;
}

export interface Grant {
  id: string;
  amount: number;
  /** Credits not yet spent, including those reserved by pending holds (`held`). */
  remaining: number;
  /** Credits of this grant reserved by pending holds. */
  held: number;
  category: Category;
  source: GrantSource;
  priority: number;
  status: GrantStatus;
  expiresAt: string | null;
  reference: string | null;
  /** The one feature these credits may be spent on (domain/spending-order.ts); null: any feature. */
  restrictedToFeature: string | null;
  createdAt: string;
}

export interface Entry {
  id: string;
  seq: number;
  createdAt: string;
  type: EntryType;
  direction: Direction;
  amount: number;
  /** Available credits right after this entry. */
  balanceAfter: number;
  grantId?: string;
  holdId?: string;
  spendId?: string;
  feature?: string;
  quantity?: number;
  dimensions?: Dimensions;
  reference?: string;
  actor?: string;
  /** The member team (a subaccount drawing from its agency's pool) the entry was made for. */
  memberTeamId?: string;
  /** This entry's link in the team's hash chain (see domain/chain.ts); absent only on entries older than it. */
  hash?: string;
  /** A priced charge's tier, unit price (credits per unit) and the price book's version (pricing.ts). */
  tier?: Tier;
  unitCredits?: number;
  priceVersion?: number;
  /** On a refund: the refunded credits that could not be clawed back (already spent). */
  shortfallCredits?: number;
}

/** The team object's side of a chain verification (see TeamLedger.chainHead). */
export interface ChainHead {
  lastSeq: number;
  deliveredSeq: number;
  backlog: number;
  /** The object's hash of entry deliveredSeq; null when nothing was delivered yet. */
  deliveredHash: string | null;
}

export interface Spend {
  id: string;
  amount: number;
  feature: string;
  quantity: number;
  tier?: Tier;
  /** Set when the price book priced the spend: credits per unit and the book's version. */
  unitCredits?: number;
  priceVersion?: number;
  dimensions?: Dimensions;
  reference?: string;
  createdAt: string;
}

export interface Hold {
  id: string;
  amount: number;
  capturedAmount: number;
  status: HoldStatus;
  expiresAt: string;
  createdAt: string;
  resolvedAt: string | null;
  feature?: string;
  quantity?: number;
  tier?: Tier;
  unitCredits?: number;
  priceVersion?: number;
  dimensions?: Dimensions;
  reference?: string;
  reason?: string;
}

export interface BalanceSummary {
  teamId: string;
  poolTeamId: string;
  available: number;
  held: number;
  total: number;
  byCategory: Record<Category, number>;
  lowBalance: boolean;
}

export interface Balance extends BalanceSummary {
  /** Available credits of feature-restricted grants, per feature (also counted in `available`). */
  byFeature: Record<string, number>;
  grants: Grant[];
  /** A subaccount drawing from its agency's pool: the caps its spends count against (domain/pools.ts). */
  caps?: CapView[];
}

/**
 * Who a charge is made for, beside the pool it draws from: the member team (a subaccount spending
 * its agency's pool) and the actor (a person acting through the app). Recorded on every entry.
 * Nothing sets them yet (organisations arrive later); the ledger already writes them.
 */
export interface Attribution {
  memberTeamId?: string | undefined;
  actor?: string | undefined;
}

/** What the price book charged at: set when pricing.ts priced the charge (not for an explicit amount). */
export interface PricedAt {
  unitCredits?: number | undefined;
  priceVersion?: number | undefined;
}

/** A priced charge: what the ledger draws. `amount` comes from the request or the price book (pricing.ts). */
export interface ChargeInput extends Attribution, PricedAt {
  feature: string;
  quantity?: number | undefined;
  tier?: Tier | undefined;
  amount: number;
  dimensions?: Dimensions | undefined;
  reference?: string | undefined;
}

export interface GrantInput {
  amount: number;
  category: Category;
  source: GrantSource;
  priority?: number | undefined;
  expiresAt?: string | undefined;
  reference?: string | undefined;
  /** Spendable only by charges for this feature; absent or null: by any. */
  restrictedToFeature?: string | null | undefined;
}

export interface HoldInput extends Attribution, PricedAt {
  feature?: string | undefined;
  quantity?: number | undefined;
  tier?: Tier | undefined;
  amount: number;
  ttlSeconds: number;
  dimensions?: Dimensions | undefined;
  reference?: string | undefined;
}

export type BatchMode = "all_or_nothing" | "until_insufficient";

export interface SpendReply {
  spend: Spend;
  entries: Entry[];
  balance: BalanceSummary;
}
export interface BatchReply {
  results: BatchItemResult[];
  balance: BalanceSummary;
}
export interface HoldReply {
  hold: Hold;
  entries: Entry[];
  balance: BalanceSummary;
}
export interface GrantReply {
  grant: Grant;
  entries: Entry[];
  balance: BalanceSummary;
}

export type BatchItemResult =
  | { index: number; status: "spent"; spend: Spend; entryCount: number }
  | { index: number; status: "insufficient"; required: number; available: number }
  | {
      index: number;
      status: "cap_exceeded";
      required: number;
      scope: "subaccount" | "member" | "key";
      subject: string;
      cap: number;
      remaining: number;
    }
  | { index: number; status: "skipped" };

export interface EntryFilter {
  limit: number;
  beforeSeq?: number | undefined;
  /** Only entries after this seq (the object's part of a page that D1 has not received yet). */
  afterSeq?: number | undefined;
  types?: HistoryType[] | undefined;
  direction?: Direction | undefined;
  fromMs?: number | undefined;
  toMs?: number | undefined;
}

/**
 * Sums of entries by the rules that tie entries to the balance (see README "History"):
 * available = in − out, leaving out captures (they turn held credits into spent ones);
 * held = hold reservations − captures − credits returned from holds (`in` entries with a hold);
 * total = available + held.
 */
export interface EntrySums {
  entries: number;
  available: number;
  held: number;
  total: number;
}

/** The object's side of a reconciliation, read in one transaction. */
export interface ReconcileSnapshot {
  available: number;
  held: number;
  total: number;
  lastSeq: number;
  deliveredSeq: number;
  /** Sums of the entries not yet delivered to D1 (seq > deliveredSeq). */
  backlog: EntrySums;
}

/**
 * The Idempotency-Key, a fingerprint of the request it came with (route + canonical body), and
 * the request's id: a refusal is saved with it, so its replay is the first answer byte for byte.
 */
export interface IdempotencyInput {
  key: string;
  fingerprint: string;
  requestId: string;
  /**
   * The API key the request came with, when it is bound to the team: the team's object refuses a
   * key revoked for it, at once (not part of the fingerprint).
   */
  keyId?: string | undefined;
  /** That key's own monthly spend limit, when it has one (keys/api-key.ts). */
  keySpendLimitCredits?: number | undefined;
}

export interface Success<T> {
  ok: true;
  status: 200 | 201;
  body: T;
  replayed: boolean;
}

/** A failure as the team object answers it: replayed from an idempotency record, or decided now. */
export type Refusal = Failure & {
  replayed?: boolean;
  /** The id of the request whose answer this is, when it is a replay of a saved refusal. */
  originalRequestId?: string;
};

/** What every team-object method returns: a success with the reply, or a failure as a value. */
export type Reply<T> = Success<T> | Refusal;

/** What an operation decides: its reply and status, or a failure (nothing is written then). */
export type Outcome<T> = { ok: true; status: 200 | 201; body: T } | Failure;
