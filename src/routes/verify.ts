/**
 * Verification of a team's hash chain (src/domain/chain.ts) over the history replicated to D1:
 * the entries are read in seq order in bounded pages and each one's hash is recomputed from the
 * one before it, keeping only the last hash, so no more than one page is ever in memory. A gap in
 * seq, a NULL hash or a hash that differs from the recomputed one is a break. The team object
 * says how far D1 is meant to go (a missing tail is a break too), how many entries are not
 * replicated yet (not checked), and its own hash at that point, which anchors the D1 chain to the
 * source of truth: rewriting D1's rows and all their hashes consistently is still caught.
 * Work per request is bounded; a longer history is verified in several requests via `nextCursor`.
 */

import { createRoute, type OpenAPIHono, z } from "@hono/zod-openapi";
import type { AppEnv } from "../app-env";
import { teamLedger, unwrap } from "../client/ledger-client";
import { chainPage } from "../db/history";
import { historyDatabaseFor } from "../db/history-database";
import { ChainVerifier, GENESIS_HASH } from "../domain/chain";
import { VERIFY_MAX_ENTRIES_PER_REQUEST, VERIFY_PAGE_ROWS } from "../limits";
import { decodeCursor, encodeCursor, HASH_PATTERN, SEQ_PATTERN } from "./cursor";
import { commonErrors, TeamParams } from "./schemas";

const VerifyQuery = z.object({
  limit: z.coerce
    .number()
    .int()
    .min(1)
    .max(VERIFY_MAX_ENTRIES_PER_REQUEST)
    .optional()
    .openapi({ description: `entries to check in this request (default and max ${VERIFY_MAX_ENTRIES_PER_REQUEST})` }),
  cursor: z.string().max(200).optional().openapi({ description: "nextCursor of the previous verification" }),
});

const ChainBreak = z
  .object({
    seq: z.number().int(),
    reason: z.enum(["hash_mismatch", "missing_hash", "missing_entry", "anchor_mismatch"]),
    expected: z.string().nullable(),
    found: z.string().nullable(),
  })
  .openapi("ChainBreak");

const Verification = z
  .object({
    ok: z.boolean().openapi({ description: "no break in the entries checked" }),
    checked: z.number().int().openapi({ description: "entries whose hash was recomputed and matched" }),
    firstBreak: ChainBreak.nullable(),
    lastCheckedSeq: z.number().int().openapi({ description: "the last entry that linked correctly (0: none)" }),
    headSeq: z.number().int().openapi({ description: "the team's last entry, in the team object" }),
    replicatedSeq: z.number().int().openapi({ description: "entries up to this seq are in D1" }),
    unreplicated: z
      .number()
      .int()
      .openapi({ description: "entries committed but not yet in D1, hence not checked (the outbox backlog)" }),
    nextCursor: z.string().nullable().openapi({ description: "non-null: more entries to check; pass it as cursor" }),
  })
  .openapi("ChainVerification");

const verifyEntries = createRoute({
  method: "get",
  path: "/v1/teams/{teamId}/entries/verify",
  tags: ["History"],
  summary: "Recompute the team's hash chain over its replicated history",
  request: { params: TeamParams, query: VerifyQuery },
  responses: {
    200: { description: "The verification", content: { "application/json": { schema: Verification } } },
    ...commonErrors,
  },
});

/** Where a verification continues: the last verified seq and its hash. */
function fromCursor(cursor: string): { seq: number; hash: string } {
  const [seq, hash] = decodeCursor(cursor, "v", [SEQ_PATTERN, HASH_PATTERN]);
  return { seq: Number(seq), hash: hash ?? "" };
}

export function registerVerifyRoutes(app: OpenAPIHono<AppEnv>): void {
  app.openapi(verifyEntries, async (c) => {
    const { teamId } = c.req.valid("param");
    const q = c.req.valid("query");
    const from = q.cursor === undefined ? { seq: 0, hash: GENESIS_HASH } : fromCursor(q.cursor);
    const budget = q.limit ?? VERIFY_MAX_ENTRIES_PER_REQUEST;
    // Read before D1: every entry up to deliveredSeq was confirmed in D1 before this answer.
    const head = unwrap(c, await teamLedger(c.env, teamId).chainHead(teamId));
    const verifier = new ChainVerifier(from);
    // The object's own hash where D1 is meant to end: D1's chain must reach exactly that.
    const anchor = (seq: number, hash: string) => {
      if (seq === head.deliveredSeq && head.deliveredHash !== null && hash !== head.deliveredHash)
        verifier.fail({ seq, reason: "anchor_mismatch", expected: head.deliveredHash, found: hash });
    };
    anchor(from.seq, from.hash);
    let exhausted = false;
    while (!verifier.firstBreak && !exhausted && verifier.checked < budget) {
      const pageSize = Math.min(VERIFY_PAGE_ROWS, budget - verifier.checked);
      const results = await chainPage(historyDatabaseFor(c.env, teamId), teamId, verifier.last.seq, pageSize);
      for (const r of results) {
        const linked = verifier.push(r);
        if (!linked) break;
        anchor(r.seq, verifier.last.hash);
      }
      exhausted = results.length < pageSize;
    }
    const last = verifier.last;
    const done = exhausted || last.seq >= head.lastSeq;
    // D1 ended before what the object says it delivered: the entries after the last one are gone.
    if (done && last.seq < head.deliveredSeq)
      verifier.fail({ seq: last.seq + 1, reason: "missing_entry", expected: null, found: null });
    const firstBreak = verifier.firstBreak;
    return c.json(
      {
        ok: firstBreak === null,
        checked: verifier.checked,
        firstBreak,
        lastCheckedSeq: last.seq,
        headSeq: head.lastSeq,
        replicatedSeq: head.deliveredSeq,
        unreplicated: head.backlog,
        nextCursor: firstBreak === null && !done ? encodeCursor("v", [last.seq, last.hash]) : null,
      },
      200,
    );
  });
}
