/**
 * Operator routes for the history's way to D1 through the queue (src/history-queue/): send a
 * team's history again from a seq (the repair of a gap that reconciliation shows), re-drive the
 * dead-letter queue's recorded messages, and this isolate's landing counts (for the bench). The
 * two POSTs answer 202: the sending happens in the objects' alarms, and doing it twice is harmless
 * (landing is idempotent), so they take no Idempotency-Key.
 */
import { createRoute, type OpenAPIHono, z } from "@hono/zod-openapi";
import type { AppEnv } from "../app-env";
import { teamLedger, unwrap } from "../client/ledger-client";
import { deadTeams, forgetDeadLetters } from "../db/dead-letters";
import { historyMarkOf, landingStats, lowerHistoryMark } from "../db/history";
import { historyDatabase } from "../db/history-database";
import { commonErrors, errorResponse, TeamParams } from "./schemas";

const Outbox = z
  .object({
    teamId: z.string(),
    fromSeq: z.number().int(),
    deliveredSeq: z
      .number()
      .int()
      .openapi({ description: "entries up to this seq are in D1 (as the object now counts)" }),
    sentSeq: z.number().int().openapi({ description: "entries up to this seq have been sent; the rest goes at once" }),
    backlog: z.number().int().openapi({ description: "entries not yet confirmed in D1" }),
  })
  .openapi("HistoryResend");

const resend = createRoute({
  method: "post",
  path: "/v1/admin/teams/{teamId}/history/resend",
  tags: ["Operations"],
  summary: "Send a team's history to D1 again from a seq",
  description: [
    "Account route (admin key bound to no team). D1's mark for the team goes down to `fromSeq − 1` and the",
    "team's object sends every entry from `fromSeq` again, through the queue, at once; rows D1 already has are",
    "skipped (idempotent on team and seq), missing ones land. Until D1 confirms them, history pages read those",
    "entries from the object. Use it when `GET /v1/admin/reconcile` shows entries missing from D1.",
  ].join("\n"),
  request: {
    params: TeamParams,
    body: {
      content: {
        "application/json": { schema: z.object({ fromSeq: z.number().int().min(1).max(Number.MAX_SAFE_INTEGER) }) },
      },
    },
  },
  responses: {
    202: {
      description: "Accepted: the object sends from fromSeq at once; its outbox after the reset",
      content: { "application/json": { schema: Outbox } },
    },
    ...commonErrors,
    403: errorResponse("forbidden: the key is not the account's admin key"),
  },
});

const Redrive = z
  .object({
    teams: z.number().int().openapi({ description: "teams whose dead letters were re-driven" }),
    deadLetters: z.number().int().openapi({ description: "dead letters those teams had (now forgotten)" }),
    resent: z.array(z.object({ teamId: z.string(), fromSeq: z.number().int() })),
  })
  .openapi("HistoryRedrive");

const redrive = createRoute({
  method: "post",
  path: "/v1/admin/history/redrive",
  tags: ["Operations"],
  summary: "Re-drive the history queue's dead letters",
  description: [
    "Account route. The dead-letter queue's consumer records each dead message (team, seq range) in the",
    "team's D1. This asks each such team's object to send again everything above D1's mark, then forgets",
    "the letters; at most 500 teams per database and call: repeat until `teams` is 0. Landing is idempotent,",
    "so a re-drive after the object already healed itself lands nothing twice.",
  ].join("\n"),
  responses: {
    202: {
      description: "Accepted: the teams' objects send again at once; what was re-driven",
      content: { "application/json": { schema: Redrive } },
    },
    ...commonErrors,
    403: errorResponse("forbidden: the key is not the account's admin key"),
  },
});

const Stats = z
  .object({
    batches: z.number().int().openapi({ description: "D1 batch calls that landed history" }),
    statements: z.number().int().openapi({ description: "statements in them" }),
    rows: z.number().int().openapi({ description: "entries they carried (rows already in D1 included)" }),
  })
  .openapi("HistoryStats");

const stats = createRoute({
  method: "get",
  path: "/v1/admin/history/stats",
  tags: ["Operations"],
  summary: "History landings since this isolate started (a diagnostic for the bench)",
  responses: {
    200: { description: "This isolate's counts", content: { "application/json": { schema: Stats } } },
    ...commonErrors,
    403: errorResponse("forbidden: the key is not the account's admin key"),
  },
});

/** The history databases bound to this worker (a jurisdiction without one has no history in D1). */
function databases(env: Cloudflare.Env): D1Database[] {
  return [env.DB, env.DB_EU, env.DB_FEDRAMP].filter((d): d is D1Database => d !== undefined);
}

export function registerHistoryAdminRoutes(app: OpenAPIHono<AppEnv>): void {
  app.openapi(resend, async (c) => {
    const { teamId } = c.req.valid("param");
    const { fromSeq } = c.req.valid("json");
    // The team first (a 404 for one that does not exist moves no mark), then D1's mark down, then
    // the object's: a landing in between walks up only over rows that are there.
    unwrap(c, await teamLedger(c.env, teamId).outbox(teamId));
    const db = historyDatabase(c.env, teamId);
    if (db) await lowerHistoryMark(db, teamId, fromSeq - 1);
    const out = unwrap(c, await teamLedger(c.env, teamId).resendHistory(teamId, fromSeq));
    return c.json({ teamId, fromSeq, deliveredSeq: out.deliveredSeq, sentSeq: out.sentSeq, backlog: out.backlog }, 202);
  });

  app.openapi(redrive, async (c) => {
    const startedMs = Date.now();
    const out: z.infer<typeof Redrive> = { teams: 0, deadLetters: 0, resent: [] };
    for (const db of databases(c.env)) {
      for (const dead of await deadTeams(db)) {
        const fromSeq = (await historyMarkOf(db, dead.teamId)) + 1;
        const reply = await teamLedger(c.env, dead.teamId).resendHistory(dead.teamId, fromSeq);
        // A team that is gone has nothing to send; its letters are forgotten all the same.
        if (!reply.ok)
          console.error(JSON.stringify({ teamId: dead.teamId, history: "re-drive refused", code: reply.code }));
        await forgetDeadLetters(db, dead.teamId, startedMs);
        out.teams += 1;
        out.deadLetters += dead.letters;
        if (reply.ok) out.resent.push({ teamId: dead.teamId, fromSeq });
      }
    }
    return c.json(out, 202);
  });

  app.openapi(stats, (c) => c.json({ ...landingStats }, 200));
}
