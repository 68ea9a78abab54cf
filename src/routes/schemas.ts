/**
 * The wire schemas shared by several routes: ids, amounts, the problem document, and the
 * ledger's objects as clients see them. Route files define their own request bodies beside
 * their handlers and reuse these. Every bound comes from limits.ts.
 */

import { z } from "@hono/zod-openapi";
import { JURISDICTIONS, LOCATION_HINTS } from "../domain/placement";
import { exactQuantity, QUANTITY_DECIMALS } from "../domain/pricing";
import { ACTOR_ROLES } from "../domain/roles";
import { isStorableText, STORABLE_TEXT_RULE } from "../domain/text";
import { CATEGORIES, DIRECTIONS, ENTRY_TYPES, GRANT_SOURCES, TEAM_KINDS, TIERS } from "../domain/vocabulary";
import {
  MAX_AMOUNT_CREDITS,
  MAX_DIMENSION_KEY_LENGTH,
  MAX_DIMENSION_VALUE_LENGTH,
  MAX_DIMENSIONS,
  MAX_FEATURE_LENGTH,
  MAX_IDEMPOTENCY_KEY_LENGTH,
  MAX_PLAN_ID_LENGTH,
  MAX_QUANTITY,
  MAX_REFERENCE_LENGTH,
  MAX_TEAM_ID_LENGTH,
} from "../limits";

/**
 * Free text a client sends (references, names, reasons, dimension values, plan ids): 1 to `max`
 * characters of well-formed Unicode without NUL (domain/text.ts says why). Every free-text field
 * of every route is one of these, so none can store what it would not hash the same.
 */
export function Text(max: number, min = 1) {
  return z.string().min(min).max(max).refine(isStorableText, STORABLE_TEXT_RULE);
}

export const TeamId = z
  .string()
  .regex(new RegExp(`^[A-Za-z0-9._:-]{1,${MAX_TEAM_ID_LENGTH}}$`), "team ids are 1-128 of A-Z a-z 0-9 . _ : -")
  .openapi({ example: "acme" });

export const TeamParams = z.object({ teamId: TeamId.openapi({ param: { name: "teamId", in: "path" } }) });

/** Ids the service issues (grt_…, hld_…): bounded and shape-checked before any lookup. */
export const ObjectId = z.string().regex(/^[a-z]{3}_[0-9a-f]{32}$/, "not an id this service issued");

/** A positive number of credits: an integer, safe, and within the per-operation bound. */
export const AmountCredits = z
  .number()
  .int("credits are whole numbers")
  .min(1)
  .max(MAX_AMOUNT_CREDITS)
  .openapi({ example: 10 });

/**
 * How many units: whole for counted units, with at most 6 decimals for metered ones (minutes,
 * seconds, …; domain/pricing.ts decides which per feature). Never a balance: credits stay integers.
 */
export const Quantity = z
  .number()
  .gt(0)
  .max(MAX_QUANTITY)
  .refine((q) => exactQuantity(q) !== null, `at most ${QUANTITY_DECIMALS} decimals`)
  .openapi({ example: 1, description: "units; fractional (≤ 6 decimals) only for metered units" });
export const Feature = z
  .string()
  .regex(new RegExp(`^[A-Za-z0-9._:/-]{1,${MAX_FEATURE_LENGTH}}$`), "features are 1-64 of A-Z a-z 0-9 . _ : / -")
  .openapi({ example: "email_finder" });
export const Reference = Text(MAX_REFERENCE_LENGTH);
/** Plan and pack ids an account chooses: 1-64 of A-Z a-z 0-9 . _ : - */
export const PlanId = z
  .string()
  .regex(new RegExp(`^[A-Za-z0-9._:-]{1,${MAX_PLAN_ID_LENGTH}}$`), "plan and pack ids are 1-64 of A-Z a-z 0-9 . _ : -")
  .openapi({ example: "pro" });
