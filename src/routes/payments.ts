/**
 * Paying with credits: an invoice or a service paid from the team's balance (the client portal's
 * "Pay with Credit" and "Buy with Credit"). `payment-options` says whether the button shows, with
 * every reason it does not; `payments` pays, all or nothing, with a required Idempotency-Key.
 *
 * A service is a feature of the price book: the isolate's copy (client/catalog-copy.ts, at most
 * 2 s stale) says whether it is eligible (`creditPaymentEligible`), and the object decides the
 * rest with the team as it is now (object/payments.ts), so the options and the payment follow
 * one rule. The actor (X-Actor-Id/X-Actor-Role) is part of what a keyed payment asked.
 */
import { createRoute, type OpenAPIHono, z } from "@hono/zod-openapi";
import type { Context } from "hono";
import type { AppEnv } from "../app-env";
import { type CatalogView, catalogView } from "../client/catalog-copy";
import { idempotency, resolveTeam, unwrap } from "../client/ledger-client";
import { ApiError } from "../http/problem";
import { MAX_PAYMENT_CREDITS } from "../limits";
import {
  BalanceSummary,
  commonErrors,
  Entry,
  errorResponse,
  Feature,
  forbiddenResponse,
  IdempotencyHeaders,
  insufficientCreditsResponse,
  mutationErrors,
  Reference,
  Spend,
  TeamParams,
} from "./schemas";

const KINDS = ["invoice", "service"] as const;
const REASON_CODES = [
  "role",
  "sharing_off",
  "credit_payments_disabled",
  "service_not_eligible",
  "invoice_already_paid",
  "insufficient_credits",
  "invoice_exceeds_balance",
] as const;

const PaymentCredits = z
  .number()
  .int("credits are whole numbers")
  .min(1)
  .max(MAX_PAYMENT_CREDITS)
  .openapi({ example: 120, description: "credits the invoice or service costs" });

const PaymentBody = z
  .object({
    kind: z.enum(KINDS),
    reference: Reference.openapi({ description: "the invoice's number, or the order or booking of the service" }),
    amount: PaymentCredits,
    serviceId: Feature.optional().openapi({ description: "the service's feature key (kind `service` only)" }),
  })
  .strict()
  .openapi("PaymentInput");

const Payment = z
  .object({
    id: z.string(),
    kind: z.enum(KINDS),
    reference: z.string(),
    serviceId: z.string().optional(),
    amount: z.number().int(),
    spendId: z.string(),
    actor: z.string().optional(),
    createdAt: z.string(),
  })
  .openapi("Payment");

const OptionsQuery = z.object({
  kind: z.enum(KINDS),
  amount: z.coerce.number().int().min(1).max(MAX_PAYMENT_CREDITS),
  serviceId: Feature.optional(),
  reference: Reference.optional().openapi({ description: "the invoice's reference: a paid invoice is not payable" }),
});

const PaymentOptions = z
  .object({
    available: z.boolean().openapi({ description: "the payment can be made now" }),
    reasons: z.array(
      z.object({
        code: z.enum(REASON_CODES),
        message: z.string().openapi({ description: "a sentence a person can act on" }),
      }),
    ),
    amount: z.number().int(),
    availableCredits: z.number().int(),
  })
  .openapi("PaymentOptions");

const getPaymentOptions = createRoute({
  method: "get",
  path: "/v1/teams/{teamId}/payment-options",
  tags: ["Paying with credits"],
  summary: "Whether an invoice or service can be paid with credits, and every reason it cannot",
  request: { params: TeamParams, query: OptionsQuery },
  responses: {
    200: { description: "The options", content: { "application/json": { schema: PaymentOptions } } },
    ...commonErrors,
  },
});

const postPayment = createRoute({
  method: "post",
  path: "/v1/teams/{teamId}/payments",
  tags: ["Paying with credits"],
  summary: "Pay an invoice or a service with credits, all or nothing",
  request: {
    params: TeamParams,
    headers: IdempotencyHeaders,
    body: { content: { "application/json": { schema: PaymentBody } }, required: true },
  },
  responses: {
    ...mutationErrors,
    201: {
      description: "Paid; one spend entry per grant drawn from",
      content: {
        "application/json": {
          schema: z.object({ payment: Payment, spend: Spend, entries: z.array(Entry), balance: BalanceSummary }),
        },
      },
    },
    402: insufficientCreditsResponse,
    403: forbiddenResponse(
      "this actor may not use credits (role, sharing_off), credit payments are disabled, or the service is not eligible",
    ),
    409: errorResponse("conflict: the invoice was already paid (`paymentId` names the payment)"),
  },
});

/** A service named only with kind `service`, and always there (400 otherwise). */
function serviceOf(q: { kind: (typeof KINDS)[number]; serviceId?: string | undefined }): string | null {
  if (q.kind === "service" && q.serviceId === undefined)
    throw new ApiError("invalid_request", 'a service payment names its service: send "serviceId"');
  if (q.kind === "invoice" && q.serviceId !== undefined)
    throw new ApiError("invalid_request", 'an invoice names no service: leave out "serviceId"');
  return q.serviceId ?? null;
}

/** What the price book says of the service: eligible, not eligible, or not in it. */
function standingOf(view: CatalogView, serviceId: string): "eligible" | "not_eligible" | "unknown" {
  const feature = view.features.get(serviceId);
  if (!feature) return "unknown";
  return feature.creditPaymentEligible ? "eligible" : "not_eligible";
}

async function serviceStanding(c: Context<AppEnv>, serviceId: string | null) {
  if (serviceId === null) return null;
  return standingOf(await catalogView(c.env, (p) => c.executionCtx.waitUntil(p)), serviceId);
}

export function registerPaymentRoutes(app: OpenAPIHono<AppEnv>): void {
  app.openapi(getPaymentOptions, async (c) => {
    const { teamId } = c.req.valid("param");
    const q = c.req.valid("query");
    const serviceId = serviceOf(q);
    const question = {
      kind: q.kind,
      amount: q.amount,
      serviceId,
      service: await serviceStanding(c, serviceId),
      reference: q.reference ?? null,
      actor: c.get("actor"),
    };
    const route = resolveTeam(c.env, teamId);
    return c.json(unwrap(c, await route.ledger.paymentOptions(route.poolTeamId, question)), 200);
  });

  app.openapi(postPayment, async (c) => {
    const { teamId } = c.req.valid("param");
    const body = c.req.valid("json");
    const serviceId = serviceOf(body);
    const actor = c.get("actor");
    const idem = idempotency(c, c.req.valid("header")["idempotency-key"], { body, actor: actor ?? null });
    const route = resolveTeam(c.env, teamId);
    const input = {
      kind: body.kind,
      amount: body.amount,
      serviceId,
      service: await serviceStanding(c, serviceId),
      reference: body.reference,
      actor,
      memberTeamId: route.memberTeamId,
    };
    return c.json(unwrap(c, await route.ledger.payWithCredits(route.poolTeamId, input, idem)), 201);
  });
}
