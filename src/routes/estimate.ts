/**
 * The credit planner: POST …/estimate prices a list of items for the team (with its plan) and
 * shows what a spend of it would draw, grant by grant in spending order, and which of the plan's
 * packs would cover a shortfall. Writes nothing; takes no Idempotency-Key.
 */
import { createRoute, type OpenAPIHono, z } from "@hono/zod-openapi";
import type { AppEnv } from "../app-env";
import { catalogView, quoteCharge } from "../client/catalog-copy";
import { resolveTeam, unwrap } from "../client/ledger-client";
import { CATEGORIES } from "../domain/vocabulary";
import { MAX_AMOUNT_CREDITS, MAX_ESTIMATE_ITEMS } from "../limits";
import { commonErrors, Feature, Quantity, TeamParams, Tier } from "./schemas";

const EstimateBody = z
  .object({
    items: z
      .array(z.object({ feature: Feature, quantity: Quantity.optional(), tier: Tier.optional() }).strict())
      .min(1)
      .max(MAX_ESTIMATE_ITEMS),
  })
  .strict()
  .openapi("EstimateInput");

const EstimateReply = z
  .object({
    lines: z.array(
      z.object({
        feature: z.string(),
        quantity: z.number(),
        tier: Tier.optional(),
        unitCredits: z.number().int().nullable(),
        credits: z.number().int(),
      }),
    ),
    total: z.number().int(),
    availableNow: z.number().int(),
    afterEstimate: z.number().int().openapi({ description: "available − total when sufficient, else 0" }),
    shortfall: z.number().int().openapi({ description: "total − available when not sufficient, else 0" }),
    sufficient: z.boolean(),
    drawdown: z
      .array(
        z.object({
          grantId: z.string(),
          category: z.enum(CATEGORIES),
          amount: z.number().int(),
          expiresAt: z.string().nullable(),
        }),
      )
      .openapi({ description: "what a spend of `total` would take from each grant, in spending order" }),
    suggestedPacks: z
      .array(z.object({ id: z.string(), priceMinor: z.number().int(), credits: z.number().int() }))
      .openapi({ description: "the plan's packs covering the shortfall (cheapest first), or the largest" }),
    planId: z.string().nullable(),
    priceVersion: z.number().int().nullable(),
  })
  .openapi("Estimate");

const postEstimate = createRoute({
  method: "post",
  path: "/v1/teams/{teamId}/estimate",
  tags: ["Spending"],
  summary: "Plan what items would cost and draw, writing nothing",
  request: {
    params: TeamParams,
    body: { content: { "application/json": { schema: EstimateBody } }, required: true },
  },
  responses: {
    200: { description: "The estimate", content: { "application/json": { schema: EstimateReply } } },
    ...commonErrors,
  },
});

export function registerEstimateRoutes(app: OpenAPIHono<AppEnv>): void {
  app.openapi(postEstimate, async (c) => {
    const { teamId } = c.req.valid("param");
    const { items } = c.req.valid("json");
    const view = await catalogView(c.env, (p) => c.executionCtx.waitUntil(p));
    for (const [i, item] of items.entries()) quoteCharge(view, item, "hold", MAX_AMOUNT_CREDITS, `items[${i}].feature`);
    const route = resolveTeam(c.env, teamId);
    const quotes = view.quotesFor(new Set(items.map((i) => i.feature)));
    return c.json(unwrap(c, await route.ledger.estimate(route.poolTeamId, items, quotes)), 200);
  });
}