export const Tier = z.enum(TIERS);
/** zod drops a `__proto__` key silently; refuse it instead, so nothing a client sent is lost. */
const noProtoKey = (v: unknown) => !(typeof v === "object" && v !== null && Object.hasOwn(v, "__proto__"));

export const DimensionKey = z
  .string()
  .regex(
    new RegExp(`^[A-Za-z0-9][A-Za-z0-9_.:-]{0,${MAX_DIMENSION_KEY_LENGTH - 1}}$`),
    "dimension keys are 1-40 of A-Z a-z 0-9 _ . : -, starting with a letter or digit",
  );

export const Dimensions = z
  .record(DimensionKey, Text(MAX_DIMENSION_VALUE_LENGTH, 0))
  .refine((d) => Object.keys(d).length <= MAX_DIMENSIONS, `at most ${MAX_DIMENSIONS} dimensions`)
  .openapi({ example: { campaign: "spring-launch" } });

/** Dimensions as a request field: the record above, after refusing a `__proto__` key. */
export const DimensionsInput = z
  .unknown()
  .refine(noProtoKey, "dimension keys are 1-40 of A-Z a-z 0-9 _ . : -, starting with a letter or digit")
  .pipe(Dimensions);

export const IdempotencyHeaders = z.object({
  "idempotency-key": z
    .string({ error: "the Idempotency-Key header is required" })
    .min(1)
    .max(MAX_IDEMPOTENCY_KEY_LENGTH)
    .regex(/^[\x21-\x7e]+$/, "Idempotency-Key is printable ASCII without spaces")
    .openapi({ param: { name: "idempotency-key", in: "header" }, example: "spend-7f3c2a" }),
});

export const Problem = z
  .object({
    type: z.string(),
    title: z.string(),
    status: z.number().int(),
    detail: z.string(),
    code: z.string(),
    requestId: z.string(),
  })
  .catchall(z.unknown())
  .openapi("Problem");

const problemResponse = (description: string) => ({
  description,
  content: { "application/problem+json": { schema: Problem } },
});

/** The error responses every authenticated route can give. */
export const commonErrors = {
  400: problemResponse("invalid_request: the request is malformed or out of bounds"),
  401: problemResponse("unauthorized: missing or wrong API key"),
  403: problemResponse("forbidden: the key's scopes (or, with X-Actor-Role, the actor's role) do not allow this"),
  404: problemResponse("not_found: no such team or object (also a team the key is not bound to)"),
  413: problemResponse("payload_too_large: the body exceeds the route's limit"),
  500: problemResponse("internal: a fault on our side; nothing internal is echoed"),
} as const;

export const mutationErrors = {
  ...commonErrors,
  422: problemResponse("idempotency_key_reused: the key was used with a different request"),
} as const;

export const errorResponse = problemResponse;

/** The 402 of every route that draws credits. */
export const insufficientCreditsResponse = problemResponse(
  "insufficient_credits: not enough available credits; or cap_exceeded: past a cap on an agency's pooled " +
    "credits (`scope`, `subject`, `cap`, `used`, `held`, `remaining`, `required`, `periodStart`); nothing was written",
);

/** A cap on an agency's pooled credits as it stands this period (domain/pools.ts). */
export const CapView = z
  .object({
    scope: z.enum(["subaccount", "member", "key"]),
    subject: z.string().openapi({ description: "the subaccount's team id, or the member's actor id" }),
    creditsPerPeriod: z.number().int(),
    used: z.number().int().openapi({ description: "spent and captured this period, plus what pending holds reserve" }),
    held: z.number().int().openapi({ description: "of `used`, what pending holds reserve" }),
    remaining: z.number().int(),
    periodStart: z.string(),
  })
  .openapi("Cap");

/** Roles, each once (domain/roles.ts ACTOR_ROLES). */
const Roles = z
  .array(z.enum(ACTOR_ROLES))
  .max(ACTOR_ROLES.length)
  .refine((r) => new Set(r).size === r.length, "each role once");

