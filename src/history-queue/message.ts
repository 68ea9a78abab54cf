/**
 * What a team object sends to the history queue and the consumer lands in D1: a run of one team's
 * entries, seq fromSeq to toSeq without a gap, each row the JSON array text D1's insert unpacks
 * (domain/entry.ts D1_COLUMNS order, team id first). The shape is checked on arrival, because a
 * queue hands the consumer whatever was sent, by any version of the worker.
 */

export interface HistoryMessage {
  teamId: string;
  fromSeq: number;
  toSeq: number;
  rows: string[];
}

/**
 * The bytes a message takes once serialized (the default v8 content type): a string is stored one
 * byte a character when all of them are Latin-1, else two; plus a little for the fields.
 */
export function messageBytes(teamId: string, rows: readonly string[]): number {
  let bytes = 64 + teamId.length * 2;
  for (const row of rows) bytes += rowBytes(row);
  return bytes;
}

export function rowBytes(row: string): number {
  // biome-ignore lint/suspicious/noControlCharactersInRegex: the Latin-1 range starts at U+0000.
  return 8 + (/^[\u0000-\u00ff]*$/.test(row) ? row.length : row.length * 2);
}

/** The body as a history message, or null when it is not one (then it is retried into the dead-letter queue). */
export function asHistoryMessage(body: unknown): HistoryMessage | null {
  if (typeof body !== "object" || body === null) return null;
  const m = body as Record<string, unknown>;
  const { teamId, fromSeq, toSeq, rows } = m;
  if (typeof teamId !== "string" || teamId.length === 0) return null;
  if (!Number.isSafeInteger(fromSeq) || !Number.isSafeInteger(toSeq)) return null;
  if (!Array.isArray(rows) || !rows.every((r) => typeof r === "string")) return null;
  const from = fromSeq as number;
  const to = toSeq as number;
  if (from < 1 || to - from + 1 !== rows.length) return null;
  return { teamId, fromSeq: from, toSeq: to, rows: rows as string[] };
}
