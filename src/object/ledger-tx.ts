/**
 * One operation's view of the ledger, inside the team object's one transaction: the store, the
 * clock, the idempotency record read with the opening state, and the running available balance
 * that each entry records as `balanceAfter`. The operations (grants.ts, spends.ts, holds.ts,
 * settlement.ts) write every entry through `entry()`, which moves the running balance by the
 * entry's direction (in +, out −, none 0) and asserts it never goes below zero.
 */
import { assert } from "../domain/assert";
import type { DrawableGrant } from "../domain/draw";
import type { EventType } from "../domain/events";
import { type BalanceLevel, balanceLevel, crossing } from "../domain/low-balance";
import type { BalanceSummary, Category, Entry, Team } from "../domain/vocabulary";
import { considerRecharge } from "./auto-recharge";
import type { NewEntry } from "./entry-store";
import { countUse } from "./pools";
import { BALANCE_LEVEL_KEY, type LedgerStore, type StoredReply } from "./store";

/** A key with its own monthly spend limit, as the operation's request carried it. */
export interface SpendingKey {
  id: string;
  limitCredits: number;
}

export const newId = (prefix: string): string => `${prefix}_${crypto.randomUUID().replaceAll("-", "")}`;

export class LedgerTx {
  private availableNow: number;
  private readonly openingAvailable: number;
  /** The low-balance level as last told, read with the opening state (no query of its own). */
  private balanceLevel: BalanceLevel | null;
  readonly written: Entry[] = [];
  /** Events this operation appended to the team's outbox. */
  emitted = 0;
  /** The idempotency record under the operation's key, read with the opening state. */
  readonly seen: StoredReply | null;
  /** Whether a grant or hold was due when the operation began: only then is there work to settle. */
  readonly due: boolean;
  /**
   * The balance as the operation goes, per category, while every change is one this class can
   * follow: an entry that moves credits of a grant whose category it read (a spend or a grant).
   * Anything else (a hold, a release, an expiry, a void) sets `followed` to false and balance()
   * reads the totals from storage instead.
   */
  private readonly totals: { byCategory: Record<Category, number>; held: number };
  private followed = true;
  /** Categories of the grants this operation read or created. */
  private readonly categoryOf = new Map<string, Category>();
  /**
   * Whether the team may hold feature-restricted credits now: it had some when the operation
   * began (read with the opening state), or the operation created some. Only then does byFeature
   * read them; every other team pays nothing for the feature.
   */
  private mayHoldRestricted: boolean;

  constructor(
    readonly store: LedgerStore,
    readonly team: Team,
    readonly nowMs: number,
    idempotencyKey: string | null = null,
    /** The API key the operation came with, when it has its own spend limit (object/pools.ts). */
    readonly spendingKey: SpendingKey | null = null,
  ) {
    const opening = store.openingState(nowMs, idempotencyKey);
    this.availableNow = opening.available;
    this.openingAvailable = opening.available;
    this.balanceLevel = opening.balanceLevel as BalanceLevel | null;
    this.due = opening.due;
    this.seen = opening.seen;
    this.totals = { byCategory: opening.byCategory, held: opening.held };
    this.mayHoldRestricted = opening.restricted > 0;
  }

  get available(): number {
    return this.availableNow;
  }

  /**
   * Live grants in spending order, noting each one's category: those a charge for `feature` may
   * draw (domain/spending-order.ts mayDraw; null: a charge without a feature), or, with `feature`
   * omitted, every one (the caller then picks per charge with mayDraw).
   */
  *drawable(feature?: string | null): Generator<DrawableGrant> {
    for (const g of this.store.grants.drawable(this.nowMs, feature)) {
      this.categoryOf.set(g.id, g.category);
      yield g;
    }
  }

  /** Notes the category of a grant this operation creates, so its entry can be followed. */
  created(grantId: string, category: Category, restrictedFeature: string | null = null): void {
    this.categoryOf.set(grantId, category);
    if (restrictedFeature !== null) this.mayHoldRestricted = true;
  }

