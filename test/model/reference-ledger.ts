/**
 * A reference ledger for the model-based test (ledger.model.test.ts): the rules of API.md written
 * again, as plainly as possible, over in-memory arrays. It shares no code with src/object or src/domain on
 * purpose; a bug in the real rules must not be copied here.
 *
 * Time is virtual and counted in minutes from the start of a run; grants and holds are named by
 * labels (their creation order: grant 0, 1, …; hold 0, 1, …), never by the ids the service issues.
 */

export type Category = "free" | "promotional" | "paid";
export const CATEGORY_LIST: readonly Category[] = ["free", "promotional", "paid"];
const RANK: Record<Category, number> = { free: 0, promotional: 1, paid: 2 };

export type HoldStatus = "pending" | "captured" | "released" | "expired";
export type BatchMode = "all_or_nothing" | "until_insufficient";

export interface RefGrant {
  label: number;
  amount: number;
  category: Category;
  priority: number;
  /** Virtual minute at which the grant stops counting; null: never. */
  expiresAt: number | null;
  /** Spendable credits (not spent and not reserved by a hold). */
  unreserved: number;
  /** Credits reserved by pending holds. */
  held: number;
  voided: boolean;
  /** Set when the grant passed its expiry and what remained unreserved was expired. */
  expired: boolean;
}

/** Credits a hold took from one grant. */
export interface Piece {
  grant: number;
  amount: number;
}

export interface RefHold {
  label: number;
  amount: number;
  capturedAmount: number;
  status: HoldStatus;
  /** Virtual minute of the deadline. */
  expiresAt: number;
  /**
   * What the hold reserved: one piece per grant, in the order the grants were first drawn from.
   * An extend adds to the piece of a grant already drawn from, or adds a piece at the end.
   */
  pieces: Piece[];
}

export interface RefEntry {
  type: "grant" | "spend" | "hold" | "capture" | "release" | "expire" | "void";
  direction: "in" | "out" | "none";
  amount: number;
  grant: number | null;
  hold: number | null;
  /**
   * Entries with the same block number may appear in any order among themselves: several holds
   * whose deadlines fall on the same virtual minute expire in the order their real deadlines fall,
   * which can differ by a millisecond either way.
   */
  block: number | null;
}

export interface Balance {
  available: number;
  held: number;
  total: number;
  byCategory: Record<Category, number>;
}

export type Failure =
  | { ok: false; status: 400; code: "invalid_request" }
  | { ok: false; status: 402; code: "insufficient_credits"; required: number; available: number; failedIndex?: number }
  | { ok: false; status: 404; code: "not_found" }
  | { ok: false; status: 409; code: "conflict" | "hold_not_pending" }
  | { ok: false; status: 422; code: "idempotency_key_reused" };

export type BatchResult =
  | { status: "spent"; amount: number }
  | { status: "insufficient"; required: number; available: number }
  | { status: "skipped" };

export type Success =
  | { ok: true; status: 201; kind: "grant"; grant: number }
  | { ok: true; status: 200; kind: "void"; grant: number }
  | { ok: true; status: 201; kind: "spend" }
  | { ok: true; status: 200; kind: "batch"; results: BatchResult[] }
  | { ok: true; status: 201 | 200; kind: "hold"; hold: number };

export type Outcome = Success | Failure;

/** What a mutation with an Idempotency-Key did: a fresh outcome, or a replay of a stored one. */
export type KeyedOutcome = { replayed: false; outcome: Outcome } | { replayed: true; status: number };

const insufficient = (required: number, available: number, failedIndex?: number): Failure =>
  failedIndex === undefined
    ? { ok: false, status: 402, code: "insufficient_credits", required, available }
    : { ok: false, status: 402, code: "insufficient_credits", required, available, failedIndex };

export class ReferenceLedger {
  /** Virtual minutes since the run started. */
  now = 0;
  readonly grants: RefGrant[] = [];
  readonly holds: RefHold[] = [];
  readonly entries: RefEntry[] = [];
  /** Keys of decided mutations: the request fingerprint and the status replayed for it. */
  readonly keys = new Map<string, { fingerprint: string; status: number }>();
  private nextBlock = 1;

  // ---- reading --------------------------------------------------------------------------------

  /** A grant counts while it is neither voided nor past its expiry. */
  isLive(g: RefGrant): boolean {
    return !g.voided && !(g.expiresAt !== null && g.expiresAt <= this.now);
  }

  balance(): Balance {
    const byCategory: Record<Category, number> = { free: 0, promotional: 0, paid: 0 };
    for (const g of this.grants) if (this.isLive(g)) byCategory[g.category] += g.unreserved;
    const available = byCategory.free + byCategory.promotional + byCategory.paid;
    let held = 0;
    for (const h of this.holds) if (h.status === "pending") held += h.amount;
    return { available, held, total: available + held, byCategory };
  }

