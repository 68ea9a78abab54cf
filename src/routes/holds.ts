/**
 * Holds: reserve credits for work whose outcome is not known yet (pay on success), then capture
 * all or part of them, release them, or let them expire at their deadline. Extend adds credits
 * or moves the deadline. A hold resolves exactly once; acting on a resolved hold is 409.
 */
import { createRoute, type OpenAPIHono, z } from "@hono/zod-openapi";
import type { AppEnv } from "../app-env";
import { catalogView, quoteCharge } from "../client/catalog-copy";
import { idempotency, resolveTeam, unwrap } from "../client/ledger-client";
import { ApiError } from "../http/problem";
import { MAX_AMOUNT_CREDITS, MAX_HOLD_TTL_SECONDS, MAX_REFERENCE_LENGTH, MIN_HOLD_TTL_SECONDS } from "../limits";
import {
  AmountCredits,
  DimensionsInput,
  errorResponse,
  Feature,
  Hold,
  HoldReply,
  IdempotencyHeaders,
  insufficientCreditsResponse,
  mutationErrors,
  ObjectId,
  Quantity,
  Reference,
  TeamParams,
  Text,
  Tier,
} from "./schemas";

const TtlSeconds = z.number().int().min(MIN_HOLD_TTL_SECONDS).max(MAX_HOLD_TTL_SECONDS).openapi({ example: 300 });

const HoldBody = z
  .object({
    feature: Feature.optional(),
    quantity: Quantity.optional(),
    tier: Tier.optional(),
    amount: AmountCredits.optional().openapi({
      description:
        "credits to reserve; without it, `feature` must be in the price book and the hold is its price × quantity (at the tier, with the team's plan's price)",
    }),
    ttlSeconds: TtlSeconds,
    dimensions: DimensionsInput.optional(),
    reference: Reference.optional(),
  })
  .strict()
  .openapi("HoldInput");

const HoldParams = TeamParams.extend({ holdId: ObjectId.openapi({ param: { name: "holdId", in: "path" } }) });

const holdReply = (description: string) => ({ description, content: { "application/json": { schema: HoldReply } } });
const notPending = errorResponse("hold_not_pending: the hold was already captured, released or expired");

const postHold = createRoute({
  method: "post",
  path: "/v1/teams/{teamId}/holds",
  tags: ["Holds"],
  summary: "Reserve credits until capture, release or the deadline",
  request: {
    params: TeamParams,
    headers: IdempotencyHeaders,
    body: { content: { "application/json": { schema: HoldBody } }, required: true },
  },
  responses: {
    201: holdReply("Reserved; one entry per grant drawn from"),
    402: insufficientCreditsResponse,
    ...mutationErrors,
  },
});

const getHold = createRoute({
  method: "get",
  path: "/v1/teams/{teamId}/holds/{holdId}",
  tags: ["Holds"],
  summary: "Read a hold",
  request: { params: HoldParams },
  responses: {
    200: { description: "The hold", content: { "application/json": { schema: Hold } } },
    ...mutationErrors,
  },
});

const CaptureBody = z
  .object({ amount: AmountCredits.optional().openapi({ description: "at most the hold's amount; default all" }) })
  .strict();
const ReleaseBody = z.object({ reason: Text(MAX_REFERENCE_LENGTH).optional() }).strict();
const ExtendBody = z
  .object({
    amount: AmountCredits.optional().openapi({ description: "credits to add to the hold" }),
    ttlSeconds: TtlSeconds.optional().openapi({ description: "new deadline, counted from now" }),
  })
  .strict();

function holdAction<B extends z.ZodType>(action: string, summary: string, body: B) {
  return createRoute({
    method: "post",
    path: `/v1/teams/{teamId}/holds/{holdId}/${action}`,
    tags: ["Holds"],
    summary,
    request: {
      params: HoldParams,
      headers: IdempotencyHeaders,
      body: { content: { "application/json": { schema: body } }, required: false },
    },
    responses: {
      200: holdReply("The hold after the action"),
      402: insufficientCreditsResponse,
      409: notPending,
      ...mutationErrors,
    },
  });
}

const capture = holdAction("capture", "Capture all or part of a hold; the rest is returned", CaptureBody);
const release = holdAction("release", "Release a hold; its credits are returned", ReleaseBody);
const extend = holdAction("extend", "Add credits to a hold or move its deadline", ExtendBody);

export function registerHoldRoutes(app: OpenAPIHono<AppEnv>): void {
  app.openapi(postHold, async (c) => {
    const { teamId } = c.req.valid("param");
    const body = c.req.valid("json");
    if (body.feature === undefined && body.amount === undefined)
      throw new ApiError("invalid_request", 'send "amount" with the credits to reserve, or a priced "feature"');
    const { feature } = body;
    const view = await catalogView(c.env, (p) => c.executionCtx.waitUntil(p));
    const quote =
      feature === undefined ? undefined : quoteCharge(view, { ...body, feature }, "hold", MAX_AMOUNT_CREDITS);
    const route = resolveTeam(c.env, teamId);
    const idem = idempotency(c, c.req.valid("header")["idempotency-key"], body);
    const input = { ...body, memberTeamId: route.memberTeamId };
    const reply = await route.ledger.createHold(route.poolTeamId, input, quote, idem, c.get("actor"));
    return c.json(unwrap(c, reply), 201);
  });

  app.openapi(getHold, async (c) => {
    const { teamId, holdId } = c.req.valid("param");
    const route = resolveTeam(c.env, teamId);
    return c.json(unwrap(c, await route.ledger.getHold(route.poolTeamId, holdId)), 200);
  });

  app.openapi(capture, async (c) => {
    const { teamId, holdId } = c.req.valid("param");
    const body = c.req.valid("json") as z.infer<typeof CaptureBody>;
    const idem = idempotency(c, c.req.valid("header")["idempotency-key"], body);
    const route = resolveTeam(c.env, teamId);
    const reply = await route.ledger.captureHold(route.poolTeamId, holdId, body.amount, idem, c.get("actor"));
    return c.json(unwrap(c, reply), 200);
  });

  app.openapi(release, async (c) => {
    const { teamId, holdId } = c.req.valid("param");
    const body = c.req.valid("json") as z.infer<typeof ReleaseBody>;
    const idem = idempotency(c, c.req.valid("header")["idempotency-key"], body);
    const route = resolveTeam(c.env, teamId);
    const reply = await route.ledger.releaseHold(route.poolTeamId, holdId, body.reason, idem, c.get("actor"));
    return c.json(unwrap(c, reply), 200);
  });

  app.openapi(extend, async (c) => {
    const { teamId, holdId } = c.req.valid("param");
    const body = c.req.valid("json") as z.infer<typeof ExtendBody>;
    if (body.amount === undefined && body.ttlSeconds === undefined)
      throw new ApiError("invalid_request", 'send "amount", "ttlSeconds" or both');
    const idem = idempotency(c, c.req.valid("header")["idempotency-key"], body);
    const route = resolveTeam(c.env, teamId);
    const reply = await route.ledger.extendHold(route.poolTeamId, holdId, body, idem, c.get("actor"));
    return c.json(unwrap(c, reply), 200);
  });
}
