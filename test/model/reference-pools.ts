/**
 * A reference for agency pools and caps (pools.model.test.ts): the rules of src/domain/pools.ts's
 * header and README "Agency pools and caps", written again over one reference ledger per balance
 * (reference-ledger.ts: the agency's pool and each subaccount's own credits). It shares no code
 * with src/ on purpose; a bug in the real rules must not be copied here.
 *
 * The rules, as this file applies them:
 * - Which balance: the agency's own requests use the pool. A subaccount's new charge (spend,
 *   batch, hold) uses the pool while the agency shares, else its own credits; an action on a hold
 *   goes where the hold is (a pool hold made by this subaccount: the pool, whatever sharing is
 *   now; anything else: its own ledger, where a hold it does not have is 404). That choice is made
 *   once per Idempotency-Key: a retry gets the first answer again.
 * - Roles: a viewer never uses credits (403 role). On a subaccount, a manager may use credits
 *   only while the agency shares (as it stood when the request's key was first seen): on the
 *   pool, and on the subaccount's own holds; with sharing off, a manager's request on the
 *   subaccount's own credits is 403 sharing_off, while an action on a pool hold is let through
 *   (the hold's credits are the pool's). Owners and authors always may.
 * - An extend that adds credits to a pool hold of a subaccount needs sharing on (403 sharing_off).
 * - Caps count only pooled credits (the agency's ledger). A pooled charge counts against its
 *   subaccount's cap (when it has one) and its actor's member cap (when the actor has one), the
 *   subaccount's first. Used = spends + captures so far (counted whether or not a cap was set then)
 *   + pending holds now; a charge of `amount` is refused when used + amount > cap, with remaining =
 *   max(0, cap − used). A capture counts for the hold's subaccount and actor, and an extend checks
 *   the hold's. A batch all_or_nothing checks its total; until_insufficient spends items while
 *   they fit the tightest cap, marks the first that does not `cap_exceeded` and skips the rest.
 * - Order: role, then sharing, then caps, then the ledger's own rules (pending, credits).
 *
 * No grant expires and no hold reaches its deadline in a run: time never moves here.
 */
import { type BatchMode, type BatchResult, type Outcome, ReferenceLedger } from "./reference-ledger";

export type Role = "owner" | "author" | "manager" | "viewer";
export interface RefActor {
  id: string;
  role: Role;
}
/** A balance: the agency's pool or a subaccount's own (its index). */
export type LedgerId = "agency" | number;
/** The team a request is sent to: the agency or a subaccount (its index). */
export type TeamRef = "agency" | number;

export interface CapFacts {
  scope: "subaccount" | "member";
  subject: string;
  cap: number;
  used: number;
  held: number;
  remaining: number;
}

export type PoolBatchResult =
  | BatchResult
  | ({ status: "cap_exceeded"; required: number } & Omit<CapFacts, "used" | "held">);

export type PoolOutcome =
  | Exclude<Outcome, { kind: "batch" }>
  | { ok: true; status: 200; kind: "batch"; results: PoolBatchResult[] }
  | { ok: false; status: 403; code: "forbidden"; reason: "role" | "sharing_off" }
  | ({ ok: false; status: 402; code: "cap_exceeded"; required: number } & CapFacts);

/** A charge or a hold action, with its hold named by its place in the run's list of holds. */
export type Action =
  | { op: "spend"; amount: number }
  | { op: "batch"; mode: BatchMode; amounts: number[] }
  | { op: "hold"; amount: number; ttlMinutes: number }
  | { op: "capture"; hold: number; amount: number | null }
  | { op: "release"; hold: number }
  | { op: "extend"; hold: number; amount: number | null; ttlMinutes: number | null };

/** A hold of the run: which ledger it lives in (and its label there), who made it, through which team. */
export interface RunHold {
  ledger: LedgerId;
  label: number;
  team: TeamRef;
  member: number | null;
  actor: string | null;
}

export type Prediction =
  | { replayed: true; ledger: LedgerId }
  | { replayed: false; ledger: LedgerId; outcome: PoolOutcome };

export class PoolsReference {
  readonly pool = new ReferenceLedger();
  readonly own: ReferenceLedger[];
  readonly holds: RunHold[] = [];
  sharing = false;
  readonly subCaps: (number | null)[];
  readonly memberCaps = new Map<string, number>();
  /** Pooled credits spent or captured, by subaccount index and by actor. */
  readonly subSpent: number[];
  readonly actorSpent = new Map<string, number>();
  /** Where each subaccount's key was decided (the agency's record of it): the pool or its own. */
  private readonly decided = new Map<string, LedgerId>();

