/**
 * Teams and their balance: PUT creates or updates a team (its object; a plan or seat change
 * follows object/plans.ts), GET reads it, and GET …/balance reads available, held and total
 * credits with the live grants behind them.
 */

import { createRoute, type OpenAPIHono, z } from "@hono/zod-openapi";
import type { AppEnv } from "../app-env";
import { catalogStub } from "../client/catalog-copy";
import { teamLedger, unwrap } from "../client/ledger-client";
import { JURISDICTIONS, LOCATION_HINTS } from "../domain/placement";
import { type Plan, pricePurchase } from "../domain/plans";
import { buyingRefusal, poolAdminRefusal } from "../domain/roles";
import { TEAM_KINDS, type TeamInput } from "../domain/vocabulary";
import { ApiError } from "../http/problem";
import {
  MAX_AMOUNT_CREDITS,
  MAX_AUTO_RECHARGES_PER_MONTH,
  MAX_CAP_CREDITS_PER_PERIOD,
  MAX_NAME_LENGTH,
  MAX_PLAN_ID_LENGTH,
  MAX_SEATS,
} from "../limits";
import { Balance, commonErrors, errorResponse, RoleMatrix, Team, TeamId, TeamParams, Text } from "./schemas";

const TeamBody = z
  .object({
    name: Text(MAX_NAME_LENGTH).optional(),
    planId: Text(MAX_PLAN_ID_LENGTH).nullable().optional().openapi({
      description: "a plan of the catalog (GET /v1/plans); null leaves the plan. Plan and seat changes: README",
    }),
    seats: z.number().int().min(1).max(MAX_SEATS).optional(),
    kind: z.enum(TEAM_KINDS).optional(),
    parentTeamId: TeamId.optional(),
    locationHint: z.enum(LOCATION_HINTS).optional().openapi({
      description: "where to place the team's object (near the app that spends from it); chosen at creation only",
    }),
    jurisdiction: z.enum(JURISDICTIONS).optional().openapi({
      description:
        "keep the team's object and history inside this jurisdiction; the team id must start with it (`eu:acme`)",
    }),
    settings: z
      .object({
        shareCreditsWithSubaccounts: z.boolean().optional().openapi({
          description:
            "an agency only: its subaccounts' spends and holds draw from its pool while true (set by its owner or admin)",
        }),
        capCreditsPerPeriod: z
          .number()
          .int()
          .min(0)
          .max(MAX_CAP_CREDITS_PER_PERIOD)
          .nullable()
          .optional()
          .openapi({
            description:
              "a subaccount only: at most this many of its agency's pooled credits a period (the agency's monthly period, " +
              "else the calendar month); null removes it. Set by the agency's owner or admin, never by a key bound to the subaccount",
          }),
        creditPaymentsEnabled: z.boolean().optional(),
        lowBalanceThreshold: z.number().int().min(0).max(MAX_AMOUNT_CREDITS).optional(),
        roleMatrix: RoleMatrix.nullable().optional().openapi({ description: "null: back to the defaults" }),
        autoRecharge: z
          .object({
            thresholdCredits: z.number().int().min(1).max(MAX_AMOUNT_CREDITS),
            packId: Text(MAX_PLAN_ID_LENGTH).openapi({ description: "one of the plan's packs" }),
            maxPerMonth: z.number().int().min(1).max(MAX_AUTO_RECHARGES_PER_MONTH),
          })
          .strict()
          .nullable()
          .optional()
          .openapi({
            description:
              "buy `packId` with the saved card when available falls below thresholdCredits, at most maxPerMonth a " +
              "month (UTC), one at a time; null turns it off. Needs a paid plan, a buying role and a saved card " +
              "(checkout with savePaymentMethod: true), else 403 or 409",
          }),
      })
      .strict()
      .optional(),
  })
  .strict()
  .openapi("TeamInput");

const putTeam = createRoute({
  method: "put",
  path: "/v1/teams/{teamId}",
  tags: ["Teams"],
  summary: "Create or update a team",
  request: { params: TeamParams, body: { content: { "application/json": { schema: TeamBody } }, required: true } },
  responses: {
    ...commonErrors,
    200: { description: "Updated", content: { "application/json": { schema: Team } } },
    201: { description: "Created", content: { "application/json": { schema: Team } } },
    403: errorResponse(
      "forbidden: auto-recharge needs a paid plan and a buying role, never a subaccount; sharing and caps are " +
        "set by an owner or admin, a cap never by a key bound to the subaccount (`reason`)",
    ),
    409: errorResponse(
      "conflict: auto-recharge needs a saved card (no_payment_method); a subaccount's agency never changes " +
        "(membership_fixed); an agency with subaccounts stays one (has_subaccounts); too_many_subaccounts (`reason`)",
    ),
  },
});

