/**
 * TeamLedger: the Durable Object that owns one team's credits (or, later, an agency's pool). It is
 * the only writer of that state; the worker reaches it through the typed RPC methods below, each
 * a thin call into the operations (grants.ts, spends.ts, holds.ts) run once per Idempotency-Key
 * (idempotent.ts) in one transaction (store.ts). Reads settle what is due first (settlement.ts).
 * The alarm (alarm.ts) expires on time, purges idempotency records and delivers the outbox to D1.
 */
import { DurableObject } from "cloudflare:workers";
import { entryFromFields } from "../domain/entry";
import { type Failure, failure } from "../domain/failure";
import type {
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
  HoldInput,
  HoldReply,
  IdempotencyInput,
  Outcome,
  ReconcileSnapshot,
  Reply,
  SpendReply,
  Team,
  TeamInput,
} from "../domain/vocabulary";
import { AlarmSchedule } from "./alarm";
import { publicGrant } from "./grant-store";
import { grant, voidGrant } from "./grants";
import { publicHold } from "./hold-store";
import { captureHold, createHold, extendHold, releaseHold } from "./holds";
import { mutateOnce } from "./idempotent";
import { LedgerTx } from "./ledger-tx";
import { type OutboxState, outboxState } from "./outbox";
import { settle } from "./settlement";
import { spend, spendBatch } from "./spends";
import { LedgerStore } from "./store";
import { iso } from "./time";

const TEAM_KEY = "team";

export class TeamLedger extends DurableObject<Cloudflare.Env> {
  private readonly store: LedgerStore;
  private readonly alarms: AlarmSchedule;
  private team: Team | null;
  /** The D1 database the outbox writes to. A property so fault-injection tests can wrap it. */
  d1: D1Database;

  constructor(ctx: DurableObjectState, env: Cloudflare.Env) {
    super(ctx, env);
    this.d1 = env.DB;
    this.store = new LedgerStore(ctx.storage);
    this.alarms = new AlarmSchedule(ctx.storage, this.store);
    const doc = this.store.getMeta(TEAM_KEY);
    this.team = doc ? (JSON.parse(doc) as Team) : null;
    if (this.team) this.store.entries.bindTeam(this.team.id);
    ctx.blockConcurrencyWhile(() => this.alarms.load());
  }

  // ---- teams --------------------------------------------------------------------------------

  upsertTeam(teamId: string, input: TeamInput): Reply<Team> {
    const nowMs = Date.now();
    return this.store.transaction(() => {
      const prev = this.team;
      if (prev && prev.id !== teamId) throw new Error("team object addressed by another team id");
      const settings = {
        shareCreditsWithSubaccounts: false,
        creditPaymentsEnabled: true,
        lowBalanceThreshold: 0,
        ...prev?.settings,
      };
      for (const [k, v] of Object.entries(input.settings ?? {}))
        if (v !== undefined) Object.assign(settings, { [k]: v });
      const team: Team = {
        id: teamId,
        name: input.name ?? prev?.name ?? null,
        planId: input.planId ?? prev?.planId ?? null,
        seats: input.seats ?? prev?.seats ?? 1,
        kind: input.kind ?? prev?.kind ?? "team",
        parentTeamId: input.parentTeamId ?? prev?.parentTeamId ?? null,
        settings,
        createdAt: prev?.createdAt ?? iso(nowMs),
        updatedAt: iso(nowMs),
      };
      this.store.setMeta(TEAM_KEY, JSON.stringify(team));
      this.store.entries.bindTeam(teamId);
      this.team = team;
      return { ok: true, status: prev ? 200 : 201, body: team, replayed: false };
    });
  }

  getTeam(teamId: string): Reply<Team> {
    const team = this.requireTeam(teamId);
    if ("ok" in team) return team;
    return { ok: true, status: 200, body: team, replayed: false };
  }

  // ---- reads --------------------------------------------------------------------------------

  getBalance(teamId: string): Reply<Balance> {
    return this.read(teamId, (tx) => ({ ...tx.balance(), grants: this.store.grants.listLive().map(publicGrant) }));
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

  spend(teamId: string, input: ChargeInput, idem: IdempotencyInput): Promise<Reply<SpendReply>> {
    return this.mutate(teamId, idem, (tx) => spend(tx, input));
  }

  spendBatch(
    teamId: string,
    items: ChargeInput[],
    mode: BatchMode,
    idem: IdempotencyInput,
  ): Promise<Reply<BatchReply>> {
    return this.mutate(teamId, idem, (tx) => spendBatch(tx, items, mode));
  }

  createHold(teamId: string, input: HoldInput, idem: IdempotencyInput): Promise<Reply<HoldReply>> {
    return this.mutate(teamId, idem, (tx) => createHold(tx, input));
  }

  captureHold(
    teamId: string,
    holdId: string,
    amount: number | undefined,
    idem: IdempotencyInput,
  ): Promise<Reply<HoldReply>> {
    return this.mutate(teamId, idem, (tx) => captureHold(tx, holdId, amount));
  }

  releaseHold(
    teamId: string,
    holdId: string,
    reason: string | undefined,
    idem: IdempotencyInput,
  ): Promise<Reply<HoldReply>> {
    return this.mutate(teamId, idem, (tx) => releaseHold(tx, holdId, reason));
  }

  async extendHold(
    teamId: string,
    holdId: string,
    change: { amount?: number | undefined; ttlSeconds?: number | undefined },
    idem: IdempotencyInput,
  ): Promise<Reply<HoldReply>> {
    const reply = await this.mutate(teamId, idem, (tx) => extendHold(tx, holdId, change.amount, change.ttlSeconds));
    // A new deadline may come sooner than the alarm (ttlSeconds counts from now): keep it on time.
    if (reply.ok) await this.alarms.schedule(Date.parse(reply.body.hold.expiresAt));
    return reply;
  }

  // ---- the alarm ----------------------------------------------------------------------------

  override async alarm(): Promise<void> {
    await this.alarms.run(this.team, this.d1);
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
    const body = this.store.transaction(() => {
      const tx = new LedgerTx(this.store, team, nowMs);
      settle(tx);
      return fn(tx);
    });
    return { ok: true, status: 200, body, replayed: false };
  }

  /** Runs one mutation once per Idempotency-Key (idempotent.ts), then keeps the alarm on time. */
  private async mutate<T>(teamId: string, idem: IdempotencyInput, op: (tx: LedgerTx) => Outcome<T>): Promise<Reply<T>> {
    const team = this.requireTeam(teamId);
    if ("ok" in team) return team;
    const nowMs = Date.now();
    const { reply, wroteEntries, saved } = mutateOnce(this.store, team, nowMs, idem, op);
    if (wroteEntries || saved) await this.alarms.afterWrite(nowMs);
    return reply;
  }
}
