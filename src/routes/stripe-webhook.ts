/**
 * POST /webhooks/stripe: Stripe tells us about payments. Outside /v1's bearer key: the raw body
 * is verified with the endpoint's signing secret (SubtleCrypto, a 300 s tolerance), and a missing,
 * malformed, wrong or stale signature is 400 with nothing written.
 *
 * Each event is read (stripe/read-event.ts) into what it means for one team's purchases and
 * applied in that team's object, which credits a purchase once and takes back a refund or a
 * dispute once, keyed by Stripe's ids (object/purchases.ts). The answer is 200 only once that is
 * durable; any fault is a 5xx, so Stripe retries (for up to three days) and the retry finds the
 * work done or does it. An event for a team that does not exist, or that carries metadata we
 * cannot use, is kept in D1 for an admin (GET /v1/stripe/unmatched-events) and acknowledged.
 */
import { createRoute, type OpenAPIHono, z } from "@hono/zod-openapi";
import type Stripe from "stripe";
import type { AppEnv } from "../app-env";
import { teamLedger } from "../client/ledger-client";
import { indexPaymentIntent, listUnmatched, recordUnmatched, teamOfPaymentIntent } from "../db/stripe";
import type { PurchaseEventResult } from "../domain/purchase-events";
import { ApiError } from "../http/problem";
import {
  DEFAULT_PAGE_SIZE,
  MAX_PAGE_SIZE,
  MAX_STRIPE_EVENT_PAYLOAD_BYTES,
  STRIPE_WEBHOOK_TOLERANCE_SECONDS,
} from "../limits";
import { stripeClient, verifyStripeEvent } from "../stripe/client";
import { type RoutedPurchaseEvent, readStripeEvent } from "../stripe/read-event";
import { decodeCursor, encodeCursor, SEQ_PATTERN } from "./cursor";
import { commonErrors, errorResponse } from "./schemas";

const Received = z
  .object({
    received: z.literal(true),
    eventId: z.string(),
    handled: z.enum(["applied", "ignored", "unmatched"]),
    results: z.array(
      z.object({
        teamId: z.string(),
        outcome: z.string(),
        purchaseId: z.string().nullable(),
        credits: z.number().int(),
        shortfallCredits: z.number().int(),
      }),
    ),
  })
  .openapi("StripeWebhookReceived");

const postStripeWebhook = createRoute({
  method: "post",
  path: "/webhooks/stripe",
  tags: ["Buying credits"],
  summary: "Stripe's webhook (signed; no API key)",
  description:
    "Stripe events, verified by the `Stripe-Signature` header against `STRIPE_WEBHOOK_SECRET` (300 s tolerance). " +
    "A Checkout Session is credited once (`metadata.credits` to `metadata.teamId`); refunds and disputes take back " +
    "their share once. 200 only after the change is durable; a 5xx makes Stripe retry.",
  security: [],
  responses: {
    200: {
      description: "Received (applied, ignored or kept as unmatched)",
      content: { "application/json": { schema: Received } },
    },
    400: errorResponse("invalid_request: missing, malformed, wrong or stale signature; nothing written"),
    413: errorResponse("payload_too_large"),
    500: errorResponse("internal: not applied; Stripe retries"),
    503: errorResponse("stripe_not_configured: STRIPE_WEBHOOK_SECRET is not set"),
  },
});

const UnmatchedEvent = z
  .object({
    eventId: z.string(),
    type: z.string(),
    teamId: z.string().nullable(),
    reason: z.string(),
    receivedAt: z.string(),
    payload: z
      .string()
      .openapi({ description: `the event as received (its first ${MAX_STRIPE_EVENT_PAYLOAD_BYTES} bytes)` }),
  })
  .openapi("UnmatchedStripeEvent");

const listUnmatchedRoute = createRoute({
  method: "get",
  path: "/v1/stripe/unmatched-events",
  tags: ["Buying credits"],
  summary: "Stripe events no team took (unknown team, unusable metadata), newest first",
  request: {
    query: z.object({
      limit: z.coerce.number().int().min(1).max(MAX_PAGE_SIZE).optional(),
      cursor: z.string().max(200).optional(),
    }),
  },
  responses: {
    200: {
      description: "A page of unmatched events",
      content: {
        "application/json": {
          schema: z.object({ events: z.array(UnmatchedEvent), nextCursor: z.string().nullable() }),
        },
      },
    },
    ...commonErrors,
  },
});

