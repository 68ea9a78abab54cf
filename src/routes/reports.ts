/**
 * Reports from the D1 replica: credits used per feature or per dimension value over a window,
 * with hold outcomes for what is charged on success.
 */

import { createRoute, type OpenAPIHono, z } from "@hono/zod-openapi";
import type { AppEnv } from "../app-env";
import { teamLedger, unwrap } from "../client/ledger-client";
import { historyDatabaseFor } from "../db/history-database";
import { type HoldOutcomeRow, joinParts, type UsageGroupBy, usage } from "../db/reports";
import { ApiError } from "../http/problem";
import { MAX_USAGE_GROUPS } from "../limits";
import { commonErrors, DimensionKey, TeamParams } from "./schemas";

const UsageQuery = z.object({
  groupBy: z.union([z.literal("feature"), z.literal("actor"), z.literal("subaccount"), DimensionKey]).openapi({
    description:
      "`feature`, `actor` (the X-Actor-Id that made the charge), `subaccount` (the member team a pooled charge was for), or the key of a dimension (e.g. `campaign`; `feature`, `actor` and `subaccount` name the columns, not dimensions)",
    example: "feature",
  }),
  from: z.iso.datetime({ offset: true }).optional().openapi({ description: "inclusive" }),
  to: z.iso.datetime({ offset: true }).optional().openapi({ description: "exclusive" }),
});

const CreditsExact = z.string().regex(/^\d+$/).openapi({
  description:
    "the same credits as a decimal string, exact at any size (`credits` is a JSON number, exact only up to 2^53)",
  example: "120",
});

const Outcome = z.object({ count: z.number().int(), credits: z.number().int(), creditsExact: CreditsExact });

const HoldOutcomes = z
  .object({
    captured: Outcome.openapi({ description: "holds of which any part was captured; credits captured" }),
    released: Outcome.openapi({
      description:
        "holds released with nothing captured; credits returned by release entries (including the uncaptured rest of captured holds)",
    }),
    expired: Outcome.openapi({ description: "holds that reached their deadline; credits returned" }),
    captureRate: z
      .number()
      .nullable()
      .openapi({ description: "captured / (captured + released + expired) holds, 0..1; null with no outcome" }),
  })
  .openapi("HoldOutcomes");

const UsageGroup = z
  .object({
    key: z.string().nullable().openapi({ description: "the feature or dimension value; null: entries without one" }),
    credits: z.number().int().openapi({ description: "credits consumed: spends plus captured holds" }),
    creditsExact: CreditsExact,
    count: z
      .number()
      .int()
      .openapi({ description: "charges: spends plus captured holds (one spend over several grants counts once)" }),
    holds: HoldOutcomes.optional().openapi({ description: "present when holds of this key were resolved" }),
  })
  .openapi("UsageGroup");

const getUsage = createRoute({
  method: "get",
  path: "/v1/teams/{teamId}/usage",
  tags: ["History"],
  summary: "Credits used per feature or dimension",
  description:
    "Read from the D1 replica: entries still in the team's outbox (see /replication) are not counted yet. " +
    "Spends and captures count at their entry's time, hold outcomes at the time the hold resolved; " +
    "`from` is inclusive, `to` exclusive. Groups come largest first; at most " +
    `${MAX_USAGE_GROUPS}, with \`truncated\` true when there were more.`,
  request: { params: TeamParams, query: UsageQuery },
  responses: {
    200: {
      description: "Usage",
      content: {
        "application/json": { schema: z.object({ groups: z.array(UsageGroup), truncated: z.boolean() }) },
      },
    },
    ...commonErrors,
  },
});

function outcome(count: number, high: number, low: number): z.infer<typeof Outcome> {
  const credits = joinParts(high, low);
  return { count, credits: credits.number, creditsExact: credits.exact };
}

function outcomes(h: HoldOutcomeRow): z.infer<typeof HoldOutcomes> {
  const resolved = h.capturedCount + h.releasedCount + h.expiredCount;
  return {
    captured: outcome(h.capturedCount, h.capturedHigh, h.capturedLow),
    released: outcome(h.releasedCount, h.releasedHigh, h.releasedLow),
    expired: outcome(h.expiredCount, h.expiredHigh, h.expiredLow),
    captureRate: resolved === 0 ? null : Math.round((h.capturedCount / resolved) * 10_000) / 10_000,
  };
}

export function registerReportRoutes(app: OpenAPIHono<AppEnv>): void {
  app.openapi(getUsage, async (c) => {
    const { teamId } = c.req.valid("param");
    const q = c.req.valid("query");
    const fromMs = q.from === undefined ? undefined : Date.parse(q.from);
    const toMs = q.to === undefined ? undefined : Date.parse(q.to);
    if (fromMs !== undefined && toMs !== undefined && fromMs > toMs)
      throw new ApiError("invalid_request", "from must not be after to");
    // The team must exist (404 otherwise); D1 alone cannot tell a new team from a missing one.
    unwrap(c, await teamLedger(c.env, teamId).getTeam(teamId));
    const groupBy: UsageGroupBy =
      q.groupBy === "feature" || q.groupBy === "actor" || q.groupBy === "subaccount"
        ? { kind: q.groupBy }
        : { kind: "dimension", key: q.groupBy };
    const report = await usage(historyDatabaseFor(c.env, teamId), {
      teamId,
      groupBy,
      fromMs,
      toMs,
      limit: MAX_USAGE_GROUPS + 1,
    });
    const holdsByKey = new Map(report.holds.map((h) => [h.key, h]));
    const groups: z.infer<typeof UsageGroup>[] = report.groups.map((g) => {
      const credits = joinParts(g.creditsHigh, g.creditsLow);
      const group = { key: g.key, credits: credits.number, creditsExact: credits.exact, count: g.count };
      const h = holdsByKey.get(g.key);
      holdsByKey.delete(g.key);
      return h ? { ...group, holds: outcomes(h) } : group;
    });
    // Keys with resolved holds but nothing consumed (every hold released or expired).
    for (const h of holdsByKey.values())
      groups.push({ key: h.key, credits: 0, creditsExact: "0", count: 0, holds: outcomes(h) });
    const truncated = groups.length > MAX_USAGE_GROUPS || report.holds.length > MAX_USAGE_GROUPS;
    return c.json({ groups: groups.slice(0, MAX_USAGE_GROUPS), truncated }, 200);
  });
}