/** A team's own role matrix (domain/roles.ts); null: the seeds' defaults. */
export const RoleMatrix = z
  .object({ useCredits: Roles, buyCredits: Roles, decideCreditRequests: Roles })
  .strict()
  .openapi("RoleMatrix", {
    description:
      "which X-Actor-Role values may use credits (spends, holds, payments), buy them and decide credit requests; defaults: use owner, admin, author, designer, manager; buy and decide owner, admin",
  });

export const TeamSettings = z.object({
  shareCreditsWithSubaccounts: z.boolean(),
  creditPaymentsEnabled: z.boolean(),
  lowBalanceThreshold: z.number().int().min(0).max(MAX_AMOUNT_CREDITS),
  autoRecharge: z
    .object({
      thresholdCredits: z.number().int(),
      packId: z.string(),
      maxPerMonth: z.number().int(),
      credits: z
        .number()
        .int()
        .openapi({ description: "what one recharge buys (the pack on the plan when turned on)" }),
      priceMinor: z.number().int().openapi({ description: "what one recharge costs, in minor units" }),
      currency: z.string(),
      enabled: z.boolean().openapi({ description: "false once it turned itself off (`disabledReason`)" }),
      disabledReason: z.string().nullable(),
      consecutiveFailures: z.number().int(),
    })
    .nullable()
    .openapi("AutoRecharge"),
  roleMatrix: RoleMatrix.nullable(),
  capCreditsPerPeriod: z.number().int().nullable().openapi({
    description:
      "a subaccount's cap on its agency's pooled credits a period (the agency's object enforces it); null: none",
  }),
});

export const Team = z
  .object({
    id: z.string(),
    name: z.string().nullable(),
    planId: z.string().nullable(),
    seats: z.number().int(),
    kind: z.enum(TEAM_KINDS),
    parentTeamId: z.string().nullable(),
    locationHint: z.enum(LOCATION_HINTS).nullable().openapi({ description: "where the team's object was placed" }),
    jurisdiction: z
      .enum(JURISDICTIONS)
      .nullable()
      .openapi({ description: "the jurisdiction its object and history never leave (ids `eu:…`, `fedramp:…`)" }),
    settings: TeamSettings,
    periodAnchor: z.string().nullable().openapi({
      description: "when the team first got a plan: its monthly periods count from here (UTC)",
    }),
    currentPeriod: z
      .object({ index: z.number().int(), startsAt: z.string(), endsAt: z.string() })
      .nullable()
      .openapi({ description: "the monthly period now, while the team is on a plan" }),
    createdAt: z.string(),
    updatedAt: z.string(),
  })
  .openapi("Team");

export const Grant = z
  .object({
    id: z.string(),
    amount: z.number().int(),
    remaining: z.number().int().openapi({ description: "not yet spent, including `held`" }),
    held: z.number().int().openapi({ description: "reserved by pending holds" }),
    category: z.enum(CATEGORIES),
    source: z.enum(GRANT_SOURCES),
    priority: z.number().int(),
    status: z.enum(["active", "depleted", "expired", "voided"]),
    expiresAt: z.string().nullable(),
    reference: z.string().nullable(),
    restrictedToFeature: z
      .string()
      .nullable()
      .openapi({ description: "the one feature these credits may be spent on; null: any feature" }),
    createdAt: z.string(),
  })
  .openapi("Grant");

