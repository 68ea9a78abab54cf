/**
 * TeamLedger: the Durable Object that owns one team's credits (or, later, an agency's pool). It is
 * the only writer of that state; the worker reaches it through the typed RPC methods below, each
 * a thin call into the operations (grants.ts, spends.ts, holds.ts) run once per Idempotency-Key
 * (idempotent.ts) in one transaction (store.ts). Reads settle what is due first (settlement.ts).
 * The alarm (alarm.ts) expires on time, purges idempotency records and delivers the outbox to D1.
 */
import { DurableObject } from "cloudflare:workers";
import { catalogStub } from "../catalog/catalog-object";
import { historyDatabase } from "../db/history-database";
import { entryFromFields } from "../domain/entry";
import type { EventType, OutboundEvent } from "../domain/events";
import { type Failure, failure } from "../domain/failure";
import { jurisdictionOfTeam, placementFor } from "../domain/placement";
import type { Plan } from "../domain/plans";
import { type ChargeKind, type ChargeRequest, type FeatureQuote, priceCharge, quoteOf } from "../domain/pricing";
import type { PurchaseEvent, PurchaseEventResult } from "../domain/purchase-events";
import { type Actor, spendingRefusal } from "../domain/roles";
import type {
  Attribution,
  Balance,
  BatchMode,
  BatchReply,
  ChainHead,
  ChargeInput,
  Entry,
  EntryFilter,
  GrantInput,
  GrantReply,
  Hold,
  HoldReply,
  IdempotencyInput,
  Outcome,
  ReconcileSnapshot,
  Reply,
  SpendReply,
  Team,
  TeamInput,
  TeamSettings,
} from "../domain/vocabulary";
import { MAX_AMOUNT_CREDITS, PLAN_REFRESH_AHEAD_MS } from "../limits";
import { AlarmSchedule } from "./alarm";
import { autoRechargeOf, resetAutoRecharge, savedPaymentMethod, startRecharges } from "./auto-recharge";
import { type CreditRequestStatus, CreditRequestStore } from "./credit-request-store";
import {
  acceptCreditRequest,
  type CreditRequest,
  type CreditRequestInput,
  createCreditRequest,
  publicCreditRequest,
  rejectCreditRequest,
  runUnkeyed,
} from "./credit-requests";
import { type Estimate, estimate } from "./estimate";
import { handOff } from "./events";
import { publicGrant } from "./grant-store";
import { grant, voidGrant } from "./grants";
import { publicHold } from "./hold-store";
import { captureHold, createHold, extendHold, releaseHold } from "./holds";
import { mutateOnce } from "./idempotent";
import { LedgerTx } from "./ledger-tx";
import { deliverMessages } from "./messages";
import { type OutboxState, outboxState } from "./outbox";
import { PaymentStore } from "./payment-store";
import {
  type PaymentInput,
  type PaymentOptions,
  type PaymentQuestion,
  type PaymentReply,
  paymentOptions,
  payWithCredits,
} from "./payments";
import { applyPlanChange, currentPeriod, storePlan } from "./plans";
import { applyPurchaseEvent } from "./purchases";
import { oweUpgradeBonus, type Referral, type ReferralReward, receiveReward, recordReferral } from "./referrals";
import { settle } from "./settlement";
import { spend, spendBatch } from "./spends";
import { LedgerStore } from "./store";
import { iso } from "./time";

const TEAM_KEY = "team";

/** A charge as the worker sends it: the request (priced here) and who it is for. */
export type ChargeRequestInput = ChargeRequest & Attribution;
/** A hold as the worker sends it: a charge request whose feature is optional, and its deadline. */
export type HoldRequestInput = Omit<ChargeRequestInput, "feature"> & {
  feature?: string | undefined;
  ttlSeconds: number;
};

export class TeamLedger extends DurableObject<Cloudflare.Env> {
  private readonly store: LedgerStore;
  private readonly alarms: AlarmSchedule;
  private team: Team | null;
  /**
   * The D1 database the outbox writes to: the team's jurisdiction's (db/history-database.ts; null
   * while that database is not bound). A property so fault-injection tests can wrap it.
   */
  d1: D1Database | null;

