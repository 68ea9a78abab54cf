/**
 * The agency's side of a pool (domain/pools.ts has the rules): caps checked in the same
 * transaction as the spend or hold they limit, and the counters they read, kept by every spend and
 * capture entry the agency's object writes for a capped subject. Nothing here runs for a team that
 * is not an agency.
 */
import type { Failure } from "../domain/failure";
import { type CapStanding, calendarMonth, capPeriod, capRefusal, capRemaining } from "../domain/pools";
import type { Attribution, BatchItemResult, BatchMode, BatchReply, ChargeInput, Outcome } from "../domain/vocabulary";
import type { LedgerTx } from "./ledger-tx";
import { keySubject, memberSubject, subaccountSubject } from "./pool-store";
import { spendBatch } from "./spends";

/**
 * The caps a charge for these people counts against, as they stand now: an agency's caps of the
 * subaccount and of the member, and the spend limit of the API key the request came with.
 */
export function capStandings(tx: LedgerTx, who: Attribution): CapStanding[] {
  const standings: CapStanding[] = [];
  const key = tx.spendingKey;
  if (key !== null) {
    // A key's month is the calendar month: keys are the account's, not a plan's.
    const { startsAtMs } = calendarMonth(tx.nowMs);
    standings.push({
      scope: "key",
      subject: key.id,
      capCredits: key.limitCredits,
      // A hold counts when it is made (keySubject counts hold entries), so nothing is pending apart.
      spentCredits: tx.store.pools.spent(keySubject(key.id), startsAtMs),
      heldCredits: 0,
      periodStartsAtMs: startsAtMs,
    });
  }
  if (tx.team.kind !== "agency") return standings;
  const pools = tx.store.pools;
  const { startsAtMs } = capPeriod(tx.team, tx.nowMs);
  if (who.memberTeamId !== undefined) {
    const capCredits = pools.member(who.memberTeamId)?.capCredits ?? null;
    if (capCredits !== null)
      standings.push({
        scope: "subaccount",
        subject: who.memberTeamId,
        capCredits,
        spentCredits: pools.spent(subaccountSubject(who.memberTeamId), startsAtMs),
        heldCredits: pools.heldForMember(who.memberTeamId),
        periodStartsAtMs: startsAtMs,
      });
  }
  if (who.actor !== undefined) {
    const cap = pools.memberCap(who.actor);
    if (cap)
      standings.push({
        scope: "member",
        subject: who.actor,
        capCredits: cap.capCredits,
        spentCredits: pools.spent(memberSubject(who.actor), startsAtMs),
        heldCredits: pools.heldForActor(who.actor),
        periodStartsAtMs: startsAtMs,
      });
  }
  return standings;
}

/** 402 cap_exceeded when `amount` more credits for these people would pass a cap; null otherwise. */
export function capCheck(tx: LedgerTx, who: Attribution, amount: number): Failure | null {
  for (const standing of capStandings(tx, who)) {
    const refusal = capRefusal(standing, amount);
    if (refusal) return refusal;
  }
  return null;
}

/**
 * A batch under its caps (every item of a batch is for the same people: one request).
 * `all_or_nothing`: the batch's total must fit every cap, or nothing is spent (402 cap_exceeded).
 * `until_insufficient`: items are spent in order while they fit; the first that would pass a cap
 * is `cap_exceeded` (with the tightest cap's facts) and the rest `skipped`, as for credits.
 */
export function spendBatchWithinCaps(tx: LedgerTx, charges: ChargeInput[], mode: BatchMode): Outcome<BatchReply> {
  const first = charges[0];
  const standings = first ? capStandings(tx, first) : [];
  if (standings.length === 0) return spendBatch(tx, charges, mode);
  const total = charges.reduce((sum, c) => sum + c.amount, 0);
  if (mode === "all_or_nothing") {
    for (const standing of standings) {
      const refusal = capRefusal(standing, total);
      if (refusal) return refusal;
    }
    return spendBatch(tx, charges, mode);
  }
  const tightest = standings.reduce((a, b) => (capRemaining(b) < capRemaining(a) ? b : a));
  const headroom = capRemaining(tightest);
  let cut = 0;
  let within = 0;
  for (const c of charges) {
    if (within + c.amount > headroom) break;
    within += c.amount;
    cut += 1;
  }
  if (cut === charges.length) return spendBatch(tx, charges, mode);
  const reply = spendBatch(tx, charges.slice(0, cut), mode);
  if (!reply.ok) return reply;
  const stopped = reply.body.results.some((r) => r.status === "insufficient");
  const results: BatchItemResult[] = [...reply.body.results];
  for (let index = cut; index < charges.length; index++) {
    const charge = charges[index];
    if (index === cut && !stopped && charge)
      results.push({
        index,
        status: "cap_exceeded",
        required: charge.amount,
        scope: tightest.scope,
        subject: tightest.subject,
        cap: tightest.capCredits,
        remaining: headroom - within,
      });
    else results.push({ index, status: "skipped" });
  }
  return { ...reply, body: { ...reply.body, results } };
}

/**
 * Called for every entry an agency's object writes, and every entry of a request whose key has its
 * own limit. A spend or a capture used pooled credits: it counts for the subaccount and the actor
 * it was for (whether or not a cap is set now, so a cap set mid-period counts what was used before
 * it). A key counts what it spent or held when it did (a hold when made, its capture not again).
 */
export function countUse(tx: LedgerTx, type: string, amount: number, who: Attribution): void {
  const key = tx.spendingKey;
  if (key !== null && (type === "spend" || type === "hold")) {
    const { startsAtMs } = calendarMonth(tx.nowMs);
    tx.store.pools.count(keySubject(key.id), startsAtMs, amount);
  }
  if (tx.team.kind !== "agency" || (type !== "spend" && type !== "capture")) return;
  if (who.memberTeamId === undefined && who.actor === undefined) return;
  const { startsAtMs } = capPeriod(tx.team, tx.nowMs);
  if (who.memberTeamId !== undefined) tx.store.pools.count(subaccountSubject(who.memberTeamId), startsAtMs, amount);
  if (who.actor !== undefined) tx.store.pools.count(memberSubject(who.actor), startsAtMs, amount);
}
