/**
 * Credit requests: buying credits by bank transfer, crypto or another way outside Stripe (the
 * client portal's "manual credit purchases"). The buyer asks for a pack or a number of credits;
 * the request waits, `pending`, until an owner or admin of the team (or the admin key, with no
 * actor) accepts it, which grants the credits once, or rejects it, which grants nothing.
 *
 * Who may ask is what may buy (routes/purchase-context.ts: a paid plan, a buying role, never a
 * subaccount); who may decide is domain/roles.ts decidingRefusal. Both are checked here, before
 * the ledger, so their 403s are saved under no key. The object keeps the request and decides it
 * exactly once (object/credit-requests.ts).
 */
import { createRoute, type OpenAPIHono, z } from "@hono/zod-openapi";
import type { Context } from "hono";
import type { AppEnv } from "../app-env";
import { idempotency, teamLedger, unwrap } from "../client/ledger-client";
import { currencyExponent, type Plan } from "../domain/plans";
import { decidingRefusal } from "../domain/roles";
import type { IdempotencyInput } from "../domain/vocabulary";
import { ApiError } from "../http/problem";
import { DEFAULT_PAGE_SIZE, MAX_CREDIT_REQUEST_CREDITS, MAX_PAGE_SIZE, MAX_REFERENCE_LENGTH } from "../limits";
import { decodeCursor, encodeCursor, SEQ_PATTERN } from "./cursor";
import { pricedOn, purchaseContext } from "./purchase-context";
import {
  commonErrors,
  errorResponse,
  forbiddenResponse,
  mutationErrors,
  ObjectId,
  OptionalIdempotencyHeaders,
  PlanId,
  Reference,
  TeamParams,
  Text,
} from "./schemas";

const METHODS = ["bank_transfer", "crypto", "other"] as const;
const STATUSES = ["pending", "accepted", "rejected"] as const;
const CURSOR_TAG = "crq";

/**
 * What `credits` cost on the plan, in its currency's minor units: the smallest price that buys at
 * least that many at the plan's rate,
 *
 *   priceMinor = ceil(credits × 10^exponent(currency) / creditsPerCurrencyUnit)
 *
 * rounded up, so that paying it would buy them (domain/plans.ts creditsForMinor rounds credits
 * down: creditsForMinor(priceMinor) ≥ credits) and a request never costs less than its credits are
 * sold for. 1,001 credits at 40 a pound: ceil(100,100 / 40) = 2,503 pence. Integers only (BigInt).
 */
export function priceOfCredits(plan: Pick<Plan, "currency" | "creditsPerCurrencyUnit">, credits: number): number {
  const scale = 10n ** BigInt(currencyExponent(plan.currency));
  const rate = BigInt(plan.creditsPerCurrencyUnit);
  return Number((BigInt(credits) * scale + rate - 1n) / rate);
}

const CreditRequestBody = z
  .object({
    packId: PlanId.optional().openapi({ description: "one of the plan's packs; or send `credits`" }),
    credits: z
      .number()
      .int("credits are whole numbers")
      .min(1)
      .max(MAX_CREDIT_REQUEST_CREDITS)
      .optional()
      .openapi({ description: "credits asked for, priced at the plan's rate (rounded up); or send `packId`" }),
    method: z.enum(METHODS),
    reference: Reference.optional().openapi({ description: "the transfer's reference, as the buyer sent it" }),
  })
  .strict()
  .openapi("CreditRequestInput");

const CreditRequest = z
  .object({
    id: z.string(),
    status: z.enum(STATUSES),
    credits: z.number().int(),
    priceMinor: z.number().int().optional().openapi({ description: "what the credits cost on the plan, minor units" }),
    currency: z.string().optional(),
    packId: z.string().optional(),
    method: z.enum(METHODS),
    reference: z.string().optional(),
    requestedBy: z.string().optional().openapi({ description: "the actor who asked (X-Actor-Id)" }),
    decidedBy: z.string().optional().openapi({ description: "the actor who decided; absent for the admin key" }),
    reason: z.string().optional().openapi({ description: "why it was rejected" }),
    grantId: z.string().optional().openapi({ description: "the grant an accepted request made" }),
    createdAt: z.string(),
    decidedAt: z.string().optional(),
  })
  .openapi("CreditRequest");