  constructor(ctx: DurableObjectState, env: Cloudflare.Env) {
    super(ctx, env);
    this.d1 = env.DB;
    this.store = new LedgerStore(ctx.storage);
    this.alarms = new AlarmSchedule(ctx.storage, this.store);
    this.team = null;
    this.reloadTeam();
    ctx.blockConcurrencyWhile(() => this.alarms.load());
  }

  /**
   * Reads the team document from storage into the object's copy. The constructor's step, and the
   * white-box seam for tests that rewrite the stored team (moving its periods back in time,
   * test/support/plans.ts): called in the same event as the rewrite, so no request or alarm sees
   * the copy and the storage disagree, and no object has to be restarted.
   */
  reloadTeam(): void {
    const doc = this.store.getMeta(TEAM_KEY);
    // Teams stored before plans had no period fields.
    const team = doc ? (JSON.parse(doc) as Team) : null;
    if (team) {
      team.periodAnchor ??= null;
      // Teams stored before auto-recharge (or their own role matrix) had no such setting.
      team.settings.autoRecharge ??= null;
      team.settings.roleMatrix ??= null;
      team.currentPeriod = null;
      // Teams stored before placement were placed anywhere (or in the jurisdiction their id names).
      team.locationHint ??= null;
      team.jurisdiction ??= jurisdictionOfTeam(team.id);
      this.store.entries.bindTeam(team.id);
      this.d1 = historyDatabase(this.env, team.id);
    }
    this.team = team;
  }

  // ---- teams --------------------------------------------------------------------------------

  /**
   * Creates or updates the team. `plan` is the catalog's plan when `input.planId` names one (the
   * worker reads it fresh); plan and seat changes follow plans.ts, in the same transaction.
   */
  async upsertTeam(teamId: string, input: TeamInput, plan: Plan | null = null): Promise<Reply<Team>> {
    const nowMs = Date.now();
    const reply = this.store.transaction((): Reply<Team> => {
      const prev = this.team;
      if (prev && prev.id !== teamId) throw new Error("team object addressed by another team id");
      const turnOn = input.settings?.autoRecharge;
      if (turnOn && !savedPaymentMethod(this.store))
        return failure(
          "conflict",
          "auto-recharge needs a saved card: buy once through checkout with savePaymentMethod: true",
          { reason: "no_payment_method" },
        );
      const settings: TeamSettings = {
        shareCreditsWithSubaccounts: false,
        creditPaymentsEnabled: true,
        lowBalanceThreshold: 0,
        autoRecharge: null,
        ...prev?.settings,
        roleMatrix: prev?.settings.roleMatrix ?? null,
      };
      for (const [k, v] of Object.entries(input.settings ?? {}))
        if (v !== undefined) Object.assign(settings, { [k]: v });
      const planId = input.planId === undefined ? (prev?.planId ?? null) : input.planId;
      const placement = placementFor(teamId, input, prev);
      if ("ok" in placement) return placement;
      if (!prev && placement.jurisdiction && !historyDatabase(this.env, teamId))
        return failure(
          "conflict",
          `jurisdiction ${placement.jurisdiction} has no history database bound (DB_${placement.jurisdiction.toUpperCase()})`,
          { reason: "jurisdiction_not_configured" },
        );
      const team: Team = {
        id: teamId,
        name: input.name ?? prev?.name ?? null,
        planId,
        seats: input.seats ?? prev?.seats ?? 1,
        kind: input.kind ?? prev?.kind ?? "team",
        parentTeamId: input.parentTeamId ?? prev?.parentTeamId ?? null,
        locationHint: placement.locationHint,
        jurisdiction: placement.jurisdiction,
        settings,
        periodAnchor: prev?.periodAnchor ?? (planId !== null ? iso(nowMs) : null),
        currentPeriod: null,
        createdAt: prev?.createdAt ?? iso(nowMs),
        updatedAt: iso(nowMs),
      };
      this.store.setMeta(TEAM_KEY, JSON.stringify(team));
      // Turned on (again) or off: the failures counted and any pending recharge are for the old settings.
      if (turnOn !== undefined) resetAutoRecharge(this.store, nowMs);
      this.store.entries.bindTeam(teamId);
      this.team = team;
      this.d1 = historyDatabase(this.env, teamId);
      // What was due happens under the team as it was (a period that began is the old plan's).
      if (prev) {
        const due = new LedgerTx(this.store, prev, nowMs);
        settle(due);
        due.watchBalance();
      }
      const tx = new LedgerTx(this.store, team, nowMs);
      const planTouched = input.planId !== undefined || input.seats !== undefined;
      if (planTouched && (planId !== null || prev?.planId != null)) {
        const { firstPaid } = applyPlanChange(tx, prev, planId === null ? null : plan);
        if (firstPaid) oweUpgradeBonus(tx);
      }
      tx.watchBalance(prev?.settings.lowBalanceThreshold !== settings.lowBalanceThreshold);
      return { ok: true, status: prev ? 200 : 201, body: this.shown(team, nowMs), replayed: false };
    });
    await this.alarms.afterWrite(nowMs);
    return reply;
  }

