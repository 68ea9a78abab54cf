/**
 * An agency's pool as its owner sees it: its subaccounts with their caps, and caps on its pooled
 * credits per member (an actor, `X-Actor-Id`): PUT sets or removes one, GET lists them with what
 * each used this period. The agency's object enforces them in the same transaction as each spend
 * or hold (domain/pools.ts); a subaccount's own cap is its `settings.capCreditsPerPeriod`
 * (routes/teams.ts), and it joins the agency when it is created there.
 */
import { createRoute, type OpenAPIHono, z } from "@hono/zod-openapi";
import type { AppEnv } from "../app-env";
import { teamLedger, unwrap } from "../client/ledger-client";
import { poolAdminRefusal } from "../domain/roles";
import { isStorableText } from "../domain/text";
import { ApiError } from "../http/problem";
import { DEFAULT_PAGE_SIZE, MAX_ACTOR_ID_LENGTH, MAX_CAP_CREDITS_PER_PERIOD, MAX_PAGE_SIZE } from "../limits";
import { decodeTextCursor, encodeTextCursor } from "./cursor";
import { CapView, commonErrors, errorResponse, TeamId } from "./schemas";

const CURSOR_TAG = "mc";
const SUBACCOUNTS_CURSOR_TAG = "sa";

const PageQuery = z.object({
  limit: z.coerce.number().int().min(1).max(MAX_PAGE_SIZE).optional(),
  cursor: z.string().max(2048).optional(),
});

const AgencyParams = z.object({
  teamId: TeamId.openapi({ param: { name: "teamId", in: "path" }, description: "the agency" }),
});

const CapParams = z.object({
  teamId: TeamId.openapi({ param: { name: "teamId", in: "path" }, description: "the agency" }),
  actorId: z
    .string()
    .min(1)
    .max(MAX_ACTOR_ID_LENGTH)
    .refine(isStorableText, "text without NUL or lone surrogates")
    .openapi({ param: { name: "actorId", in: "path" }, description: "the member, as X-Actor-Id names it" }),
});

const CapBody = z
  .object({
    creditsPerPeriod: z.number().int().min(0).max(MAX_CAP_CREDITS_PER_PERIOD).nullable().openapi({
      description:
        "at most this many pooled credits a period (the agency's monthly period, else the UTC month); null removes the cap",
    }),
  })
  .strict()
  .openapi("MemberCapInput");

const putCap = createRoute({
  method: "put",
  path: "/v1/teams/{teamId}/member-caps/{actorId}",
  tags: ["Organisations"],
  summary: "Set or remove a member's cap on the agency's pooled credits",
  request: { params: CapParams, body: { content: { "application/json": { schema: CapBody } }, required: true } },
  responses: {
    200: {
      description: "The cap as it stands this period (null once removed)",
      content: { "application/json": { schema: z.object({ cap: CapView.nullable() }) } },
    },
    ...commonErrors,
    403: errorResponse("forbidden: only the agency's owner or admin sets caps (`reason`: role)"),
    409: errorResponse("conflict: the team is not an agency (not_agency), or too many caps (too_many_caps)"),
  },
});

const listCaps = createRoute({
  method: "get",
  path: "/v1/teams/{teamId}/member-caps",
  tags: ["Organisations"],
  summary: "The agency's member caps, each with what it used this period",
  request: {
    params: AgencyParams,
    query: PageQuery,
  },
  responses: {
    200: {
      description: "Caps in member order",
      content: {
        "application/json": { schema: z.object({ caps: z.array(CapView), nextCursor: z.string().nullable() }) },
      },
    },
    ...commonErrors,
  },
});

const listSubaccounts = createRoute({
  method: "get",
  path: "/v1/teams/{teamId}/subaccounts",
  tags: ["Organisations"],
  summary: "The agency's subaccounts, each with its cap as it stands this period",
  request: { params: AgencyParams, query: PageQuery },
  responses: {
    200: {
      description: "Subaccounts in id order (empty for a team that is not an agency)",
      content: {
        "application/json": {
          schema: z.object({
            subaccounts: z.array(z.object({ teamId: z.string(), joinedAt: z.string(), cap: CapView.nullable() })),
            nextCursor: z.string().nullable(),
          }),
        },
      },
    },
    ...commonErrors,
  },
});

export function registerAgencyPoolRoutes(app: OpenAPIHono<AppEnv>): void {
  app.openapi(listSubaccounts, async (c) => {
    const { teamId } = c.req.valid("param");
    const { limit, cursor } = c.req.valid("query");
    // Team ids may hold `:` (a jurisdiction's prefix), the cursor's separator: a text cursor encodes it.
    const after = cursor ? decodeTextCursor(cursor, SUBACCOUNTS_CURSOR_TAG) : "";
    const page = unwrap(c, await teamLedger(c.env, teamId).listSubaccounts(teamId, after, limit ?? DEFAULT_PAGE_SIZE));
    const nextCursor = page.nextAfter === null ? null : encodeTextCursor(SUBACCOUNTS_CURSOR_TAG, page.nextAfter);
    return c.json({ subaccounts: page.subaccounts, nextCursor }, 200);
  });

  app.openapi(putCap, async (c) => {
    const { teamId, actorId } = c.req.valid("param");
    const { creditsPerPeriod } = c.req.valid("json");
    const refusal = poolAdminRefusal(c.get("actor"), "set a member's cap");
    if (refusal) throw ApiError.from(refusal);
    const cap = unwrap(c, await teamLedger(c.env, teamId).setMemberCap(teamId, actorId, creditsPerPeriod));
    return c.json({ cap }, 200);
  });

  app.openapi(listCaps, async (c) => {
    const { teamId } = c.req.valid("param");
    const { limit, cursor } = c.req.valid("query");
    const after = cursor ? decodeTextCursor(cursor, CURSOR_TAG) : "";
    const page = unwrap(c, await teamLedger(c.env, teamId).listMemberCaps(teamId, after, limit ?? DEFAULT_PAGE_SIZE));
    const nextCursor = page.nextAfter === null ? null : encodeTextCursor(CURSOR_TAG, page.nextAfter);
    return c.json({ caps: page.caps, nextCursor }, 200);
  });
}
