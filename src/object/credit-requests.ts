/**
 * Credit requests: credits bought outside Stripe (bank transfer, crypto, other). A request is
 * created `pending` (the worker already checked that this actor may buy, and priced it on the
 * plan); an owner or admin then accepts it, which grants its credits once (category `paid`, source
 * `credit_request`, never expiring, the grant's reference the request's id), or rejects it, which
 * grants nothing. A decided request is never decided again: the second decision is a 409, whoever
 * sends it and whatever its key, because the object runs one operation at a time and the decision
 * is one conditional UPDATE in the grant's transaction.
 *
 * Creation and decisions take an Idempotency-Key but do not need one (API.md lists them as
 * accepting it): without one, `runUnkeyed` runs the operation in one transaction like
 * idempotent.ts does, saving no record.
 */
import { assert } from "../domain/assert";
import { type Failure, failure } from "../domain/failure";
import type { Outcome, Reply, Team } from "../domain/vocabulary";
import { MAX_BALANCE_CREDITS } from "../limits";
import type {
  CreditRequestMethod,
  CreditRequestStatus,
  CreditRequestStore,
  StoredCreditRequest,
} from "./credit-request-store";
import { addGrant } from "./grants";
import { LedgerTx, newId } from "./ledger-tx";
import { settle } from "./settlement";
import type { LedgerStore } from "./store";
import { iso } from "./time";

/** A request as the worker sends it: credits and price already decided on the team's plan. */
export interface CreditRequestInput {
  credits: number;
  /** What the request costs in the plan's currency (minor units); null when it has no price. */
  priceMinor: number | null;
  currency: string | null;
  packId: string | null;
  method: CreditRequestMethod;
  reference: string | null;
  /** The actor who asked (X-Actor-Id); null for the admin key. */
  requestedBy: string | null;
}

/** A credit request as clients see it (API.md "credit request"); absent fields are null in storage. */
export interface CreditRequest {
  id: string;
  status: CreditRequestStatus;
  credits: number;
  priceMinor?: number;
  currency?: string;
  packId?: string;
  method: CreditRequestMethod;
  reference?: string;
  requestedBy?: string;
  decidedBy?: string;
  reason?: string;
  /** The grant an accepted request made. */
  grantId?: string;
  createdAt: string;
  decidedAt?: string;
}

export function publicCreditRequest(r: StoredCreditRequest): CreditRequest {
  const out: CreditRequest = {
    id: r.id,
    status: r.status,
    credits: r.credits,
    method: r.method,
    createdAt: iso(r.createdAtMs),
  };
  if (r.priceMinor !== null) out.priceMinor = r.priceMinor;
  if (r.currency !== null) out.currency = r.currency;
  if (r.packId !== null) out.packId = r.packId;
  if (r.reference !== null) out.reference = r.reference;
  if (r.requestedBy !== null) out.requestedBy = r.requestedBy;
  if (r.decidedBy !== null) out.decidedBy = r.decidedBy;
  if (r.reason !== null) out.reason = r.reason;
  if (r.grantId !== null) out.grantId = r.grantId;
  if (r.decidedAtMs !== null) out.decidedAt = iso(r.decidedAtMs);
  return out;
}

export function createCreditRequest(
  tx: LedgerTx,
  requests: CreditRequestStore,
  input: CreditRequestInput,
): Outcome<CreditRequest> {
  const id = newId("crq");
  requests.insert({ id, ...input, createdAtMs: tx.nowMs });
  tx.emit("credit_request.created", {
    creditRequestId: id,
    credits: input.credits,
    priceMinor: input.priceMinor,
    currency: input.currency,
    packId: input.packId,
    method: input.method,
    reference: input.reference,
    requestedBy: input.requestedBy,
  });
  return { ok: true, status: 201, body: publicCreditRequest(stored(requests, id)) };
}

/** Grants the request's credits, once; a request that is not pending is a 409. */
export function acceptCreditRequest(
  tx: LedgerTx,
  requests: CreditRequestStore,
  requestId: string,
  decidedBy: string | null,
): Outcome<CreditRequest> {
  const r = requests.get(requestId);
  if (!r) return failure("not_found", `credit request ${requestId} not found`);
  if (r.status !== "pending") return decidedAlready(r);
  if (tx.store.grants.totalGranted() + r.credits > MAX_BALANCE_CREDITS)
    return failure("conflict", `a team holds at most ${MAX_BALANCE_CREDITS} credits`);
  const grantId = addGrant(tx, {
    amount: r.credits,
    category: "paid",
    source: "credit_request",
    expiresAtMs: null,
    reference: r.id,
  });
  const decided = requests.decide(r.id, {
    status: "accepted",
    decidedBy,
    reason: null,
    grantId,
    decidedAtMs: tx.nowMs,
  });
  assert(decided, "a pending request is decided once");
  tx.emit("credit_request.accepted", { creditRequestId: r.id, credits: r.credits, grantId, decidedBy });
  return { ok: true, status: 200, body: publicCreditRequest(stored(requests, r.id)) };
}

/** Rejects the request: nothing is granted; a request that is not pending is a 409. */
export function rejectCreditRequest(
  tx: LedgerTx,
  requests: CreditRequestStore,
  requestId: string,
  decidedBy: string | null,
  reason: string | null,
): Outcome<CreditRequest> {
  const r = requests.get(requestId);
  if (!r) return failure("not_found", `credit request ${requestId} not found`);
  if (r.status !== "pending") return decidedAlready(r);
  const decided = requests.decide(r.id, {
    status: "rejected",
    decidedBy,
    reason,
    grantId: null,
    decidedAtMs: tx.nowMs,
  });
  assert(decided, "a pending request is decided once");
  tx.emit("credit_request.rejected", { creditRequestId: r.id, credits: r.credits, reason, decidedBy });
  return { ok: true, status: 200, body: publicCreditRequest(stored(requests, r.id)) };
}

/** The 409 of a second decision: a request is decided once. */
function decidedAlready(r: StoredCreditRequest): Failure {
  return failure("conflict", `credit request ${r.id} is already ${r.status}; a request is decided once`, {
    requestStatus: r.status,
  });
}

function stored(requests: CreditRequestStore, id: string): StoredCreditRequest {
  const r = requests.get(id);
  assert(r, "credit request just written");
  return r;
}

/** Thrown inside the transaction to roll it back while carrying the refusal out. */
class Refused extends Error {
  constructor(readonly failure: Failure) {
    super(failure.detail);
  }
}

/**
 * An operation run without an Idempotency-Key: settles what is due, runs `op` in one transaction
 * and commits it, or rolls everything back on a refusal (which is returned, saved nowhere).
 */
export function runUnkeyed<T>(
  store: LedgerStore,
  team: Team,
  nowMs: number,
  op: (tx: LedgerTx) => Outcome<T>,
): { reply: Reply<T>; wrote: boolean } {
  try {
    return store.transaction(() => {
      const tx = new LedgerTx(store, team, nowMs);
      settle(tx);
      const outcome = op(tx);
      if (!outcome.ok) throw new Refused(outcome);
      tx.watchBalance();
      return { reply: { ...outcome, replayed: false }, wrote: tx.written.length > 0 || tx.emitted > 0 };
    });
  } catch (err) {
    if (err instanceof Refused) return { reply: err.failure, wrote: false };
    throw err;
  }
}