  getTeam(teamId: string): Reply<Team> {
    const team = this.requireTeam(teamId);
    if ("ok" in team) return team;
    return { ok: true, status: 200, body: this.shown(team, Date.now()), replayed: false };
  }

  /** The team as the API shows it: its current period, and its auto-recharge as it stands. */
  private shown(team: Team, nowMs: number): Team {
    const settings = { ...team.settings, autoRecharge: autoRechargeOf(this.store, team) };
    return { ...team, settings, currentPeriod: currentPeriod(team, nowMs) };
  }

  // ---- reads --------------------------------------------------------------------------------

  getBalance(teamId: string): Reply<Balance> {
    return this.read(teamId, (tx) => ({
      ...tx.balance(),
      byFeature: tx.byFeature(),
      grants: this.store.grants.listLive().map(publicGrant),
    }));
  }

  getHold(teamId: string, holdId: string): Reply<Hold> {
    // Settle first so a hold past its deadline reads as expired, not pending.
    const r = this.read(teamId, () => this.store.holds.get(holdId));
    if (!r.ok) return r;
    if (!r.body) return failure("not_found", `hold ${holdId} not found`);
    return { ok: true, status: 200, body: publicHold(r.body), replayed: false };
  }

  /**
   * The part of a history page D1 may not have yet: entries after the outbox's high-water mark
   * (and before `filter.beforeSeq`) that match the filter, newest first, at most `filter.limit`.
   * `deliveredSeq` is read in the same transaction: every entry up to it is in D1.
   */
  undeliveredEntries(teamId: string, filter: EntryFilter): Reply<{ deliveredSeq: number; entries: Entry[] }> {
    return this.read(teamId, () => {
      const deliveredSeq = outboxState(this.store).deliveredSeq;
      const entries = this.store.entries.list({ ...filter, afterSeq: deliveredSeq }).map(entryFromFields);
      return { deliveredSeq, entries };
    });
  }

  /** The balance, the outbox's mark and the sums of what D1 has not received, in one transaction. */
  reconcileSnapshot(teamId: string): Reply<ReconcileSnapshot> {
    return this.read(teamId, (tx) => {
      const balance = tx.balance();
      const deliveredSeq = outboxState(this.store).deliveredSeq;
      return {
        available: balance.available,
        held: balance.held,
        total: balance.total,
        lastSeq: this.store.entries.lastSeq(),
        deliveredSeq,
        backlog: this.store.entries.sums(deliveredSeq),
      };
    });
  }

  /** Replication status, for operators and tests. */
  outbox(teamId: string): Reply<OutboxState> {
    const team = this.requireTeam(teamId);
    if ("ok" in team) return team;
    return { ok: true, status: 200, body: outboxState(this.store), replayed: false };
  }

