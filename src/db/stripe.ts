/**
 * D1's Stripe tables (schema.ts): the payment-intent index that routes refunds and disputes to
 * their team, and the unmatched events kept for an admin. Off every spend path: only the Stripe
 * webhook and an admin's read use them.
 */
import { desc, eq, lt } from "drizzle-orm";
import { drizzle } from "drizzle-orm/d1";
import { stripePaymentIntents, stripeUnmatchedEvents } from "./schema";

/** The team a payment intent paid for, when a purchase of it was credited. */
export async function teamOfPaymentIntent(d1: D1Database, paymentIntentId: string): Promise<string | null> {
  const rows = await drizzle(d1)
    .select({ teamId: stripePaymentIntents.teamId })
    .from(stripePaymentIntents)
    .where(eq(stripePaymentIntents.paymentIntentId, paymentIntentId))
    .limit(1);
  return rows[0]?.teamId ?? null;
}

/** Records which team a payment intent paid for (idempotent: the first record stays). */
export async function indexPaymentIntent(
  d1: D1Database,
  row: { paymentIntentId: string; teamId: string; purchaseId: string; nowMs: number },
): Promise<void> {
  await drizzle(d1)
    .insert(stripePaymentIntents)
    .values({
      paymentIntentId: row.paymentIntentId,
      teamId: row.teamId,
      purchaseId: row.purchaseId,
      createdAtMs: row.nowMs,
    })
    .onConflictDoNothing();
}

export interface UnmatchedStripeEvent {
  eventId: string;
  type: string;
  teamId: string | null;
  reason: string;
  payload: string;
  receivedAtMs: number;
}

/** Keeps an event no team took, once per event id. */
export async function recordUnmatched(d1: D1Database, e: UnmatchedStripeEvent): Promise<void> {
  await drizzle(d1).insert(stripeUnmatchedEvents).values(e).onConflictDoNothing();
}

/** Unmatched events, newest first, received before `beforeMs`, at most `limit`. */
export async function listUnmatched(d1: D1Database, beforeMs: number, limit: number): Promise<UnmatchedStripeEvent[]> {
  return drizzle(d1)
    .select()
    .from(stripeUnmatchedEvents)
    .where(lt(stripeUnmatchedEvents.receivedAtMs, beforeMs))
    .orderBy(desc(stripeUnmatchedEvents.receivedAtMs))
    .limit(limit);
}
