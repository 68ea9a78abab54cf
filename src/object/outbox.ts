/**
 * The outbox: every entry the team object commits is delivered to D1 by the object's alarm, in
 * bounded batches, oldest first, at least once; D1's primary key makes that exactly once. The
 * object's entries table is the outbox itself and `outbox.delivered` the high-water mark, so a
 * spend writes nothing extra for replication and a slow or failing D1 never blocks one.
 */
import { insertEntryRows } from "../db/history";
import {
  OUTBOX_BACKOFF_BASE_MS,
  OUTBOX_BACKOFF_MAX_MS,
  OUTBOX_BATCHES_PER_ALARM,
  OUTBOX_D1_TIMEOUT_MS,
  OUTBOX_ROWS_PER_D1_BATCH,
} from "../limits";
import type { LedgerStore } from "./store";

const DELIVERED = "outbox.delivered";
const ATTEMPTS = "outbox.attempts";
const NEXT_ATTEMPT = "outbox.nextAttemptAt";
const LAST_ERROR = "outbox.lastError";

export interface OutboxState {
  deliveredSeq: number;
  backlog: number;
  failedAttempts: number;
  nextAttemptAtMs: number;
  lastError: string | null;
}

export function outboxState(store: LedgerStore): OutboxState {
  const meta = store.getMetas([DELIVERED, ATTEMPTS, NEXT_ATTEMPT, LAST_ERROR]);
  const deliveredSeq = Number(meta.get(DELIVERED) ?? "0");
  return {
    deliveredSeq,
    backlog: store.entries.lastSeq() - deliveredSeq,
    failedAttempts: Number(meta.get(ATTEMPTS) ?? "0"),
    nextAttemptAtMs: Number(meta.get(NEXT_ATTEMPT) ?? "0"),
    lastError: meta.get(LAST_ERROR) ?? null,
  };
}

export type FlushResult =
  | { ok: true; delivered: number; backlog: number }
  | { ok: false; delivered: number; backlog: number; retryAtMs: number };

function withTimeout<T>(p: Promise<T>, ms: number): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | null = null;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`D1 write timed out after ${ms} ms`)), ms);
  });
  return Promise.race([p, timeout]).finally(() => clearTimeout(timer));
}

/**
 * Sends up to OUTBOX_BATCHES_PER_ALARM batches. The mark advances only after D1 confirmed a batch,
 * so a failure at any point (before, during or after D1 applied it) leads to a resend, which the
 * primary key turns into a no-op. On failure the next attempt is backed off exponentially.
 */
export async function flushOutbox(store: LedgerStore, d1: D1Database): Promise<FlushResult> {
  let delivered = 0;
  for (let batch = 0; batch < OUTBOX_BATCHES_PER_ALARM; batch++) {
    const from = Number(store.getMeta(DELIVERED) ?? "0");
    const { rows, lastSeq } = store.entries.outboxRows(from, OUTBOX_ROWS_PER_D1_BATCH);
    if (rows.length === 0) break;
    try {
      await withTimeout(insertEntryRows(d1, rows), OUTBOX_D1_TIMEOUT_MS);
    } catch (err) {
      const attempts = Number(store.getMeta(ATTEMPTS) ?? "0") + 1;
      // Backoff counts from the failure, not from the flush's start: a write that timed out after
      // OUTBOX_D1_TIMEOUT_MS must not be retried at once.
      const retryAtMs = Date.now() + Math.min(OUTBOX_BACKOFF_BASE_MS * 2 ** (attempts - 1), OUTBOX_BACKOFF_MAX_MS);
      store.setMeta(ATTEMPTS, String(attempts));
      store.setMeta(NEXT_ATTEMPT, String(retryAtMs));
      store.setMeta(LAST_ERROR, String(err instanceof Error ? err.message : err).slice(0, 200));
      return { ok: false, delivered, backlog: store.entries.lastSeq() - from, retryAtMs };
    }
    // The mark only moves forward: another flush running meanwhile may already be past these rows.
    if (lastSeq > Number(store.getMeta(DELIVERED) ?? "0")) store.setMeta(DELIVERED, String(lastSeq));
    delivered += rows.length;
  }
  if (store.getMeta(ATTEMPTS) !== null && store.getMeta(ATTEMPTS) !== "0") {
    store.setMeta(ATTEMPTS, "0");
    store.setMeta(NEXT_ATTEMPT, "0");
  }
  const deliveredSeq = Number(store.getMeta(DELIVERED) ?? "0");
  return { ok: true, delivered, backlog: store.entries.lastSeq() - deliveredSeq };
}