  /**
   * What a verifier of the D1 history needs from the object: how far D1 is meant to go
   * (deliveredSeq), what is not there yet (backlog), and the object's own hash at deliveredSeq,
   * which anchors the chain read from D1 to the source of truth.
   */
  chainHead(teamId: string): Reply<ChainHead> {
    const team = this.requireTeam(teamId);
    if ("ok" in team) return team;
    const out = outboxState(this.store);
    const body: ChainHead = {
      lastSeq: this.store.entries.lastSeq(),
      deliveredSeq: out.deliveredSeq,
      backlog: out.backlog,
      deliveredHash: out.deliveredSeq > 0 ? this.store.entries.hashAt(out.deliveredSeq) : null,
    };
    return { ok: true, status: 200, body, replayed: false };
  }

  /**
   * One round trip with no storage access: the floor under every other call (see bench/). With
   * `durable`, it also commits one tiny write (a counter in meta): the floor under every mutation,
   * since each one commits durably before it answers.
   */
  ping(durable = false): { ok: true } {
    if (durable) {
      this.store.transaction(() => {
        this.store.setMeta(
          "diagnostics.durablePings",
          String(Number(this.store.getMeta("diagnostics.durablePings") ?? "0") + 1),
        );
      });
    }
    return { ok: true };
  }

  // ---- mutations ----------------------------------------------------------------------------

  grant(teamId: string, input: GrantInput, idem: IdempotencyInput): Promise<Reply<GrantReply>> {
    return this.mutate(teamId, idem, (tx) => grant(tx, input));
  }

  voidGrant(teamId: string, grantId: string, idem: IdempotencyInput): Promise<Reply<GrantReply>> {
    return this.mutate(teamId, idem, (tx) => voidGrant(tx, grantId));
  }

  /**
   * A spend, priced here with the team's own plan (domain/pricing.ts): `quote` is the worker's
   * copy of the price book's entry for the feature (undefined when it has none).
   */
  spend(
    teamId: string,
    request: ChargeRequestInput,
    quote: FeatureQuote | undefined,
    idem: IdempotencyInput,
    actor?: Actor,
  ): Promise<Reply<SpendReply>> {
    return this.mutateAs(teamId, idem, actor, (tx) => {
      const priced = this.price(tx, { ...request, actor: actor?.id }, quote, "spend");
      return priced.ok ? spend(tx, priced.charge) : priced;
    });
  }

  spendBatch(
    teamId: string,
    items: ChargeRequestInput[],
    quotes: Readonly<Record<string, FeatureQuote>>,
    mode: BatchMode,
    idem: IdempotencyInput,
    actor?: Actor,
  ): Promise<Reply<BatchReply>> {
    return this.mutateAs(teamId, idem, actor, (tx) => {
      const charges: ChargeInput[] = [];
      for (const [i, item] of items.entries()) {
        const who = { ...item, actor: actor?.id };
        const priced = this.price(tx, who, quoteOf(quotes, item.feature), "spend", `items[${i}].feature`);
        if (!priced.ok) return priced;
        charges.push(priced.charge);
      }
      return spendBatch(tx, charges, mode);
    });
  }

  /** A hold, priced like a spend; a hold without a feature names its amount (the route checks). */
  createHold(
    teamId: string,
    request: HoldRequestInput,
    quote: FeatureQuote | undefined,
    idem: IdempotencyInput,
    actor?: Actor,
  ): Promise<Reply<HoldReply>> {
    return this.mutateAs(teamId, idem, actor, (tx) => {
      const { feature, ttlSeconds, ...asked } = request;
      const rest = { ...asked, actor: actor?.id };
      if (feature === undefined) {
        if (rest.amount === undefined) return failure("invalid_request", 'send "amount" or a priced "feature"');
        return createHold(tx, { ...rest, amount: rest.amount, ttlSeconds });
      }
      const priced = this.price(tx, { ...rest, feature }, quote, "hold");
      return priced.ok ? createHold(tx, { ...priced.charge, ttlSeconds }) : priced;
    });
  }

  /**
   * What items would cost and draw now, written nowhere (POST …/estimate): each line priced with
   * the team's plan, the drawdown across grants in spending order (exactly what a spend of the
   * total would take), and, when short, the plan's packs that cover the shortfall.
   */
  estimate(teamId: string, items: ChargeRequest[], quotes: Readonly<Record<string, FeatureQuote>>): Reply<Estimate> {
    const r = this.read(teamId, (tx): Estimate | Failure => estimate(tx, items, quotes));
    if (!r.ok) return r;
    if ("code" in r.body) return r.body;
    return { ...r, body: r.body };
  }

