/**
 * Spending: one charge, or a batch of up to MAX_BATCH_ITEMS in one transaction. Each charge is
 * checked against the isolate's copy of the price book (client/catalog-copy.ts: an unknown
 * feature or tier is a 400 saved nowhere), then sent with its quote to the object holding the
 * team's pool, which prices it with the team's plan (domain/pricing.ts) in the spend's transaction.
 */
import { createRoute, type OpenAPIHono, z } from "@hono/zod-openapi";
import type { AppEnv } from "../app-env";
import { catalogView, quoteCharge } from "../client/catalog-copy";
import { idempotency, resolveTeam, unwrap } from "../client/ledger-client";
import { MAX_AMOUNT_CREDITS, MAX_BATCH_ITEMS } from "../limits";
import {
  AmountCredits,
  BalanceSummary,
  DimensionsInput,
  Entry,
  Feature,
  IdempotencyHeaders,
  insufficientCreditsResponse,
  mutationErrors,
  Quantity,
  Reference,
  Spend,
  TeamParams,
  Tier,
} from "./schemas";

const SpendBody = z
  .object({
    feature: Feature,
    quantity: Quantity.optional(),
    tier: Tier.optional(),
    amount: AmountCredits.optional().openapi({
      description:
        "credits to spend (then `feature` is a label); without it, `feature` must be in the price book and the cost is its price × quantity, at the tier, with the team's plan's price, rounded up to whole credits",
    }),
    dimensions: DimensionsInput.optional(),
    reference: Reference.optional(),
  })
  .strict()
  .openapi("SpendInput");

const postSpend = createRoute({
  method: "post",
  path: "/v1/teams/{teamId}/spends",
  tags: ["Spending"],
  summary: "Spend credits now",
  request: {
    params: TeamParams,
    headers: IdempotencyHeaders,
    body: { content: { "application/json": { schema: SpendBody } }, required: true },
  },
  responses: {
    201: {
      description: "Spent; one entry per grant drawn from",
      content: {
        "application/json": {
          schema: z.object({ spend: Spend, entries: z.array(Entry), balance: BalanceSummary }),
        },
      },
    },
    402: insufficientCreditsResponse,
    ...mutationErrors,
  },
});

const BatchBody = z
  .object({
    items: z.array(SpendBody).min(1).max(MAX_BATCH_ITEMS),
    mode: z.enum(["all_or_nothing", "until_insufficient"]),
  })
  .strict()
  .openapi("SpendBatchInput");

const BatchResult = z.discriminatedUnion("status", [
  z.object({ index: z.number().int(), status: z.literal("spent"), spend: Spend, entryCount: z.number().int() }),
  z.object({
    index: z.number().int(),
    status: z.literal("insufficient"),
    required: z.number().int(),
    available: z.number().int(),
  }),
  z.object({
    index: z.number().int(),
    status: z.literal("cap_exceeded").openapi({
      description: "the item would pass a cap on the agency's pooled credits (the tightest cap's facts)",
    }),
    required: z.number().int(),
    scope: z.enum(["subaccount", "member", "key"]),
    subject: z.string(),
    cap: z.number().int(),
    remaining: z.number().int(),
  }),
  z.object({ index: z.number().int(), status: z.literal("skipped") }),
]);

const postBatch = createRoute({
  method: "post",
  path: "/v1/teams/{teamId}/spends/batch",
  tags: ["Spending"],
  summary: "Spend for many items in one transaction",
  description:
    "`all_or_nothing`: every item is spent, or none is (402). `until_insufficient`: items are spent in order until one does not fit; that one is `insufficient` (or `cap_exceeded`, past a cap on an agency's pooled credits) and the rest `skipped`.",
  request: {
    params: TeamParams,
    headers: IdempotencyHeaders,
    body: { content: { "application/json": { schema: BatchBody } }, required: true },
  },
  responses: {
    200: {
      description: "Per-item results",
      content: { "application/json": { schema: z.object({ results: z.array(BatchResult), balance: BalanceSummary }) } },
    },
    402: insufficientCreditsResponse,
    ...mutationErrors,
  },
});

export function registerSpendRoutes(app: OpenAPIHono<AppEnv>): void {
  app.openapi(postSpend, async (c) => {
    const { teamId } = c.req.valid("param");
    const body = c.req.valid("json");
    const view = await catalogView(c.env, (p) => c.executionCtx.waitUntil(p));
    const quote = quoteCharge(view, body, "spend", MAX_AMOUNT_CREDITS);
    const idem = idempotency(c, c.req.valid("header")["idempotency-key"], body);
    const route = resolveTeam(c.env, teamId);
    const reply = await route.ledger.spend(
      route.poolTeamId,
      { ...body, memberTeamId: route.memberTeamId },
      quote,
      idem,
      c.get("actor"),
    );
    return c.json(unwrap(c, reply), 201);
  });

  app.openapi(postBatch, async (c) => {
    const { teamId } = c.req.valid("param");
    const body = c.req.valid("json");
    const route = resolveTeam(c.env, teamId);
    const view = await catalogView(c.env, (p) => c.executionCtx.waitUntil(p));
    for (const [i, item] of body.items.entries())
      quoteCharge(view, item, "spend", MAX_AMOUNT_CREDITS, `items[${i}].feature`);
    const quotes = view.quotesFor(new Set(body.items.map((i) => i.feature)));
    const items = body.items.map((item) => ({ ...item, memberTeamId: route.memberTeamId }));
    const idem = idempotency(c, c.req.valid("header")["idempotency-key"], body);
    const reply = await route.ledger.spendBatch(route.poolTeamId, items, quotes, body.mode, idem, c.get("actor"));
    return c.json(unwrap(c, reply), 200);
  });
}