const creditRequestReply = (description: string) => ({
  description,
  content: { "application/json": { schema: CreditRequest } },
});

const RequestParams = TeamParams.extend({
  requestId: ObjectId.openapi({ param: { name: "requestId", in: "path" } }),
});

const postCreditRequest = createRoute({
  method: "post",
  path: "/v1/teams/{teamId}/credit-requests",
  tags: ["Buying credits"],
  summary: "Ask for credits paid by bank transfer, crypto or another way",
  description:
    "Send `packId` or `credits`. The request is `pending` until an owner or admin accepts it (its credits are then granted, `paid`, never expiring) or rejects it.",
  request: {
    params: TeamParams,
    headers: OptionalIdempotencyHeaders,
    body: { content: { "application/json": { schema: CreditRequestBody } }, required: true },
  },
  responses: {
    ...mutationErrors,
    201: creditRequestReply("Requested; pending"),
    403: forbiddenResponse("this actor may not buy for this team (role, subaccount, no or free plan)"),
  },
});

const ListQuery = z.object({
  status: z.enum(STATUSES).optional(),
  limit: z.coerce.number().int().min(1).max(MAX_PAGE_SIZE).optional(),
  cursor: z.string().max(200).optional(),
});

const listCreditRequests = createRoute({
  method: "get",
  path: "/v1/teams/{teamId}/credit-requests",
  tags: ["Buying credits"],
  summary: "The team's credit requests, newest first",
  request: { params: TeamParams, query: ListQuery },
  responses: {
    200: {
      description: "A page of credit requests",
      content: {
        "application/json": {
          schema: z.object({ creditRequests: z.array(CreditRequest), nextCursor: z.string().nullable() }),
        },
      },
    },
    ...commonErrors,
  },
});

const getCreditRequest = createRoute({
  method: "get",
  path: "/v1/teams/{teamId}/credit-requests/{requestId}",
  tags: ["Buying credits"],
  summary: "Read a credit request",
  request: { params: RequestParams },
  responses: { 200: creditRequestReply("The credit request"), ...commonErrors },
});

const RejectBody = z
  .object({ reason: Text(MAX_REFERENCE_LENGTH).optional().openapi({ description: "told to the buyer" }) })
  .strict();

const decisionResponses = {
  ...mutationErrors,
  200: creditRequestReply("The request, decided"),
  403: forbiddenResponse("only owners and admins decide credit requests"),
  409: errorResponse("conflict: the request was already decided (`requestStatus` says how)"),
};

const acceptCreditRequest = createRoute({
  method: "post",
  path: "/v1/teams/{teamId}/credit-requests/{requestId}/accept",
  tags: ["Buying credits"],
  summary: "Accept a credit request: its credits are granted, once",
  request: { params: RequestParams, headers: OptionalIdempotencyHeaders },
  responses: decisionResponses,
});

const rejectCreditRequest = createRoute({
  method: "post",
  path: "/v1/teams/{teamId}/credit-requests/{requestId}/reject",
  tags: ["Buying credits"],
  summary: "Reject a credit request: nothing is granted",
  request: {
    params: RequestParams,
    headers: OptionalIdempotencyHeaders,
    body: { content: { "application/json": { schema: RejectBody } }, required: false },
  },
  responses: decisionResponses,
});

/** The key and fingerprint when the request sent a key; the actor is part of what it asked. */
function optionalIdempotency(c: Context<AppEnv>, key: string | undefined, body: unknown): IdempotencyInput | null {
  return key === undefined ? null : idempotency(c, key, { body, actor: c.get("actor") ?? null });
}