  // ---- referrals ----------------------------------------------------------------------------

  /** In the referred team's object (referrals.ts): records who referred it, once. */
  async recordReferral(
    teamId: string,
    input: { referrerTeamId: string; signupCredits: number; upgradeCredits: number },
  ): Promise<Reply<Referral>> {
    const team = this.requireTeam(teamId);
    if ("ok" in team) return team;
    const nowMs = Date.now();
    const outcome = this.store.transaction(() => recordReferral(new LedgerTx(this.store, team, nowMs), input));
    if (!outcome.ok) return outcome;
    await this.alarms.afterWrite(nowMs);
    return { ...outcome, replayed: false };
  }

  /** In the referrer's object: a bonus the referred team's object owes it, granted once forever. */
  receiveReferralReward(
    teamId: string,
    reward: ReferralReward,
  ): Promise<Reply<{ grantId: string | null; already: boolean }>> {
    return this.write(teamId, (tx) => receiveReward(tx, reward));
  }

  // ---- purchases ----------------------------------------------------------------------------

  /**
   * A payment provider's event about one of the team's purchases (purchases.ts), verified by the
   * worker: credited, refunded or disputed once per provider id, however often it arrives. The
   * reply is durable when it returns: the webhook is acknowledged only after it.
   */
  applyPurchaseEvent(teamId: string, event: PurchaseEvent): Promise<Reply<PurchaseEventResult>> {
    return this.write(teamId, (tx) => applyPurchaseEvent(tx, event));
  }

  /** The team's events, newest first (GET …/events): what was, or will be, sent to webhooks. */
  listEvents(teamId: string, beforeSeq: number, limit: number, type?: EventType): Reply<{ events: OutboundEvent[] }> {
    const team = this.requireTeam(teamId);
    if ("ok" in team) return team;
    return {
      ok: true,
      status: 200,
      body: { events: this.store.events.list(teamId, beforeSeq, limit, type) },
      replayed: false,
    };
  }

  captureHold(
    teamId: string,
    holdId: string,
    amount: number | undefined,
    idem: IdempotencyInput,
    actor?: Actor,
  ): Promise<Reply<HoldReply>> {
    return this.mutateAs(teamId, idem, actor, (tx) => captureHold(tx, holdId, amount));
  }

  releaseHold(
    teamId: string,
    holdId: string,
    reason: string | undefined,
    idem: IdempotencyInput,
    actor?: Actor,
  ): Promise<Reply<HoldReply>> {
    return this.mutateAs(teamId, idem, actor, (tx) => releaseHold(tx, holdId, reason));
  }

  async extendHold(
    teamId: string,
    holdId: string,
    change: { amount?: number | undefined; ttlSeconds?: number | undefined },
    idem: IdempotencyInput,
    actor?: Actor,
  ): Promise<Reply<HoldReply>> {
    const reply = await this.mutateAs(teamId, idem, actor, (tx) =>
      extendHold(tx, holdId, change.amount, change.ttlSeconds),
    );
    // A new deadline may come sooner than the alarm (ttlSeconds counts from now): keep it on time.
    if (reply.ok) await this.alarms.schedule(Date.parse(reply.body.hold.expiresAt));
    return reply;
  }

  // ---- credit requests and payments ----------------------------------------------------------

  /** The credit_requests and payments tables (schema.ts v5); LedgerStore migrated them. */
  private readonly creditRequests = new CreditRequestStore(this.ctx.storage.sql);
  private readonly payments = new PaymentStore(this.ctx.storage.sql);

  /** A pending credit request (credit-requests.ts); the worker checked the buyer and the price. */
  createCreditRequest(
    teamId: string,
    input: CreditRequestInput,
    idem: IdempotencyInput | null,
  ): Promise<Reply<CreditRequest>> {
    return this.mutateKeyedOrNot(teamId, idem, (tx) => createCreditRequest(tx, this.creditRequests, input));
  }

