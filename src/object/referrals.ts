/**
 * Referrals, across two team objects. The referred team's object records who referred it (one
 * referrer, never itself) and owes the referrer its bonuses: the signup bonus when the referral is
 * recorded, the upgrade bonus when the referred team first moves to a paid plan. Each is a
 * message in the referred team's outbox (messages.ts), committed with its cause and delivered by
 * the alarm until the referrer's object confirms; the referrer's object grants each bonus once
 * forever (its referral_rewards table, keyed by referral and kind), whatever is retried.
 *
 * The bonus amounts are the referrer's plan's `referral` settings when the referral is recorded
 * (fixed then, so a later plan edit never changes a bonus already promised). A team that was
 * already on a paid plan when it was referred has no first upgrade left: no upgrade bonus (the
 * first move to a paid plan is marked once, plans.ts PAID_ONCE_KEY).
 */
import { failure } from "../domain/failure";
import type { Outcome } from "../domain/vocabulary";
import { addGrant } from "./grants";
import type { LedgerTx } from "./ledger-tx";
import { iso } from "./time";

const REFERRAL_KEY = "referral";
export const REFERRAL_REWARD = "referral_reward";

export type RewardKind = "signup" | "upgrade";

export interface Referral {
  id: string;
  referrerTeamId: string;
  referredTeamId: string;
  signupCredits: number;
  upgradeCredits: number;
  createdAt: string;
}

/** What the referred team's object sends the referrer's. */
export interface ReferralReward {
  referralId: string;
  kind: RewardKind;
  credits: number;
  referredTeamId: string;
}

export function storedReferral(tx: LedgerTx): Referral | null {
  const doc = tx.store.getMeta(REFERRAL_KEY);
  return doc ? (JSON.parse(doc) as Referral) : null;
}

function owe(tx: LedgerTx, r: Referral, kind: RewardKind, credits: number): void {
  const reward: ReferralReward = { referralId: r.id, kind, credits, referredTeamId: r.referredTeamId };
  tx.store.messages.put({
    id: `${r.id}:${kind}`,
    kind: REFERRAL_REWARD,
    targetTeamId: r.referrerTeamId,
    payload: reward,
    nowMs: tx.nowMs,
  });
}

/** In the referred team's object: records the referral (once) and owes the signup bonus. */
export function recordReferral(
  tx: LedgerTx,
  input: { referrerTeamId: string; signupCredits: number; upgradeCredits: number },
): Outcome<Referral> {
  const existing = storedReferral(tx);
  if (existing) {
    if (existing.referrerTeamId === input.referrerTeamId) return { ok: true, status: 200, body: existing };
    return failure("conflict", `team ${tx.team.id} was already referred by another team`);
  }
  if (input.referrerTeamId === tx.team.id) return failure("invalid_request", "a team cannot refer itself");
  const referral: Referral = {
    id: `ref_${crypto.randomUUID().replaceAll("-", "")}`,
    referrerTeamId: input.referrerTeamId,
    referredTeamId: tx.team.id,
    signupCredits: input.signupCredits,
    upgradeCredits: input.upgradeCredits,
    createdAt: iso(tx.nowMs),
  };
  tx.store.setMeta(REFERRAL_KEY, JSON.stringify(referral));
  owe(tx, referral, "signup", referral.signupCredits);
  // A team already on a paid plan has PAID_ONCE_KEY set, so its upgrade bonus is never owed.
  return { ok: true, status: 201, body: referral };
}

/** In the referred team's object, after it first moved to a paid plan: owes the upgrade bonus. */
export function oweUpgradeBonus(tx: LedgerTx): void {
  const r = storedReferral(tx);
  if (r) owe(tx, r, "upgrade", r.upgradeCredits);
}

/** In the referrer's object: grants a bonus once per (referral, kind), whatever is retried. */
export function receiveReward(tx: LedgerTx, reward: ReferralReward): { grantId: string | null; already: boolean } {
  const seen = tx.store.referralReward(reward.referralId, reward.kind);
  if (seen) return { grantId: seen.grantId, already: true };
  const grantId =
    reward.credits > 0
      ? addGrant(tx, {
          amount: reward.credits,
          category: "promotional",
          source: "referral",
          expiresAtMs: null,
          reference: `referral:${reward.referralId}:${reward.kind}`,
        })
      : null;
  tx.store.putReferralReward({ ...reward, grantId, nowMs: tx.nowMs });
  tx.emit("referral.rewarded", {
    referralId: reward.referralId,
    kind: reward.kind,
    referredTeamId: reward.referredTeamId,
    credits: reward.credits,
    grantId,
  });
  return { grantId, already: false };
}
