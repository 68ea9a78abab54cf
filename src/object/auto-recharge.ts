/**
 * Auto-recharge in the team object (the rules: domain/auto-recharge.ts). Three steps, each in its
 * own place so no spend ever waits on Stripe:
 *
 * 1. decide (considerRecharge, inside the transaction of whatever write took `available` below the
 *    threshold): a `pending` recharge row, at most one in flight (a unique index), at most
 *    maxPerMonth a month;
 * 2. start (startRecharges, from the alarm): one off-session PaymentIntent on the team's saved
 *    card, with the recharge's id as Stripe's idempotency key, so a retried alarm never charges
 *    twice; a decline or a payment that needs the customer (requires_action) is a failure, a
 *    network or Stripe fault is retried with backoff;
 * 3. finish (from Stripe's webhook, purchases.ts): payment_intent.succeeded credits the purchase
 *    exactly once and ends the recharge; payment_intent.payment_failed fails it.
 *
 * A failure emits `auto_recharge.failed`; after AUTO_RECHARGE_MAX_FAILURES in a row, auto-recharge
 * turns itself off (the team's settings show `enabled: false` and the reason) until the team
 * turns it on again. The failures and the off switch live in meta, beside the settings the team
 * chose, and are merged when the team is read.
 */
import Stripe from "stripe";
import { afterFailure, rechargeMonth, shouldRecharge } from "../domain/auto-recharge";
import type { AutoRecharge, Team } from "../domain/vocabulary";
import {
  AUTO_RECHARGE_BACKOFF_BASE_MS,
  AUTO_RECHARGE_LEASE_MS,
  AUTO_RECHARGE_MAX_ATTEMPTS,
  AUTO_RECHARGE_MAX_FAILURES,
} from "../limits";
import { stripeClient } from "../stripe/client";
import type { LedgerTx } from "./ledger-tx";
import type { RechargeRow } from "./recharge-store";
import type { LedgerStore } from "./store";

const STATE_KEY = "autoRecharge.state";
const PAYMENT_METHOD_KEY = "stripe.paymentMethod";

interface RechargeState {
  consecutiveFailures: number;
  disabledReason: string | null;
}

export interface SavedPaymentMethod {
  customerId: string;
  paymentMethodId: string;
}

function stateOf(store: LedgerStore): RechargeState {
  const doc = store.getMeta(STATE_KEY);
  return doc ? (JSON.parse(doc) as RechargeState) : { consecutiveFailures: 0, disabledReason: null };
}

/** The team's auto-recharge as it stands: the settings it chose, with the failures and the off switch. */
export function autoRechargeOf(store: LedgerStore, team: Team): AutoRecharge | null {
  const chosen = team.settings.autoRecharge;
  if (!chosen) return null;
  const state = stateOf(store);
  return {
    ...chosen,
    enabled: state.disabledReason === null,
    disabledReason: state.disabledReason,
    consecutiveFailures: state.consecutiveFailures,
  };
}

/** Turning auto-recharge on (again) starts with a clean slate; a pending recharge of the old settings is dropped. */
export function resetAutoRecharge(store: LedgerStore, nowMs: number): void {
  store.deleteMeta(STATE_KEY);
  const pending = store.recharges.inFlight();
  if (pending?.status === "pending")
    store.recharges.move(pending.id, ["pending"], { status: "canceled", finishedAtMs: nowMs });
}

export function savedPaymentMethod(store: LedgerStore): SavedPaymentMethod | null {
  const doc = store.getMeta(PAYMENT_METHOD_KEY);
  return doc ? (JSON.parse(doc) as SavedPaymentMethod) : null;
}

/** A card the buyer agreed to have charged off-session (Checkout with savePaymentMethod): the latest wins. */
export function savePaymentMethod(store: LedgerStore, pm: SavedPaymentMethod): void {
  store.setMeta(PAYMENT_METHOD_KEY, JSON.stringify(pm));
}

/** Step 1, inside the write that may have crossed the threshold: a pending recharge, when one is due. */
export function considerRecharge(tx: LedgerTx): void {
  const settings = tx.team.settings.autoRecharge;
  // The common case costs nothing: off, or above the threshold.
  if (!settings || tx.available >= settings.thresholdCredits) return;
  // Credits restricted to one feature (a plan's calling credits) do not keep the team going.
  const unrestricted = tx.availableFor(null);
  const current = autoRechargeOf(tx.store, tx.team);
  const month = rechargeMonth(tx.nowMs);
  const decision = shouldRecharge(current, unrestricted, {
    inFlight: tx.store.recharges.inFlight() !== null,
    startedThisMonth: tx.store.recharges.countInMonth(month),
  });
  if (!decision.start) return;
  tx.store.recharges.insert({
    id: `rch_${crypto.randomUUID().replaceAll("-", "")}`,
    status: "pending",
    month,
    credits: settings.credits,
    price_minor: settings.priceMinor,
    currency: settings.currency,
    pack_id: settings.packId,
    payment_intent_id: null,
    attempts: 0,
    next_attempt_at_ms: tx.nowMs,
    error: null,
    created_at_ms: tx.nowMs,
    finished_at_ms: null,
  });
  // The alarm starts it: AlarmSchedule counts a pending recharge as due (store.recharges.nextAttemptMs).
}