  getCreditRequest(teamId: string, requestId: string): Reply<CreditRequest> {
    const r = this.read(teamId, () => this.creditRequests.get(requestId));
    if (!r.ok) return r;
    if (!r.body) return failure("not_found", `credit request ${requestId} not found`);
    return { ok: true, status: 200, body: publicCreditRequest(r.body), replayed: false };
  }

  /** Requests before `beforeSeq`, newest first; `nextBeforeSeq` continues the list (null at its end). */
  listCreditRequests(
    teamId: string,
    query: { status: CreditRequestStatus | undefined; beforeSeq: number; limit: number },
  ): Reply<{ creditRequests: CreditRequest[]; nextBeforeSeq: number | null }> {
    return this.read(teamId, () => {
      // One more than asked: whether a next page exists, without a page that comes back empty.
      const rows = this.creditRequests.list({ ...query, limit: query.limit + 1 });
      const page = rows.slice(0, query.limit);
      const last = page.at(-1);
      return {
        creditRequests: page.map(publicCreditRequest),
        nextBeforeSeq: rows.length > query.limit && last ? last.seq : null,
      };
    });
  }

  acceptCreditRequest(
    teamId: string,
    requestId: string,
    decidedBy: string | null,
    idem: IdempotencyInput | null,
  ): Promise<Reply<CreditRequest>> {
    return this.mutateKeyedOrNot(teamId, idem, (tx) =>
      acceptCreditRequest(tx, this.creditRequests, requestId, decidedBy),
    );
  }

  rejectCreditRequest(
    teamId: string,
    requestId: string,
    decision: { decidedBy: string | null; reason: string | null },
    idem: IdempotencyInput | null,
  ): Promise<Reply<CreditRequest>> {
    return this.mutateKeyedOrNot(teamId, idem, (tx) =>
      rejectCreditRequest(tx, this.creditRequests, requestId, decision.decidedBy, decision.reason),
    );
  }

  /** Whether this payment with credits can be made now, and every reason it cannot (payments.ts). */
  paymentOptions(teamId: string, question: PaymentQuestion): Reply<PaymentOptions> {
    return this.read(teamId, (tx) => paymentOptions(tx, this.payments, question));
  }

  /** Pays an invoice or a service with credits: the spend and the payment's row, all or nothing. */
  payWithCredits(teamId: string, input: PaymentInput, idem: IdempotencyInput): Promise<Reply<PaymentReply>> {
    return this.mutate(teamId, idem, (tx) => payWithCredits(tx, this.payments, input));
  }

  /** `mutate` when the request carries an Idempotency-Key; one plain transaction when it does not. */
  private async mutateKeyedOrNot<T>(
    teamId: string,
    idem: IdempotencyInput | null,
    op: (tx: LedgerTx) => Outcome<T>,
  ): Promise<Reply<T>> {
    if (idem) return this.mutate(teamId, idem, op);
    const team = this.requireTeam(teamId);
    if ("ok" in team) return team;
    const nowMs = Date.now();
    const { reply, wrote } = runUnkeyed(this.store, team, nowMs, op);
    if (wrote) await this.alarms.afterWrite(nowMs);
    return reply;
  }

  // ---- the alarm ----------------------------------------------------------------------------

  override async alarm(): Promise<void> {
    const team = this.team;
    if (team?.planId) await this.refreshPlan(team.planId);
    await this.alarms.run(this.team, this.d1, async () => {
      if (!this.team) return null;
      const team = this.team;
      await deliverMessages(this.store, this.env.TEAM_LEDGER);
      const recharge = await startRecharges(this.store, team, this.env, (fn) =>
        this.store.transaction(() => {
          const tx = new LedgerTx(this.store, team, Date.now());
          fn(tx);
        }),
      );
      const events = await handOff(this.store, this.env, team.id);
      return recharge === null ? events : events === null ? recharge : Math.min(recharge, events);
    });
  }

