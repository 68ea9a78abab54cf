/**
 * The outbox: every entry the team object commits reaches D1, at least once, oldest first, and
 * D1's primary key makes that exactly once. The object's entries table is the outbox itself, so a
 * spend writes nothing extra for replication and a slow or failing D1 or queue never blocks one.
 *
 * Two marks, in the object's meta:
 * - `outbox.sent`: how far the alarm has handed entries on (to the history queue; on the direct
 *   path, to D1 itself, where sending and landing are one step);
 * - `outbox.delivered`: how far D1 holds every entry (its contiguous mark, db/schema.ts
 *   history_marks), as the queue's consumer tells the object after each landing (`hearDelivered`:
 *   kept in memory, and stored by the next alarm run, so telling a hundred objects costs the
 *   consumer no hundred commits; lost with the object's memory, the mark is only lower, which is
 *   safe, and the check of D1's own mark restores it), or as the object reads it from D1 when no
 *   word came for a long time.
 * delivered <= sent <= lastSeq. History pages and reconciliation trust `delivered` only: an entry
 * sent but not landed is still read from the object, so a lagging queue shows no gap.
 */
import { deliverTeamRows, historyMarkOf } from "../db/history";
import { type HistoryMessage, messageBytes, rowBytes } from "../history-queue/message";
import {
  HISTORY_CONFIRM_AFTER_MS,
  HISTORY_CONFIRM_MAX_MS,
  HISTORY_MESSAGE_MAX_BYTES,
  HISTORY_MESSAGES_PER_SEND,
  HISTORY_ROWS_PER_MESSAGE,
  HISTORY_SEND_MAX_BYTES,
  HISTORY_SEND_TIMEOUT_MS,
  HISTORY_SENDS_PER_ALARM,
  OUTBOX_BACKOFF_BASE_MS,
  OUTBOX_BACKOFF_MAX_MS,
  OUTBOX_BATCHES_PER_ALARM,
  OUTBOX_D1_TIMEOUT_MS,
  OUTBOX_ROWS_PER_D1_BATCH,
} from "../limits";
import type { LedgerStore } from "./store";

const DELIVERED = "outbox.delivered";
const SENT = "outbox.sent";
/** Since when sent entries have waited for D1 without progress (absent: nothing waits). */
const WAITING = "outbox.waitingSince";
/** Checks of D1's mark that found nothing new since the last progress: each doubles the wait. */
const CHECKS = "outbox.confirmChecks";
const ATTEMPTS = "outbox.attempts";
const NEXT_ATTEMPT = "outbox.nextAttemptAt";
const LAST_ERROR = "outbox.lastError";

export interface OutboxState {
  /** Every entry up to this seq is in D1. */
  deliveredSeq: number;
  /** Every entry up to this seq has been handed on (queue or D1); deliveredSeq <= sentSeq. */
  sentSeq: number;
  /** Entries committed but not yet in D1: lastSeq − deliveredSeq. */
  backlog: number;
  /** Entries not handed on yet: lastSeq − sentSeq. */
  unsent: number;
  failedAttempts: number;
  nextAttemptAtMs: number;
  lastError: string | null;
  /** When the object checks D1's mark itself if no word comes first (0: nothing waits). */
  confirmDueAtMs: number;
}

function num(meta: Map<string, string>, key: string): number {
  return Number(meta.get(key) ?? "0");
}

/** D1's word as the consumer told it, per object (the store), since the object started. */
const heard = new WeakMap<LedgerStore, number>();

/** Stores the mark heard from the consumer (the alarm does, in the writes it makes anyway). */
export function keepHeard(store: LedgerStore): void {
  const mark = heard.get(store) ?? 0;
  if (mark > Number(store.getMeta(DELIVERED) ?? "0")) store.setMeta(DELIVERED, String(mark));
}

/** The consumer's word: D1 holds every entry up to `seq`. Only moves forward; returns the new mark or null. */
export function hearDelivered(store: LedgerStore, seq: number): number | null {
  const mark = Math.min(seq, store.entries.lastSeq());
  if (mark <= outboxState(store).deliveredSeq) return null;
  heard.set(store, mark);
  return mark;
}

export function outboxState(store: LedgerStore): OutboxState {
  const meta = store.getMetas([DELIVERED, SENT, WAITING, CHECKS, ATTEMPTS, NEXT_ATTEMPT, LAST_ERROR]);
  const deliveredSeq = Math.min(Math.max(num(meta, DELIVERED), heard.get(store) ?? 0), store.entries.lastSeq());
  const sentSeq = Math.max(deliveredSeq, num(meta, SENT));
  const lastSeq = store.entries.lastSeq();
  const waiting = meta.get(WAITING);
  return {
    deliveredSeq,
    sentSeq,
    backlog: lastSeq - deliveredSeq,
    unsent: lastSeq - sentSeq,
    failedAttempts: num(meta, ATTEMPTS),
    nextAttemptAtMs: num(meta, NEXT_ATTEMPT),
    lastError: meta.get(LAST_ERROR) ?? null,
    confirmDueAtMs:
      waiting !== undefined && deliveredSeq < sentSeq ? Number(waiting) + confirmWaitMs(num(meta, CHECKS)) : 0,
  };
}