export const Entry = z
  .object({
    id: z.string(),
    seq: z.number().int(),
    createdAt: z.string(),
    type: z.enum(ENTRY_TYPES),
    direction: z.enum(DIRECTIONS).openapi({
      description:
        "in: adds `amount` to available; out: takes it away; none: records an event that moves nothing (a capture of credits its hold already reserved)",
    }),
    amount: z.number().int(),
    balanceAfter: z.number().int().openapi({
      description:
        "available credits after this entry; for every prefix of the history, Σ in − Σ out = the last balanceAfter",
    }),
    grantId: z.string().optional(),
    holdId: z.string().optional(),
    spendId: z.string().optional(),
    feature: z.string().optional(),
    quantity: z.number().optional(),
    dimensions: z.record(z.string(), z.string()).optional(),
    reference: z.string().optional(),
    actor: z.string().optional(),
    memberTeamId: z.string().optional().openapi({ description: "the member team a pooled charge was made for" }),
    tier: Tier.optional(),
    unitCredits: z.number().int().optional().openapi({ description: "credits per unit the price book charged" }),
    priceVersion: z.number().int().optional().openapi({ description: "the price book's version it was priced at" }),
    shortfallCredits: z.number().int().optional().openapi({
      description: "on a refund: refunded credits that could not be clawed back because they were already spent",
    }),
    hash: z.string().optional().openapi({
      description: "SHA-256 hex of the previous entry's hash + this entry (hash chain; see /entries/verify)",
    }),
  })
  .openapi("Entry");

const ByCategory = z.object({
  free: z.number().int(),
  paid: z.number().int(),
  promotional: z.number().int(),
});

export const BalanceSummary = z
  .object({
    teamId: z.string(),
    poolTeamId: z.string(),
    available: z.number().int(),
    held: z.number().int(),
    total: z.number().int(),
    byCategory: ByCategory,
    lowBalance: z.boolean(),
  })
  .openapi("BalanceSummary");

export const Balance = BalanceSummary.extend({
  byFeature: z.record(z.string(), z.number().int()).openapi({
    description:
      "available credits of feature-restricted grants, per feature (part of `available`, spendable only on that feature); {} when none",
    example: { calling: 400 },
  }),
  grants: z.array(Grant),
  caps: z.array(CapView).optional().openapi({
    description: "a subaccount drawing from its agency's pool (`poolTeamId`): the caps its spends count against",
  }),
}).openapi("Balance");

export const Spend = z
  .object({
    id: z.string(),
    amount: z.number().int(),
    feature: z.string(),
    quantity: z.number(),
    tier: Tier.optional(),
    unitCredits: z.number().int().optional().openapi({ description: "credits per unit the price book charged" }),
    priceVersion: z.number().int().optional().openapi({ description: "the price book's version it was priced at" }),
    dimensions: z.record(z.string(), z.string()).optional(),
    reference: z.string().optional(),
    createdAt: z.string(),
  })
  .openapi("Spend");

export const Hold = z
  .object({
    id: z.string(),
    amount: z.number().int(),
    capturedAmount: z.number().int(),
    status: z.enum(["pending", "captured", "released", "expired"]),
    expiresAt: z.string(),
    createdAt: z.string(),
    resolvedAt: z.string().nullable(),
    feature: z.string().optional(),
    quantity: z.number().optional(),
    tier: Tier.optional(),
    unitCredits: z.number().int().optional().openapi({ description: "credits per unit the price book charged" }),
    priceVersion: z.number().int().optional().openapi({ description: "the price book's version it was priced at" }),
    dimensions: z.record(z.string(), z.string()).optional(),
    reference: z.string().optional(),
    reason: z.string().optional(),
  })
  .openapi("Hold");

export const HoldReply = z.object({ hold: Hold, entries: z.array(Entry), balance: BalanceSummary });
export const GrantReply = z.object({ grant: Grant, entries: z.array(Entry), balance: BalanceSummary });

/**
 * The Idempotency-Key where a route accepts one without requiring it (credit requests and their
 * decisions): with a key, a retry gets the first answer again; without one, each request is new.
 */
export const OptionalIdempotencyHeaders = z.object({
  "idempotency-key": z
    .string()
    .min(1)
    .max(MAX_IDEMPOTENCY_KEY_LENGTH)
    .regex(/^[\x21-\x7e]+$/, "Idempotency-Key is printable ASCII without spaces")
    .optional()
    .openapi({ param: { name: "idempotency-key", in: "header" }, example: "credit-request-7f3c2a" }),
});

/** The 403 of a route that checks who acts (domain/roles.ts): `reason` says which rule refused. */
export const forbiddenResponse = (rules: string) => problemResponse(`forbidden: ${rules}; \`reason\` says which`);
