/**
 * The ledger's operations: grant, spend, hold, capture, release, extend, expire, void. Each is
 * synchronous and runs inside the team object's one transactionSync, so an operation, its entries
 * and its idempotency record commit together or not at all. Rules come from rules.ts; SQL from
 * store.ts. An expected outcome (not enough credits, hold not pending) is returned as a value;
 * a broken invariant throws and rolls the whole transaction back.
 */
import { type Failure, failure } from "../errors";
import { MAX_AMOUNT_CREDITS, MAX_BALANCE_CREDITS, MAX_GRANT_LIFETIME_SECONDS, SETTLE_BATCH } from "../limits";
import { type Allocation, assert, type DrawableGrant, draw, mergeAllocations, splitCapture } from "./rules";
import { iso, type LedgerStore, type NewEntry, type StoredHold, type StoredReply } from "./store";
import type {
  BalanceSummary,
  BatchItemResult,
  BatchMode,
  Category,
  ChargeInput,
  Entry,
  GrantInput,
  Hold,
  HoldInput,
  Spend,
  Team,
} from "./types";

export type Result<T> = { ok: true; status: 200 | 201; body: T } | Failure;

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
  grant: ReturnType<typeof publicGrant>;
  entries: Entry[];
  balance: BalanceSummary;
}

const newId = (prefix: string): string => `${prefix}_${crypto.randomUUID().replaceAll("-", "")}`;

export function publicGrant(g: NonNullable<ReturnType<LedgerStore["getGrant"]>>) {
  const { seq: _seq, expiresAtMs: _ms, ...rest } = g;
  return rest;
}

export function publicHold(h: StoredHold): Hold {
  const { allocations: _a, tier: _t, ...rest } = h;
  return rest;
}

/**
 * One operation's view of the ledger: the store, the clock, and the running available balance
 * that each entry records as `balanceAfter`.
 */
export class LedgerTx {
  private availableNow: number;
  readonly written: Entry[] = [];
  /** The idempotency record under the operation's key, read with the opening state. */
  readonly seen: StoredReply | null;
  /** Whether a grant or hold was due when the operation began: only then is there work to settle. */
  private due: boolean;
  /**
   * The balance as the operation goes, per category, while every change is one this class can
   * follow: an entry that moves credits of a grant whose category it read (a spend or a grant).
   * Anything else (a hold, a capture, a release, an expiry, a void) sets `followed` to false and
   * balance() reads the totals from storage instead.
   */
  private readonly totals: { byCategory: Record<Category, number>; held: number };
  private followed = true;
  /** Categories of the grants this operation read or created. */
  private readonly categoryOf = new Map<string, Category>();

  constructor(
    readonly store: LedgerStore,
    readonly team: Team,
    readonly nowMs: number,
    idempotencyKey: string | null = null,
  ) {
    const opening = store.openingState(nowMs, idempotencyKey);
    this.availableNow = opening.available;
    this.due = opening.due;
    this.seen = opening.seen;
    this.totals = { byCategory: opening.byCategory, held: opening.held };
  }

  get available(): number {
    return this.availableNow;
  }

  /** Live grants in spending order, noting each one's category. */
  private *drawable(): Generator<DrawableGrant> {
    for (const g of this.store.drawableGrants(this.nowMs)) {
      this.categoryOf.set(g.id, g.category);
      yield g;
    }
  }

