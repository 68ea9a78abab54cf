/**
 * One key, one outcome. A mutation runs in one transaction with its idempotency record: the
 * first outcome the ledger decides for an Idempotency-Key is saved, a success with its reply and
 * a refusal (not enough credits, a hold not pending, a hold not found, …) with its problem, and
 * every later request with the same key and the same fingerprint gets that outcome again, byte
 * for byte, whatever happened to the balance meanwhile. The same key with another fingerprint is
 * `idempotency_key_reused` and saves nothing. A request refused before the ledger looked at it
 * (validation, auth, body size: the worker's own 4xx) never reaches here and saves nothing; nor
 * does one for a team that does not exist, or a fault (the transaction rolls back; a retry runs).
 *
 * A refusal writes nothing but its record: the operation's writes (and the expirations settled
 * before it, which the next call settles again) roll back, then the record commits on its own.
 */
import { type Failure, failure } from "../domain/failure";
import type { IdempotencyInput, Outcome, Refusal, Reply, Team } from "../domain/vocabulary";
import { LedgerTx } from "./ledger-tx";
import { settle } from "./settlement";
import { type LedgerStore, REFUSAL_STATUS, type StoredReply } from "./store";

/** Thrown inside a transaction to roll it back while carrying the failure out. */
class Rollback extends Error {
  constructor(
    readonly failure: Failure,
    /** Whether the failure is the operation's own outcome, to be saved under the key. */
    readonly decided: boolean,
  ) {
    super(failure.detail);
  }
}

/** A saved refusal's body: the failure and the id of the request that got it first. */
interface SavedRefusal {
  code: Failure["code"];
  detail: string;
  extras?: Failure["extras"];
  requestId: string;
}

function replay<T>(seen: StoredReply): Reply<T> {
  if (seen.status !== REFUSAL_STATUS)
    return { ok: true, status: seen.status as 200 | 201, body: JSON.parse(seen.body) as T, replayed: true };
  const saved = JSON.parse(seen.body) as SavedRefusal;
  const refusal: Refusal = { ...failure(saved.code, saved.detail, saved.extras), replayed: true };
  refusal.originalRequestId = saved.requestId;
  return refusal;
}

export interface MutationResult<T> {
  reply: Reply<T>;
  /** Whether the transaction wrote entries or events (an outbox then has work). */
  wroteEntries: boolean;
  /** Whether an idempotency record was saved (the purge then has work). */
  saved: boolean;
}

/** Settles what is due, then answers from the key's record or runs `op` and saves its outcome. */
export function mutateOnce<T>(
  store: LedgerStore,
  team: Team,
  nowMs: number,
  idem: IdempotencyInput,
  op: (tx: LedgerTx) => Outcome<T>,
): MutationResult<T> {
  let wroteEntries = false;
  try {
    const reply = store.transaction((): Reply<T> => {
      const spendingKey =
        idem.keyId !== undefined && idem.keySpendLimitCredits !== undefined
          ? { id: idem.keyId, limitCredits: idem.keySpendLimitCredits }
          : null;
      const tx = new LedgerTx(store, team, nowMs, idem.key, spendingKey);
      settle(tx);
      const seen = tx.seen;
      if (seen) {
        if (seen.fingerprint !== idem.fingerprint)
          throw new Rollback(
            failure("idempotency_key_reused", "this Idempotency-Key was used with a different request"),
            false,
          );
        tx.watchBalance();
        wroteEntries = tx.written.length > 0 || tx.emitted > 0;
        return replay<T>(seen);
      }
      const outcome = op(tx);
      if (!outcome.ok) throw new Rollback(outcome, true);
      tx.watchBalance();
      store.putReply(
        idem.key,
        { fingerprint: idem.fingerprint, status: outcome.status, body: JSON.stringify(outcome.body) },
        nowMs,
      );
      wroteEntries = tx.written.length > 0 || tx.emitted > 0;
      return { ...outcome, replayed: false };
    });
    return { reply, wroteEntries, saved: reply.ok && !reply.replayed };
  } catch (err) {
    if (!(err instanceof Rollback)) throw err;
    if (!err.decided) return { reply: err.failure, wroteEntries: false, saved: false };
    const saved: SavedRefusal = { code: err.failure.code, detail: err.failure.detail, requestId: idem.requestId };
    if (err.failure.extras) saved.extras = err.failure.extras;
    store.transaction(() =>
      store.putReply(
        idem.key,
        { fingerprint: idem.fingerprint, status: REFUSAL_STATUS, body: JSON.stringify(saved) },
        nowMs,
      ),
    );
    return { reply: err.failure, wroteEntries: false, saved: true };
  }
}
