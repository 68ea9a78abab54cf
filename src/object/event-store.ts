/**
 * The team object's events table: the outbox of outbound events (domain/events.ts). An event is
 * appended in the same transaction as the change that caused it, numbered per team, and handed to
 * the webhook endpoints by the alarm (events.ts); the handed-off mark lives in meta. Typed reads
 * and writes only.
 */
import type { EventType, OutboundEvent } from "../domain/events";
import { iso } from "./time";

type EventRow = { seq: number; id: string; type: string; created_at_ms: number; data: string };

function eventOfRow(teamId: string, r: EventRow): OutboundEvent {
  return {
    id: r.id,
    teamId,
    seq: r.seq,
    type: r.type as EventType,
    createdAt: iso(r.created_at_ms),
    data: JSON.parse(r.data) as Record<string, unknown>,
  };
}

export class EventStore {
  constructor(private readonly sql: SqlStorage) {}

  append(teamId: string, type: EventType, data: Record<string, unknown>, nowMs: number): OutboundEvent {
    const last = this.sql.exec<{ seq: number | null }>("SELECT MAX(seq) AS seq FROM events").one().seq ?? 0;
    const event: OutboundEvent = {
      id: `evt_${crypto.randomUUID().replaceAll("-", "")}`,
      teamId,
      seq: last + 1,
      type,
      createdAt: iso(nowMs),
      data,
    };
    this.sql.exec(
      "INSERT INTO events (seq, id, type, created_at_ms, data) VALUES (?, ?, ?, ?, ?)",
      event.seq,
      event.id,
      type,
      nowMs,
      JSON.stringify(data),
    );
    return event;
  }

  /** Events after `afterSeq`, in seq order, at most `limit`. */
  after(teamId: string, afterSeq: number, limit: number): OutboundEvent[] {
    return this.sql
      .exec<EventRow>("SELECT * FROM events WHERE seq > ? ORDER BY seq LIMIT ?", afterSeq, limit)
      .toArray()
      .map((r) => eventOfRow(teamId, r));
  }

  /** Newest first, before `beforeSeq`, at most `limit` (the team's event log). */
  list(teamId: string, beforeSeq: number, limit: number, type?: EventType): OutboundEvent[] {
    const rows = type
      ? this.sql.exec<EventRow>(
          "SELECT * FROM events WHERE seq < ? AND type = ? ORDER BY seq DESC LIMIT ?",
          beforeSeq,
          type,
          limit,
        )
      : this.sql.exec<EventRow>("SELECT * FROM events WHERE seq < ? ORDER BY seq DESC LIMIT ?", beforeSeq, limit);
    return rows.toArray().map((r) => eventOfRow(teamId, r));
  }

  lastSeq(): number {
    return this.sql.exec<{ seq: number | null }>("SELECT MAX(seq) AS seq FROM events").one().seq ?? 0;
  }
}
