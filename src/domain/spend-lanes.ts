/**
 * Spend lanes (docs/HOT-TEAMS.md): the lease protocol between a team's pool and the lanes that
 * spend leased slices of its balance, as pure state transitions over plain data. Nothing is built
 * on it yet; test/domain/spend-lanes.sim.test.ts drives it through random schedules (crashes,
 * slow lanes, lost, duplicated and reordered messages) and checks that no credit is ever made or
 * lost. Time is always a parameter (ms), credits are always integers.
 *
 * The two fences that make it safe:
 * - the deadline: a lane spends on a lease only while its own clock is a skew margin before the
 *   lease's deadline, and the pool asks for a lease back (a reclaim) only after the deadline by its
 *   clock, so a healthy lane is never interrupted and a slow lane that wakes late has stopped;
 * - the epoch: every lease a lane is given has a new epoch, and a lane closes an epoch for good
 *   (its fence) when it answers with its final count. The pool credits the unspent part back only
 *   on that final count, never on a guess, so a lane can never spend credits already returned.
 */
import { assert } from "./assert";

/** A lease lives this long from its issue or last refill, then must be refilled or returned. */
export const LEASE_TTL_MS = 10_000;
/** A refill never moves a lease's deadline past this long after the epoch was issued. */
export const LEASE_MAX_LIFETIME_MS = 60_000;
/** The largest clock difference between a lane and its pool the protocol tolerates. */
export const LEASE_SKEW_MARGIN_MS = 500;
/** A lease covers about this long of the lane's recent spend rate. */
export const LEASE_RUNWAY_MS = 2_000;
/** The smallest lease worth a message, and the largest one a lane asks for. */
export const LEASE_MIN_CREDITS = 1;
export const LEASE_MAX_CREDITS = 1_000_000_000_000;
/** A lease takes at most available / (this × lanes): half a fair share, the rest stays in the pool. */
export const LEASE_SHARE_DIVISOR = 2;
/** A lane asks for a refill when less than 1/this of its lease remains, or its deadline is this near. */
export const REFILL_BELOW_DIVISOR = 4;
export const REFILL_AHEAD_MS = 2_000;
/** A lane has one request out at a time; unanswered for this long, it asks again (the answer was lost). */
export const LEASE_REQUEST_RETRY_MS = 1_000;
/** Lane slots per promoted team: hash(idempotency key) mod this names the lane, for good. */
export const MAX_LANES = 128;

assert(LEASE_SKEW_MARGIN_MS * 2 < LEASE_TTL_MS, "a lease outlives the skew on both sides");
assert(REFILL_AHEAD_MS + LEASE_SKEW_MARGIN_MS < LEASE_TTL_MS, "a fresh lease does not ask for a refill at once");
assert(LEASE_TTL_MS <= LEASE_MAX_LIFETIME_MS, "a lease's first deadline is within its lifetime");

/** A lease as the pool sees it: what it moved to the lane, and until when. */
export interface PoolLease {
  epoch: number;
  amountCredits: number;
  deadlineMs: number;
  issuedAtMs: number;
  /** The lane's spent count in its last refill request: for the balance read only, never for money. */
  reportedSpentCredits: number;
}

export interface PoolLane {
  /** The highest epoch issued to this lane; epochs only grow. */
  lastEpoch: number;
  /** At most one lease per lane is open; a new epoch is issued only after the last one settled. */
  open: PoolLease | null;
}

/** What the pool's history records for leases (its entry types `lease` and `lease_return`). */
export type PoolEntry =
  | { type: "grant"; amountCredits: number; atMs: number }
  | { type: "lease"; laneId: string; epoch: number; amountCredits: number; atMs: number }
  | {
      type: "lease_return";
      laneId: string;
      epoch: number;
      spentCredits: number;
      returnedCredits: number;
      atMs: number;
    };

export interface Pool {
  /** Every credit that ever entered the pool. */
  grantedCredits: number;
  /** Credits in the pool itself, not leased out. */
  availableCredits: number;
  /** Credits the lanes spent, as their final counts of settled leases. */
  settledSpentCredits: number;
  lanes: Readonly<Record<string, PoolLane>>;
  history: readonly PoolEntry[];
}

