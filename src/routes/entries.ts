/**
 * History: the team's entries, newest first, with cursor pagination and filters, as JSON pages or
 * as a streamed CSV export. Served from the D1 replica, completed by the team object with what D1
 * has not received yet (see history-read.ts).
 */
import { createRoute, type OpenAPIHono, z } from "@hono/zod-openapi";
import type { AppEnv } from "../app-env";
import { DIRECTIONS, HISTORY_TYPES, type HistoryType, RESERVED_ENTRY_TYPES } from "../domain/vocabulary";
import { ApiError } from "../http/problem";
import { DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE } from "../limits";
import { decodeCursor, encodeCursor, SEQ_PATTERN } from "./cursor";
import { entriesCsvStream, readEntryPage } from "./history-read";
import { commonErrors, Entry, TeamParams } from "./schemas";

const EntriesQuery = z.object({
  limit: z.coerce.number().int().min(1).max(MAX_PAGE_SIZE).optional(),
  cursor: z.string().max(64).optional(),
  type: z
    .string()
    .max(200)
    .optional()
    .openapi({
      description: `one type or several, comma-separated: ${HISTORY_TYPES.join(", ")} (reserved, nothing writes them yet: ${RESERVED_ENTRY_TYPES.join(", ")})`,
    }),
  direction: z.enum(DIRECTIONS).optional(),
  from: z.iso.datetime({ offset: true }).optional().openapi({ description: "inclusive" }),
  to: z.iso.datetime({ offset: true }).optional().openapi({ description: "exclusive" }),
});

function parseTypes(value: string | undefined) {
  if (value === undefined) return undefined;
  const types = value.split(",").map((t) => t.trim());
  for (const t of types)
    if (!(HISTORY_TYPES as readonly string[]).includes(t))
      throw new ApiError("invalid_request", `unknown entry type "${t}"; one of ${HISTORY_TYPES.join(", ")}`);
  return types as HistoryType[];
}

const ExportQuery = EntriesQuery.omit({ limit: true, cursor: true });

function filterFrom(q: z.infer<typeof ExportQuery>) {
  return {
    types: parseTypes(q.type),
    direction: q.direction,
    fromMs: q.from === undefined ? undefined : Date.parse(q.from),
    toMs: q.to === undefined ? undefined : Date.parse(q.to),
  };
}

const listEntries = createRoute({
  method: "get",
  path: "/v1/teams/{teamId}/entries",
  tags: ["History"],
  summary: "The team's history, newest first",
  request: { params: TeamParams, query: EntriesQuery },
  responses: {
    200: {
      description: "A page of entries",
      content: {
        "application/json": { schema: z.object({ entries: z.array(Entry), nextCursor: z.string().nullable() }) },
      },
    },
    ...commonErrors,
  },
});

const exportEntries = createRoute({
  method: "get",
  path: "/v1/teams/{teamId}/entries.csv",
  tags: ["History"],
  summary: "The team's history as CSV, newest first",
  description:
    "Every entry matching the filters, streamed (read in pages, never all at once). RFC 4180 CSV with a " +
    "header row and CRLF line ends; text cells starting with = + - @ TAB or CR are prefixed with a single " +
    "quote so a spreadsheet shows them instead of running them. `dimensions` is a JSON object.",
  request: { params: TeamParams, query: ExportQuery },
  responses: {
    200: { description: "CSV", content: { "text/csv": { schema: z.string() } } },
    ...commonErrors,
  },
});

export function registerEntryRoutes(app: OpenAPIHono<AppEnv>): void {
  app.openapi(listEntries, async (c) => {
    const { teamId } = c.req.valid("param");
    const q = c.req.valid("query");
    const page = await readEntryPage(c.env, teamId, {
      ...filterFrom(q),
      limit: q.limit ?? DEFAULT_PAGE_SIZE,
      beforeSeq: q.cursor === undefined ? undefined : Number(decodeCursor(q.cursor, "s", [SEQ_PATTERN])[0]),
    });
    return c.json(
      { entries: page.entries, nextCursor: page.nextSeq === null ? null : encodeCursor("s", [page.nextSeq]) },
      200,
    );
  });

  app.openapi(exportEntries, async (c) => {
    const { teamId } = c.req.valid("param");
    const body = await entriesCsvStream(c.env, teamId, filterFrom(c.req.valid("query")));
    const filename = `entries-${teamId.replaceAll(":", "_")}.csv`;
    return c.body(body, 200, {
      "content-type": "text/csv; charset=utf-8",
      "content-disposition": `attachment; filename="${filename}"`,
      "cache-control": "no-store",
    });
  });
}
