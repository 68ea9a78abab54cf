/**
 * Outbound events: what the service tells an app about a team (API.md "Event types"). An event is
 * written by the team object in the same transaction as the change that caused it (its `events`
 * table is an outbox), numbered per team by `seq`, and later handed to the webhook endpoints that
 * subscribe to its type (src/webhooks/). Its id is stable across retries and redeliveries, so a
 * receiver deduplicates on it (Standard Webhooks `webhook-id`). Pure: types and names only.
 */

export const EVENT_TYPES = [
  "balance.low",
  "balance.recovered",
  "balance.depleted",
  "grant.created",
  "grant.expired",
  "hold.expired",
  "allocation.granted",
  "referral.rewarded",
  "topup.succeeded",
  "topup.refunded",
  "topup.disputed",
  "purchase.refund_shortfall",
  "auto_recharge.failed",
  "credit_request.created",
  "credit_request.accepted",
  "credit_request.rejected",
] as const;
export type EventType = (typeof EVENT_TYPES)[number];

/** One event as it leaves a team object (and as a delivery's JSON body carries it). */
export interface OutboundEvent {
  /** `evt_…`, unique and stable: the Standard Webhooks `webhook-id`. */
  id: string;
  teamId: string;
  /** Per team, 1, 2, 3, … in the order the changes committed. */
  seq: number;
  type: EventType;
  /** ISO-8601 UTC, when the change committed. */
  createdAt: string;
  data: Record<string, unknown>;
}