export function registerStripeWebhookRoutes(app: OpenAPIHono<AppEnv>): void {
  app.openapi(listUnmatchedRoute, async (c) => {
    const { limit = DEFAULT_PAGE_SIZE, cursor } = c.req.valid("query");
    const beforeMs = cursor ? Number(decodeCursor(cursor, "su", [SEQ_PATTERN])[0]) : Number.MAX_SAFE_INTEGER;
    const rows = await listUnmatched(c.env.DB, beforeMs, limit);
    const last = rows.at(-1);
    return c.json(
      {
        events: rows.map((r) => ({
          eventId: r.eventId,
          type: r.type,
          teamId: r.teamId,
          reason: r.reason,
          receivedAt: new Date(r.receivedAtMs).toISOString(),
          payload: r.payload,
        })),
        nextCursor: rows.length === limit && last ? encodeCursor("su", [last.receivedAtMs]) : null,
      },
      200,
    );
  });

  app.openapi(postStripeWebhook, async (c) => {
    const secret = c.env.STRIPE_WEBHOOK_SECRET;
    if (!secret) throw new ApiError("stripe_not_configured", "set STRIPE_WEBHOOK_SECRET to receive Stripe's webhooks");
    const signature = c.req.header("stripe-signature");
    if (!signature) throw new ApiError("invalid_request", "the Stripe-Signature header is missing");
    const raw = await c.req.text();
    let event: Stripe.Event;
    try {
      event = await verifyStripeEvent(raw, signature, secret, STRIPE_WEBHOOK_TOLERANCE_SECONDS);
    } catch {
      throw new ApiError(
        "invalid_request",
        "the Stripe signature does not verify (wrong secret, altered body or too old)",
      );
    }
    const read = readStripeEvent(event);
    const nowMs = Date.now();
    const unmatched = async (teamId: string | null, reason: string) => {
      await recordUnmatched(c.env.DB, {
        eventId: event.id,
        type: event.type,
        teamId,
        reason,
        payload: raw.length <= MAX_STRIPE_EVENT_PAYLOAD_BYTES ? raw : raw.slice(0, MAX_STRIPE_EVENT_PAYLOAD_BYTES),
        receivedAtMs: nowMs,
      });
      console.warn(JSON.stringify({ stripeEvent: event.id, type: event.type, unmatched: reason }));
    };
    if (read.kind === "ignore")
      return c.json({ received: true as const, eventId: event.id, handled: "ignored" as const, results: [] }, 200);
    if (read.kind === "unmatched") {
      await unmatched(read.teamId, read.reason);
      return c.json({ received: true as const, eventId: event.id, handled: "unmatched" as const, results: [] }, 200);
    }
    const results: ({ teamId: string } & Omit<PurchaseEventResult, "grantId">)[] = [];
    let handled: "applied" | "unmatched" = "applied";
    for (const item of read.items) {
      const teamId = await teamOf(c.env, item);
      if (!teamId) {
        await unmatched(null, `no team paid with payment intent ${item.paymentIntentId}`);
        handled = "unmatched";
        continue;
      }
      const reply = await teamLedger(c.env, teamId).applyPurchaseEvent(teamId, item.event);
      if (!reply.ok) {
        if (reply.code !== "not_found") throw new Error(`applyPurchaseEvent refused: ${reply.code}`);
        await unmatched(teamId, `team ${teamId} does not exist`);
        handled = "unmatched";
        continue;
      }
      const { grantId: _g, ...rest } = reply.body;
      results.push({ teamId, ...rest });
      // Refunds and disputes carry the payment intent only: remember whose it is.
      if (
        (item.event.type === "complete" || item.event.type === "fail") &&
        item.paymentIntentId &&
        reply.body.purchaseId
      )
        await indexPaymentIntent(c.env.DB, {
          paymentIntentId: item.paymentIntentId,
          teamId,
          purchaseId: reply.body.purchaseId,
          nowMs,
        });
    }
    return c.json({ received: true as const, eventId: event.id, handled, results }, 200);
  });
}

/**
 * The team an event is for: named by it, else the payment intent's team in D1's index, else the
 * intent's metadata as Stripe has it (a refund that overtook its purchase's completion event).
 */
async function teamOf(env: Cloudflare.Env, item: RoutedPurchaseEvent): Promise<string | null> {
  if (item.teamId) return item.teamId;
  if (!item.paymentIntentId) return null;
  const indexed = await teamOfPaymentIntent(env.DB, item.paymentIntentId);
  if (indexed) return indexed;
  const stripe = stripeClient(env);
  if (!stripe) return null;
  const intent = await stripe.paymentIntents.retrieve(item.paymentIntentId);
  return intent.metadata?.teamId ?? null;
}
