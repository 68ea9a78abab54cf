/**
 * Grants: credits added to a team with a category, source, priority and optional expiry; and
 * void, which removes what remains of one.
 */
import { createRoute, type OpenAPIHono, z } from "@hono/zod-openapi";
import type { AppEnv } from "../app-env";
import { idempotency, teamLedger, unwrap } from "../client/ledger-client";
import { CATEGORIES, GRANT_SOURCES } from "../domain/vocabulary";
import { MAX_PRIORITY } from "../limits";
import {
  AmountCredits,
  errorResponse,
  Feature,
  GrantReply,
  IdempotencyHeaders,
  mutationErrors,
  ObjectId,
  Reference,
  TeamParams,
} from "./schemas";

const GrantBody = z
  .object({
    amount: AmountCredits,
    category: z.enum(CATEGORIES),
    source: z.enum(GRANT_SOURCES),
    priority: z
      .number()
      .int()
      .min(0)
      .max(MAX_PRIORITY)
      .optional()
      .openapi({ description: "lower is spent first; default 0" }),
    expiresAt: z.iso.datetime({ offset: true }).optional().openapi({ example: "2026-12-31T23:59:59Z" }),
    reference: Reference.optional(),
    restrictedToFeature: Feature.nullable()
      .optional()
      .openapi({ description: "spendable only by spends and holds of this feature; absent or null: by any" }),
  })
  .strict()
  .openapi("GrantInput");

const postGrant = createRoute({
  method: "post",
  path: "/v1/teams/{teamId}/grants",
  tags: ["Grants"],
  summary: "Add credits to a team",
  request: {
    params: TeamParams,
    headers: IdempotencyHeaders,
    body: { content: { "application/json": { schema: GrantBody } }, required: true },
  },
  responses: {
    201: { description: "Granted", content: { "application/json": { schema: GrantReply } } },
    409: errorResponse("conflict: the team would hold more than the maximum balance"),
    ...mutationErrors,
  },
});

const voidGrant = createRoute({
  method: "post",
  path: "/v1/teams/{teamId}/grants/{grantId}/void",
  tags: ["Grants"],
  summary: "Void what remains of a grant",
  request: {
    params: TeamParams.extend({ grantId: ObjectId.openapi({ param: { name: "grantId", in: "path" } }) }),
    headers: IdempotencyHeaders,
  },
  responses: {
    200: { description: "Voided", content: { "application/json": { schema: GrantReply } } },
    409: errorResponse("conflict: the grant already expired or was voided"),
    ...mutationErrors,
  },
});

export function registerGrantRoutes(app: OpenAPIHono<AppEnv>): void {
  app.openapi(postGrant, async (c) => {
    const { teamId } = c.req.valid("param");
    const body = c.req.valid("json");
    const idem = idempotency(c, c.req.valid("header")["idempotency-key"], body);
    return c.json(unwrap(c, await teamLedger(c.env, teamId).grant(teamId, body, idem)), 201);
  });

  app.openapi(voidGrant, async (c) => {
    const { teamId, grantId } = c.req.valid("param");
    const idem = idempotency(c, c.req.valid("header")["idempotency-key"], null);
    return c.json(unwrap(c, await teamLedger(c.env, teamId).voidGrant(teamId, grantId, idem)), 200);
  });
}
