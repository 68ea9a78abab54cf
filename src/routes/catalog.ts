/**
 * The price book and plans: PUT defines a feature or a plan (201 created, 200 updated), GET lists
 * them. Both live in the catalog object (catalog/catalog-object.ts), one version for the whole
 * catalog; priced spends read them from the isolate's copy (client/catalog-copy.ts), which the
 * PUT drops here so this isolate sees the change at once and every other within the staleness
 * bound (README "Prices and plans").
 */
import { createRoute, type OpenAPIHono, z } from "@hono/zod-openapi";
import type { AppEnv } from "../app-env";
import { catalogStub, dropCatalogCopy } from "../client/catalog-copy";
import { unwrap } from "../client/ledger-client";
import { UNIT_ROUNDINGS, UNITS } from "../domain/pricing";
import { TIERS } from "../domain/vocabulary";
import { ApiError } from "../http/problem";
import {
  MAX_AMOUNT_CREDITS,
  MAX_CREDITS_PER_CURRENCY_UNIT,
  MAX_FEATURE_ALLOCATIONS_PER_PLAN,
  MAX_NAME_LENGTH,
  MAX_PACKS_PER_PLAN,
  MAX_PRICE_MINOR,
} from "../limits";
import { commonErrors, errorResponse, Feature as FeatureKey, PlanId, Text } from "./schemas";

const Credits = (description: string) => z.number().int().min(0).max(MAX_AMOUNT_CREDITS).openapi({ description });
const UnitPrice = z.number().int("prices are whole credits").min(1).max(MAX_AMOUNT_CREDITS);
const TierPrices = z.partialRecord(z.enum(TIERS), UnitPrice).openapi({
  description: "absolute credits per unit at each tier (not multipliers)",
  example: { fast: 1, premium: 5 },
});

const FeatureBody = z
  .object({
    name: Text(MAX_NAME_LENGTH),
    unit: z
      .enum(UNITS)
      .openapi({ description: "fractional quantities only for second, minute, hour, megabyte, gigabyte" }),
    creditsPerUnit: UnitPrice,
    tiers: TierPrices.optional(),
    chargeOnSuccess: z.boolean().optional().openapi({
      description: "charged only through a hold and its capture (pay for results); a plain spend is a 400",
    }),
    creditPaymentEligible: z.boolean().optional(),
    unitRounding: z.enum(UNIT_ROUNDINGS).optional().openapi({
      description: "ceil (default): the total rounds up to whole credits; per_unit: each started unit counts whole",
    }),
  })
  .strict()
  .openapi("FeatureInput");

const FeatureDoc = z
  .object({
    key: z.string(),
    name: z.string(),
    unit: z.enum(UNITS),
    creditsPerUnit: z.number().int(),
    tiers: z.partialRecord(z.enum(TIERS), z.number().int()).nullable(),
    chargeOnSuccess: z.boolean(),
    creditPaymentEligible: z.boolean(),
    unitRounding: z.enum(UNIT_ROUNDINGS),
    version: z.number().int().openapi({ description: "the price book's version when the feature last changed" }),
    createdAt: z.string(),
    updatedAt: z.string(),
  })
  .openapi("Feature");

const PlanPrice = z.union([
  UnitPrice,
  z.object({ creditsPerUnit: UnitPrice.optional(), tiers: TierPrices.optional() }).strict(),
]);
const MinorAmount = z.number().int().min(1).max(MAX_PRICE_MINOR);

const PlanBody = z
  .object({
    name: Text(MAX_NAME_LENGTH),
    paid: z.boolean(),
    currency: z
      .string()
      .regex(/^[A-Za-z]{3}$/, "an ISO 4217 code such as usd")
      .openapi({ example: "usd" }),
    creditsPerCurrencyUnit: z.number().int().min(1).max(MAX_CREDITS_PER_CURRENCY_UNIT).openapi({
      description: "credits one unit of the currency buys (e.g. 300 per dollar); packs give priceMinor × this / 100",
    }),
    starterCredits: Credits("granted once, when a team first gets this plan (free, never expiring)").optional(),
    monthlyCreditsPerSeat: Credits("free credits per seat each monthly period, expiring at its end").optional(),
    monthlyFeatureCreditsPerSeat: z
      .record(FeatureKey, Credits("credits per seat"))
      .refine(
        (r) => Object.keys(r).length <= MAX_FEATURE_ALLOCATIONS_PER_PLAN,
        `at most ${MAX_FEATURE_ALLOCATIONS_PER_PLAN} features`,
      )
      .optional()
      .openapi({
        description:
          "free credits per seat each monthly period that only one feature may spend (feature key → credits), granted with the allocation and expiring with it",
        example: { calling: 400 },
      }),
    rolloverMaxCredits: Credits(
      "unused free allocation carried into the next period, at most this many; 0 = none",
    ).optional(),
    packs: z
      .array(z.object({ id: PlanId, priceMinor: MinorAmount }).strict())
      .max(MAX_PACKS_PER_PLAN)
      .optional(),
    customAmount: z
      .object({ minMinor: MinorAmount, maxMinor: MinorAmount })
      .strict()
      .refine((a) => a.minMinor <= a.maxMinor, "minMinor must not exceed maxMinor")
      .optional(),
    referral: z
      .object({
        signupCredits: Credits("for the referrer when recorded"),
        upgradeCredits: Credits("when the referred team first pays"),
      })
      .strict()
      .optional(),
    featurePrices: z
      .record(FeatureKey, PlanPrice)
      .optional()
      .openapi({ description: "this plan's credits per unit for features (a number, or {creditsPerUnit?, tiers?})" }),
  })
  .strict()
  .openapi("PlanInput");

