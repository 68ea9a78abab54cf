/**
 * TeamLedger: the Durable Object that owns one team's credits. It is the only writer of the
 * team's state; the worker reaches it through the typed RPC methods below. Every mutation runs
 * in one transactionSync together with its entries and its idempotency record, so a request that
 * got an answer is durable and a request that failed wrote nothing. The alarm expires grants and
 * holds on time, purges old idempotency records and delivers the outbox to D1.
 */
import { DurableObject } from "cloudflare:workers";
import { type Failure, failure } from "../errors";
import { IDEMPOTENCY_PURGE_BATCH, IDEMPOTENCY_RETENTION_SECONDS, OUTBOX_FLUSH_DELAY_MS, SETTLE_BATCH } from "../limits";
import { entryFromFields, fieldsOfObjectRow } from "./entry-fields";
import {
  type BatchReply,
  type GrantReply,
  type HoldReply,
  LedgerTx,
  publicGrant,
  publicHold,
  type Result,
  type SpendReply,
} from "./ledger-core";
import { flushOutbox, type OutboxState, outboxState } from "./outbox";
import { migrate } from "./schema";
import { iso, LedgerStore } from "./store";
import type {
  Balance,
  BatchMode,
  ChainHead,
  ChargeInput,
  Entry,
  EntryFilter,
  GrantInput,
  Hold,
  HoldInput,
  IdempotencyInput,
  ReconcileSnapshot,
  Reply,
  Team,
  TeamInput,
} from "./types";

const TEAM_KEY = "team";

/** Thrown inside a transaction to roll it back while carrying the failure out. */
class Rollback extends Error {
  constructor(readonly failure: Failure) {
    super(failure.detail);
  }
}

export class TeamLedger extends DurableObject<Cloudflare.Env> {
  private readonly store: LedgerStore;
  private team: Team | null;
  /** When the alarm is set for; null when none is. Mirrors storage, which is the truth. */
  private alarmAtMs: number | null = null;
  /** The D1 database the outbox writes to. A property so fault-injection tests can wrap it. */
  d1: D1Database;

  constructor(ctx: DurableObjectState, env: Cloudflare.Env) {
    super(ctx, env);
    this.d1 = env.DB;
    this.store = new LedgerStore(ctx.storage.sql);
    ctx.storage.transactionSync(() => migrate(ctx.storage.sql));
    this.store.reloadSeq();
    const doc = this.store.getMeta(TEAM_KEY);
    this.team = doc ? (JSON.parse(doc) as Team) : null;
    if (this.team) this.store.bindTeam(this.team.id);
    ctx.blockConcurrencyWhile(async () => {
      this.alarmAtMs = await ctx.storage.getAlarm();
      // If the alarm was ever lost (its retries exhausted), pending work would wait for the next
      // write; on every start, make sure something that is due has an alarm.
      if (this.alarmAtMs === null) await this.scheduleAlarm(this.nextAlarmMs(null));
    });
  }

  // ---- teams --------------------------------------------------------------------------------