const getTeam = createRoute({
  method: "get",
  path: "/v1/teams/{teamId}",
  tags: ["Teams"],
  summary: "Read a team",
  request: { params: TeamParams },
  responses: { 200: { description: "The team", content: { "application/json": { schema: Team } } }, ...commonErrors },
});

const getBalance = createRoute({
  method: "get",
  path: "/v1/teams/{teamId}/balance",
  tags: ["Balance"],
  summary: "Available, held and total credits, by category, with the live grants",
  request: { params: TeamParams },
  responses: {
    200: { description: "The balance", content: { "application/json": { schema: Balance } } },
    ...commonErrors,
  },
});

export function registerTeamRoutes(app: OpenAPIHono<AppEnv>): void {
  app.openapi(putTeam, async (c) => {
    const { teamId } = c.req.valid("param");
    const body = c.req.valid("json");
    // Sharing and caps are the agency's owner's or admin's to set (domain/pools.ts); a key bound to
    // the subaccount itself never lifts its own cap.
    const settings = body.settings;
    if (settings?.shareCreditsWithSubaccounts !== undefined) {
      const refusal = poolAdminRefusal(c.get("actor"), "turn sharing with subaccounts on or off");
      if (refusal) throw ApiError.from(refusal);
    }
    if (settings?.capCreditsPerPeriod !== undefined) {
      const refusal = poolAdminRefusal(c.get("actor"), "set a subaccount's cap");
      if (refusal) throw ApiError.from(refusal);
      if (c.get("caller").teamId === teamId)
        throw new ApiError("forbidden", "a subaccount's cap is set by its agency, not with the subaccount's own key", {
          reason: "agency_only",
        });
    }
    // Read fresh from the catalog (not the isolate's copy): a team is put on the plan as it is now.
    let plan: Plan | null = null;
    if (typeof body.planId === "string") {
      plan = await catalogStub(c.env).getPlan(body.planId);
      if (!plan)
        throw new ApiError(
          "invalid_request",
          `planId: no plan "${body.planId}" (define it with PUT /v1/plans/{planId})`,
        );
    }
    const input: TeamInput = { ...body, settings: body.settings && { ...body.settings, autoRecharge: undefined } };
    const chosen = body.settings?.autoRecharge;
    if (chosen === null && input.settings) input.settings.autoRecharge = null;
    if (chosen) {
      // Priced now, on the plan the team will be on: what each recharge buys and costs from now on.
      const existing = await teamLedger(c.env, teamId).getTeam(teamId);
      const current = existing.ok ? existing.body : null;
      const planId = body.planId === undefined ? (current?.planId ?? null) : body.planId;
      const onPlan = planId === null ? null : (plan ?? (await catalogStub(c.env).getPlan(planId)));
      const matrix = body.settings?.roleMatrix === undefined ? current?.settings.roleMatrix : body.settings.roleMatrix;
      const refusal = buyingRefusal(
        { kind: body.kind ?? current?.kind ?? "team", settings: { roleMatrix: matrix ?? null } },
        onPlan,
        c.get("actor"),
      );
      if (refusal) throw ApiError.from(refusal);
      if (!onPlan) throw new Error("buyingRefusal lets no team without a plan through");
      const priced = pricePurchase(onPlan, { packId: chosen.packId });
      if (!priced.ok) throw new ApiError("invalid_request", `settings.autoRecharge.packId: ${priced.detail}`);
      if (input.settings)
        input.settings.autoRecharge = {
          ...chosen,
          credits: priced.credits,
          priceMinor: priced.priceMinor,
          currency: priced.currency,
          enabled: true,
          disabledReason: null,
          consecutiveFailures: 0,
        };
    }
    // The hint places the object when this request creates it; it is ignored for one that exists.
    const placed = body.locationHint ? { locationHint: body.locationHint } : undefined;
    const reply = await teamLedger(c.env, teamId, placed).upsertTeam(teamId, input, plan);
    const team = unwrap(c, reply);
    return reply.ok && reply.status === 201 ? c.json(team, 201) : c.json(team, 200);
  });

  app.openapi(getTeam, async (c) => {
    const { teamId } = c.req.valid("param");
    return c.json(unwrap(c, await teamLedger(c.env, teamId).getTeam(teamId)), 200);
  });

  app.openapi(getBalance, async (c) => {
    const { teamId } = c.req.valid("param");
    return c.json(unwrap(c, await teamLedger(c.env, teamId).getBalance(teamId)), 200);
  });
}