/** A lane's open lease: the pool's figures as the lane last heard them, and what it spent on it. */
export interface LaneLease {
  epoch: number;
  amountCredits: number;
  deadlineMs: number;
  spentCredits: number;
}

/** An acknowledged spend, the lane's record under its idempotency key (one key, one outcome). */
export interface SpendRecord {
  epoch: number;
  amountCredits: number;
}

/** A lane's durable state (a lane commits before it answers, like the team object). */
export interface Lane {
  laneId: string;
  /** Every epoch at or below this is closed: the lane never spends on it again. */
  fenceEpoch: number;
  lease: LaneLease | null;
  /** Final counts of closed epochs, so a repeated reclaim gets the same answer. */
  closedSpentByEpoch: Readonly<Record<number, number>>;
  spends: Readonly<Record<string, SpendRecord>>;
  /**
   * When the lane last asked the pool for a lease or a refill, until an answer arrives. Memory only,
   * not stored: a lane that loses it merely asks again.
   */
  requestedAtMs: number | null;
}

/** Lane → pool. A request without an epoch asks for a lease; with its open epoch, for a refill. */
export type ToPool =
  | { kind: "lease_request"; laneId: string; epoch: number | null; spentCredits: number; wantCredits: number }
  | { kind: "return"; laneId: string; epoch: number; spentCredits: number };

/**
 * Pool → lane. `lease` carries absolute figures (the epoch's total and deadline), so a duplicate or
 * a late copy is harmless; `reclaim` asks for an epoch's final count once its deadline passed.
 */
export type ToLane =
  | { kind: "lease"; laneId: string; epoch: number; amountCredits: number; deadlineMs: number }
  | { kind: "reclaim"; laneId: string; epoch: number };

export const emptyPool = (): Pool => ({
  grantedCredits: 0,
  availableCredits: 0,
  settledSpentCredits: 0,
  lanes: {},
  history: [],
});

export const emptyLane = (laneId: string): Lane => ({
  laneId,
  fenceEpoch: 0,
  lease: null,
  closedSpentByEpoch: {},
  spends: {},
  requestedAtMs: null,
});

const credits = (n: number, what: string) => assert(Number.isSafeInteger(n) && n >= 0, `${what} is a whole count`);

/**
 * The lane an idempotency key belongs to, so one key always meets one lane (one key, one outcome).
 * Jump consistent hashing (Lamping and Veach) over FNV-1a of the key: growing from n lanes to
 * n + 1 moves only the keys that now belong to the new lane, about 1/(n + 1) of them, and no key
 * moves between old lanes (docs/HOT-TEAMS.md, routing).
 */
