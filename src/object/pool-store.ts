/**
 * An agency object's pool tables (schema.ts v6): its subaccounts with their caps, its members'
 * caps, and the spent-per-period counters caps are checked against. Typed reads and writes only;
 * the rules are domain/pools.ts's and object/pools.ts applies them.
 */

/** A capped subject's key in cap_usage: whose cap (domain/pools.ts CapScope) and its id. */
export const subaccountSubject = (teamId: string): string => `subaccount:${teamId}`;
export const memberSubject = (actorId: string): string => `member:${actorId}`;
export const keySubject = (keyId: string): string => `key:${keyId}`;

export interface PoolMember {
  teamId: string;
  capCredits: number | null;
  joinedAtMs: number;
}

export interface MemberCap {
  actorId: string;
  capCredits: number;
  updatedAtMs: number;
}

type MemberRow = { team_id: string; cap_credits: number | null; joined_at_ms: number };
type CapRow = { actor_id: string; cap_credits: number; updated_at_ms: number };

const toMember = (r: MemberRow): PoolMember => ({
  teamId: r.team_id,
  capCredits: r.cap_credits,
  joinedAtMs: r.joined_at_ms,
});
const toCap = (r: CapRow): MemberCap => ({
  actorId: r.actor_id,
  capCredits: r.cap_credits,
  updatedAtMs: r.updated_at_ms,
});

export class PoolStore {
  constructor(private readonly sql: SqlStorage) {}

  member(teamId: string): PoolMember | null {
    const row = this.sql
      .exec<MemberRow>("SELECT team_id, cap_credits, joined_at_ms FROM pool_members WHERE team_id = ?", teamId)
      .toArray()[0];
    return row ? toMember(row) : null;
  }

  /** Subaccounts in id order, after `afterTeamId`, at most `limit`. */
  members(afterTeamId: string, limit: number): PoolMember[] {
    return this.sql
      .exec<MemberRow>(
        "SELECT team_id, cap_credits, joined_at_ms FROM pool_members WHERE team_id > ? ORDER BY team_id LIMIT ?",
        afterTeamId,
        limit,
      )
      .toArray()
      .map(toMember);
  }

  memberCount(): number {
    return this.sql.exec<{ n: number }>("SELECT COUNT(*) AS n FROM pool_members").one().n;
  }

  /** Adds a subaccount once; a second call for the same team changes nothing. */
  admit(teamId: string, nowMs: number): void {
    this.sql.exec(
      "INSERT INTO pool_members (team_id, cap_credits, joined_at_ms) VALUES (?, NULL, ?) ON CONFLICT (team_id) DO NOTHING",
      teamId,
      nowMs,
    );
  }

  setSubaccountCap(teamId: string, capCredits: number | null): void {
    this.sql.exec("UPDATE pool_members SET cap_credits = ? WHERE team_id = ?", capCredits, teamId);
  }

  memberCap(actorId: string): MemberCap | null {
    const row = this.sql
      .exec<CapRow>("SELECT actor_id, cap_credits, updated_at_ms FROM member_caps WHERE actor_id = ?", actorId)
      .toArray()[0];
    return row ? toCap(row) : null;
  }

  /** Members' caps in actor order, after `afterActorId`, at most `limit`. */
  memberCaps(afterActorId: string, limit: number): MemberCap[] {
    return this.sql
      .exec<CapRow>(
        "SELECT actor_id, cap_credits, updated_at_ms FROM member_caps WHERE actor_id > ? ORDER BY actor_id LIMIT ?",
        afterActorId,
        limit,
      )
      .toArray()
      .map(toCap);
  }

  memberCapCount(): number {
    return this.sql.exec<{ n: number }>("SELECT COUNT(*) AS n FROM member_caps").one().n;
  }

  /** Sets (or, with null, removes) a member's cap. */
  setMemberCap(actorId: string, capCredits: number | null, nowMs: number): void {
    if (capCredits === null) {
      this.sql.exec("DELETE FROM member_caps WHERE actor_id = ?", actorId);
      return;
    }
    this.sql.exec(
      `INSERT INTO member_caps (actor_id, cap_credits, updated_at_ms) VALUES (?, ?, ?)
       ON CONFLICT (actor_id) DO UPDATE SET cap_credits = excluded.cap_credits, updated_at_ms = excluded.updated_at_ms`,
      actorId,
      capCredits,
      nowMs,
    );
  }

  /** What a subject spent and captured in the period starting at `periodStartMs`. */
  spent(subject: string, periodStartMs: number): number {
    const row = this.sql
      .exec<{ spent_credits: number }>(
        "SELECT spent_credits FROM cap_usage WHERE subject = ? AND period_start_ms = ?",
        subject,
        periodStartMs,
      )
      .toArray()[0];
    return row?.spent_credits ?? 0;
  }

  /**
   * Counts credits a subject spent or captured in a period. The subject's first count in a period
   * drops its rows of earlier periods (a cap only reads the current one), so the table holds at
   * most one row per capped subject.
   */
  count(subject: string, periodStartMs: number, credits: number): void {
    const row = this.sql
      .exec<{ spent_credits: number }>(
        `INSERT INTO cap_usage (subject, period_start_ms, spent_credits) VALUES (?, ?, ?)
         ON CONFLICT (subject, period_start_ms) DO UPDATE SET spent_credits = spent_credits + excluded.spent_credits
         RETURNING spent_credits`,
        subject,
        periodStartMs,
        credits,
      )
      .one();
    if (row.spent_credits === credits)
      this.sql.exec("DELETE FROM cap_usage WHERE subject = ? AND period_start_ms < ?", subject, periodStartMs);
  }

  /** Credits the pending holds of a subaccount reserve now. */
  heldForMember(teamId: string): number {
    return this.sql
      .exec<{ n: number }>(
        "SELECT COALESCE(SUM(amount), 0) AS n FROM holds WHERE status = 'pending' AND member_team_id = ?",
        teamId,
      )
      .one().n;
  }

  /** Credits the pending holds of an actor reserve now. */
  heldForActor(actorId: string): number {
    return this.sql
      .exec<{ n: number }>(
        "SELECT COALESCE(SUM(amount), 0) AS n FROM holds WHERE status = 'pending' AND actor = ?",
        actorId,
      )
      .one().n;
  }
}
