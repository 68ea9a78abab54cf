/**
 * POST /v1/teams/{teamId}/checkout-sessions: buy a pack (or a custom amount) by card through
 * Stripe Checkout. The route checks that this actor may buy for this team on its plan
 * (purchase-context.ts), prices the purchase on the plan (domain/plans.ts), and asks Stripe for a
 * `payment` session whose metadata, on the session and on its payment intent, says which team
 * gets how many credits: the webhook (stripe-webhook.ts) credits exactly that, once, and refunds
 * and disputes find their team from the intent. Nothing is written here: the ledger changes only
 * when Stripe says the money is in.
 *
 * An Idempotency-Key is passed to Stripe (scoped to the team and route), so a retry returns the
 * same session; the same key with another body is 422, as everywhere.
 */
import { createRoute, type OpenAPIHono, z } from "@hono/zod-openapi";
import Stripe from "stripe";
import type { AppEnv } from "../app-env";
import { ApiError } from "../http/problem";
import { MAX_CHECKOUT_URL_LENGTH, MAX_PLAN_ID_LENGTH, MAX_PRICE_MINOR } from "../limits";
import { stripeClient } from "../stripe/client";
import { pricedOn, purchaseContext } from "./purchase-context";
import { errorResponse, mutationErrors, OptionalIdempotencyHeaders, TeamParams } from "./schemas";

const ReturnUrl = z
  .url({ protocol: /^https?$/, error: "must be an http(s) URL" })
  .max(MAX_CHECKOUT_URL_LENGTH)
  .openapi({ example: "https://app.example.com/billing/done" });

const CheckoutBody = z
  .object({
    packId: z.string().min(1).max(MAX_PLAN_ID_LENGTH).optional().openapi({ description: "one of the plan's packs" }),
    amountMinor: z
      .number()
      .int()
      .min(1)
      .max(MAX_PRICE_MINOR)
      .optional()
      .openapi({ description: "a custom amount in minor units, within the plan's customAmount bounds" }),
    successUrl: ReturnUrl,
    cancelUrl: ReturnUrl,
    savePaymentMethod: z.boolean().optional().openapi({
      description:
        "save the card for off-session charges (auto-recharge): a Stripe customer is created and the card kept",
    }),
  })
  .strict()
  .refine((b) => (b.packId === undefined) !== (b.amountMinor === undefined), {
    message: 'send exactly one of "packId" and "amountMinor"',
  })
  .openapi("CheckoutSessionInput");

const CheckoutSession = z
  .object({
    id: z.string().openapi({ example: "cs_test_a1b2c3" }),
    url: z.string().nullable().openapi({ description: "where to send the buyer" }),
    credits: z.number().int().openapi({ description: "what the purchase credits once paid" }),
    priceMinor: z.number().int(),
    currency: z.string(),
    packId: z.string().nullable(),
  })
  .openapi("CheckoutSession");

const postCheckout = createRoute({
  method: "post",
  path: "/v1/teams/{teamId}/checkout-sessions",
  tags: ["Buying credits"],
  summary: "Start a Stripe Checkout for a pack or a custom amount",
  request: {
    params: TeamParams,
    headers: OptionalIdempotencyHeaders,
    body: { content: { "application/json": { schema: CheckoutBody } }, required: true },
  },
  responses: {
    ...mutationErrors,
    201: { description: "Session created", content: { "application/json": { schema: CheckoutSession } } },
    403: errorResponse(
      "forbidden: the actor's role may not buy, the team is a subaccount, or its plan is not paid (`reason`)",
    ),
    503: errorResponse("stripe_not_configured: STRIPE_SECRET_KEY is not set"),
  },
});

export function registerCheckoutRoutes(app: OpenAPIHono<AppEnv>): void {
  app.openapi(postCheckout, async (c) => {
    const { teamId } = c.req.valid("param");
    const body = c.req.valid("json");
    const key = c.req.valid("header")["idempotency-key"];
    const stripe = stripeClient(c.env);
    if (!stripe) throw new ApiError("stripe_not_configured", "set STRIPE_SECRET_KEY to sell credits by card");
    const ctx = await purchaseContext(c, teamId);
    const priced = pricedOn(
      ctx,
      body.packId !== undefined ? { packId: body.packId } : { amountMinor: body.amountMinor ?? 0 },
    );
    // Stripe stores metadata values as strings.
    const metadata: Record<string, string> = { teamId, credits: String(priced.credits) };
    if (priced.packId) metadata.packId = priced.packId;
    if (ctx.actor) metadata.actorId = ctx.actor.id;
    const name = priced.packId ? `${priced.credits} credits (${priced.packId})` : `${priced.credits} credits`;
    let session: Stripe.Checkout.Session;
    try {
      session = await stripe.checkout.sessions.create(
        {
          mode: "payment",
          client_reference_id: teamId,
          success_url: body.successUrl,
          cancel_url: body.cancelUrl,
          line_items: [
            {
              quantity: 1,
              price_data: { currency: priced.currency, unit_amount: priced.priceMinor, product_data: { name } },
            },
          ],
          metadata,
          payment_intent_data: body.savePaymentMethod ? { metadata, setup_future_usage: "off_session" } : { metadata },
          ...(body.savePaymentMethod ? { customer_creation: "always" as const } : {}),
        },
        key ? { idempotencyKey: `checkout:${teamId}:${key}` } : undefined,
      );
    } catch (err) {
      if (err instanceof Stripe.errors.StripeIdempotencyError)
        throw new ApiError("idempotency_key_reused", "this Idempotency-Key was used for another checkout");
      if (err instanceof Stripe.errors.StripeInvalidRequestError)
        throw new ApiError("invalid_request", `Stripe refused the session: ${err.message}`);
      throw err;
    }
    return c.json(
      {
        id: session.id,
        url: session.url,
        credits: priced.credits,
        priceMinor: priced.priceMinor,
        currency: priced.currency,
        packId: priced.packId,
      },
      201,
    );
  });
}
