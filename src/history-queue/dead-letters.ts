/**
 * The history queue's dead-letter queue. Messages that failed every retry of the consumer
 * (wrangler.toml max_retries) arrive here; this consumer records which entries they carried in the
 * team's own D1 (db/dead-letters.ts), durably and where an operator can list them. The re-drive
 * (routes/history-admin.ts, POST /v1/admin/history/redrive) asks each such team's object to send
 * again from D1's mark: the object is the source of truth, so nothing depends on the dead
 * message's bytes, and a re-drive that runs twice, or after the object healed itself, lands
 * nothing twice.
 */
import { type DeadLetter, recordDeadLetters } from "../db/dead-letters";
import { historyDatabase } from "../db/history-database";
import { asHistoryMessage } from "./message";

/** Records a batch of dead letters, one D1 batch per database; a database that fails retries its own. */
export async function consumeDeadLetters(batch: MessageBatch<unknown>, env: Cloudflare.Env): Promise<void> {
  const byDb = new Map<D1Database, { messages: Message<unknown>[]; letters: DeadLetter[] }>();
  for (const message of batch.messages) {
    const body = asHistoryMessage(message.body);
    if (body === null) {
      // Nothing to re-drive: what it was is only in the log.
      console.error(JSON.stringify({ history: "malformed dead letter dropped", id: message.id }));
      message.ack();
      continue;
    }
    const db = historyDatabase(env, body.teamId);
    if (db === null) {
      message.retry();
      continue;
    }
    const group = byDb.get(db) ?? { messages: [], letters: [] };
    group.messages.push(message);
    group.letters.push({ teamId: body.teamId, fromSeq: body.fromSeq, toSeq: body.toSeq, attempts: message.attempts });
    byDb.set(db, group);
  }
  await Promise.all(
    [...byDb].map(async ([db, group]) => {
      try {
        await recordDeadLetters(db, group.letters, Date.now());
        for (const m of group.messages) m.ack();
      } catch (err) {
        console.error(JSON.stringify({ history: "recording dead letters failed", error: String(err) }));
        for (const m of group.messages) m.retry();
      }
    }),
  );
}
