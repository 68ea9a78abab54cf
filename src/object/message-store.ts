/**
 * The team object's messages table: what this team must tell another team's object (a referral
 * reward for the referrer), written in the same transaction as the change that owes it and
 * delivered by the alarm until the other object confirms (messages.ts). Idempotent on the
 * message id at both ends, so a retried delivery is never counted twice.
 */

export type MessageRow = {
  id: string;
  kind: string;
  target_team_id: string;
  payload: string;
  created_at_ms: number;
  delivered_at_ms: number | null;
  attempts: number;
  next_attempt_at_ms: number;
  last_error: string | null;
};

export class MessageStore {
  constructor(private readonly sql: SqlStorage) {}

  /** Adds a message unless one with this id exists (the cause may be replayed). */
  put(m: { id: string; kind: string; targetTeamId: string; payload: unknown; nowMs: number }): void {
    this.sql.exec(
      `INSERT INTO messages (id, kind, target_team_id, payload, created_at_ms, next_attempt_at_ms)
       VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO NOTHING`,
      m.id,
      m.kind,
      m.targetTeamId,
      JSON.stringify(m.payload),
      m.nowMs,
      m.nowMs,
    );
  }

  due(nowMs: number, limit: number): MessageRow[] {
    return this.sql
      .exec<MessageRow>(
        "SELECT * FROM messages WHERE delivered_at_ms IS NULL AND next_attempt_at_ms <= ? ORDER BY next_attempt_at_ms LIMIT ?",
        nowMs,
        limit,
      )
      .toArray();
  }

  nextAttemptMs(): number | null {
    return this.sql
      .exec<{ t: number | null }>("SELECT MIN(next_attempt_at_ms) AS t FROM messages WHERE delivered_at_ms IS NULL")
      .one().t;
  }

  delivered(id: string, nowMs: number): void {
    this.sql.exec("UPDATE messages SET delivered_at_ms = ?, last_error = NULL WHERE id = ?", nowMs, id);
  }

  failed(id: string, nextAttemptAtMs: number, error: string): void {
    this.sql.exec(
      "UPDATE messages SET attempts = attempts + 1, next_attempt_at_ms = ?, last_error = ? WHERE id = ?",
      nextAttemptAtMs,
      error.slice(0, 500),
      id,
    );
  }

  get(id: string): MessageRow | null {
    return this.sql.exec<MessageRow>("SELECT * FROM messages WHERE id = ?", id).toArray()[0] ?? null;
  }
}
