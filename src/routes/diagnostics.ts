/**
 * Operator routes: the replication status of a team's outbox to D1, and a ping that makes one
 * round trip to the team's object without touching storage (the ceiling the benchmark compares
 * the spend path against).
 */
import { createRoute, type OpenAPIHono, z } from "@hono/zod-openapi";
import type { AppEnv } from "../app-env";
import { teamLedger, unwrap } from "../client/ledger-client";
import { commonErrors, TeamParams } from "./schemas";

const Replication = z
  .object({
    teamId: z.string(),
    deliveredSeq: z.number().int().openapi({ description: "entries up to this seq are in D1" }),
    backlog: z.number().int().openapi({ description: "entries committed but not yet in D1" }),
    failedAttempts: z.number().int(),
    nextAttemptAt: z.string().nullable(),
    lastError: z.string().nullable(),
  })
  .openapi("Replication");

const getReplication = createRoute({
  method: "get",
  path: "/v1/teams/{teamId}/replication",
  tags: ["Operations"],
  summary: "How far the team's history has been replicated to D1",
  request: { params: TeamParams },
  responses: {
    200: { description: "Outbox status", content: { "application/json": { schema: Replication } } },
    ...commonErrors,
  },
});

const ping = createRoute({
  method: "get",
  path: "/v1/teams/{teamId}/ping",
  tags: ["Operations"],
  summary: "One round trip to the team's object: no storage, or with durable=true one tiny committed write",
  request: {
    params: TeamParams,
    query: z.object({ durable: z.enum(["true", "false"]).optional() }),
  },
  responses: {
    200: {
      description: "The object answered",
      content: { "application/json": { schema: z.object({ ok: z.literal(true) }) } },
    },
    ...commonErrors,
  },
});

export function registerDiagnosticRoutes(app: OpenAPIHono<AppEnv>): void {
  app.openapi(getReplication, async (c) => {
    const { teamId } = c.req.valid("param");
    const state = unwrap(c, await teamLedger(c.env, teamId).outbox(teamId));
    return c.json(
      {
        teamId,
        deliveredSeq: state.deliveredSeq,
        backlog: state.backlog,
        failedAttempts: state.failedAttempts,
        nextAttemptAt: state.nextAttemptAtMs > 0 ? new Date(state.nextAttemptAtMs).toISOString() : null,
        lastError: state.lastError,
      },
      200,
    );
  });

  app.openapi(ping, async (c) => {
    const { teamId } = c.req.valid("param");
    return c.json(await teamLedger(c.env, teamId).ping(c.req.valid("query").durable === "true"), 200);
  });
}