/** What the buyer asked for: a pack or a number of credits, exactly one of them (else 400). */
function packOrCredits(body: {
  packId?: string | undefined;
  credits?: number | undefined;
}): { packId: string } | { credits: number } {
  if (body.packId !== undefined && body.credits === undefined) return { packId: body.packId };
  if (body.credits !== undefined && body.packId === undefined) return { credits: body.credits };
  throw new ApiError("invalid_request", 'send one of "packId" (a pack of the plan) or "credits", not both');
}

/**
 * Throws the 403 when the request's actor may not decide the team's credit requests (its role
 * matrix: read from the team only when the request names an actor).
 */
async function requireDecider(c: Context<AppEnv>, teamId: string): Promise<string | null> {
  const actor = c.get("actor");
  if (!actor) return null;
  const team = unwrap(c, await teamLedger(c.env, teamId).getTeam(teamId));
  const refusal = decidingRefusal(actor, team);
  if (refusal) throw ApiError.from(refusal);
  return actor.id;
}

export function registerCreditRequestRoutes(app: OpenAPIHono<AppEnv>): void {
  app.openapi(postCreditRequest, async (c) => {
    const { teamId } = c.req.valid("param");
    const body = c.req.valid("json");
    const choice = packOrCredits(body);
    const ctx = await purchaseContext(c, teamId);
    const priced =
      "packId" in choice
        ? pricedOn(ctx, choice)
        : {
            credits: choice.credits,
            priceMinor: priceOfCredits(ctx.plan, choice.credits),
            currency: ctx.plan.currency,
            packId: null,
          };
    const idem = optionalIdempotency(c, c.req.valid("header")["idempotency-key"], body);
    const input = {
      ...priced,
      method: body.method,
      reference: body.reference ?? null,
      requestedBy: ctx.actor?.id ?? null,
    };
    return c.json(unwrap(c, await teamLedger(c.env, teamId).createCreditRequest(teamId, input, idem)), 201);
  });

  app.openapi(listCreditRequests, async (c) => {
    const { teamId } = c.req.valid("param");
    const q = c.req.valid("query");
    const limit = q.limit ?? DEFAULT_PAGE_SIZE;
    const beforeSeq =
      q.cursor === undefined ? Number.MAX_SAFE_INTEGER : Number(decodeCursor(q.cursor, CURSOR_TAG, [SEQ_PATTERN])[0]);
    const reply = await teamLedger(c.env, teamId).listCreditRequests(teamId, { status: q.status, beforeSeq, limit });
    const { creditRequests, nextBeforeSeq } = unwrap(c, reply);
    const nextCursor = nextBeforeSeq === null ? null : encodeCursor(CURSOR_TAG, [nextBeforeSeq]);
    return c.json({ creditRequests, nextCursor }, 200);
  });

  app.openapi(getCreditRequest, async (c) => {
    const { teamId, requestId } = c.req.valid("param");
    return c.json(unwrap(c, await teamLedger(c.env, teamId).getCreditRequest(teamId, requestId)), 200);
  });

  app.openapi(acceptCreditRequest, async (c) => {
    const { teamId, requestId } = c.req.valid("param");
    const decidedBy = await requireDecider(c, teamId);
    const idem = optionalIdempotency(c, c.req.valid("header")["idempotency-key"], null);
    const reply = await teamLedger(c.env, teamId).acceptCreditRequest(teamId, requestId, decidedBy, idem);
    return c.json(unwrap(c, reply), 200);
  });

  app.openapi(rejectCreditRequest, async (c) => {
    const { teamId, requestId } = c.req.valid("param");
    const body = c.req.valid("json") as z.infer<typeof RejectBody>;
    const decidedBy = await requireDecider(c, teamId);
    const idem = optionalIdempotency(c, c.req.valid("header")["idempotency-key"], body);
    const decision = { decidedBy, reason: body.reason ?? null };
    const reply = await teamLedger(c.env, teamId).rejectCreditRequest(teamId, requestId, decision, idem);
    return c.json(unwrap(c, reply), 200);
  });
}