const PlanDoc = z
  .object({
    id: z.string(),
    name: z.string(),
    paid: z.boolean(),
    currency: z.string(),
    creditsPerCurrencyUnit: z.number().int(),
    starterCredits: z.number().int(),
    monthlyCreditsPerSeat: z.number().int(),
    monthlyFeatureCreditsPerSeat: z.record(z.string(), z.number().int()).optional(),
    rolloverMaxCredits: z.number().int(),
    packs: z.array(z.object({ id: z.string(), priceMinor: z.number().int(), credits: z.number().int() })),
    customAmount: z.object({ minMinor: z.number().int(), maxMinor: z.number().int() }).nullable(),
    referral: z.object({ signupCredits: z.number().int(), upgradeCredits: z.number().int() }).nullable(),
    featurePrices: z.record(
      z.string(),
      z.object({
        creditsPerUnit: z.number().int().optional(),
        tiers: z.partialRecord(z.enum(TIERS), z.number().int()).optional(),
      }),
    ),
    version: z.number().int(),
    createdAt: z.string(),
    updatedAt: z.string(),
  })
  .openapi("Plan");

const FeatureParams = z.object({ featureKey: FeatureKey.openapi({ param: { name: "featureKey", in: "path" } }) });
const PlanParams = z.object({ planId: PlanId.openapi({ param: { name: "planId", in: "path" } }) });
const conflict = errorResponse("conflict: a limit of the catalog, or a plan still prices a tier being removed");

const putFeature = createRoute({
  method: "put",
  path: "/v1/features/{featureKey}",
  tags: ["Catalog"],
  summary: "Define or change a feature's price",
  request: {
    params: FeatureParams,
    body: { content: { "application/json": { schema: FeatureBody } }, required: true },
  },
  responses: {
    200: { description: "Updated", content: { "application/json": { schema: FeatureDoc } } },
    201: { description: "Created", content: { "application/json": { schema: FeatureDoc } } },
    409: conflict,
    ...commonErrors,
  },
});

const listFeatures = createRoute({
  method: "get",
  path: "/v1/features",
  tags: ["Catalog"],
  summary: "The price book",
  responses: {
    200: {
      description: "Every feature, by key, and the catalog's version",
      content: {
        "application/json": { schema: z.object({ version: z.number().int(), features: z.array(FeatureDoc) }) },
      },
    },
    ...commonErrors,
  },
});

const getFeature = createRoute({
  method: "get",
  path: "/v1/features/{featureKey}",
  tags: ["Catalog"],
  summary: "One feature's price",
  request: { params: FeatureParams },
  responses: {
    200: { description: "The feature", content: { "application/json": { schema: FeatureDoc } } },
    ...commonErrors,
  },
});

const putPlan = createRoute({
  method: "put",
  path: "/v1/plans/{planId}",
  tags: ["Catalog"],
  summary: "Define or change a plan",
  request: { params: PlanParams, body: { content: { "application/json": { schema: PlanBody } }, required: true } },
  responses: {
    200: { description: "Updated", content: { "application/json": { schema: PlanDoc } } },
    201: { description: "Created", content: { "application/json": { schema: PlanDoc } } },
    409: conflict,
    ...commonErrors,
  },
});

const listPlans = createRoute({
  method: "get",
  path: "/v1/plans",
  tags: ["Catalog"],
  summary: "Every plan",
  responses: {
    200: {
      description: "Every plan, by id, and the catalog's version",
      content: { "application/json": { schema: z.object({ version: z.number().int(), plans: z.array(PlanDoc) }) } },
    },
    ...commonErrors,
  },
});

const getPlan = createRoute({
  method: "get",
  path: "/v1/plans/{planId}",
  tags: ["Catalog"],
  summary: "One plan",
  request: { params: PlanParams },
  responses: {
    200: { description: "The plan", content: { "application/json": { schema: PlanDoc } } },
    ...commonErrors,
  },
});

export function registerCatalogRoutes(app: OpenAPIHono<AppEnv>): void {
  app.openapi(putFeature, async (c) => {
    const { featureKey } = c.req.valid("param");
    const reply = await catalogStub(c.env).putFeature(featureKey, c.req.valid("json"));
    dropCatalogCopy();
    const feature = unwrap(c, reply);
    return reply.ok && reply.status === 201 ? c.json(feature, 201) : c.json(feature, 200);
  });

  app.openapi(listFeatures, async (c) => {
    const snapshot = await catalogStub(c.env).snapshot();
    return c.json({ version: snapshot.version, features: snapshot.features }, 200);
  });

  app.openapi(getFeature, async (c) => {
    const { featureKey } = c.req.valid("param");
    const feature = await catalogStub(c.env).getFeature(featureKey);
    if (!feature) throw new ApiError("not_found", `feature ${featureKey} not found`);
    return c.json(feature, 200);
  });

  app.openapi(putPlan, async (c) => {
    const { planId } = c.req.valid("param");
    const reply = await catalogStub(c.env).putPlan(planId, c.req.valid("json"));
    dropCatalogCopy();
    const plan = unwrap(c, reply);
    return reply.ok && reply.status === 201 ? c.json(plan, 201) : c.json(plan, 200);
  });

  app.openapi(listPlans, async (c) => {
    const snapshot = await catalogStub(c.env).snapshot();
    return c.json({ version: snapshot.version, plans: snapshot.plans }, 200);
  });

  app.openapi(getPlan, async (c) => {
    const { planId } = c.req.valid("param");
    const plan = await catalogStub(c.env).getPlan(planId);
    if (!plan) throw new ApiError("not_found", `plan ${planId} not found`);
    return c.json(plan, 200);
  });
}
