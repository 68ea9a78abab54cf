/**
 * Referrals: POST /v1/referrals records that one team referred another. The referrer earns its
 * plan's signup bonus now and its upgrade bonus when the referred team first moves to a paid
 * plan, each exactly once, delivered from the referred team's object (object/referrals.ts).
 * Recording the same pair again returns the referral (200); another referrer is 409.
 */
import { createRoute, type OpenAPIHono, z } from "@hono/zod-openapi";
import type { AppEnv } from "../app-env";
import { catalogStub } from "../client/catalog-copy";
import { teamLedger, unwrap } from "../client/ledger-client";
import { ApiError } from "../http/problem";
import { commonErrors, errorResponse, TeamId } from "./schemas";

const ReferralBody = z.object({ referrerTeamId: TeamId, referredTeamId: TeamId }).strict().openapi("ReferralInput");

const Referral = z
  .object({
    id: z.string(),
    referrerTeamId: z.string(),
    referredTeamId: z.string(),
    signupCredits: z
      .number()
      .int()
      .openapi({ description: "the referrer's bonus now (its plan's referral.signupCredits)" }),
    upgradeCredits: z.number().int().openapi({ description: "the referrer's bonus when the referred team first pays" }),
    createdAt: z.string(),
  })
  .openapi("Referral");

const postReferral = createRoute({
  method: "post",
  path: "/v1/referrals",
  tags: ["Referrals"],
  summary: "Record that a team referred another",
  request: { body: { content: { "application/json": { schema: ReferralBody } }, required: true } },
  responses: {
    200: { description: "Already recorded (the same pair)", content: { "application/json": { schema: Referral } } },
    201: { description: "Recorded", content: { "application/json": { schema: Referral } } },
    409: errorResponse("conflict: the team was already referred by another team"),
    ...commonErrors,
  },
});

export function registerReferralRoutes(app: OpenAPIHono<AppEnv>): void {
  app.openapi(postReferral, async (c) => {
    const { referrerTeamId, referredTeamId } = c.req.valid("json");
    if (referrerTeamId === referredTeamId) throw new ApiError("invalid_request", "a team cannot refer itself");
    const referrer = unwrap(c, await teamLedger(c.env, referrerTeamId).getTeam(referrerTeamId));
    const plan = referrer.planId ? await catalogStub(c.env).getPlan(referrer.planId) : null;
    const reply = await teamLedger(c.env, referredTeamId).recordReferral(referredTeamId, {
      referrerTeamId,
      signupCredits: plan?.referral?.signupCredits ?? 0,
      upgradeCredits: plan?.referral?.upgradeCredits ?? 0,
    });
    const referral = unwrap(c, reply);
    return reply.ok && reply.status === 201 ? c.json(referral, 201) : c.json(referral, 200);
  });
}