export function laneOf(idempotencyKey: string, laneCount: number): number {
  assert(Number.isInteger(laneCount) && laneCount >= 1 && laneCount <= MAX_LANES, "lane count in range");
  let h = 0x811c9dc5;
  for (let i = 0; i < idempotencyKey.length; i++) {
    h ^= idempotencyKey.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  let key = BigInt(h);
  let lane = -1;
  let next = 0;
  while (next < laneCount) {
    lane = next;
    key = (key * 2862933555777941757n + 1n) & 0xffffffffffffffffn;
    next = Math.floor((lane + 1) * (2 ** 31 / Number((key >> 33n) + 1n)));
  }
  return lane;
}

/** What a lane asks for: its recent rate over the runway, within the bounds. */
export function leaseWantCredits(rateCreditsPerSecond: number): number {
  const want = Math.ceil((Math.max(0, rateCreditsPerSecond) * LEASE_RUNWAY_MS) / 1000);
  return Math.min(LEASE_MAX_CREDITS, Math.max(LEASE_MIN_CREDITS, want));
}

/** What the pool gives: the want, at most half a fair share of what it has; 0 when below the minimum. */
export function leaseSizeCredits(availableCredits: number, laneCount: number, wantCredits: number): number {
  const share = Math.floor(availableCredits / (LEASE_SHARE_DIVISOR * Math.max(1, laneCount)));
  const size = Math.min(wantCredits, share);
  return size >= LEASE_MIN_CREDITS ? size : 0;
}

/** Credits entering the pool (a grant in the team's vocabulary). */
export function poolGrant(pool: Pool, amountCredits: number, nowMs: number): Pool {
  credits(amountCredits, "a grant");
  assert(amountCredits > 0, "a grant adds credits");
  return {
    ...pool,
    grantedCredits: pool.grantedCredits + amountCredits,
    availableCredits: pool.availableCredits + amountCredits,
    history: [...pool.history, { type: "grant", amountCredits, atMs: nowMs }],
  };
}

function withLane(pool: Pool, laneId: string, lane: PoolLane): Pool["lanes"] {
  return { ...pool.lanes, [laneId]: lane };
}

/**
 * The pool takes a lease request or a refill. A new epoch when the lane has none open; a refill
 * (more credits, a later deadline within the lifetime) when the request names the open epoch and
 * its deadline has not passed; otherwise the open lease again (the lane lost it) or a reclaim.
 */
export function poolOnRequest(
  pool: Pool,
  msg: Extract<ToPool, { kind: "lease_request" }>,
  nowMs: number,
  laneCount: number,
): { pool: Pool; out: ToLane[] } {
  credits(msg.wantCredits, "a lease request");
  const lane = pool.lanes[msg.laneId] ?? { lastEpoch: 0, open: null };
  const open = lane.open;
  const leaseOf = (l: PoolLease): ToLane => ({
    kind: "lease",
    laneId: msg.laneId,
    epoch: l.epoch,
    amountCredits: l.amountCredits,
    deadlineMs: l.deadlineMs,
  });
  if (open !== null) {
    // Past its deadline a lease is only ever reclaimed: the lane has stopped spending on it.
    if (nowMs >= open.deadlineMs) return { pool, out: [{ kind: "reclaim", laneId: msg.laneId, epoch: open.epoch }] };
    // A request for another epoch is late or lost its answer: repeat what is open.
    if (msg.epoch !== open.epoch) return { pool, out: [leaseOf(open)] };
    const size = leaseSizeCredits(pool.availableCredits, laneCount, msg.wantCredits);
    const refilled: PoolLease = {
      ...open,
      amountCredits: open.amountCredits + size,
      deadlineMs: Math.max(open.deadlineMs, Math.min(nowMs + LEASE_TTL_MS, open.issuedAtMs + LEASE_MAX_LIFETIME_MS)),
      reportedSpentCredits: Math.max(open.reportedSpentCredits, msg.spentCredits),
    };
    assert(pool.availableCredits - size >= 0, "a refill never overdraws the pool");
    const history: PoolEntry[] =
      size > 0 ? [{ type: "lease", laneId: msg.laneId, epoch: open.epoch, amountCredits: size, atMs: nowMs }] : [];
    return {
      pool: {
        ...pool,
        availableCredits: pool.availableCredits - size,
        lanes: withLane(pool, msg.laneId, { ...lane, open: refilled }),
        history: [...pool.history, ...history],
      },
      out: [leaseOf(refilled)],
    };
  }
  const size = leaseSizeCredits(pool.availableCredits, laneCount, msg.wantCredits);
  if (size === 0) return { pool, out: [] };
  const epoch = lane.lastEpoch + 1;
  const lease: PoolLease = {
    epoch,
    amountCredits: size,
    deadlineMs: nowMs + LEASE_TTL_MS,
    issuedAtMs: nowMs,
    reportedSpentCredits: 0,
  };
  assert(pool.availableCredits - size >= 0, "a lease never overdraws the pool");
  return {
    pool: {
      ...pool,
      availableCredits: pool.availableCredits - size,
      lanes: withLane(pool, msg.laneId, { lastEpoch: epoch, open: lease }),
      history: [...pool.history, { type: "lease", laneId: msg.laneId, epoch, amountCredits: size, atMs: nowMs }],
    },
    out: [leaseOf(lease)],
  };
}

/**
 * The pool settles an epoch on the lane's final count: the spent part is the lane's, the rest
 * comes back. A return for an epoch already settled (a duplicate, a late copy) changes nothing:
 * epochs are never reopened.
 */
export function poolOnReturn(pool: Pool, msg: Extract<ToPool, { kind: "return" }>, nowMs: number): Pool {
  credits(msg.spentCredits, "a returned count");
  const lane = pool.lanes[msg.laneId];
  assert(lane !== undefined && msg.epoch <= lane.lastEpoch, "a lane returns only epochs it was issued");
  const open = lane.open;
  if (open === null || open.epoch !== msg.epoch) return pool;
  assert(msg.spentCredits <= open.amountCredits, "a lane never spends beyond its lease");
  const returnedCredits = open.amountCredits - msg.spentCredits;
  return {
    ...pool,
    availableCredits: pool.availableCredits + returnedCredits,
    settledSpentCredits: pool.settledSpentCredits + msg.spentCredits,
    lanes: withLane(pool, msg.laneId, { ...lane, open: null }),
    history: [
      ...pool.history,
      {
        type: "lease_return",
        laneId: msg.laneId,
        epoch: msg.epoch,
        spentCredits: msg.spentCredits,
        returnedCredits,
        atMs: nowMs,
      },
    ],
  };
}

/** The pool's alarm: a reclaim for every lease past its deadline (again each run until answered). */
export function poolReclaims(pool: Pool, nowMs: number): ToLane[] {
  return Object.entries(pool.lanes).flatMap(([laneId, lane]) =>
    lane.open !== null && nowMs >= lane.open.deadlineMs
      ? [{ kind: "reclaim" as const, laneId, epoch: lane.open.epoch }]
      : [],
  );
}

/** Credits out of the pool itself: in the lanes, both unspent and spent but not yet settled. */
export function leasedOutCredits(pool: Pool): number {
  return Object.values(pool.lanes).reduce((sum, l) => sum + (l.open?.amountCredits ?? 0), 0);
}

/** Whether a lane may spend on its lease now, by its own clock: a skew margin before the deadline. */
export function mayServe(lease: LaneLease | null, laneNowMs: number): lease is LaneLease {
  return lease !== null && laneNowMs < lease.deadlineMs - LEASE_SKEW_MARGIN_MS;
}

/**
 * The lane takes a lease message. A closed epoch's copy is ignored (the fence); the open epoch's
 * figures only grow (a refill); a newer epoch opens once the last one is closed.
 */
export function laneOnLease(lane: Lane, msg: Extract<ToLane, { kind: "lease" }>): Lane {
  if (msg.epoch <= lane.fenceEpoch) return lane;
  const lease = lane.lease;
  if (lease !== null && lease.epoch === msg.epoch) {
    // A late copy may carry the figures from before a refill: the larger ones stand.
    return {
      ...lane,
      requestedAtMs: null,
      lease: {
        ...lease,
        amountCredits: Math.max(lease.amountCredits, msg.amountCredits),
        deadlineMs: Math.max(lease.deadlineMs, msg.deadlineMs),
      },
    };
  }
  // The pool opens a new epoch only after the lane's return closed the last one.
  assert(lease === null, "a lane holds one open lease");
  return {
    ...lane,
    requestedAtMs: null,
    lease: { epoch: msg.epoch, amountCredits: msg.amountCredits, deadlineMs: msg.deadlineMs, spentCredits: 0 },
  };
}

export type SpendOutcome =
  | { status: "spent"; record: SpendRecord; replayed: boolean }
  /** Not decided here (no usable lease, or too few credits in it): the real lane forwards it to the pool. */
  | { status: "unserved" };

/**
 * A spend at the lane its key belongs to, checked against the lease in the same step as it is
 * recorded (a Durable Object's transaction): the lane's clock at that moment, not when the spend
 * arrived, decides whether the lease is still usable.
 */
export function laneSpend(
  lane: Lane,
  spend: { idempotencyKey: string; amountCredits: number },
  laneNowMs: number,
): { lane: Lane; outcome: SpendOutcome } {
  credits(spend.amountCredits, "a spend");
  assert(spend.amountCredits > 0, "a spend takes credits");
  const seen = lane.spends[spend.idempotencyKey];
  if (seen !== undefined) return { lane, outcome: { status: "spent", record: seen, replayed: true } };
  const lease = lane.lease;
  if (!mayServe(lease, laneNowMs) || lease.spentCredits + spend.amountCredits > lease.amountCredits)
    return { lane, outcome: { status: "unserved" } };
  return acknowledge(lane, lease, spend);
}

/** Records an acknowledged spend on the open lease; the invariant every lane variant must keep. */
export function acknowledge(
  lane: Lane,
  lease: LaneLease,
  spend: { idempotencyKey: string; amountCredits: number },
): { lane: Lane; outcome: SpendOutcome } {
  assert(lease.epoch > lane.fenceEpoch, "a lane never spends on a closed epoch");
  const spentCredits = lease.spentCredits + spend.amountCredits;
  assert(spentCredits <= lease.amountCredits, "a lane never spends beyond its lease");
  const record: SpendRecord = { epoch: lease.epoch, amountCredits: spend.amountCredits };
  return {
    lane: { ...lane, lease: { ...lease, spentCredits }, spends: { ...lane.spends, [spend.idempotencyKey]: record } },
    outcome: { status: "spent", record, replayed: false },
  };
}

/** Closes an epoch for good and gives its final count. */
function close(lane: Lane, epoch: number): { lane: Lane; out: ToPool } {
  const spentCredits = lane.lease?.epoch === epoch ? lane.lease.spentCredits : 0;
  return {
    lane: {
      ...lane,
      fenceEpoch: epoch,
      lease: null,
      closedSpentByEpoch: { ...lane.closedSpentByEpoch, [epoch]: spentCredits },
    },
    out: { kind: "return", laneId: lane.laneId, epoch, spentCredits },
  };
}

/**
 * The lane answers a reclaim with the epoch's final count, closing it first. A closed epoch gets
 * the same answer again; an epoch the lane never heard of (its lease message was lost) closes at 0.
 */
export function laneOnReclaim(lane: Lane, msg: Extract<ToLane, { kind: "reclaim" }>): { lane: Lane; out: ToPool } {
  if (msg.epoch <= lane.fenceEpoch) {
    const spentCredits = lane.closedSpentByEpoch[msg.epoch] ?? 0;
    return { lane, out: { kind: "return", laneId: lane.laneId, epoch: msg.epoch, spentCredits } };
  }
  assert(lane.lease === null || lane.lease.epoch === msg.epoch, "the pool reclaims the lane's open epoch");
  return close(lane, msg.epoch);
}

/** The lane gives its lease back on its own (demotion, end of its lifetime): the same close. */
export function laneReturn(lane: Lane): { lane: Lane; out: ToPool | null } {
  if (lane.lease === null) return { lane, out: null };
  return close(lane, lane.lease.epoch);
}

/**
 * What a lane asks the pool for, if anything: a lease when it has none, a refill before its lease
 * runs out (a quarter left, or the deadline near), nothing otherwise.
 */
export function laneRequest(lane: Lane, laneNowMs: number, rateCreditsPerSecond: number): ToPool | null {
  const wantCredits = leaseWantCredits(rateCreditsPerSecond);
  const lease = lane.lease;
  if (lease === null) return { kind: "lease_request", laneId: lane.laneId, epoch: null, spentCredits: 0, wantCredits };
  const remaining = lease.amountCredits - lease.spentCredits;
  const low = remaining * REFILL_BELOW_DIVISOR < lease.amountCredits;
  const soon = lease.deadlineMs - laneNowMs < REFILL_AHEAD_MS + LEASE_SKEW_MARGIN_MS;
  if (!low && !soon) return null;
  return {
    kind: "lease_request",
    laneId: lane.laneId,
    epoch: lease.epoch,
    spentCredits: lease.spentCredits,
    wantCredits,
  };
}

/**
 * A lane's routine after each event: a lease it may no longer serve from (its deadline is near by
 * its clock) is given back at once rather than waiting for the pool's reclaim, then it asks for
 * what it needs.
 */
export function laneHousekeeping(
  lane: Lane,
  laneNowMs: number,
  rateCreditsPerSecond: number,
): { lane: Lane; out: ToPool[] } {
  const out: ToPool[] = [];
  let next = lane;
  if (next.lease !== null && !mayServe(next.lease, laneNowMs)) {
    const returned = laneReturn(next);
    next = returned.lane;
    if (returned.out !== null) out.push(returned.out);
  }
  // One request out at a time: the pool answers each, so more would only queue at the pool.
  const asked = next.requestedAtMs;
  if (asked !== null && laneNowMs - asked < LEASE_REQUEST_RETRY_MS && out.length === 0) return { lane: next, out };
  const request = laneRequest(next, laneNowMs, rateCreditsPerSecond);
  if (request !== null) {
    out.push(request);
    next = { ...next, requestedAtMs: laneNowMs };
  }
  return { lane: next, out };
}