  /** Writes one entry, moving the available balance by its signed amount. */
  entry(e: Omit<NewEntry, "balanceAfter">, effect: "moves" | "held-to-spent" = "moves"): Entry {
    const signed = e.direction === "in" ? e.amount : -e.amount;
    if (effect === "moves") this.availableNow += signed;
    const category = e.grantId === undefined ? undefined : this.categoryOf.get(e.grantId);
    if (effect === "moves" && e.holdId === undefined && category !== undefined)
      this.totals.byCategory[category] += signed;
    else this.followed = false;
    assert(this.availableNow >= 0, "available never below zero");
    const written = this.store.appendEntry({ ...e, balanceAfter: this.availableNow }, this.nowMs);
    this.written.push(written);
    return written;
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

  // ---- time ---------------------------------------------------------------------------------

  /**
   * Expires what is due: grants whose expiry passed lose what remains; holds whose deadline
   * passed return their credits. Bounded per call; the alarm continues where it stopped.
   * Returns true when everything due was settled.
   */
  settle(limit = SETTLE_BATCH): boolean {
    if (!this.due) return true;
    const grants = this.store.dueGrants(this.nowMs, limit);
    // The balance already stopped counting these grants at their expiry instant (queries filter by
    // time). Count what they had left back in, so that each expire entry moves the running balance
    // by its own amount: with several grants expiring at once, every entry's balanceAfter still
    // follows from the entry before it, and the running balance ends where the grants say.
    if (grants.length > 0) this.followed = false;
    for (const g of grants) this.availableNow += g.remaining - g.held;
    for (const g of grants) {
      const unreserved = g.remaining - g.held;
      this.store.endGrant(g.id, "expired");
      if (unreserved > 0) this.entry({ type: "expire", direction: "out", amount: unreserved, grantId: g.id });
    }
    const holds = this.store.dueHolds(this.nowMs, limit);
    if (holds.length > 0) this.followed = false;
    for (const h of holds) this.endHold(h, "expired", 0, null);
    return grants.length < limit && holds.length < limit;
  }

  // ---- grants -------------------------------------------------------------------------------

  grant(input: GrantInput): Result<GrantReply> {
    let expiresAtMs: number | null = null;
    if (input.expiresAt !== undefined) {
      expiresAtMs = Date.parse(input.expiresAt);
      if (!(expiresAtMs > this.nowMs)) return failure("invalid_request", "expiresAt must be in the future");
      if (expiresAtMs > this.nowMs + MAX_GRANT_LIFETIME_SECONDS * 1000)
        return failure("invalid_request", `expiresAt must be within ${MAX_GRANT_LIFETIME_SECONDS} seconds`);
    }
    if (this.store.totalGranted() + input.amount > MAX_BALANCE_CREDITS)
      return failure("conflict", `a team holds at most ${MAX_BALANCE_CREDITS} credits`);
    const id = newId("grt");
    this.categoryOf.set(id, input.category);
    this.store.insertGrant({
      id,
      amount: input.amount,
      category: input.category,
      source: input.source,
      priority: input.priority ?? 0,
      expiresAtMs,
      reference: input.reference ?? null,
      createdAtMs: this.nowMs,
    });
    this.entry({ type: "grant", direction: "in", amount: input.amount, grantId: id, reference: input.reference });
    const grant = this.store.getGrant(id);
    assert(grant, "grant just written");
    return {
      ok: true,
      status: 201,
      body: { grant: publicGrant(grant), entries: this.written, balance: this.balance() },
    };
  }

  voidGrant(grantId: string): Result<GrantReply> {
    const g = this.store.getGrant(grantId);
    if (!g) return failure("not_found", `grant ${grantId} not found`);
    // A grant used up before its expiry keeps the status `depleted` (settling only ends active
    // grants), but once past its expiry it has expired all the same.
    const pastExpiry = g.expiresAtMs !== null && g.expiresAtMs <= this.nowMs;
    const status = g.status !== "voided" && pastExpiry ? "expired" : g.status;
    if (status === "expired" || status === "voided")
      return failure("conflict", `grant ${grantId} is ${status}; only a live grant can be voided`);
    const unreserved = g.remaining - g.held;
    this.store.endGrant(g.id, "voided");
    if (unreserved > 0) this.entry({ type: "void", direction: "out", amount: unreserved, grantId: g.id });
    const after = this.store.getGrant(grantId);
    assert(after, "grant still there");
    return {
      ok: true,
      status: 200,
      body: { grant: publicGrant(after), entries: this.written, balance: this.balance() },
    };
  }

  // ---- spends -------------------------------------------------------------------------------

  spend(input: ChargeInput): Result<SpendReply> {
    const drawn = draw(this.drawable(), input.amount);
    if (!drawn.ok) return insufficient(input.amount, drawn.available);
    const spend = this.writeSpend(input, drawn.allocations);
    return { ok: true, status: 201, body: { spend, entries: this.written, balance: this.balance() } };
  }

  /**
   * Writes a spend's entries. `grantDebits` collects what to take from each grant when the caller
   * applies it once for many spends (a batch); without it each grant is updated here.
   */
  private writeSpend(input: ChargeInput, allocations: Allocation[], grantDebits?: Map<string, number>): Spend {
    const spend: Spend = {
      id: newId("spd"),
      amount: input.amount,
      feature: input.feature,
      quantity: input.quantity ?? 1,
      createdAt: iso(this.nowMs),
    };
    if (input.tier) spend.tier = input.tier;
    if (input.dimensions) spend.dimensions = input.dimensions;
    if (input.reference) spend.reference = input.reference;
    for (const a of allocations) {
      if (grantDebits) grantDebits.set(a.grantId, (grantDebits.get(a.grantId) ?? 0) + a.amount);
      else this.store.adjustGrant(a.grantId, { remaining: -a.amount, held: 0 });
      this.entry({
        type: "spend",
        direction: "out",
        amount: a.amount,
        grantId: a.grantId,
        spendId: spend.id,
        feature: input.feature,
        quantity: spend.quantity,
        dimensions: input.dimensions,
        reference: input.reference,
      });
    }
    return spend;
  }

  spendBatch(items: ChargeInput[], mode: BatchMode): Result<BatchReply> {
    // One read of the drawable grants for the whole batch; each item draws from this list.
    const grants = [...this.drawable()];
    const plans: { index: number; input: ChargeInput; allocations: Allocation[] }[] = [];
    const results: BatchItemResult[] = [];
    let stopped = false;
    for (const [index, input] of items.entries()) {
      if (stopped) {
        results.push({ index, status: "skipped" });
        continue;
      }
      const drawn = draw(grants, input.amount);
      if (!drawn.ok) {
        if (mode === "all_or_nothing") {
          const required = items.reduce((sum, i) => sum + i.amount, 0);
          return insufficient(required, this.available, { failedIndex: index });
        }
        results.push({ index, status: "insufficient", required: input.amount, available: drawn.available });
        stopped = true;
        continue;
      }
      for (const a of drawn.allocations) {
        const g = grants.find((x) => x.id === a.grantId);
        assert(g, "allocated grant is in the list");
        g.remaining -= a.amount;
      }
      plans.push({ index, input, allocations: drawn.allocations });
      results.push({ index, status: "skipped" }); // replaced below once written
    }
    // One UPDATE per grant touched, not one per item: a batch of 1,000 spends on one grant
    // writes the grant once.
    const grantDebits = new Map<string, number>();
    for (const plan of plans) {
      const before = this.written.length;
      const spend = this.writeSpend(plan.input, plan.allocations, grantDebits);
      results[plan.index] = { index: plan.index, status: "spent", spend, entryCount: this.written.length - before };
    }
    for (const [grantId, amount] of grantDebits) this.store.adjustGrant(grantId, { remaining: -amount, held: 0 });
    return { ok: true, status: 200, body: { results, balance: this.balance() } };
  }

  // ---- holds --------------------------------------------------------------------------------

  createHold(input: HoldInput): Result<HoldReply> {
    const drawn = draw(this.store.drawableGrants(this.nowMs), input.amount);
    if (!drawn.ok) return insufficient(input.amount, drawn.available);
    const id = newId("hld");
    this.reserve(id, drawn.allocations, input);
    this.store.insertHold({
      id,
      amount: input.amount,
      expiresAtMs: this.nowMs + input.ttlSeconds * 1000,
      createdAtMs: this.nowMs,
      feature: input.feature,
      quantity: input.quantity,
      tier: input.tier,
      dimensions: input.dimensions,
      reference: input.reference,
      allocations: drawn.allocations,
    });
    return this.holdReply(id, 201);
  }

  private reserve(holdId: string, allocations: Allocation[], label: Partial<HoldInput>): void {
    for (const a of allocations) {
      this.store.adjustGrant(a.grantId, { remaining: -a.amount, held: a.amount });
      this.entry({
        type: "hold",
        direction: "out",
        amount: a.amount,
        grantId: a.grantId,
        holdId,
        feature: label.feature,
        quantity: label.quantity,
        dimensions: label.dimensions,
        reference: label.reference,
      });
    }
  }

  private pendingHold(holdId: string): StoredHold | Failure {
    const h = this.store.getHold(holdId);
    if (!h) return failure("not_found", `hold ${holdId} not found`);
    if (h.status !== "pending")
      return failure("hold_not_pending", `hold ${holdId} is ${h.status}`, { holdStatus: h.status });
    return h;
  }

  captureHold(holdId: string, amount: number | undefined): Result<HoldReply> {
    const h = this.pendingHold(holdId);
    if ("ok" in h) return h;
    const captureAmount = amount ?? h.amount;
    if (captureAmount > h.amount)
      return failure("invalid_request", `capture amount ${captureAmount} exceeds the hold's ${h.amount}`, {
        held: h.amount,
      });
    this.endHold(h, "captured", captureAmount, null);
    return this.holdReply(holdId, 200);
  }

  releaseHold(holdId: string, reason: string | undefined): Result<HoldReply> {
    const h = this.pendingHold(holdId);
    if ("ok" in h) return h;
    this.endHold(h, "released", 0, reason ?? null);
    return this.holdReply(holdId, 200);
  }

  extendHold(holdId: string, extra: number | undefined, ttlSeconds: number | undefined): Result<HoldReply> {
    const h = this.pendingHold(holdId);
    if ("ok" in h) return h;
    let allocations = h.allocations;
    if (extra !== undefined && extra > 0) {
      const drawn = draw(this.store.drawableGrants(this.nowMs), extra);
      if (!drawn.ok) return insufficient(extra, drawn.available);
      if (h.amount + extra > MAX_AMOUNT_CREDITS)
        return failure("invalid_request", `a hold carries at most ${MAX_AMOUNT_CREDITS} credits`);
      this.reserve(holdId, drawn.allocations, h);
      allocations = mergeAllocations(h.allocations, drawn.allocations);
    }
    const expiresAtMs = ttlSeconds !== undefined ? this.nowMs + ttlSeconds * 1000 : Date.parse(h.expiresAt);
    this.store.extendHold(holdId, { amount: h.amount + (extra ?? 0), expiresAtMs, allocations });
    return this.holdReply(holdId, 200);
  }

  /**
   * Resolves a pending hold once: the captured part is spent for good (it left the available
   * balance when the hold was made, so the capture entry does not move it again); the rest goes
   * back to the grants it came from, and expires or is voided at once if that grant ended meanwhile.
   */
  private endHold(
    h: StoredHold,
    status: "captured" | "released" | "expired",
    captureAmount: number,
    reason: string | null,
  ): void {
    const { captured, returned } = splitCapture(h.allocations, captureAmount);
    for (const a of captured) {
      this.store.adjustGrant(a.grantId, { remaining: 0, held: -a.amount });
      this.entry(
        {
          type: "capture",
          direction: "out",
          amount: a.amount,
          grantId: a.grantId,
          holdId: h.id,
          feature: h.feature,
          quantity: h.quantity,
          dimensions: h.dimensions,
          reference: h.reference,
        },
        "held-to-spent",
      );
    }
    const returnType = status === "expired" ? "expire" : "release";
    for (const a of returned) {
      const g = this.store.getGrant(a.grantId);
      assert(g && g.held >= a.amount, "returned credits were held by their grant");
      const grantLive =
        (g.status === "active" || g.status === "depleted") && (g.expiresAtMs === null || g.expiresAtMs > this.nowMs);
      if (grantLive) {
        this.store.adjustGrant(a.grantId, { remaining: a.amount, held: -a.amount });
        this.entry({
          type: returnType,
          direction: "in",
          amount: a.amount,
          grantId: a.grantId,
          holdId: h.id,
          reference: h.reference,
        });
      } else {
        // The grant ended while the hold had its credits: they come back and leave in one step.
        if (g.status === "active") {
          // Due but not yet settled (settling is bounded per call): settle this grant now.
          const unreserved = g.remaining - g.held;
          this.store.endGrant(g.id, "expired");
          // As in settle(): the balance stopped counting it at its expiry; count it back, then
          // let the expire entry move the balance.
          this.availableNow += unreserved;
          if (unreserved > 0) this.entry({ type: "expire", direction: "out", amount: unreserved, grantId: g.id });
        }
        this.store.adjustGrant(a.grantId, { remaining: 0, held: -a.amount });
        this.entry({
          type: returnType,
          direction: "in",
          amount: a.amount,
          grantId: a.grantId,
          holdId: h.id,
          reference: h.reference,
        });
        this.entry({
          type: g.status === "voided" ? "void" : "expire",
          direction: "out",
          amount: a.amount,
          grantId: a.grantId,
          holdId: h.id,
        });
      }
    }
    this.store.resolveHold(h.id, status, captureAmount, this.nowMs, reason);
  }

  private holdReply(holdId: string, status: 200 | 201): Result<HoldReply> {
    const h = this.store.getHold(holdId);
    assert(h, "hold just written");
    return { ok: true, status, body: { hold: publicHold(h), entries: this.written, balance: this.balance() } };
  }
}

function insufficient(required: number, available: number, extras?: Record<string, number>): Failure {
  return failure("insufficient_credits", `${required} credits required, ${available} available`, {
    required,
    available,
    ...extras,
  });
}