  constructor(
    readonly subIds: readonly string[],
    readonly agencyId: string,
  ) {
    this.own = subIds.map(() => new ReferenceLedger());
    this.subCaps = subIds.map(() => null);
    this.subSpent = subIds.map(() => 0);
  }

  ledger(id: LedgerId): ReferenceLedger {
    if (id === "agency") return this.pool;
    const l = this.own[id];
    if (!l) throw new Error(`reference: no subaccount ${id}`);
    return l;
  }

  // ---- caps -------------------------------------------------------------------------------------

  private heldBy(match: (h: RunHold) => boolean): number {
    let n = 0;
    for (const h of this.holds) {
      if (h.ledger !== "agency" || !match(h)) continue;
      const rh = this.pool.holds[h.label];
      if (rh && rh.status === "pending") n += rh.amount;
    }
    return n;
  }

  /** The caps a pooled charge for these people counts against, as they stand now (the subaccount's first). */
  caps(member: number | null, actor: string | null): CapFacts[] {
    const out: CapFacts[] = [];
    const facts = (scope: CapFacts["scope"], subject: string, cap: number, spent: number, held: number): CapFacts => ({
      scope,
      subject,
      cap,
      used: spent + held,
      held,
      remaining: Math.max(0, cap - spent - held),
    });
    const subCap = member === null ? null : (this.subCaps[member] ?? null);
    if (member !== null && subCap !== null)
      out.push(
        facts(
          "subaccount",
          this.subIds[member] ?? "",
          subCap,
          this.subSpent[member] ?? 0,
          this.heldBy((h) => h.member === member),
        ),
      );
    const memberCap = actor === null ? undefined : this.memberCaps.get(actor);
    if (actor !== null && memberCap !== undefined)
      out.push(
        facts(
          "member",
          actor,
          memberCap,
          this.actorSpent.get(actor) ?? 0,
          this.heldBy((h) => h.actor === actor),
        ),
      );
    return out;
  }

  private capRefusal(member: number | null, actor: string | null, amount: number): PoolOutcome | null {
    for (const c of this.caps(member, actor))
      if (c.used + amount > c.cap) return { ok: false, status: 402, code: "cap_exceeded", required: amount, ...c };
    return null;
  }

  private countUse(member: number | null, actor: string | null, credits: number): void {
    if (member !== null) this.subSpent[member] = (this.subSpent[member] ?? 0) + credits;
    if (actor !== null) this.actorSpent.set(actor, (this.actorSpent.get(actor) ?? 0) + credits);
  }

  // ---- requests ---------------------------------------------------------------------------------

  /** Where a subaccount's request goes when its key is new: the pool, or its own ledger. */
  private route(sub: number, action: Action): LedgerId {
    if (action.op === "spend" || action.op === "batch" || action.op === "hold") return this.sharing ? "agency" : sub;
    const h = this.holds[action.hold];
    return h && h.ledger === "agency" && h.member === sub ? "agency" : sub;
  }

  /** The label of the run's hold in this ledger, or null when that ledger has no such hold. */
  private labelIn(ledger: LedgerId, hold: number): number | null {
    const h = this.holds[hold];
    return h && h.ledger === ledger ? h.label : null;
  }

  /**
   * One keyed request to `team`: a replay when its key was decided before, else its outcome.
   * `fingerprint` is what a reuse of the key is compared by (this run never reuses one).
   */
  request(team: TeamRef, key: string, fingerprint: string, actor: RefActor | null, action: Action): Prediction {
    let ledgerId: LedgerId;
    let sharedThen = this.sharing;
    if (team === "agency") {
      ledgerId = "agency";
      if (this.pool.keys.has(key)) return { replayed: true, ledger: ledgerId };
    } else {
      const memberKey = `pool ${this.subIds[team]} ${key}`;
      const seen = this.decided.get(memberKey);
      if (seen !== undefined) return { replayed: true, ledger: seen };
      ledgerId = this.route(team, action);
      sharedThen = this.sharing;
      this.decided.set(memberKey, ledgerId);
      // The agency's object keeps its decision under the member's key either way.
      this.pool.keys.set(memberKey, { fingerprint, status: 200 });
    }
    const outcome = this.run(team, ledgerId, actor, action, sharedThen);
    // Saved where it was decided: under the member's key in the pool, else under the key itself.
    const saved = team !== "agency" && ledgerId === "agency" ? `pool ${this.subIds[team]} ${key}` : key;
    this.ledger(ledgerId).keys.set(saved, { fingerprint, status: outcome.status });
    return { replayed: false, ledger: ledgerId, outcome };
  }