  /** The status the service shows for a grant. */
  grantStatus(g: RefGrant): "active" | "depleted" | "expired" | "voided" {
    if (g.voided) return "voided";
    if (g.expired || (g.expiresAt !== null && g.expiresAt <= this.now)) return "expired";
    return g.unreserved + g.held === 0 ? "depleted" : "active";
  }

  /** Live grants with credits to spend, in spending order. */
  private spendable(): RefGrant[] {
    const never = Number.POSITIVE_INFINITY;
    return this.grants
      .filter((g) => this.isLive(g) && g.unreserved > 0)
      .sort(
        (a, b) =>
          RANK[a.category] - RANK[b.category] ||
          a.priority - b.priority ||
          (a.expiresAt ?? never) - (b.expiresAt ?? never) ||
          a.label - b.label,
      );
  }

  /** Which grants `amount` would come from, without taking it; null when there is not enough. */
  private plan(amount: number): Piece[] | null {
    const pieces: Piece[] = [];
    let left = amount;
    for (const g of this.spendable()) {
      if (left === 0) break;
      const take = Math.min(g.unreserved, left);
      pieces.push({ grant: g.label, amount: take });
      left -= take;
    }
    return left === 0 ? pieces : null;
  }

  private grantAt(label: number): RefGrant {
    const g = this.grants[label];
    if (!g) throw new Error(`reference: no grant ${label}`);
    return g;
  }

  private add(e: Omit<RefEntry, "block">, block: number | null = null): void {
    this.entries.push({ ...e, block });
  }

  // ---- time -----------------------------------------------------------------------------------

  advance(minutes: number): void {
    this.now += minutes;
  }

  /** Expires what is due: grants first (soonest first, then oldest), then holds past deadline. */
  settle(): void {
    const dueGrants = this.grants
      .filter((g) => !g.voided && !g.expired && g.expiresAt !== null && g.expiresAt <= this.now)
      .sort((a, b) => (a.expiresAt ?? 0) - (b.expiresAt ?? 0) || a.label - b.label);
    for (const g of dueGrants) {
      g.expired = true;
      if (g.unreserved > 0)
        this.add({ type: "expire", direction: "out", amount: g.unreserved, grant: g.label, hold: null });
      g.unreserved = 0;
    }
    const dueHolds = this.holds
      .filter((h) => h.status === "pending" && h.expiresAt <= this.now)
      .sort((a, b) => a.expiresAt - b.expiresAt);
    for (let i = 0; i < dueHolds.length; ) {
      let j = i;
      while (j < dueHolds.length && dueHolds[j]?.expiresAt === dueHolds[i]?.expiresAt) j++;
      const block = j - i > 1 ? this.nextBlock++ : null;
      for (const h of dueHolds.slice(i, j)) this.resolve(h, "expired", 0, block);
      i = j;
    }
  }

  // ---- idempotency ----------------------------------------------------------------------------

  /**
   * One mutation under an Idempotency-Key: what is due is settled first; a stored key replays (same
   * fingerprint) or is refused (422); otherwise the operation runs and its outcome, success or
   * refusal, is stored under the key.
   */
  keyed(key: string, fingerprint: string, op: () => Outcome): KeyedOutcome {
    this.settle();
    const seen = this.keys.get(key);
    if (seen) {
      if (seen.fingerprint !== fingerprint)
        return { replayed: false, outcome: { ok: false, status: 422, code: "idempotency_key_reused" } };
      return { replayed: true, status: seen.status };
    }
    const outcome = op();
    this.keys.set(key, { fingerprint, status: outcome.status });
    return { replayed: false, outcome };
  }

  // ---- operations -----------------------------------------------------------------------------

  grant(amount: number, category: Category, priority: number, expiresAt: number | null): Outcome {
    if (expiresAt !== null && expiresAt <= this.now) return { ok: false, status: 400, code: "invalid_request" };
    const label = this.grants.length;
    this.grants.push({
      label,
      amount,
      category,
      priority,
      expiresAt,
      unreserved: amount,
      held: 0,
      voided: false,
      expired: false,
    });
    this.add({ type: "grant", direction: "in", amount, grant: label, hold: null });
    return { ok: true, status: 201, kind: "grant", grant: label };
  }

  void(label: number | null): Outcome {
    const g = label === null ? undefined : this.grants[label];
    if (!g) return { ok: false, status: 404, code: "not_found" };
    if (!this.isLive(g)) return { ok: false, status: 409, code: "conflict" };
    if (g.unreserved > 0)
      this.add({ type: "void", direction: "out", amount: g.unreserved, grant: g.label, hold: null });
    g.unreserved = 0;
    g.voided = true;
    return { ok: true, status: 200, kind: "void", grant: g.label };
  }

  private take(pieces: Piece[], type: "spend" | "hold", hold: number | null): void {
    for (const p of pieces) {
      const g = this.grantAt(p.grant);
      g.unreserved -= p.amount;
      if (type === "hold") g.held += p.amount;
      this.add({ type, direction: "out", amount: p.amount, grant: p.grant, hold });
    }
  }

