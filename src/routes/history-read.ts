/**
 * Reading a team's history for the entries and CSV routes: D1 serves it, and the team object
 * serves the entries D1 has not received yet, so a reader never sees a gap while the outbox lags.
 *
 * A page is keyed by seq. The object is asked first: in one transaction it reports its outbox mark
 * `deliveredSeq` (every entry up to it is in D1) and its matching entries above the mark. D1 then
 * supplies the rest of the page from seq <= deliveredSeq only, so an entry delivered meanwhile is
 * never read twice and an entry not yet delivered is never missed. New entries have higher seqs
 * than any cursor, so concurrent spends shift nothing under a reader.
 */

import { teamLedger } from "../client/ledger-client";
import { listEntriesFromD1 } from "../db/history";
import { historyDatabaseFor } from "../db/history-database";
import type { Entry, EntryFilter } from "../domain/vocabulary";
import { ApiError } from "../http/problem";
import { EXPORT_PAGE_ROWS } from "../limits";
import { csvHeader, csvRow } from "./csv";

export interface EntryPage {
  entries: Entry[];
  /** The seq to continue below (the last entry returned), or null at the end. */
  nextSeq: number | null;
  /** The outbox mark the page was read against. */
  deliveredSeq: number;
}

/**
 * One page, newest first. `knownDeliveredSeq` is a mark read earlier in the same export: the mark
 * only grows, so when the page lies entirely at or below it, D1 alone has every entry and the
 * round trip to the object is skipped.
 */
export async function readEntryPage(
  env: Cloudflare.Env,
  teamId: string,
  filter: EntryFilter,
  knownDeliveredSeq?: number,
): Promise<EntryPage> {
  let deliveredSeq: number;
  let fromObject: Entry[] = [];
  if (knownDeliveredSeq !== undefined && filter.beforeSeq !== undefined && filter.beforeSeq - 1 <= knownDeliveredSeq) {
    deliveredSeq = knownDeliveredSeq;
  } else {
    const reply = await teamLedger(env, teamId).undeliveredEntries(teamId, { ...filter, limit: filter.limit + 1 });
    if (!reply.ok) throw ApiError.from(reply);
    deliveredSeq = reply.body.deliveredSeq;
    fromObject = reply.body.entries;
  }
  const wanted = filter.limit + 1 - fromObject.length;
  const fromD1 =
    wanted > 0
      ? await listEntriesFromD1(historyDatabaseFor(env, teamId), {
          ...filter,
          teamId,
          limit: wanted,
          maxSeq: deliveredSeq,
        })
      : [];
  const all = fromObject.concat(fromD1);
  const entries = all.slice(0, filter.limit);
  const last = entries[entries.length - 1];
  return { entries, nextSeq: all.length > filter.limit && last ? last.seq : null, deliveredSeq };
}

const encoder = new TextEncoder();

/**
 * The team's history as CSV, newest first, read EXPORT_PAGE_ROWS entries at a time as the client
 * reads (a pull stream: a slow client slows the reads, and at most one page is in memory). The
 * first page is read before the response starts, so a missing team is a 404, not a broken body.
 */
export async function entriesCsvStream(
  env: Cloudflare.Env,
  teamId: string,
  filter: Omit<EntryFilter, "limit" | "beforeSeq">,
): Promise<ReadableStream<Uint8Array>> {
  const pageFilter = { ...filter, limit: EXPORT_PAGE_ROWS };
  let page: EntryPage | null = await readEntryPage(env, teamId, pageFilter);
  let headerSent = false;
  return new ReadableStream<Uint8Array>(
    {
      async pull(controller) {
        if (!headerSent) {
          headerSent = true;
          controller.enqueue(encoder.encode(csvHeader()));
          return;
        }
        if (page === null) {
          controller.close();
          return;
        }
        const current: EntryPage = page;
        controller.enqueue(encoder.encode(current.entries.map(csvRow).join("")));
        page =
          current.nextSeq === null
            ? null
            : await readEntryPage(env, teamId, { ...pageFilter, beforeSeq: current.nextSeq }, current.deliveredSeq);
      },
    },
    { highWaterMark: 1 },
  );
}
