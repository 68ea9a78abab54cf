/**
 * The history queue's dead letters in D1 (schema.ts history_dead_letters): which entries of which
 * team failed every retry. Only the seq range is kept; the entries stay in the team's object, which
 * sends them again when re-driven (history-queue/dead-letters.ts).
 */
import { HISTORY_REDRIVE_BATCH } from "../limits";

export interface DeadLetter {
  teamId: string;
  fromSeq: number;
  toSeq: number;
  attempts: number;
}

/** Records dead letters once each (a message dead twice is one row), in one D1 batch. */
export async function recordDeadLetters(d1: D1Database, letters: readonly DeadLetter[], nowMs: number): Promise<void> {
  if (letters.length === 0) return;
  await d1.batch(
    letters.map((l) =>
      d1
        .prepare(
          `INSERT INTO history_dead_letters (team_id, from_seq, to_seq, attempts, dead_at_ms) VALUES (?, ?, ?, ?, ?)
           ON CONFLICT (team_id, from_seq, to_seq) DO UPDATE SET attempts = excluded.attempts, dead_at_ms = excluded.dead_at_ms`,
        )
        .bind(l.teamId, l.fromSeq, l.toSeq, l.attempts, nowMs),
    ),
  );
}

/** A team with dead letters: its lowest dead seq and how many letters, at most HISTORY_REDRIVE_BATCH teams. */
export interface DeadTeam {
  teamId: string;
  fromSeq: number;
  letters: number;
}

export async function deadTeams(d1: D1Database): Promise<DeadTeam[]> {
  const res = await d1
    .prepare(
      `SELECT team_id AS teamId, MIN(from_seq) AS fromSeq, COUNT(*) AS letters FROM history_dead_letters
       GROUP BY team_id ORDER BY team_id LIMIT ?`,
    )
    .bind(HISTORY_REDRIVE_BATCH)
    .all<DeadTeam>();
  return res.results;
}

/** Forgets a team's dead letters recorded up to `upToMs` (those the re-drive has just sent again). */
export async function forgetDeadLetters(d1: D1Database, teamId: string, upToMs: number): Promise<void> {
  await d1.prepare("DELETE FROM history_dead_letters WHERE team_id = ? AND dead_at_ms <= ?").bind(teamId, upToMs).run();
}