  /** Available credits of feature-restricted grants, per feature; no query for a team without any. */
  byFeature(): Record<string, number> {
    return this.mayHoldRestricted ? this.store.grants.availableByFeature(this.nowMs) : {};
  }

  /**
   * What a charge for `feature` could draw now: available less the credits restricted to other
   * features (null: a charge without a feature, which draws unrestricted credits only).
   */
  availableFor(feature: string | null): number {
    if (!this.mayHoldRestricted) return this.availableNow;
    let elsewhere = 0;
    for (const [f, credits] of Object.entries(this.byFeature())) if (f !== feature) elsewhere += credits;
    return this.availableNow - elsewhere;
  }

  /**
   * Counts credits back into the running balance that stopped counting at an instant already
   * past (a grant that expired before it was settled), so the entry that then removes them moves
   * the balance by its own amount and every balanceAfter follows from the entry before it.
   */
  recount(credits: number): void {
    this.availableNow += credits;
    this.followed = false;
  }

  /** Writes one entry, moving the available balance by its signed amount. */
  entry(e: Omit<NewEntry, "balanceAfter">): Entry {
    const signed = e.direction === "in" ? e.amount : e.direction === "out" ? -e.amount : 0;
    this.availableNow += signed;
    const category = e.grantId === undefined ? undefined : this.categoryOf.get(e.grantId);
    if (e.holdId === undefined && category !== undefined) this.totals.byCategory[category] += signed;
    else this.followed = false;
    assert(this.availableNow >= 0, "available never below zero");
    const written = this.store.entries.append({ ...e, balanceAfter: this.availableNow }, this.nowMs);
    this.written.push(written);
    // An agency's caps count what each subaccount and member used, and a key its own (object/pools.ts).
    if (this.team.kind === "agency" || this.spendingKey !== null) countUse(this, e.type, e.amount, e);
    return written;
  }

  /** Appends an outbound event to the team's outbox, in this transaction. */
  emit(type: EventType, data: Record<string, unknown>): void {
    this.store.events.append(this.team.id, type, data, this.nowMs);
    this.emitted += 1;
  }

  /**
   * After the operation, before it commits: tells a low-balance crossing once (balance.low,
   * balance.depleted, balance.recovered), and decides an auto-recharge (auto-recharge.ts). The level was read with the opening state, so this
   * costs no query; it writes only when the level changed. `force`: the threshold itself changed.
   */
  watchBalance(force = false): void {
    if (this.written.length === 0 && !force) return;
    // The same moment decides an auto-recharge (costs nothing while it is off or above its threshold).
    considerRecharge(this);
    const threshold = this.team.settings.lowBalanceThreshold;
    const stored = this.balanceLevel;
    if (stored === null && this.openingAvailable === 0 && this.availableNow === 0) return;
    // A team's first watch starts from the level it had before this operation; a team that never
    // had credits starts where its first credits put it (its first grant is no recovery).
    const before =
      stored ??
      (this.openingAvailable === 0
        ? balanceLevel(this.availableNow, threshold)
        : balanceLevel(this.openingAvailable, threshold));
    const { level, events } = crossing(before, this.availableNow, threshold);
    for (const type of events) this.emit(type, { available: this.availableNow, lowBalanceThreshold: threshold });
    if (level !== stored) {
      this.store.setMeta(BALANCE_LEVEL_KEY, level);
      this.balanceLevel = level;
    }
  }

  balance(): BalanceSummary {
    const { byCategory, held } = this.followed ? this.totals : this.store.openingState(this.nowMs, null);
    const available = byCategory.free + byCategory.paid + byCategory.promotional;
    assert(available === this.availableNow, "running balance matches the grants");
    return {
      teamId: this.team.id,
      poolTeamId: this.team.id,
      available,
      held,
      total: available + held,
      byCategory: { ...byCategory },
      lowBalance: available < this.team.settings.lowBalanceThreshold,
    };
  }
}
