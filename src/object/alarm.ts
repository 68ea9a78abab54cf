/**
 * The team object's alarm: one per object, set for the soonest thing due (a grant expiry, a hold
 * deadline, a monthly period's start, the oldest idempotency record's purge, or the next delivery
 * of an outbox: entries to the history queue or D1, events to webhook endpoints, messages to other
 * teams), never later. A run settles what is due, purges old idempotency records and sends the
 * outbox (outbox.ts), each bounded (limits.ts), and sets the next alarm from what storage says is
 * still pending.
 */
import type { Team } from "../domain/vocabulary";
import type { HistoryMessage } from "../history-queue/message";
import { IDEMPOTENCY_PURGE_BATCH, IDEMPOTENCY_RETENTION_SECONDS, OUTBOX_FLUSH_DELAY_MS, SETTLE_BATCH } from "../limits";
import { eventsState } from "./events";
import { LedgerTx } from "./ledger-tx";
import { checkDelivered, flushOutbox, keepHeard, outboxState, sendOutbox } from "./outbox";
import { settle } from "./settlement";
import type { LedgerStore } from "./store";

/**
 * Where the team's history goes: the queue when one is bound (the default), else straight to D1
 * (HISTORY_DELIVERY=direct). D1 is still read on the queue path, when D1's word is overdue.
 */
export interface HistoryTarget {
  d1: D1Database | null;
  queue: Queue<HistoryMessage> | null;
}

export class AlarmSchedule {
  /** When the alarm is set for; null when none is. Mirrors storage, which is the truth. */
  private atMs: number | null = null;
  /** Whether a run is in flight: it sets the next alarm from storage when it ends (see afterWrite). */
  private running = false;

  constructor(
    private readonly storage: DurableObjectStorage,
    private readonly store: LedgerStore,
  ) {}

  /** At the object's start: read the stored alarm, and set one if something is due without one. */
  async load(): Promise<void> {
    this.atMs = await this.storage.getAlarm();
    // If the alarm was ever lost (its retries exhausted), or set later for a word from D1 that the
    // object's memory then lost (outbox.ts), pending work would wait; on every start, make sure
    // what is due has an alarm no later than it.
    await this.schedule(this.nextMs(null));
  }

  /**
   * After a mutation: the alarm must deliver new entries and expire what the mutation created. On
   * the hot path an alarm is already due sooner than anything new, so this costs no query.
   */
  async afterWrite(nowMs: number): Promise<void> {
    // A run in flight (awaiting the queue or D1) reads what is pending from storage when it ends,
    // this write included; a run that throws is retried by the runtime, and a restart's load()
    // sets the alarm again. So a spend during a run costs no query here (the profile's 2.4%).
    if (this.running) return;
    if (this.atMs === null || this.atMs > nowMs + OUTBOX_FLUSH_DELAY_MS) await this.schedule(this.nextMs(null));
  }

  /**
   * Sets the alarm from what storage says is pending, later too: after D1's word made the check of
   * its mark moot, the alarm goes back to the next real deadline (or none). Lost in a crash, the
   * earlier alarm stays: it runs, finds nothing due, and reschedules.
   */
  async refresh(): Promise<void> {
    const atMs = this.nextMs(null);
    if (atMs === this.atMs) return;
    this.atMs = atMs;
    if (atMs === null) await this.storage.deleteAlarm();
    else await this.storage.setAlarm(atMs);
  }

  /** Moves the alarm earlier when needed; never later (the alarm itself reschedules). */
  async schedule(atMs: number | null): Promise<void> {
    if (atMs === null) return;
    if (this.atMs !== null && this.atMs <= atMs) return;
    this.atMs = atMs;
    await this.storage.setAlarm(atMs);
  }

  /**
   * One alarm run. `deliver` sends the team's other outboxes (events to webhook endpoints,
   * messages to other teams) and says when it needs to run again (null: nothing waiting).
   */
  async run(team: Team | null, history: HistoryTarget, deliver?: () => Promise<number | null>): Promise<void> {
    this.running = true;
    try {
      await this.runOnce(team, history, deliver);
    } finally {
      this.running = false;
    }
  }