  spend(amount: number): Outcome {
    const pieces = this.plan(amount);
    if (!pieces) return insufficient(amount, this.balance().available);
    this.take(pieces, "spend", null);
    return { ok: true, status: 201, kind: "spend" };
  }

  batch(amounts: number[], mode: BatchMode): Outcome {
    const results: BatchResult[] = [];
    if (mode === "all_or_nothing") {
      // Spending the items one after another needs exactly their sum.
      const required = amounts.reduce((s, a) => s + a, 0);
      const available = this.balance().available;
      if (required > available) {
        let running = 0;
        const failedIndex = amounts.findIndex((a) => {
          running += a;
          return running > available;
        });
        return insufficient(required, available, failedIndex);
      }
      for (const a of amounts) {
        this.spend(a);
        results.push({ status: "spent", amount: a });
      }
      return { ok: true, status: 200, kind: "batch", results };
    }
    let stopped = false;
    for (const a of amounts) {
      if (stopped) {
        results.push({ status: "skipped" });
        continue;
      }
      const available = this.balance().available;
      if (a > available) {
        results.push({ status: "insufficient", required: a, available });
        stopped = true;
        continue;
      }
      this.spend(a);
      results.push({ status: "spent", amount: a });
    }
    return { ok: true, status: 200, kind: "batch", results };
  }

  hold(amount: number, ttlMinutes: number): Outcome {
    const pieces = this.plan(amount);
    if (!pieces) return insufficient(amount, this.balance().available);
    const label = this.holds.length;
    this.holds.push({
      label,
      amount,
      capturedAmount: 0,
      status: "pending",
      expiresAt: this.now + ttlMinutes,
      pieces: [],
    });
    this.take(pieces, "hold", label);
    this.appendPieces(label, pieces);
    return { ok: true, status: 201, kind: "hold", hold: label };
  }

  private appendPieces(label: number, pieces: Piece[]): void {
    const h = this.holdAt(label);
    for (const p of pieces) {
      const same = h.pieces.find((x) => x.grant === p.grant);
      if (same) same.amount += p.amount;
      else h.pieces.push({ ...p });
    }
  }

  private holdAt(label: number): RefHold {
    const h = this.holds[label];
    if (!h) throw new Error(`reference: no hold ${label}`);
    return h;
  }

  private pending(label: number | null): RefHold | Failure {
    const h = label === null ? undefined : this.holds[label];
    if (!h) return { ok: false, status: 404, code: "not_found" };
    if (h.status !== "pending") return { ok: false, status: 409, code: "hold_not_pending" };
    return h;
  }

  capture(label: number | null, amount: number | null): Outcome {
    const h = this.pending(label);
    if ("ok" in h) return h;
    const c = amount ?? h.amount;
    if (c > h.amount) return { ok: false, status: 400, code: "invalid_request" };
    this.resolve(h, "captured", c, null);
    return { ok: true, status: 200, kind: "hold", hold: h.label };
  }

  release(label: number | null): Outcome {
    const h = this.pending(label);
    if ("ok" in h) return h;
    this.resolve(h, "released", 0, null);
    return { ok: true, status: 200, kind: "hold", hold: h.label };
  }

  extend(label: number | null, amount: number | null, ttlMinutes: number | null): Outcome {
    const h = this.pending(label);
    if ("ok" in h) return h;
    if (amount !== null) {
      const pieces = this.plan(amount);
      if (!pieces) return insufficient(amount, this.balance().available);
      this.take(pieces, "hold", h.label);
      this.appendPieces(h.label, pieces);
      h.amount += amount;
    }
    if (ttlMinutes !== null) h.expiresAt = this.now + ttlMinutes;
    return { ok: true, status: 200, kind: "hold", hold: h.label };
  }

  /**
   * Ends a pending hold: the first `captured` credits, grant by grant in the order the grants were
   * first drawn from, are spent;
   * the rest go back to the grant each came from, and leave again at once (expire or void) when
   * that grant ended meanwhile.
   */
  private resolve(h: RefHold, status: Exclude<HoldStatus, "pending">, captured: number, block: number | null): void {
    let toCapture = captured;
    const back: Piece[] = [];
    for (const p of h.pieces) {
      const c = Math.min(p.amount, toCapture);
      toCapture -= c;
      if (c > 0) {
        this.grantAt(p.grant).held -= c;
        this.add({ type: "capture", direction: "none", amount: c, grant: p.grant, hold: h.label }, block);
      }
      if (p.amount - c > 0) back.push({ grant: p.grant, amount: p.amount - c });
    }
    const returnType = status === "expired" ? "expire" : "release";
    for (const p of back) {
      const g = this.grantAt(p.grant);
      g.held -= p.amount;
      this.add({ type: returnType, direction: "in", amount: p.amount, grant: p.grant, hold: h.label }, block);
      if (this.isLive(g)) g.unreserved += p.amount;
      else
        this.add(
          { type: g.voided ? "void" : "expire", direction: "out", amount: p.amount, grant: p.grant, hold: h.label },
          block,
        );
    }
    h.status = status;
    h.capturedAmount = captured;
  }
}