function confirmWaitMs(checks: number): number {
  return Math.min(HISTORY_CONFIRM_AFTER_MS * 2 ** checks, HISTORY_CONFIRM_MAX_MS);
}

export type FlushResult =
  | { ok: true; delivered: number; backlog: number }
  | { ok: false; delivered: number; backlog: number; retryAtMs: number };

function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | null = null;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} timed out after ${ms} ms`)), ms);
  });
  return Promise.race([p, timeout]).finally(() => clearTimeout(timer));
}

/** Counts a failed hand-off and backs the next one off exponentially, from the failure's time. */
function backOff(store: LedgerStore, err: unknown): number {
  const attempts = Number(store.getMeta(ATTEMPTS) ?? "0") + 1;
  // Backoff counts from the failure, not from the flush's start: a write that timed out must not be
  // retried at once.
  const retryAtMs = Date.now() + Math.min(OUTBOX_BACKOFF_BASE_MS * 2 ** (attempts - 1), OUTBOX_BACKOFF_MAX_MS);
  store.setMeta(ATTEMPTS, String(attempts));
  store.setMeta(NEXT_ATTEMPT, String(retryAtMs));
  store.setMeta(LAST_ERROR, String(err instanceof Error ? err.message : err).slice(0, 200));
  return retryAtMs;
}

function clearBackoff(store: LedgerStore): void {
  if (store.getMeta(ATTEMPTS) !== null && store.getMeta(ATTEMPTS) !== "0") {
    store.setMeta(ATTEMPTS, "0");
    store.setMeta(NEXT_ATTEMPT, "0");
  }
}

/** Moves a mark forward only: another flush running meanwhile may already be past these rows. */
function raise(store: LedgerStore, key: string, seq: number): void {
  if (seq > Number(store.getMeta(key) ?? "0")) store.setMeta(key, String(seq));
}

/**
 * The direct path (HISTORY_DELIVERY=direct, or no queue bound): up to OUTBOX_BATCHES_PER_ALARM
 * batches written to D1 by the object. The marks advance only after D1 confirmed a batch, so a
 * failure at any point (before, during or after D1 applied it) leads to a resend, which the
 * primary key turns into a no-op. On failure the next attempt is backed off exponentially.
 */
export async function flushOutbox(store: LedgerStore, d1: D1Database, teamId: string): Promise<FlushResult> {
  let delivered = 0;
  for (let batch = 0; batch < OUTBOX_BATCHES_PER_ALARM; batch++) {
    const from = Number(store.getMeta(DELIVERED) ?? "0");
    const { rows, lastSeq } = store.entries.outboxRows(from, OUTBOX_ROWS_PER_D1_BATCH);
    if (rows.length === 0) break;
    try {
      await withTimeout(deliverTeamRows(d1, teamId, rows), OUTBOX_D1_TIMEOUT_MS, "D1 write");
    } catch (err) {
      const retryAtMs = backOff(store, err);
      return { ok: false, delivered, backlog: store.entries.lastSeq() - from, retryAtMs };
    }
    raise(store, DELIVERED, lastSeq);
    raise(store, SENT, lastSeq);
    delivered += rows.length;
  }
  clearBackoff(store);
  const deliveredSeq = Number(store.getMeta(DELIVERED) ?? "0");
  return { ok: true, delivered, backlog: store.entries.lastSeq() - deliveredSeq };
}

/** Rows read per sendBatch call: more than one call's bytes allow, so a call is rarely short. */
const ROWS_READ_PER_SEND = 1_000;

/**
 * Cuts rows (seq from + 1 onward, without a gap) into messages of at most HISTORY_ROWS_PER_MESSAGE
 * rows and HISTORY_MESSAGE_MAX_BYTES, as many as one sendBatch takes (HISTORY_MESSAGES_PER_SEND,
 * HISTORY_SEND_MAX_BYTES). A row is never split; the rows left over go in the next call.
 */
export function cutMessages(teamId: string, from: number, rows: readonly string[]): HistoryMessage[] {
  const messages: HistoryMessage[] = [];
  let total = 0;
  let i = 0;
  while (i < rows.length && messages.length < HISTORY_MESSAGES_PER_SEND) {
    const part: string[] = [];
    let bytes = messageBytes(teamId, []);
    while (i < rows.length && part.length < HISTORY_ROWS_PER_MESSAGE) {
      const row = rows[i] as string;
      const add = rowBytes(row);
      if (part.length > 0 && bytes + add > HISTORY_MESSAGE_MAX_BYTES) break;
      part.push(row);
      bytes += add;
      i++;
    }
    if (messages.length > 0 && total + bytes > HISTORY_SEND_MAX_BYTES) break;
    const fromSeq = from + i - part.length + 1;
    messages.push({ teamId, fromSeq, toSeq: fromSeq + part.length - 1, rows: part });
    total += bytes;
  }
  return messages;
}

/**
 * The queue path: up to HISTORY_SENDS_PER_ALARM sendBatch calls of the entries after `sent`. The
 * sent mark advances once the queue accepted a call (it then holds the messages durably); what D1
 * has is for the consumer to say. A failed call is resent after a backoff, as on the direct path.
 */
export async function sendOutbox(
  store: LedgerStore,
  queue: Queue<HistoryMessage>,
  teamId: string,
): Promise<FlushResult> {
  let sent = 0;
  for (let call = 0; call < HISTORY_SENDS_PER_ALARM; call++) {
    const from = outboxState(store).sentSeq;
    const { rows, lastSeq } = store.entries.outboxRows(from, ROWS_READ_PER_SEND);
    if (rows.length === 0) break;
    if (lastSeq !== from + rows.length) throw new Error(`entries after ${from} are not contiguous`);
    const messages = cutMessages(teamId, from, rows);
    try {
      await withTimeout(
        queue.sendBatch(messages.map((body) => ({ body }))),
        HISTORY_SEND_TIMEOUT_MS,
        "history queue sendBatch",
      );
    } catch (err) {
      const retryAtMs = backOff(store, err);
      return { ok: false, delivered: sent, backlog: store.entries.lastSeq() - from, retryAtMs };
    }
    const last = messages[messages.length - 1]?.toSeq ?? from;
    // The wait for D1's word starts with the first entry sent since everything was confirmed.
    if (store.getMeta(WAITING) === null || outboxState(store).deliveredSeq >= from)
      store.setMeta(WAITING, String(Date.now()));
    raise(store, SENT, last);
    sent += last - from;
  }
  clearBackoff(store);
  return { ok: true, delivered: sent, backlog: outboxState(store).unsent };
}

/**
 * D1's word that it holds every entry up to `seq` (the consumer's landing, or the object's own read
 * of D1's mark). Only ever moves the marks forward; progress restarts the wait for the rest.
 */
export function markDelivered(store: LedgerStore, seq: number): OutboxState {
  const before = outboxState(store);
  const mark = Math.min(seq, store.entries.lastSeq());
  if (mark > before.deliveredSeq) {
    heard.set(store, mark);
    store.setMeta(DELIVERED, String(mark));
    raise(store, SENT, mark);
    if (mark >= before.sentSeq) store.deleteMeta(WAITING);
    else store.setMeta(WAITING, String(Date.now()));
    store.setMeta(CHECKS, "0");
  }
  return outboxState(store);
}

/**
 * Sends again everything from `fromSeq` on, as if it had never been sent, and treats it as not in
 * D1 (history pages read it from the object until D1 says otherwise): the repair of a gap, and the
 * re-drive of dead letters. Any backoff is cleared so the next alarm run sends at once.
 */
export function resendFrom(store: LedgerStore, fromSeq: number): OutboxState {
  const before = outboxState(store);
  const keep = Math.max(0, Math.min(fromSeq - 1, store.entries.lastSeq()));
  if (before.sentSeq > keep) store.setMeta(SENT, String(keep));
  if (before.deliveredSeq > keep) store.setMeta(DELIVERED, String(keep));
  if ((heard.get(store) ?? 0) > keep) heard.set(store, keep);
  store.deleteMeta(WAITING);
  store.setMeta(CHECKS, "0");
  store.setMeta(ATTEMPTS, "0");
  store.setMeta(NEXT_ATTEMPT, "0");
  return outboxState(store);
}

/**
 * When sent entries waited too long for D1's word (an acknowledgement lost, a message dead in the
 * dead-letter queue and not re-driven), the alarm reads D1's mark itself: progress is taken, and
 * if there is none, what is missing is sent again and the next check waits twice as long.
 */
export async function checkDelivered(store: LedgerStore, d1: D1Database, teamId: string): Promise<void> {
  const state = outboxState(store);
  if (state.confirmDueAtMs === 0 || state.confirmDueAtMs > Date.now()) return;
  let mark: number | null = null;
  try {
    mark = await withTimeout(historyMarkOf(d1, teamId), OUTBOX_D1_TIMEOUT_MS, "D1 read");
  } catch (err) {
    console.error(JSON.stringify({ teamId, history: "reading D1's mark failed", error: String(err) }));
  }
  if (mark !== null && mark > state.deliveredSeq) {
    markDelivered(store, mark);
    return;
  }
  const checks = Number(store.getMeta(CHECKS) ?? "0") + 1;
  if (mark !== null) store.setMeta(SENT, String(state.deliveredSeq));
  store.setMeta(CHECKS, String(checks));
  store.setMeta(WAITING, String(Date.now()));
}