  upsertTeam(teamId: string, input: TeamInput): Reply<Team> {
    const nowMs = Date.now();
    return this.ctx.storage.transactionSync(() => {
      const prev = this.team;
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
      if (prev && prev.id !== teamId) throw new Error("team object addressed by another team id");
      this.store.setMeta(TEAM_KEY, JSON.stringify(team));
      this.store.bindTeam(teamId);
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
    return this.read(teamId, (tx) => ({ ...tx.balance(), grants: this.store.listLiveGrants().map(publicGrant) }));
  }

  getHold(teamId: string, holdId: string): Reply<Hold> {
    const team = this.requireTeam(teamId);
    if ("ok" in team) return team;
    // Settle first so a hold past its deadline reads as expired, not pending.
    const r = this.read(teamId, () => this.store.getHold(holdId));
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
      const rows = this.store.listEntries({ ...filter, afterSeq: deliveredSeq });
      return { deliveredSeq, entries: rows.map((r) => entryFromFields(fieldsOfObjectRow(teamId, r))) };
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
        lastSeq: this.store.lastSeq(),
        deliveredSeq,
        backlog: this.store.entrySums(deliveredSeq),
      };
    });
  }

  /** Replication status, for operators and tests. */
  outbox(): OutboxState {
    return outboxState(this.store);
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
      lastSeq: this.store.lastSeq(),
      deliveredSeq: out.deliveredSeq,
      backlog: out.backlog,
      deliveredHash: out.deliveredSeq > 0 ? this.store.entryHash(out.deliveredSeq) : null,
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
      this.ctx.storage.transactionSync(() => {
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
    return this.mutate(teamId, idem, (tx) => tx.grant(input));
  }

  voidGrant(teamId: string, grantId: string, idem: IdempotencyInput): Promise<Reply<GrantReply>> {
    return this.mutate(teamId, idem, (tx) => tx.voidGrant(grantId));
  }

  spend(teamId: string, input: ChargeInput, idem: IdempotencyInput): Promise<Reply<SpendReply>> {
    return this.mutate(teamId, idem, (tx) => tx.spend(input));
  }

  spendBatch(
    teamId: string,
    items: ChargeInput[],
    mode: BatchMode,
    idem: IdempotencyInput,
  ): Promise<Reply<BatchReply>> {
    return this.mutate(teamId, idem, (tx) => tx.spendBatch(items, mode));
  }

  createHold(teamId: string, input: HoldInput, idem: IdempotencyInput): Promise<Reply<HoldReply>> {
    return this.mutate(teamId, idem, (tx) => tx.createHold(input));
  }

  captureHold(
    teamId: string,
    holdId: string,
    amount: number | undefined,
    idem: IdempotencyInput,
  ): Promise<Reply<HoldReply>> {
    return this.mutate(teamId, idem, (tx) => tx.captureHold(holdId, amount));
  }

  releaseHold(
    teamId: string,
    holdId: string,
    reason: string | undefined,
    idem: IdempotencyInput,
  ): Promise<Reply<HoldReply>> {
    return this.mutate(teamId, idem, (tx) => tx.releaseHold(holdId, reason));
  }

  async extendHold(
    teamId: string,
    holdId: string,
    change: { amount?: number | undefined; ttlSeconds?: number | undefined },
    idem: IdempotencyInput,
  ): Promise<Reply<HoldReply>> {
    const reply = await this.mutate(teamId, idem, (tx) => tx.extendHold(holdId, change.amount, change.ttlSeconds));
    // A new deadline may come sooner than the alarm (ttlSeconds counts from now): keep it on time.
    if (reply.ok) await this.scheduleAlarm(Date.parse(reply.body.hold.expiresAt));
    return reply;
  }

  // ---- the alarm ----------------------------------------------------------------------------

  override async alarm(): Promise<void> {
    this.alarmAtMs = null;
    const nowMs = Date.now();
    let settledAll = true;
    if (this.team) {
      const team = this.team;
      try {
        settledAll = this.ctx.storage.transactionSync(() => new LedgerTx(this.store, team, nowMs).settle(SETTLE_BATCH));
      } catch (err) {
        this.store.reloadSeq();
        throw err;
      }
    }
    const purged = this.store.purgeIdempotency(nowMs - IDEMPOTENCY_RETENTION_SECONDS * 1000, IDEMPOTENCY_PURGE_BATCH);
    let retryAtMs: number | null = null;
    const outbox = outboxState(this.store);
    // An alarm that fired for an expiry while D1 is backed off leaves D1 alone until the retry time.
    if (this.team && outbox.backlog > 0 && outbox.nextAttemptAtMs <= nowMs) {
      const flushed = await flushOutbox(this.store, this.d1);
      if (!flushed.ok) retryAtMs = flushed.retryAtMs;
      else if (flushed.backlog > 0) retryAtMs = Date.now();
    }
    const more = !settledAll || purged === IDEMPOTENCY_PURGE_BATCH;
    await this.scheduleAlarm(this.nextAlarmMs(more ? Date.now() : retryAtMs));
  }

  /** When the alarm must next run, from what storage says is pending. */
  private nextAlarmMs(extra: number | null): number | null {
    const candidates: number[] = [];
    if (extra !== null) candidates.push(extra);
    const out = outboxState(this.store);
    if (out.backlog > 0) candidates.push(Math.max(out.nextAttemptAtMs, Date.now() + OUTBOX_FLUSH_DELAY_MS));
    const due = this.store.nextDueTimes();
    if (due.grantExpiryMs !== null) candidates.push(due.grantExpiryMs);
    if (due.holdExpiryMs !== null) candidates.push(due.holdExpiryMs);
    if (due.oldestIdempotencyMs !== null)
      candidates.push(due.oldestIdempotencyMs + IDEMPOTENCY_RETENTION_SECONDS * 1000);
    return candidates.length > 0 ? Math.min(...candidates) : null;
  }

  /** Moves the alarm earlier when needed; never later (the alarm itself reschedules). */
  private async scheduleAlarm(atMs: number | null): Promise<void> {
    if (atMs === null) return;
    if (this.alarmAtMs !== null && this.alarmAtMs <= atMs) return;
    this.alarmAtMs = atMs;
    await this.ctx.storage.setAlarm(atMs);
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
    try {
      const body = this.ctx.storage.transactionSync(() => {
        const tx = new LedgerTx(this.store, team, nowMs);
        tx.settle();
        return fn(tx);
      });
      return { ok: true, status: 200, body, replayed: false };
    } catch (err) {
      this.store.reloadSeq();
      throw err;
    }
  }

  /**
   * Runs one mutation: settle what is due, answer a replay from the idempotency record, or apply
   * the operation and store its reply under the key, all in one transaction.
   */
  private async mutate<T>(teamId: string, idem: IdempotencyInput, op: (tx: LedgerTx) => Result<T>): Promise<Reply<T>> {
    const team = this.requireTeam(teamId);
    if ("ok" in team) return team;
    const nowMs = Date.now();
    let wroteEntries = false;
    let reply: Reply<T>;
    try {
      reply = this.ctx.storage.transactionSync((): Reply<T> => {
        const tx = new LedgerTx(this.store, team, nowMs, idem.key);
        tx.settle();
        const seen = tx.seen;
        if (seen) {
          if (seen.fingerprint !== idem.fingerprint)
            throw new Rollback(
              failure("idempotency_key_reused", "this Idempotency-Key was used with a different request"),
            );
          wroteEntries = tx.written.length > 0;
          return { ok: true, status: seen.status as 200 | 201, body: JSON.parse(seen.body) as T, replayed: true };
        }
        const result = op(tx);
        // A rejected operation writes nothing: not even the expirations settled above, which the
        // next call or the alarm settles again.
        if (!result.ok) throw new Rollback(result);
        this.store.putIdempotency(idem.key, idem.fingerprint, result.status, JSON.stringify(result.body), nowMs);
        wroteEntries = tx.written.length > 0;
        return { ...result, replayed: false };
      });
    } catch (err) {
      this.store.reloadSeq();
      if (err instanceof Rollback) return err.failure;
      throw err;
    }
    // The alarm delivers the new entries and expires what this operation may have created. On
    // the hot path an alarm is already due sooner than anything new, so this costs no query.
    if (wroteEntries && (this.alarmAtMs === null || this.alarmAtMs > nowMs + OUTBOX_FLUSH_DELAY_MS)) {
      await this.scheduleAlarm(this.nextAlarmMs(null));
    }
    return reply;
  }
}
