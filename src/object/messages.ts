/**
 * Delivering the team's cross-team messages (message-store.ts) from its alarm: each due message
 * goes to the target team's object over RPC, and is marked delivered only once that object
 * answered that it holds the result; on failure it is retried with exponential backoff, forever
 * (a message is never dropped; `last_error` says why it waits). Bounded per run.
 */
import { MESSAGES_BACKOFF_BASE_MS, MESSAGES_BACKOFF_MAX_MS, MESSAGES_PER_ALARM } from "../limits";
import { REFERRAL_REWARD, type ReferralReward } from "./referrals";
import type { LedgerStore } from "./store";

/** Sends what is due; returns how many are still waiting after this run. */
export async function deliverMessages(store: LedgerStore, ns: Cloudflare.Env["TEAM_LEDGER"]): Promise<void> {
  const nowMs = Date.now();
  for (const m of store.messages.due(nowMs, MESSAGES_PER_ALARM)) {
    try {
      if (m.kind !== REFERRAL_REWARD) throw new Error(`unknown message kind ${m.kind}`);
      const reward = JSON.parse(m.payload) as ReferralReward;
      const target = ns.get(ns.idFromName(m.target_team_id));
      const reply = await target.receiveReferralReward(m.target_team_id, reward);
      if (!reply.ok) throw new Error(`${reply.code}: ${reply.detail}`);
      store.transaction(() => store.messages.delivered(m.id, Date.now()));
    } catch (err) {
      const backoff = Math.min(MESSAGES_BACKOFF_MAX_MS, MESSAGES_BACKOFF_BASE_MS * 2 ** Math.min(m.attempts, 20));
      store.transaction(() => store.messages.failed(m.id, Date.now() + backoff, String(err)));
    }
  }
}
