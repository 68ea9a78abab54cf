/**
 * Admin routes: reconciliation of a team's object against its D1 replica, and (history-admin.ts)
 * the repairs it may call for.
 */

import { createRoute, type OpenAPIHono, z } from "@hono/zod-openapi";
import type { AppEnv } from "../app-env";
import { teamLedger, unwrap } from "../client/ledger-client";
import { historyCoverage } from "../db/history";
import { historyDatabaseFor } from "../db/history-database";
import { d1EntrySums } from "../db/reports";
import { ApiError } from "../http/problem";
import { registerHistoryAdminRoutes } from "./history-admin";
import { commonErrors, errorResponse, TeamId } from "./schemas";

const Measure = z.object({
  object: z.number().int(),
  d1: z.number().int(),
  backlog: z.number().int(),
  drift: z.number().int(),
});

const Reconciliation = z
  .object({
    teamId: z.string(),
    objectTotal: z.number().int().openapi({ description: "the object's total = available + held" }),
    d1Total: z.number().int().openapi({
      description: "total as the D1 entries with seq <= deliveredSeq add up to (rule in the route description)",
    }),
    outboxBacklog: z.number().int().openapi({
      description: "total as the entries not yet delivered (seq > deliveredSeq) add up to, read in the object",
    }),
    drift: z.number().int().openapi({ description: "objectTotal − (d1Total + outboxBacklog); 0 when consistent" }),
    consistent: z.boolean().openapi({
      description: "no drift in available, held or total, and D1 holds exactly deliveredSeq rows up to the mark",
    }),
    deliveredSeq: z.number().int(),
    lastSeq: z.number().int(),
    backlogEntries: z.number().int().openapi({ description: "entries not yet delivered: lastSeq − deliveredSeq" }),
    d1Entries: z.number().int().openapi({ description: "rows in D1 with seq <= deliveredSeq" }),
    missingEntries: z.number().int().openapi({ description: "deliveredSeq − d1Entries: rows lost from D1" }),
    sentSeq: z.number().int().openapi({ description: "entries up to this seq have been sent to the history queue" }),
    d1Seq: z.number().int().openapi({ description: "D1's own mark: it holds every entry up to this seq" }),
    unlandedEntries: z.number().int().openapi({
      description: "entries sent (seq <= sentSeq) that D1 does not hold: in the queue, or lost if it stays above 0",
    }),
    gap: z.boolean().openapi({
      description:
        "D1 lacks an entry it should have (missingEntries > 0, d1Seq < deliveredSeq) or holds entries above one it lacks; repair: POST /v1/admin/teams/{teamId}/history/resend",
    }),
    available: Measure,
    held: Measure,
  })
  .openapi("Reconciliation");

const reconcile = createRoute({
  method: "get",
  path: "/v1/admin/reconcile",
  tags: ["Operations"],
  summary: "Compare a team's balance with its history in D1",
  description: [
    "Admin scope. The object reports, in one transaction, its balance, its outbox mark `deliveredSeq`",
    "(every entry up to it is in D1) and the sums of its entries above the mark (`outboxBacklog`); then D1",
    "sums the team's rows with seq <= deliveredSeq (later rows, delivered meanwhile, are left to the backlog",
    "side, so concurrent spends and deliveries never show as drift).",
    "",
    "Sums, with `in` as + and `out` as −: **available** = the signed sum of entries leaving out `capture`",
    "(a capture turns held credits into spent ones; the hold entry already took them from available).",
    "**held** = `hold` entries − `capture` entries − `in` entries that carry a holdId (credits a hold gave back).",
    "**total** = available + held = the `in` entries without a holdId minus the `out` entries other than `hold`.",
    "",
    "`drift` = objectTotal − (d1Total + outboxBacklog), and the same per measure in `available` and `held`.",
    "A row deleted or altered in D1 shows as drift (and a deleted one in `missingEntries`).",
    "",
    "Entries travel to D1 through a queue: `sentSeq` is how far the object has sent, `d1Seq` D1's own mark",
    "(every entry up to it is there), `unlandedEntries` the sent entries D1 does not hold. `gap` is true when D1",
    "lacks an entry below one it holds or below the object's mark; `POST /v1/admin/teams/{teamId}/history/resend`",
    "sends the history again from a seq and heals it.",
  ].join("\n"),
  request: {
    query: z.object({ teamId: TeamId.openapi({ param: { name: "teamId", in: "query" } }) }),
  },
  responses: {
    200: { description: "The comparison", content: { "application/json": { schema: Reconciliation } } },
    ...commonErrors,
    403: errorResponse("forbidden: the key lacks the admin scope"),
  },
});

export function registerAdminRoutes(app: OpenAPIHono<AppEnv>): void {
  app.openapi(reconcile, async (c) => {
    if (!c.get("caller").scopes.includes("admin")) throw new ApiError("forbidden", "reconciliation needs an admin key");
    const { teamId } = c.req.valid("query");
    const snap = unwrap(c, await teamLedger(c.env, teamId).reconcileSnapshot(teamId));
    const d1 = await d1EntrySums(historyDatabaseFor(c.env, teamId), teamId, snap.deliveredSeq);
    const measure = (object: number, inD1: number, backlog: number) => ({
      object,
      d1: inD1,
      backlog,
      drift: object - (inD1 + backlog),
    });
    const available = measure(snap.available, d1.available, snap.backlog.available);
    const held = measure(snap.held, d1.held, snap.backlog.held);
    const total = measure(snap.total, d1.total, snap.backlog.total);
    const missingEntries = snap.deliveredSeq - d1.entries;
    const coverage = await historyCoverage(historyDatabaseFor(c.env, teamId), teamId, snap.sentSeq);
    const gap = missingEntries > 0 || coverage.mark < snap.deliveredSeq || coverage.rowsAboveMark > 0;
    return c.json(
      {
        teamId,
        objectTotal: total.object,
        d1Total: total.d1,
        outboxBacklog: total.backlog,
        drift: total.drift,
        consistent: total.drift === 0 && available.drift === 0 && held.drift === 0 && missingEntries === 0,
        deliveredSeq: snap.deliveredSeq,
        lastSeq: snap.lastSeq,
        backlogEntries: snap.lastSeq - snap.deliveredSeq,
        d1Entries: d1.entries,
        missingEntries,
        sentSeq: snap.sentSeq,
        d1Seq: coverage.mark,
        unlandedEntries: snap.sentSeq - coverage.rowsUpToSent,
        gap,
        available,
        held,
      },
      200,
    );
  });

  registerHistoryAdminRoutes(app);
}