  private async runOnce(
    team: Team | null,
    history: HistoryTarget,
    deliver?: () => Promise<number | null>,
  ): Promise<void> {
    const { d1, queue } = history;
    this.atMs = null;
    const nowMs = Date.now();
    let settledAll = true;
    if (team)
      settledAll = this.store.transaction(() => {
        const tx = new LedgerTx(this.store, team, nowMs);
        const all = settle(tx, SETTLE_BATCH);
        tx.watchBalance();
        return all;
      });
    const purged = this.store.purgeReplies(nowMs - IDEMPOTENCY_RETENTION_SECONDS * 1000, IDEMPOTENCY_PURGE_BATCH);
    let retryAtMs: number | null = null;
    const outbox = outboxState(this.store);
    // An alarm that fired for an expiry while the outbox is backed off leaves it alone until the
    // retry time. No database for the team's jurisdiction: the entries wait in the object (never
    // elsewhere), and the queue is not used either, since its consumer could not land them.
    if (team && d1 === null && outbox.backlog > 0)
      console.error(JSON.stringify({ teamId: team.id, history: "no D1 database for its jurisdiction" }));
    if (team && d1 && queue) {
      this.store.transaction(() => keepHeard(this.store));
      await checkDelivered(this.store, d1, team.id);
    }
    const due = outboxState(this.store);
    if (team && d1 && due.unsent > 0 && due.nextAttemptAtMs <= nowMs) {
      const flushed = queue ? await sendOutbox(this.store, queue, team.id) : await flushOutbox(this.store, d1, team.id);
      if (!flushed.ok) retryAtMs = flushed.retryAtMs;
      else if (outboxState(this.store).unsent > 0) retryAtMs = Date.now();
    }
    if (team && deliver) {
      const again = await deliver();
      if (again !== null) retryAtMs = retryAtMs === null ? again : Math.min(retryAtMs, again);
    }
    const more = !settledAll || purged === IDEMPOTENCY_PURGE_BATCH;
    // From here writes schedule for themselves again: nextMs reads storage now, and a write that
    // lands while setAlarm is awaited finds `atMs` already set and moves it earlier if it must.
    this.running = false;
    await this.schedule(this.nextMs(more ? Date.now() : retryAtMs));
  }

  /** When the alarm must next run, from what storage says is pending. */
  private nextMs(extra: number | null): number | null {
    const candidates: number[] = [];
    if (extra !== null) candidates.push(extra);
    const out = outboxState(this.store);
    if (out.unsent > 0) candidates.push(Math.max(out.nextAttemptAtMs, Date.now() + OUTBOX_FLUSH_DELAY_MS));
    // Sent but not confirmed: the check of D1's own mark, in case no word comes.
    if (out.confirmDueAtMs > 0) candidates.push(out.confirmDueAtMs);
    const due = this.store.nextDueTimes();
    if (due.grantExpiryMs !== null) candidates.push(due.grantExpiryMs);
    if (due.holdExpiryMs !== null) candidates.push(due.holdExpiryMs);
    if (due.oldestReplyMs !== null) candidates.push(due.oldestReplyMs + IDEMPOTENCY_RETENTION_SECONDS * 1000);
    if (due.periodStartMs !== null) candidates.push(due.periodStartMs);
    const events = eventsState(this.store);
    if (events.handedSeq < events.lastSeq)
      candidates.push(Math.max(events.nextAttemptAtMs, Date.now() + OUTBOX_FLUSH_DELAY_MS));
    const recharge = this.store.recharges.nextAttemptMs();
    if (recharge !== null) candidates.push(recharge);
    const message = this.store.messages.nextAttemptMs();
    if (message !== null) candidates.push(Math.max(message, Date.now() + OUTBOX_FLUSH_DELAY_MS));
    return candidates.length > 0 ? Math.min(...candidates) : null;
  }
}
