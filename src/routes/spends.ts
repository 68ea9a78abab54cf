/**
 * Spending: one charge, or a batch of up to MAX_BATCH_ITEMS in one transaction. Each charge is
 * priced first (domain/pricing.ts: the `amount` given, or the price book's; the catalog is empty
 * until features can be defined, so today a spend without `amount` is refused rather than
 * guessed), then sent to the object holding the team's pool.
 */
import { createRoute, type OpenAPIHono, z } from "@hono/zod-openapi";
import type { AppEnv } from "../app-env";
import { idempotency, type LedgerRoute, resolveTeam, unwrap } from "../client/ledger-client";
import { type ChargeRequest, EMPTY_CATALOG, priceCharge } from "../domain/pricing";
import type { ChargeInput } from "../domain/vocabulary";
import { ApiError } from "../http/problem";
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
    amount: AmountCredits.optional().openapi({ description: "credits to spend; required until the price book exists" }),
    dimensions: DimensionsInput.optional(),
    reference: Reference.optional(),
  })
  .strict()
  .openapi("SpendInput");

/** A charge priced (or refused with 400) and attributed to the member it is made for. */
function toCharge(route: LedgerRoute, request: ChargeRequest, where = "feature"): ChargeInput {
  const priced = priceCharge(request, EMPTY_CATALOG, MAX_AMOUNT_CREDITS, where);
  if (!priced.ok) throw ApiError.from(priced);
  return { ...priced.charge, memberTeamId: route.memberTeamId };
}

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
  z.object({ index: z.number().int(), status: z.literal("skipped") }),
]);

const postBatch = createRoute({
  method: "post",
  path: "/v1/teams/{teamId}/spends/batch",
  tags: ["Spending"],
  summary: "Spend for many items in one transaction",
  description:
    "`all_or_nothing`: every item is spent, or none is (402). `until_insufficient`: items are spent in order until one does not fit; that one is `insufficient` and the rest `skipped`.",
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
    const idem = idempotency(c, c.req.valid("header")["idempotency-key"], body);
    const route = resolveTeam(c.env, teamId);
    const reply = await route.ledger.spend(route.poolTeamId, toCharge(route, body), idem);
    return c.json(unwrap(c, reply), 201);
  });

  app.openapi(postBatch, async (c) => {
    const { teamId } = c.req.valid("param");
    const body = c.req.valid("json");
    const route = resolveTeam(c.env, teamId);
    const items = body.items.map((item, i) => toCharge(route, item, `items[${i}].feature`));
    const idem = idempotency(c, c.req.valid("header")["idempotency-key"], body);
    const reply = await route.ledger.spendBatch(route.poolTeamId, items, body.mode, idem);
    return c.json(unwrap(c, reply), 200);
  });
}
