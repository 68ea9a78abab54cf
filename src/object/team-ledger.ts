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
import {
  type CapStanding,
  type CapView,
  capRemaining,
  isOwnBalance,
  memberKey,
  membershipRefusal,
  OWN_BALANCE,
  type OwnBalance,
} from "../domain/pools";
import { type ChargeKind, type ChargeRequest, type FeatureQuote, priceCharge, quoteOf } from "../domain/pricing";
import type { PurchaseEvent, PurchaseEventResult } from "../domain/purchase-events";
import { type Actor, type RoleMatrix, spendingRefusal } from "../domain/roles";
import type {
  Attribution,
  Balance,
  BalanceSummary,
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
import type { HistoryMessage } from "../history-queue/message";
import { MAX_AMOUNT_CREDITS, MAX_MEMBER_CAPS, MAX_SUBACCOUNTS_PER_AGENCY, PLAN_REFRESH_AHEAD_MS } from "../limits";
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
import { hearDelivered, keepHeard, type OutboxState, outboxState, resendFrom } from "./outbox";
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
import { capCheck, capStandings, spendBatchWithinCaps } from "./pools";
import { applyPurchaseEvent } from "./purchases";
import { oweUpgradeBonus, type Referral, type ReferralReward, receiveReward, recordReferral } from "./referrals";
import { settle } from "./settlement";
import { spend } from "./spends";
import { LedgerStore } from "./store";
import { teamObject } from "./team-address";
import { iso } from "./time";

const TEAM_KEY = "team";

/** A charge as the worker sends it: the request (priced here) and who it is for. */
export type ChargeRequestInput = ChargeRequest & Attribution;
/** A hold as the worker sends it: a charge request whose feature is optional, and its deadline. */
export type HoldRequestInput = Omit<ChargeRequestInput, "feature"> & {
  feature?: string | undefined;
  ttlSeconds: number;
};

/** A subaccount as its object names itself to its agency's: its id and its own role matrix. */
export interface MemberCall {
  teamId: string;
  roleMatrix: RoleMatrix | null;
}

function capView(c: CapStanding): CapView {
  return {
    scope: c.scope,
    subject: c.subject,
    creditsPerPeriod: c.capCredits,
    used: c.spentCredits + c.heldCredits,
    held: c.heldCredits,
    remaining: capRemaining(c),
    periodStart: iso(c.periodStartsAtMs),
  };
}

/** A reply the agency's object made for a member: its balance is shown as the member's view of the pool. */
function asMember<T>(reply: Reply<T>, memberTeamId: string): Reply<T> {
  if (!reply.ok) return reply;
  const body = reply.body as T & { balance?: BalanceSummary };
  if (!body.balance) return reply;
  return { ...reply, body: { ...body, balance: { ...body.balance, teamId: memberTeamId } } };
}

export class TeamLedger extends DurableObject<Cloudflare.Env> {
  private readonly store: LedgerStore;
  private readonly alarms: AlarmSchedule;
  private team: Team | null;
  /** Keys bound to this team that were revoked (schema.ts v7): refused on every mutation. */
  private readonly revokedKeys: Set<string>;
  /**
   * The D1 database the outbox writes to: the team's jurisdiction's (db/history-database.ts; null
   * while that database is not bound). A property so fault-injection tests can wrap it.
   */
  d1: D1Database | null;
  /**
   * The history queue the alarm sends entries to (outbox.ts); null: the object writes D1 itself
   * (HISTORY_DELIVERY=direct, the bench's comparison, or tests that fail the object's own D1).
   */
  historyQueue: Queue<HistoryMessage> | null;

  constructor(ctx: DurableObjectState, env: Cloudflare.Env) {
    super(ctx, env);
    this.d1 = env.DB;
    this.historyQueue = env.HISTORY_DELIVERY === "direct" ? null : (env.HISTORY_QUEUE ?? null);
    this.store = new LedgerStore(ctx.storage);
    this.alarms = new AlarmSchedule(ctx.storage, this.store);
    this.team = null;
    this.revokedKeys = new Set(this.store.revokedKeys());
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
      team.settings.capCreditsPerPeriod ??= null;
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
    const refused = membershipRefusal(teamId, input, this.team);
    if (refused) return refused;
    // A new subaccount joins its agency's pool first (the agency checks it may), and a cap is the
    // agency's to keep: its object enforces it (domain/pools.ts).
    const parentId = this.team ? this.team.parentTeamId : input.kind === "subaccount" ? input.parentTeamId : null;
    const cap = input.settings?.capCreditsPerPeriod;
    if (parentId && (this.team === null || cap !== undefined)) {
      const joined = await teamObject(this.env, parentId).admitMember(parentId, teamId, cap);
      if (!joined.ok) return joined;
    }
    const nowMs = Date.now();
    const reply = this.store.transaction((): Reply<Team> => {
      const prev = this.team;
      if (prev && prev.id !== teamId) throw new Error("team object addressed by another team id");
      // Another request may have created the team while this one waited for the agency.
      const moved = membershipRefusal(teamId, input, prev);
      if (moved) return moved;
      if (prev?.kind === "agency" && (input.kind ?? "agency") !== "agency" && this.store.pools.memberCount() > 0)
        return failure("conflict", "an agency with subaccounts stays an agency", { reason: "has_subaccounts" });
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
        capCreditsPerPeriod: null,
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

  /** The balance; a subaccount's is its agency's pool while the agency shares it (`poolTeamId`). */
  getBalance(teamId: string): Promise<Reply<Balance>> {
    return this.viaPool(
      teamId,
      null,
      (pool, poolTeamId) => pool.memberBalance(poolTeamId, teamId),
      async () => this.read(teamId, (tx) => this.balanceOf(tx)),
    );
  }

  private balanceOf(tx: LedgerTx): Balance {
    return { ...tx.balance(), byFeature: tx.byFeature(), grants: this.store.grants.listLive().map(publicGrant) };
  }

  /** In the agency's object: the pool as a subaccount sees it while shared (with its caps), else its own. */
  memberBalance(poolTeamId: string, memberTeamId: string): Reply<Balance | OwnBalance> {
    return this.read(poolTeamId, (tx) => {
      if (!this.sharesWith(tx.team, memberTeamId)) return OWN_BALANCE;
      const caps = capStandings(tx, { memberTeamId }).map(capView);
      return { ...this.balanceOf(tx), teamId: memberTeamId, caps };
    });
  }

  /** Whether the pool is shared with this subaccount now (the agency's own object decides). */
  poolSharing(poolTeamId: string, memberTeamId: string): Reply<{ shared: boolean }> {
    const team = this.requireTeam(poolTeamId);
    if ("ok" in team) return { ok: true, status: 200, body: { shared: false }, replayed: false };
    return { ok: true, status: 200, body: { shared: this.sharesWith(team, memberTeamId) }, replayed: false };
  }

  getHold(teamId: string, holdId: string): Promise<Reply<Hold>> {
    return this.viaPool(
      teamId,
      null,
      (pool, poolTeamId) => pool.memberHold(poolTeamId, teamId, holdId),
      async () => {
        // Settle first so a hold past its deadline reads as expired, not pending.
        const r = this.read(teamId, () => this.store.holds.get(holdId));
        if (!r.ok) return r;
        if (!r.body) return failure("not_found", `hold ${holdId} not found`);
        return { ok: true, status: 200, body: publicHold(r.body), replayed: false };
      },
    );
  }

  /** In the agency's object: a subaccount's hold on the pool, or the word to look in its own object. */
  memberHold(poolTeamId: string, memberTeamId: string, holdId: string): Reply<Hold | OwnBalance> {
    return this.read(poolTeamId, () => {
      const h = this.store.holds.get(holdId);
      return h && h.memberTeamId === memberTeamId ? publicHold(h) : OWN_BALANCE;
    });
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
  reconcileSnapshot(teamId: string): Reply<ReconcileSnapshot & { sentSeq: number }> {
    return this.read(teamId, (tx) => {
      const balance = tx.balance();
      const { deliveredSeq, sentSeq } = outboxState(this.store);
      return {
        available: balance.available,
        held: balance.held,
        total: balance.total,
        lastSeq: this.store.entries.lastSeq(),
        deliveredSeq,
        sentSeq,
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

  /** The history consumer's word (history-queue/consumer.ts): D1 holds every entry up to `seq`. */
  historyLanded(teamId: string, seq: number): Reply<OutboxState> {
    const team = this.requireTeam(teamId);
    if ("ok" in team) return team;
    const before = outboxState(this.store).confirmDueAtMs;
    if (hearDelivered(this.store, seq) === null)
      return { ok: true, status: 200, body: outboxState(this.store), replayed: false };
    const body = outboxState(this.store);
    // Stored right after this reply, not before it: the consumer tells a hundred objects a batch
    // and need not wait for a hundred commits. Lost before it is stored, the mark is only lower.
    setTimeout(() => {
      this.store.transaction(() => keepHeard(this.store));
      // The alarm was set for the check of D1's mark, now moot: back to the next real deadline.
      if (before !== outboxState(this.store).confirmDueAtMs) void this.alarms.refresh();
    }, 0);
    return { ok: true, status: 200, body, replayed: false };
  }

  /** Sends the history again from `fromSeq` (admin resend, dead-letter re-drive), at once. */
  async resendHistory(teamId: string, fromSeq: number): Promise<Reply<OutboxState>> {
    const team = this.requireTeam(teamId);
    if ("ok" in team) return team;
    const body = this.store.transaction(() => resendFrom(this.store, fromSeq));
    await this.alarms.schedule(Date.now());
    return { ok: true, status: 200, body, replayed: false };
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
    return this.viaPool(
      teamId,
      idem,
      (pool, poolTeamId, member) => pool.memberSpend(poolTeamId, member, request, quote, idem, actor),
      (poolShared) => this.mutateAs(teamId, idem, actor, poolShared, (tx) => this.spendOp(tx, request, quote, actor)),
    );
  }

  /** In the agency's object: a subaccount's spend, from the pool while it is shared (domain/pools.ts). */
  memberSpend(
    poolTeamId: string,
    member: MemberCall,
    request: ChargeRequestInput,
    quote: FeatureQuote | undefined,
    idem: IdempotencyInput,
    actor?: Actor,
  ): Promise<Reply<SpendReply | OwnBalance>> {
    const forMember = { ...request, memberTeamId: member.teamId };
    return this.asPool(poolTeamId, member, idem, actor, null, (tx) => this.spendOp(tx, forMember, quote, actor));
  }

  private spendOp(
    tx: LedgerTx,
    request: ChargeRequestInput,
    quote: FeatureQuote | undefined,
    actor: Actor | undefined,
  ): Outcome<SpendReply> {
    const priced = this.price(tx, { ...request, actor: actor?.id }, quote, "spend");
    if (!priced.ok) return priced;
    return capCheck(tx, priced.charge, priced.charge.amount) ?? spend(tx, priced.charge);
  }

  spendBatch(
    teamId: string,
    items: ChargeRequestInput[],
    quotes: Readonly<Record<string, FeatureQuote>>,
    mode: BatchMode,
    idem: IdempotencyInput,
    actor?: Actor,
  ): Promise<Reply<BatchReply>> {
    return this.viaPool(
      teamId,
      idem,
      (pool, poolTeamId, member) => pool.memberSpendBatch(poolTeamId, member, items, quotes, mode, idem, actor),
      (poolShared) =>
        this.mutateAs(teamId, idem, actor, poolShared, (tx) => this.batchOp(tx, items, quotes, mode, actor)),
    );
  }

  /** In the agency's object: a subaccount's batch, from the pool while it is shared. */
  memberSpendBatch(
    poolTeamId: string,
    member: MemberCall,
    items: ChargeRequestInput[],
    quotes: Readonly<Record<string, FeatureQuote>>,
    mode: BatchMode,
    idem: IdempotencyInput,
    actor?: Actor,
  ): Promise<Reply<BatchReply | OwnBalance>> {
    const forMember = items.map((item) => ({ ...item, memberTeamId: member.teamId }));
    return this.asPool(poolTeamId, member, idem, actor, null, (tx) => this.batchOp(tx, forMember, quotes, mode, actor));
  }

  private batchOp(
    tx: LedgerTx,
    items: ChargeRequestInput[],
    quotes: Readonly<Record<string, FeatureQuote>>,
    mode: BatchMode,
    actor: Actor | undefined,
  ): Outcome<BatchReply> {
    const charges: ChargeInput[] = [];
    for (const [i, item] of items.entries()) {
      const who = { ...item, actor: actor?.id };
      const priced = this.price(tx, who, quoteOf(quotes, item.feature), "spend", `items[${i}].feature`);
      if (!priced.ok) return priced;
      charges.push(priced.charge);
    }
    return spendBatchWithinCaps(tx, charges, mode);
  }

  /** A hold, priced like a spend; a hold without a feature names its amount (the route checks). */
  createHold(
    teamId: string,
    request: HoldRequestInput,
    quote: FeatureQuote | undefined,
    idem: IdempotencyInput,
    actor?: Actor,
  ): Promise<Reply<HoldReply>> {
    return this.viaPool(
      teamId,
      idem,
      (pool, poolTeamId, member) => pool.memberCreateHold(poolTeamId, member, request, quote, idem, actor),
      (poolShared) => this.mutateAs(teamId, idem, actor, poolShared, (tx) => this.holdOp(tx, request, quote, actor)),
    );
  }

  /** In the agency's object: a subaccount's hold, on the pool while it is shared; it stays there. */
  memberCreateHold(
    poolTeamId: string,
    member: MemberCall,
    request: HoldRequestInput,
    quote: FeatureQuote | undefined,
    idem: IdempotencyInput,
    actor?: Actor,
  ): Promise<Reply<HoldReply | OwnBalance>> {
    const forMember = { ...request, memberTeamId: member.teamId };
    return this.asPool(poolTeamId, member, idem, actor, null, (tx) => this.holdOp(tx, forMember, quote, actor));
  }

  private holdOp(
    tx: LedgerTx,
    request: HoldRequestInput,
    quote: FeatureQuote | undefined,
    actor: Actor | undefined,
  ): Outcome<HoldReply> {
    const { feature, ttlSeconds, ...asked } = request;
    const rest = { ...asked, actor: actor?.id };
    if (feature === undefined) {
      if (rest.amount === undefined) return failure("invalid_request", 'send "amount" or a priced "feature"');
      return capCheck(tx, rest, rest.amount) ?? createHold(tx, { ...rest, amount: rest.amount, ttlSeconds });
    }
    const priced = this.price(tx, { ...rest, feature }, quote, "hold");
    if (!priced.ok) return priced;
    return capCheck(tx, priced.charge, priced.charge.amount) ?? createHold(tx, { ...priced.charge, ttlSeconds });
  }

  /**
   * What items would cost and draw now, written nowhere (POST …/estimate): each line priced with
   * the team's plan, the drawdown across grants in spending order (exactly what a spend of the
   * total would take), and, when short, the plan's packs that cover the shortfall.
   */
  estimate(
    teamId: string,
    items: ChargeRequest[],
    quotes: Readonly<Record<string, FeatureQuote>>,
  ): Promise<Reply<Estimate>> {
    return this.viaPool(
      teamId,
      null,
      (pool, poolTeamId) => pool.memberEstimate(poolTeamId, teamId, items, quotes),
      async () => this.estimateHere(teamId, items, quotes),
    );
  }

  /** In the agency's object: a subaccount's estimate, against the pool while it is shared. */
  memberEstimate(
    poolTeamId: string,
    memberTeamId: string,
    items: ChargeRequest[],
    quotes: Readonly<Record<string, FeatureQuote>>,
  ): Reply<Estimate | OwnBalance> {
    const team = this.requireTeam(poolTeamId);
    if ("ok" in team) return team;
    if (!this.sharesWith(team, memberTeamId)) return { ok: true, status: 200, body: OWN_BALANCE, replayed: false };
    return this.estimateHere(poolTeamId, items, quotes);
  }

  private estimateHere(
    teamId: string,
    items: ChargeRequest[],
    quotes: Readonly<Record<string, FeatureQuote>>,
  ): Reply<Estimate> {
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
    return this.viaPool(
      teamId,
      idem,
      (pool, poolTeamId, member) => pool.memberCaptureHold(poolTeamId, member, holdId, amount, idem, actor),
      (poolShared) => this.mutateAs(teamId, idem, actor, poolShared, (tx) => captureHold(tx, holdId, amount)),
    );
  }

  /** In the agency's object: a capture of a subaccount's hold on the pool (whether or not it still shares). */
  memberCaptureHold(
    poolTeamId: string,
    member: MemberCall,
    holdId: string,
    amount: number | undefined,
    idem: IdempotencyInput,
    actor?: Actor,
  ): Promise<Reply<HoldReply | OwnBalance>> {
    return this.asPool(poolTeamId, member, idem, actor, holdId, (tx) => captureHold(tx, holdId, amount));
  }

  releaseHold(
    teamId: string,
    holdId: string,
    reason: string | undefined,
    idem: IdempotencyInput,
    actor?: Actor,
  ): Promise<Reply<HoldReply>> {
    return this.viaPool(
      teamId,
      idem,
      (pool, poolTeamId, member) => pool.memberReleaseHold(poolTeamId, member, holdId, reason, idem, actor),
      (poolShared) => this.mutateAs(teamId, idem, actor, poolShared, (tx) => releaseHold(tx, holdId, reason)),
    );
  }

  /** In the agency's object: a release of a subaccount's hold on the pool (its credits go back to the pool). */
  memberReleaseHold(
    poolTeamId: string,
    member: MemberCall,
    holdId: string,
    reason: string | undefined,
    idem: IdempotencyInput,
    actor?: Actor,
  ): Promise<Reply<HoldReply | OwnBalance>> {
    return this.asPool(poolTeamId, member, idem, actor, holdId, (tx) => releaseHold(tx, holdId, reason));
  }

  async extendHold(
    teamId: string,
    holdId: string,
    change: { amount?: number | undefined; ttlSeconds?: number | undefined },
    idem: IdempotencyInput,
    actor?: Actor,
  ): Promise<Reply<HoldReply>> {
    return this.viaPool(
      teamId,
      idem,
      (pool, poolTeamId, member) => pool.memberExtendHold(poolTeamId, member, holdId, change, idem, actor),
      async (poolShared) => {
        const reply = await this.mutateAs(teamId, idem, actor, poolShared, (tx) => this.extendOp(tx, holdId, change));
        // A new deadline may come sooner than the alarm (ttlSeconds counts from now): keep it on time.
        if (reply.ok) await this.alarms.schedule(Date.parse(reply.body.hold.expiresAt));
        return reply;
      },
    );
  }

  /**
   * In the agency's object: a subaccount's hold on the pool extended. A later deadline needs
   * nothing more; more credits draw from the pool, so they need sharing on (and the caps' room).
   */
  async memberExtendHold(
    poolTeamId: string,
    member: MemberCall,
    holdId: string,
    change: { amount?: number | undefined; ttlSeconds?: number | undefined },
    idem: IdempotencyInput,
    actor?: Actor,
  ): Promise<Reply<HoldReply | OwnBalance>> {
    const reply = await this.asPool(poolTeamId, member, idem, actor, holdId, (tx) => {
      if ((change.amount ?? 0) > 0 && !tx.team.settings.shareCreditsWithSubaccounts)
        return failure("forbidden", "the agency no longer shares its credits: a hold on its pool cannot grow", {
          reason: "sharing_off",
        });
      return this.extendOp(tx, holdId, change);
    });
    if (reply.ok && !isOwnBalance(reply.body)) await this.alarms.schedule(Date.parse(reply.body.hold.expiresAt));
    return reply;
  }

  private extendOp(
    tx: LedgerTx,
    holdId: string,
    change: { amount?: number | undefined; ttlSeconds?: number | undefined },
  ): Outcome<HoldReply> {
    const h = tx.store.holds.get(holdId);
    const extra = change.amount ?? 0;
    const capped = h && h.status === "pending" && extra > 0 ? capCheck(tx, h, extra) : null;
    return capped ?? extendHold(tx, holdId, change.amount, change.ttlSeconds);
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
  async paymentOptions(teamId: string, question: PaymentQuestion): Promise<Reply<PaymentOptions>> {
    const poolShared = await this.poolSharedWithMe(teamId);
    return this.read(teamId, (tx) => paymentOptions(tx, this.payments, { ...question, poolShared }));
  }

  /**
   * Pays an invoice or a service with credits: the spend and the payment's row, all or nothing.
   * A subaccount pays from its own credits; its manager may pay only while its agency shares.
   */
  async payWithCredits(teamId: string, input: PaymentInput, idem: IdempotencyInput): Promise<Reply<PaymentReply>> {
    const poolShared = await this.poolSharedWithMe(teamId);
    return this.mutate(teamId, idem, (tx) => payWithCredits(tx, this.payments, { ...input, poolShared }));
  }

  /** For a subaccount: whether its agency shares its pool with it now (asked of the agency's object). */
  private async poolSharedWithMe(teamId: string): Promise<boolean> {
    const team = this.team;
    if (!team || team.id !== teamId || team.kind !== "subaccount" || team.parentTeamId === null) return false;
    const reply = await teamObject(this.env, team.parentTeamId).poolSharing(team.parentTeamId, teamId);
    return reply.ok && reply.body.shared;
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
    await this.alarms.run(this.team, { d1: this.d1, queue: this.historyQueue }, async () => {
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

  /**
   * A mutation that uses the team's credits for a person: the role matrix (domain/roles.ts)
   * decides first, in the same transaction, and its refusal is saved under the key like any other.
   * `poolShared`: the agency's pool is shared with this subaccount now.
   */
  private mutateAs<T>(
    teamId: string,
    idem: IdempotencyInput,
    actor: Actor | undefined,
    poolShared: boolean,
    op: (tx: LedgerTx) => Outcome<T>,
  ): Promise<Reply<T>> {
    return this.mutate(teamId, idem, (tx) => spendingRefusal(tx.team, actor, poolShared) ?? op(tx));
  }

  // ---- API keys bound to the team ---------------------------------------------------------------

  /**
   * Told by DELETE /v1/api-keys/{id} before the key directory revokes a key bound to this team:
   * from now on every mutation with it is refused here, whatever the isolates' copies still say.
   */
  revokeKey(teamId: string, keyId: string): Reply<{ keyId: string }> {
    if (this.team && this.team.id !== teamId) throw new Error("team object addressed by another team id");
    this.store.transaction(() => this.store.revokeKey(keyId, Date.now()));
    this.revokedKeys.add(keyId);
    return { ok: true, status: 200, body: { keyId }, replayed: false };
  }

  /** 401 for a key bound to this team and revoked (never saved under the Idempotency-Key). */
  private keyRefusal(idem: IdempotencyInput): Failure | null {
    if (idem.keyId === undefined || !this.revokedKeys.has(idem.keyId)) return null;
    return failure("unauthorized", "the API key was revoked");
  }

  // ---- agency pools (domain/pools.ts) ----------------------------------------------------------

  /**
   * A subaccount's request: its agency's object answers it from the pool, or says to use the
   * subaccount's own balance (`own`, told that the pool is not shared with it). Every other team
   * answers from its own credits, with no call to another object.
   */
  private async viaPool<T>(
    teamId: string,
    idem: IdempotencyInput | null,
    pooled: (
      pool: DurableObjectStub<TeamLedger>,
      poolTeamId: string,
      member: MemberCall,
    ) => Promise<Reply<T | OwnBalance>>,
    own: (poolShared: boolean) => Promise<Reply<T>>,
  ): Promise<Reply<T>> {
    const team = this.requireTeam(teamId);
    if ("ok" in team) return team;
    const revoked = idem && this.keyRefusal(idem);
    if (revoked) return revoked;
    if (team.kind !== "subaccount" || team.parentTeamId === null) return own(false);
    const poolTeamId = team.parentTeamId;
    const reply = await pooled(teamObject(this.env, poolTeamId), poolTeamId, {
      teamId,
      roleMatrix: team.settings.roleMatrix,
    });
    if (reply.ok && isOwnBalance(reply.body)) return own(reply.body.poolShared === true);
    return asMember(reply as Reply<T>, teamId);
  }

  /**
   * In the agency's object, a subaccount's mutation under the pool's record of its key
   * (domain/pools.ts memberKey): the first answer decides, once, whether the pool takes it. A new
   * charge (`holdId` null) is the pool's while the agency shares with the subaccount; an action on
   * a hold is the pool's when the hold is (whatever sharing is now). Otherwise the saved answer is
   * OWN_BALANCE and the subaccount's object runs the request on its own credits.
   */
  private asPool<T>(
    poolTeamId: string,
    member: MemberCall,
    idem: IdempotencyInput,
    actor: Actor | undefined,
    holdId: string | null,
    op: (tx: LedgerTx) => Outcome<T>,
  ): Promise<Reply<T | OwnBalance>> {
    return this.mutate<T | OwnBalance>(poolTeamId, { ...idem, key: memberKey(member.teamId, idem.key) }, (tx) => {
      // Saved under the key with the rest: a retry runs the subaccount's own path as the first did.
      const shared = this.sharesWith(tx.team, member.teamId);
      const own: Outcome<OwnBalance> = {
        ok: true,
        status: 200,
        body: shared ? { ...OWN_BALANCE, poolShared: true } : OWN_BALANCE,
      };
      const ours =
        holdId === null
          ? shared
          : tx.store.holds.get(holdId)?.memberTeamId === member.teamId && this.isMember(tx.team, member.teamId);
      if (!ours) return own;
      const asSubaccount = { kind: "subaccount" as const, settings: { roleMatrix: member.roleMatrix } };
      return spendingRefusal(asSubaccount, actor, true) ?? op(tx);
    });
  }

  /** Whether this agency has the subaccount. */
  private isMember(team: Team, memberTeamId: string): boolean {
    return team.kind === "agency" && this.store.pools.member(memberTeamId) !== null;
  }

  /** Whether this agency shares its pool with the subaccount now. */
  private sharesWith(team: Team, memberTeamId: string): boolean {
    return team.settings.shareCreditsWithSubaccounts && this.isMember(team, memberTeamId);
  }

  /**
   * In the agency's object: a new subaccount joins the pool (once; again changes nothing), and
   * its cap is set when one is given (null: none). The parent must be an agency with room.
   */
  admitMember(
    poolTeamId: string,
    memberTeamId: string,
    capCredits: number | null | undefined,
  ): Reply<{ teamId: string; capCreditsPerPeriod: number | null }> {
    const notAgency = failure("invalid_request", `parentTeamId: ${poolTeamId} is not an agency`);
    const team = this.team;
    if (!team || team.id !== poolTeamId || team.kind !== "agency") return notAgency;
    return this.store.transaction(() => {
      const known = this.store.pools.member(memberTeamId);
      if (!known && this.store.pools.memberCount() >= MAX_SUBACCOUNTS_PER_AGENCY)
        return failure("conflict", `an agency has at most ${MAX_SUBACCOUNTS_PER_AGENCY} subaccounts`, {
          reason: "too_many_subaccounts",
        });
      this.store.pools.admit(memberTeamId, Date.now());
      if (capCredits !== undefined) this.store.pools.setSubaccountCap(memberTeamId, capCredits);
      const capCreditsPerPeriod = this.store.pools.member(memberTeamId)?.capCredits ?? null;
      return { ok: true, status: 200, body: { teamId: memberTeamId, capCreditsPerPeriod }, replayed: false };
    });
  }

  /** An agency member's cap on pooled credits a period (null removes it), with what it used. */
  setMemberCap(poolTeamId: string, actorId: string, capCredits: number | null): Reply<CapView | null> {
    const team = this.requireTeam(poolTeamId);
    if ("ok" in team) return team;
    if (team.kind !== "agency")
      return failure("conflict", "only an agency caps its members' pooled credits", { reason: "not_agency" });
    const nowMs = Date.now();
    return this.store.transaction(() => {
      if (
        capCredits !== null &&
        !this.store.pools.memberCap(actorId) &&
        this.store.pools.memberCapCount() >= MAX_MEMBER_CAPS
      )
        return failure("conflict", `an agency caps at most ${MAX_MEMBER_CAPS} members`, { reason: "too_many_caps" });
      this.store.pools.setMemberCap(actorId, capCredits, nowMs);
      const tx = new LedgerTx(this.store, team, nowMs);
      const view = capStandings(tx, { actor: actorId }).map(capView)[0] ?? null;
      return { ok: true, status: 200, body: view, replayed: false };
    });
  }

  /** The agency's subaccounts in id order after `afterTeamId`, each with its cap as it stands. */
  listSubaccounts(
    poolTeamId: string,
    afterTeamId: string,
    limit: number,
  ): Reply<{ subaccounts: { teamId: string; joinedAt: string; cap: CapView | null }[]; nextAfter: string | null }> {
    return this.read(poolTeamId, (tx) => {
      const rows = this.store.pools.members(afterTeamId, limit + 1);
      const page = rows.slice(0, limit);
      const subaccounts = page.map((m) => ({
        teamId: m.teamId,
        joinedAt: iso(m.joinedAtMs),
        cap: capStandings(tx, { memberTeamId: m.teamId }).map(capView)[0] ?? null,
      }));
      return { subaccounts, nextAfter: rows.length > limit ? (page.at(-1)?.teamId ?? null) : null };
    });
  }

  /** The agency members' caps in actor order after `afterActorId`, each with what it used this period. */
  listMemberCaps(
    poolTeamId: string,
    afterActorId: string,
    limit: number,
  ): Reply<{ caps: CapView[]; nextAfter: string | null }> {
    return this.read(poolTeamId, (tx) => {
      const rows = this.store.pools.memberCaps(afterActorId, limit + 1);
      const page = rows.slice(0, limit);
      const caps = page.flatMap((r) => capStandings(tx, { actor: r.actorId }).map(capView));
      return { caps, nextAfter: rows.length > limit ? (page.at(-1)?.actorId ?? null) : null };
    });
  }

  /** Runs one mutation once per Idempotency-Key (idempotent.ts), then keeps the alarm on time. */
  private async mutate<T>(teamId: string, idem: IdempotencyInput, op: (tx: LedgerTx) => Outcome<T>): Promise<Reply<T>> {
    const team = this.requireTeam(teamId);
    if ("ok" in team) return team;
    const revoked = this.keyRefusal(idem);
    if (revoked) return revoked;
    const nowMs = Date.now();
    const { reply, wroteEntries, saved } = mutateOnce(this.store, team, nowMs, idem, op);
    if (wroteEntries || saved) await this.alarms.afterWrite(nowMs);
    return reply;
  }
}
