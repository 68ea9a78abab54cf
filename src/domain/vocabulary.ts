/**
 * The ledger's vocabulary as types: grant, spend, hold (captured | released | expired), void,
 * entry. One word per concept, never overloaded. These are the shapes the team object returns
 * over RPC and the routes put on the wire.
 */
import type { Failure } from "../errors";

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

export const ENTRY_TYPES = [
  "grant",
  "spend",
  "hold",
  "capture",
  "release",
  "expire",
  "void",
  "refund",
  "adjustment",
] as const;
export type EntryType = (typeof ENTRY_TYPES)[number];
export type Direction = "in" | "out";

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
}

export interface Team {
  id: string;
  name: string | null;
  planId: string | null;
  seats: number;
  kind: TeamKind;
  parentTeamId: string | null;
  settings: TeamSettings;
  createdAt: string;
  updatedAt: string;
}

export interface TeamInput {
  name?: string | undefined;
  planId?: string | undefined;
  seats?: number | undefined;
  kind?: TeamKind | undefined;
  parentTeamId?: string | undefined;
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
  /** This entry's link in the team's hash chain (see chain.ts); absent only on entries older than it. */
  hash?: string;
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
  grants: Grant[];
}

/** What a charge asks for. Without a price book (a later issue) the cost is always `amount`. */
export interface ChargeInput {
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
}

export interface HoldInput {
  feature?: string | undefined;
  quantity?: number | undefined;
  tier?: Tier | undefined;
  amount: number;
  ttlSeconds: number;
  dimensions?: Dimensions | undefined;
  reference?: string | undefined;
}

export type BatchMode = "all_or_nothing" | "until_insufficient";

export type BatchItemResult =
  | { index: number; status: "spent"; spend: Spend; entryCount: number }
  | { index: number; status: "insufficient"; required: number; available: number }
  | { index: number; status: "skipped" };

export interface EntryFilter {
  limit: number;
  beforeSeq?: number | undefined;
  /** Only entries after this seq (the object's part of a page that D1 has not received yet). */
  afterSeq?: number | undefined;
  types?: EntryType[] | undefined;
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

/** The Idempotency-Key and a fingerprint of the request it came with (route + canonical body). */
export interface IdempotencyInput {
  key: string;
  fingerprint: string;
}

export interface Success<T> {
  ok: true;
  status: 200 | 201;
  body: T;
  replayed: boolean;
}
/** What every team-object method returns: a success with the reply, or a failure as a value. */
export type Reply<T> = Success<T> | Failure;
