/**
 * The history queue's consumer: what many team objects sent lands in D1 in one `db.batch` per
 * database (a jurisdiction's teams in their jurisdiction's D1, db/history-database.ts), instead of
 * one D1 call per team and alarm run. Idempotent on (team_id, seq) like every history write
 * (db/history.ts), so a message delivered twice, or sent again by its object, lands once.
 *
 * After a landing, each team's object is told how far D1 now holds its history (the mark moved in
 * the same batch), so its pages complete from the object only above that. A database that fails
 * retries its messages (wrangler.toml max_retries), then the queue moves them to the dead-letter
 * queue (dead-letters.ts); the other databases' messages are unaffected.
 */
import { type HistoryMarks, landRows } from "../db/history";
import { historyDatabase } from "../db/history-database";
import { HISTORY_ROWS_PER_CONSUMER_BATCH } from "../limits";
import { teamObject } from "../object/team-address";
import { asHistoryMessage } from "./message";

/**
 * Which D1 database lands a team's history. A seam, as TeamLedger.d1 is for the object: tests swap
 * it to fail or hold back D1 behind the real queue.
 */
export const consumerSeams = {
  database: (env: Cloudflare.Env, teamId: string): D1Database | null => historyDatabase(env, teamId),
};

interface Landing {
  db: D1Database;
  messages: Message<unknown>[];
  rows: string[];
  teamIds: string[];
}

/** Lands one batch of the history queue. Every message ends acked (landed) or retried. */
export async function consumeHistory(
  batch: MessageBatch<unknown>,
  env: Cloudflare.Env,
  ctx: ExecutionContext,
): Promise<void> {
  const landings = new Map<D1Database, Landing>();
  for (const message of batch.messages) {
    const body = asHistoryMessage(message.body);
    if (body === null) {
      // Not a history message: nothing can land it; retried, it ends in the dead-letter queue.
      console.error(JSON.stringify({ history: "malformed message", id: message.id }));
      message.retry();
      continue;
    }
    const db = consumerSeams.database(env, body.teamId);
    if (db === null) {
      // The jurisdiction's database is not bound (yet): never land it elsewhere.
      console.error(JSON.stringify({ teamId: body.teamId, history: "no D1 database for its jurisdiction" }));
      message.retry();
      continue;
    }
    const landing = landings.get(db) ?? { db, messages: [], rows: [], teamIds: [] };
    landing.messages.push(message);
    landing.rows.push(...body.rows);
    landing.teamIds.push(body.teamId);
    landings.set(db, landing);
  }
  await Promise.all([...landings.values()].map((landing) => land(landing, env, ctx)));
}

async function land(landing: Landing, env: Cloudflare.Env, ctx: ExecutionContext): Promise<void> {
  if (landing.rows.length > HISTORY_ROWS_PER_CONSUMER_BATCH) throw new Error("consumer batch too large");
  let marks: HistoryMarks;
  try {
    marks = await landRows(landing.db, landing.rows, landing.teamIds);
  } catch (err) {
    console.error(JSON.stringify({ history: "landing failed", error: String(err), messages: landing.messages.length }));
    for (const message of landing.messages) message.retry();
    return;
  }
  for (const message of landing.messages) message.ack();
  // The batch is done once D1 has it: the queue hands over the next one while the objects are told
  // (each a durable write in its object), so the objects' commits do not hold up the landings.
  ctx.waitUntil(tellObjects(env, marks));
}

/**
 * Tells each team's object its new mark. A lost word is harmless: the next landing tells a later
 * mark, and an object that hears nothing for long reads D1's mark itself (object/outbox.ts).
 */
async function tellObjects(env: Cloudflare.Env, marks: HistoryMarks): Promise<void> {
  const tell = (teamId: string, seq: number) => teamObject(env, teamId).historyLanded(teamId, seq);
  const told = await Promise.allSettled([...marks].map(([teamId, seq]) => tell(teamId, seq)));
  // Once more for those whose object was not reachable (restarted meanwhile: a fresh stub reaches it).
  const again = [...marks].filter((_, i) => told[i]?.status === "rejected");
  const retold = await Promise.allSettled(again.map(([teamId, seq]) => tell(teamId, seq)));
  const failed = retold.filter((t) => t.status === "rejected").length;
  if (failed > 0) console.error(JSON.stringify({ history: "objects not told their mark", failed }));
}