  private run(
    team: TeamRef,
    ledgerId: LedgerId,
    actor: RefActor | null,
    action: Action,
    sharedThen: boolean,
  ): PoolOutcome {
    if (actor?.role === "viewer") return { ok: false, status: 403, code: "forbidden", reason: "role" };
    if (actor?.role === "manager" && team !== "agency" && ledgerId !== "agency" && !sharedThen)
      return { ok: false, status: 403, code: "forbidden", reason: "sharing_off" };
    const ledger = this.ledger(ledgerId);
    const pooled = ledgerId === "agency";
    // Who a new charge is for: the subaccount it came through (in the pool) and the actor.
    const member = pooled && team !== "agency" ? team : null;
    const actorId = actor?.id ?? null;
    switch (action.op) {
      case "spend": {
        if (pooled) {
          const refused = this.capRefusal(member, actorId, action.amount);
          if (refused) return refused;
        }
        const out = ledger.spend(action.amount);
        if (out.ok && pooled) this.countUse(member, actorId, action.amount);
        return out;
      }
      case "hold": {
        if (pooled) {
          const refused = this.capRefusal(member, actorId, action.amount);
          if (refused) return refused;
        }
        const out = ledger.hold(action.amount, action.ttlMinutes);
        if (out.ok && out.kind === "hold")
          this.holds.push({ ledger: ledgerId, label: out.hold, team, member, actor: actorId });
        return out;
      }
      case "batch":
        return this.batch(ledger, pooled, member, actorId, action.amounts, action.mode);
      case "capture": {
        const label = this.labelIn(ledgerId, action.hold);
        const h = this.holds[action.hold];
        const out = ledger.capture(label, action.amount);
        if (out.ok && pooled && h && label !== null)
          this.countUse(h.member, h.actor, ledger.holds[label]?.capturedAmount ?? 0);
        return out;
      }
      case "release":
        return ledger.release(this.labelIn(ledgerId, action.hold));
      case "extend": {
        const label = this.labelIn(ledgerId, action.hold);
        const h = this.holds[action.hold];
        const adds = (action.amount ?? 0) > 0;
        if (adds && pooled && team !== "agency" && !this.sharing)
          return { ok: false, status: 403, code: "forbidden", reason: "sharing_off" };
        const rh = label === null ? undefined : ledger.holds[label];
        if (adds && pooled && h && rh?.status === "pending") {
          const refused = this.capRefusal(h.member, h.actor, action.amount ?? 0);
          if (refused) return refused;
        }
        return ledger.extend(label, action.amount, action.ttlMinutes);
      }
    }
  }

  private batch(
    ledger: ReferenceLedger,
    pooled: boolean,
    member: number | null,
    actor: string | null,
    amounts: number[],
    mode: BatchMode,
  ): PoolOutcome {
    const caps = pooled ? this.caps(member, actor) : [];
    const spent = (out: Outcome): void => {
      if (pooled && out.ok && out.kind === "batch")
        for (const r of out.results) if (r.status === "spent") this.countUse(member, actor, r.amount);
    };
    if (caps.length === 0 || mode === "all_or_nothing") {
      if (pooled) {
        const refused = this.capRefusal(
          member,
          actor,
          amounts.reduce((s, a) => s + a, 0),
        );
        if (refused) return refused;
      }
      const out = ledger.batch(amounts, mode);
      spent(out);
      return out as PoolOutcome;
    }
    // The tightest cap (the first of equals) decides how many items fit.
    const tightest = caps.reduce((a, b) => (b.remaining < a.remaining ? b : a));
    let cut = 0;
    let within = 0;
    while (cut < amounts.length && within + (amounts[cut] ?? 0) <= tightest.remaining) {
      within += amounts[cut] ?? 0;
      cut += 1;
    }
    const head = cut === 0 ? { ok: true as const, results: [] } : ledger.batch(amounts.slice(0, cut), mode);
    if (!head.ok || !("results" in head)) throw new Error("reference: an until_insufficient batch always answers");
    spent(head as Outcome);
    const results: PoolBatchResult[] = [...head.results];
    const stopped = head.results.some((r) => r.status === "insufficient");
    for (let i = cut; i < amounts.length; i++)
      results.push(
        i === cut && !stopped
          ? {
              status: "cap_exceeded",
              required: amounts[i] ?? 0,
              scope: tightest.scope,
              subject: tightest.subject,
              cap: tightest.cap,
              remaining: tightest.remaining - within,
            }
          : { status: "skipped" },
      );
    return { ok: true, status: 200, kind: "batch", results };
  }

  /** A grant on a team's own ledger (the agency's is the pool). */
  grant(team: TeamRef, key: string, fingerprint: string, amount: number): Prediction {
    const ledger = this.ledger(team);
    if (ledger.keys.has(key)) return { replayed: true, ledger: team };
    const outcome = ledger.grant(amount, "paid", 0, null);
    ledger.keys.set(key, { fingerprint, status: outcome.status });
    return { replayed: false, ledger: team, outcome };
  }
}