  /**
   * Before a period boundary, the alarm refreshes the object's copy of its plan from the catalog
   * (plans.ts), so the new period's allocation follows the plan as it is now. A catalog that
   * cannot be reached leaves the copy as it was: the allocation is never held back by it.
   */
  private async refreshPlan(planId: string): Promise<void> {
    const due = this.store.nextDueTimes().periodStartMs;
    if (due === null || due > Date.now() + PLAN_REFRESH_AHEAD_MS) return;
    try {
      const plan = await catalogStub(this.env).getPlan(planId);
      if (plan && this.team?.planId === planId) this.store.transaction(() => storePlan(this.store, plan));
    } catch (err) {
      console.error(JSON.stringify({ teamId: this.team?.id, planRefresh: String(err) }));
    }
  }

  /** Prices a charge with the team's plan; a refusal here is the ledger's own (saved under the key). */
  private price(
    tx: LedgerTx,
    request: ChargeRequestInput,
    quote: FeatureQuote | undefined,
    kind: ChargeKind,
    where?: string,
  ): { ok: true; charge: ChargeInput } | Failure {
    const { memberTeamId, actor, ...charge } = request;
    const priced = priceCharge(charge, quote, tx.team.planId, kind, MAX_AMOUNT_CREDITS, where);
    if (!priced.ok) return priced;
    return { ok: true, charge: { ...priced.charge, memberTeamId, actor } };
  }

  // ---- plumbing -----------------------------------------------------------------------------

  private requireTeam(teamId: string): Team | Failure {
    if (!this.team) return failure("not_found", `team ${teamId} not found`);
    if (this.team.id !== teamId) throw new Error("team object addressed by another team id");
    return this.team;
  }

  /** A read that first settles what is due, so it never shows an expired grant or hold as live. */
  private read<T>(teamId: string, fn: (tx: LedgerTx) => T): Reply<T> {
    const team = this.requireTeam(teamId);
    if ("ok" in team) return team;
    const nowMs = Date.now();
    const { body, wrote } = this.store.transaction(() => {
      const tx = new LedgerTx(this.store, team, nowMs);
      settle(tx);
      tx.watchBalance();
      return { body: fn(tx), wrote: tx.written.length > 0 || tx.emitted > 0 };
    });
    // Settling wrote entries or events: the outboxes have work (the alarm is usually due already).
    if (wrote) void this.alarms.afterWrite(nowMs);
    return { ok: true, status: 200, body, replayed: false };
  }

  /**
   * A change that needs no Idempotency-Key (it is idempotent by its own ids: a Stripe event, a
   * referral reward): settles what is due, runs `fn`, tells a low-balance crossing, all in one
   * transaction, then keeps the alarm on time.
   */
  private async write<T>(teamId: string, fn: (tx: LedgerTx) => T): Promise<Reply<T>> {
    const team = this.requireTeam(teamId);
    if ("ok" in team) return team;
    const nowMs = Date.now();
    const { body, wrote } = this.store.transaction(() => {
      const tx = new LedgerTx(this.store, team, nowMs);
      settle(tx);
      const result = fn(tx);
      tx.watchBalance();
      return { body: result, wrote: tx.written.length > 0 || tx.emitted > 0 };
    });
    if (wrote) await this.alarms.afterWrite(nowMs);
    return { ok: true, status: 200, body, replayed: false };
  }

  /** Runs one mutation once per Idempotency-Key (idempotent.ts), then keeps the alarm on time. */
  /**
   * A mutation that uses the team's credits for a person: the role matrix (domain/roles.ts)
   * decides first, in the same transaction, and its refusal is saved under the key like any other.
   */
  private mutateAs<T>(
    teamId: string,
    idem: IdempotencyInput,
    actor: Actor | undefined,
    op: (tx: LedgerTx) => Outcome<T>,
  ): Promise<Reply<T>> {
    return this.mutate(teamId, idem, (tx) => spendingRefusal(tx.team, actor) ?? op(tx));
  }

  private async mutate<T>(teamId: string, idem: IdempotencyInput, op: (tx: LedgerTx) => Outcome<T>): Promise<Reply<T>> {
    const team = this.requireTeam(teamId);
    if ("ok" in team) return team;
    const nowMs = Date.now();
    const { reply, wroteEntries, saved } = mutateOnce(this.store, team, nowMs, idem, op);
    if (wroteEntries || saved) await this.alarms.afterWrite(nowMs);
    return reply;
  }
}