/** Step 3: the recharge paid with this intent was credited. */
export function rechargeSucceeded(tx: LedgerTx, rechargeId: string | null, paymentIntentId: string): void {
  const row = rechargeId ? tx.store.recharges.get(rechargeId) : null;
  if (!row) return;
  tx.store.recharges.move(row.id, ["pending", "started", "failed"], {
    status: "succeeded",
    paymentIntentId,
    finishedAtMs: tx.nowMs,
  });
  const state = stateOf(tx.store);
  if (state.consecutiveFailures > 0 && state.disabledReason === null) tx.store.deleteMeta(STATE_KEY);
}

/** A recharge's payment failed (declined, needs the customer, or given up on): counted, and told. */
export function rechargeFailed(tx: LedgerTx, rechargeId: string, reason: string, paymentIntentId?: string): void {
  const moved = tx.store.recharges.move(rechargeId, ["pending", "started"], {
    status: "failed",
    error: reason,
    paymentIntentId: paymentIntentId ?? null,
    finishedAtMs: tx.nowMs,
  });
  if (!moved) return;
  const state = stateOf(tx.store);
  const { failures, disable } = afterFailure(state.consecutiveFailures, AUTO_RECHARGE_MAX_FAILURES);
  const disabledReason =
    state.disabledReason ?? (disable ? `${failures} auto-recharge payments failed in a row (last: ${reason})` : null);
  tx.store.setMeta(STATE_KEY, JSON.stringify({ consecutiveFailures: failures, disabledReason }));
  tx.emit("auto_recharge.failed", {
    rechargeId,
    paymentIntentId: paymentIntentId ?? null,
    reason,
    consecutiveFailures: failures,
    disabled: disabledReason !== null,
    disabledReason,
  });
}

/**
 * Step 2, from the alarm: starts the pending recharge, if one is due. Returns when the alarm must
 * run again for it (a retry), or null.
 */
export async function startRecharges(
  store: LedgerStore,
  team: Team,
  env: Cloudflare.Env,
  tx: (fn: (t: LedgerTx) => void) => void,
): Promise<number | null> {
  const row = store.recharges.inFlight();
  if (row?.status !== "pending") return null;
  const nowMs = Date.now();
  if (row.next_attempt_at_ms > nowMs) return row.next_attempt_at_ms;
  const current = autoRechargeOf(store, team);
  if (!current?.enabled) {
    tx(() => store.recharges.move(row.id, ["pending"], { status: "canceled", finishedAtMs: nowMs }));
    return null;
  }
  const pm = savedPaymentMethod(store);
  const stripe = stripeClient(env);
  if (!pm || !stripe) {
    tx((t) => rechargeFailed(t, row.id, pm ? "stripe_not_configured" : "no saved payment method"));
    return null;
  }
  // One attempt at a time: the call below awaits Stripe, and another alarm run may start meanwhile.
  // Should this one never come back, the lease runs out and the retry uses the same idempotency key.
  const leaseUntilMs = nowMs + AUTO_RECHARGE_LEASE_MS;
  let leased = false;
  tx(() => {
    leased = store.recharges.lease(row.id, nowMs, leaseUntilMs);
  });
  if (!leased) return leaseUntilMs;
  try {
    const intent = await stripe.paymentIntents.create(
      {
        amount: row.price_minor,
        currency: row.currency,
        customer: pm.customerId,
        payment_method: pm.paymentMethodId,
        off_session: true,
        confirm: true,
        description: `${row.credits} credits (auto-recharge)`,
        metadata: metadataOf(team.id, row),
      },
      { idempotencyKey: `recharge:${team.id}:${row.id}` },
    );
    if (intent.status === "succeeded" || intent.status === "processing")
      tx(() => store.recharges.move(row.id, ["pending"], { status: "started", paymentIntentId: intent.id }));
    else tx((t) => rechargeFailed(t, row.id, intent.status, intent.id));
    return null;
  } catch (err) {
    if (err instanceof Stripe.errors.StripeCardError || err instanceof Stripe.errors.StripeInvalidRequestError) {
      const intentId = (err.raw as { payment_intent?: { id?: string } } | undefined)?.payment_intent?.id;
      tx((t) => rechargeFailed(t, row.id, err.code ?? err.type, intentId));
      return null;
    }
    // A fault, not a decline: the same idempotency key makes the retry safe.
    if (row.attempts + 1 >= AUTO_RECHARGE_MAX_ATTEMPTS) {
      tx((t) => rechargeFailed(t, row.id, `Stripe could not be reached (${String(err)})`));
      return null;
    }
    const retryAtMs = nowMs + AUTO_RECHARGE_BACKOFF_BASE_MS * 2 ** row.attempts;
    tx(() => store.recharges.retryLater(row.id, retryAtMs, String(err).slice(0, 200)));
    return retryAtMs;
  }
}

/** What the PaymentIntent carries, so its webhook finds the team, the credits and the recharge. */
function metadataOf(teamId: string, row: RechargeRow): Record<string, string> {
  return { teamId, credits: String(row.credits), kind: "auto_recharge", rechargeId: row.id, packId: row.pack_id };
}
