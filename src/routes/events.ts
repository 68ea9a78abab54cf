/**
 * A team's events, newest first: what the service told (or will tell) the app's webhook
 * endpoints about this team (balance.low, grant.created, allocation.granted, …), read from the
 * team object's events outbox. Pages by `cursor` like the history.
 */
import { createRoute, type OpenAPIHono, z } from "@hono/zod-openapi";
import type { AppEnv } from "../app-env";
import { teamLedger, unwrap } from "../client/ledger-client";
import { EVENT_TYPES, type OutboundEvent } from "../domain/events";
import { DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE } from "../limits";
import { decodeCursor, encodeCursor, SEQ_PATTERN } from "./cursor";
import { commonErrors, TeamParams } from "./schemas";

const Event = z
  .object({
    id: z.string(),
    teamId: z.string(),
    seq: z.number().int(),
    type: z.enum(EVENT_TYPES),
    createdAt: z.string(),
    data: z.record(z.string(), z.unknown()),
  })
  .openapi("Event");

const EventsQuery = z.object({
  limit: z.coerce.number().int().min(1).max(MAX_PAGE_SIZE).optional(),
  cursor: z.string().max(200).optional(),
  type: z.enum(EVENT_TYPES).optional(),
});

const listEvents = createRoute({
  method: "get",
  path: "/v1/teams/{teamId}/events",
  tags: ["Events"],
  summary: "The team's events, newest first",
  request: { params: TeamParams, query: EventsQuery },
  responses: {
    200: {
      description: "A page of events",
      content: {
        "application/json": { schema: z.object({ events: z.array(Event), nextCursor: z.string().nullable() }) },
      },
    },
    ...commonErrors,
  },
});

export function registerEventRoutes(app: OpenAPIHono<AppEnv>): void {
  app.openapi(listEvents, async (c) => {
    const { teamId } = c.req.valid("param");
    const q = c.req.valid("query");
    const limit = q.limit ?? DEFAULT_PAGE_SIZE;
    const beforeSeq =
      q.cursor === undefined ? Number.MAX_SAFE_INTEGER : Number(decodeCursor(q.cursor, "ev", [SEQ_PATTERN])[0]);
    const reply = await teamLedger(c.env, teamId).listEvents(teamId, beforeSeq, limit, q.type);
    // RPC's serializable types cannot express `unknown` values; the object sends OutboundEvents.
    const { events } = unwrap(c, reply) as { events: OutboundEvent[] };
    const last = events.at(-1);
    const nextCursor = events.length === limit && last && last.seq > 1 ? encodeCursor("ev", [last.seq]) : null;
    return c.json({ events, nextCursor }, 200);
  });
}
