// The peer's ledger: the same spend as ours (src/object/spends.ts through idempotent.ts), written
// the way a Node service on PostgreSQL would, with row locks. One transaction a spend:
//
//   BEGIN
//   1. lock the team's head row (its last seq, last hash and balances: the chain and the running
//      balanceAfter need one order per team, as our object gives) and read the idempotency record
//      under the key, in one statement;
//      same key, same fingerprint: the saved reply; another fingerprint: 422, nothing written
//   2. lock the grants the feature may draw, in spending order (free before promotional before
//      paid, restricted before unrestricted, priority, expiry with never-expiring last, age),
//      SELECT … FOR UPDATE; draw across them in memory (the same rule as src/domain/draw.ts)
//      not enough: the refusal saved under the key, nothing else written (402)
//   3. one statement (CTEs): UPDATE each grant drawn, INSERT one entry per grant with its running
//      balanceAfter and its chain hash, INSERT the reply under the key, UPDATE the head row
//   COMMIT
//
// Five round trips, named (prepared) statements, one connection from the pool for the whole
// transaction. The chain hash is ours (src/domain/chain.ts, version 4): SHA-256 of the previous
// hash and the entry's canonical JSON tuple of 22 fields. Not done here, and done by ours: expiry
// settlement before the spend (the bench's team has nothing due), low-balance events, the outbox
// to D1, member caps, the price book.
import { createHash, randomUUID } from "node:crypto";

/** The previous hash of a team's first entry (as src/domain/chain.ts). */
export const GENESIS_HASH = "0".repeat(64);
const CATEGORY_RANK = { free: 0, promotional: 1, paid: 2 };

/** The schema, created by the bench on a fresh database. Indexes as the team object's tables. */
export const SCHEMA = [
  `CREATE TABLE team_heads (
     team_id text PRIMARY KEY,
     last_seq bigint NOT NULL,
     last_hash text NOT NULL,
     free_credits bigint NOT NULL,
     promotional_credits bigint NOT NULL,
     paid_credits bigint NOT NULL,
     held_credits bigint NOT NULL
   )`,
  `CREATE TABLE grants (
     team_id text NOT NULL,
     id text NOT NULL,
     seq bigint NOT NULL,
     amount bigint NOT NULL,
     remaining bigint NOT NULL CHECK (remaining >= 0),
     category text NOT NULL,
     category_rank integer NOT NULL,
     priority integer NOT NULL,
     expires_at bigint,
     restricted_feature text,
     status text NOT NULL,
     created_at bigint NOT NULL,
     PRIMARY KEY (team_id, id)
   )`,
  `CREATE INDEX grants_spend_order ON grants (team_id, category_rank, (restricted_feature IS NULL), priority,
     (expires_at IS NULL), expires_at, seq) WHERE status = 'active'`,
  `CREATE TABLE entries (
     team_id text NOT NULL,
     seq bigint NOT NULL,
     id text NOT NULL,
     created_at_ms bigint NOT NULL,
     type text NOT NULL,
     direction text NOT NULL,
     amount_credits bigint NOT NULL,
     balance_after_credits bigint NOT NULL,
     grant_id text,
     spend_id text,
     feature text,
     quantity bigint,
     chain_version integer NOT NULL,
     hash text NOT NULL,
     PRIMARY KEY (team_id, seq)
   )`,
  "CREATE INDEX entries_created ON entries (team_id, created_at_ms)",
  `CREATE TABLE idempotency (
     team_id text NOT NULL,
     key text NOT NULL,
     fingerprint text NOT NULL,
     status integer NOT NULL,
     body text NOT NULL,
     created_at bigint NOT NULL,
     PRIMARY KEY (team_id, key)
   )`,
  "CREATE INDEX idempotency_created ON idempotency (created_at)",
];

/**
 * The fields of an entry the chain commits to (src/domain/chain.ts, version 4, in its order).
 * @typedef {object} ChainedEntry
 * @property {string} teamId
 * @property {number} seq
 * @property {string} id
 * @property {number} createdAtMs
 * @property {string} type
 * @property {string} direction
 * @property {number} amount
 * @property {number} balanceAfter
 * @property {string | null} grantId
 * @property {string | null} spendId
 * @property {string | null} feature
 * @property {number | null} quantity
 */

/**
 * hash(entry) = hex SHA-256(previousHash + JSON of the version-4 tuple), as ours.
 * @param {string} previousHash
 * @param {ChainedEntry} e
 */
export function entryHash(previousHash, e) {
  const tuple = [
    4,
    e.teamId,
    e.seq,
    e.id,
    e.createdAtMs,
    e.type,
    e.direction,
    e.amount,
    e.balanceAfter,
    e.grantId,
    null, // holdId
    e.spendId,
    e.feature,
    e.quantity,
    null, // dimensions
    null, // reference
    null, // actor
    null, // memberTeamId
    null, // tier
    null, // unitCredits
    null, // priceVersion
    null, // shortfallCredits
  ];
  return createHash("sha256").update(previousHash).update(JSON.stringify(tuple), "utf8").digest("hex");
}

/** @param {string} prefix */
const newId = (prefix) => `${prefix}_${randomUUID().replaceAll("-", "")}`;

/**
 * Creates a team with grants (each with its grant entry, in order: seq 1, 2, …).
 * @param {import("pg").Pool} pool
 * @param {string} teamId
 * @param {{ credits: number, category: "free" | "promotional" | "paid" }[]} grants
 */
export async function seedTeam(pool, teamId, grants) {
  const nowMs = Date.now();
  const byCategory = { free: 0, promotional: 0, paid: 0 };
  let balance = 0;
  let hash = GENESIS_HASH;
  const client = await pool.connect();
  try {
    await client.query("BEGIN");
    for (const [i, g] of grants.entries()) {
      const grantId = newId("grt");
      balance += g.credits;
      byCategory[g.category] += g.credits;
      const entry = {
        teamId,
        seq: i + 1,
        id: newId("ent"),
        createdAtMs: nowMs,
        type: "grant",
        direction: "in",
        amount: g.credits,
        balanceAfter: balance,
        grantId,
        spendId: null,
        feature: null,
        quantity: null,
      };
      hash = entryHash(hash, entry);
      await client.query(
        `INSERT INTO grants (team_id, id, seq, amount, remaining, category, category_rank, priority, expires_at,
           restricted_feature, status, created_at) VALUES ($1, $2, $3, $4, $4, $5, $6, 0, NULL, NULL, 'active', $7)`,
        [teamId, grantId, entry.seq, g.credits, g.category, CATEGORY_RANK[g.category], nowMs],
      );
      await client.query(
        `INSERT INTO entries (team_id, seq, id, created_at_ms, type, direction, amount_credits, balance_after_credits,
           grant_id, chain_version, hash) VALUES ($1, $2, $3, $4, 'grant', 'in', $5, $6, $7, 4, $8)`,
        [teamId, entry.seq, entry.id, nowMs, g.credits, balance, grantId, hash],
      );
    }
    await client.query("INSERT INTO team_heads VALUES ($1, $2, $3, $4, $5, $6, 0)", [
      teamId,
      grants.length,
      hash,
      byCategory.free,
      byCategory.promotional,
      byCategory.paid,
    ]);
    await client.query("COMMIT");
  } catch (err) {
    await client.query("ROLLBACK").catch(() => {});
    throw err;
  } finally {
    client.release();
  }
}

const LOCK_HEAD = {
  name: "peer-lock-head",
  text: `SELECT h.last_seq, h.last_hash, h.free_credits, h.promotional_credits, h.paid_credits, h.held_credits,
           i.fingerprint, i.status, i.body
         FROM team_heads h LEFT JOIN idempotency i ON i.team_id = h.team_id AND i.key = $2
         WHERE h.team_id = $1 FOR UPDATE OF h`,
};
const LOCK_GRANTS = {
  name: "peer-lock-grants",
  text: `SELECT id, remaining, category FROM grants
         WHERE team_id = $1 AND status = 'active' AND remaining > 0 AND (expires_at IS NULL OR expires_at > $2)
           AND (restricted_feature IS NULL OR restricted_feature = $3)
         ORDER BY category_rank, (restricted_feature IS NULL), priority, (expires_at IS NULL), expires_at, seq
         FOR UPDATE`,
};
const WRITE_SPEND = {
  name: "peer-write-spend",
  text: `WITH drawn AS (
           UPDATE grants SET remaining = grants.remaining - d.amount
           FROM unnest($2::text[], $3::bigint[]) AS d(id, amount)
           WHERE grants.team_id = $1 AND grants.id = d.id
         ), written AS (
           INSERT INTO entries (team_id, seq, id, created_at_ms, type, direction, amount_credits,
             balance_after_credits, grant_id, spend_id, feature, quantity, chain_version, hash)
           SELECT $1, x.seq, x.id, $4, 'spend', 'out', x.amount, x.balance_after, x.grant_id, $5, $6, 1, 4, x.hash
           FROM unnest($7::bigint[], $8::text[], $3::bigint[], $9::bigint[], $2::text[], $10::text[])
             AS x(seq, id, amount, balance_after, grant_id, hash)
         ), saved AS (
           INSERT INTO idempotency (team_id, key, fingerprint, status, body, created_at)
           VALUES ($1, $11, $12, 201, $13, $4)
         )
         UPDATE team_heads SET last_seq = $14, last_hash = $15, free_credits = $16, promotional_credits = $17,
           paid_credits = $18
         WHERE team_id = $1`,
};
const SAVE_REFUSAL = {
  name: "peer-save-refusal",
  text: "INSERT INTO idempotency (team_id, key, fingerprint, status, body, created_at) VALUES ($1, $2, $3, 402, $4, $5)",
};

/**
 * The head row with the idempotency record under the key (null columns when there is none).
 * @typedef {object} HeadRow
 * @property {string} last_seq
 * @property {string} last_hash
 * @property {string} free_credits
 * @property {string} promotional_credits
 * @property {string} paid_credits
 * @property {string} held_credits
 * @property {string | null} fingerprint
 * @property {number | null} status
 * @property {string | null} body
 */

/**
 * What a spend answered: its status, its JSON body as text, and whether it was a saved reply.
 * @typedef {{ status: number, body: string, replayed: boolean }} SpendOutcome
 */

/**
 * @param {number} status
 * @param {string} code
 * @param {string} detail
 * @param {Record<string, unknown>} [extras]
 */
export function problem(status, code, detail, extras = {}) {
  return JSON.stringify({ type: `about:blank#${code}`, title: code, status, code, detail, ...extras });
}

/**
 * One spend of `amount` credits for `feature` on `teamId`, once per Idempotency-Key.
 *
 * `pipelined` (a pool made with `pipeline: true`, pg's pipeline mode): the same statements in two
 * round trips instead of five, BEGIN and both locks sent together (on a replay the grants' lock
 * is taken for nothing and rolled back), then the write and COMMIT together (a failed write
 * aborts the transaction, and the COMMIT behind it then rolls back).
 * @param {import("pg").Pool} pool
 * @param {{ teamId: string, feature: string, amount: number, key: string, fingerprint: string }} input
 * @param {boolean} [pipelined]
 * @returns {Promise<SpendOutcome>}
 */
export async function spend(pool, { teamId, feature, amount, key, fingerprint }, pipelined = false) {
  const client = await pool.connect();
  let open = false;
  try {
    const nowMs = Date.now();
    const lockHead = { ...LOCK_HEAD, values: [teamId, key] };
    const lockGrants = { ...LOCK_GRANTS, values: [teamId, nowMs, feature] };
    open = true;
    /** @type {{ id: string, remaining: string, category: "free" | "promotional" | "paid" }[] | null} */
    let locked = null;
    /** @type {HeadRow | undefined} */
    let head;
    if (pipelined) {
      const [, h, g] = await Promise.all([client.query("BEGIN"), client.query(lockHead), client.query(lockGrants)]);
      head = h.rows[0];
      locked = g.rows;
    } else {
      await client.query("BEGIN");
      head = (await client.query(lockHead)).rows[0];
    }
    if (!head) {
      await client.query("ROLLBACK");
      open = false;
      return { status: 404, body: problem(404, "team_not_found", `no team ${teamId}`), replayed: false };
    }
    if (head.fingerprint !== null) {
      await client.query("ROLLBACK");
      open = false;
      if (head.fingerprint !== fingerprint)
        return {
          status: 422,
          body: problem(422, "idempotency_key_reused", "this Idempotency-Key was used with a different request"),
          replayed: false,
        };
      return { status: head.status ?? 500, body: head.body ?? "", replayed: true };
    }
    const grants = locked ?? (await client.query(lockGrants)).rows;
    // The draw (src/domain/draw.ts): first grant first, one allocation per grant touched.
    /** @type {{ id: string, amount: number, category: "free" | "promotional" | "paid" }[]} */
    const allocations = [];
    let left = amount;
    for (const g of grants) {
      const take = Math.min(Number(g.remaining), left);
      if (take > 0) {
        allocations.push({ id: g.id, amount: take, category: g.category });
        left -= take;
      }
      if (left === 0) break;
    }
    if (left > 0) {
      const body = problem(402, "insufficient_credits", "not enough credits", {
        required: amount,
        available: amount - left,
      });
      await client.query({ ...SAVE_REFUSAL, values: [teamId, key, fingerprint, body, nowMs] });
      await client.query("COMMIT");
      open = false;
      return { status: 402, body, replayed: false };
    }
    const byCategory = {
      free: Number(head.free_credits),
      promotional: Number(head.promotional_credits),
      paid: Number(head.paid_credits),
    };
    let available = byCategory.free + byCategory.promotional + byCategory.paid;
    let seq = Number(head.last_seq);
    let hash = head.last_hash;
    const createdAt = new Date(nowMs).toISOString();
    const spent = { id: newId("spd"), amount, feature, quantity: 1, createdAt };
    const entries = allocations.map((a) => {
      available -= a.amount;
      byCategory[a.category] -= a.amount;
      seq += 1;
      const e = {
        teamId,
        seq,
        id: newId("ent"),
        createdAtMs: nowMs,
        type: "spend",
        direction: "out",
        amount: a.amount,
        balanceAfter: available,
        grantId: a.id,
        spendId: spent.id,
        feature,
        quantity: 1,
      };
      hash = entryHash(hash, e);
      return { ...e, hash };
    });
    const held = Number(head.held_credits);
    const body = JSON.stringify({
      spend: spent,
      entries: entries.map((e) => ({
        id: e.id,
        seq: e.seq,
        createdAt,
        type: e.type,
        direction: e.direction,
        amount: e.amount,
        balanceAfter: e.balanceAfter,
        grantId: e.grantId,
        spendId: e.spendId,
        feature: e.feature,
        quantity: e.quantity,
        hash: e.hash,
      })),
      balance: {
        teamId,
        poolTeamId: teamId,
        available,
        held,
        total: available + held,
        byCategory,
        lowBalance: available < 0,
      },
    });
    const write = {
      ...WRITE_SPEND,
      values: [
        teamId,
        entries.map((e) => e.grantId),
        entries.map((e) => e.amount),
        nowMs,
        spent.id,
        feature,
        entries.map((e) => e.seq),
        entries.map((e) => e.id),
        entries.map((e) => e.balanceAfter),
        entries.map((e) => e.hash),
        key,
        fingerprint,
        body,
        seq,
        hash,
        byCategory.free,
        byCategory.promotional,
        byCategory.paid,
      ],
    };
    if (pipelined) await Promise.all([client.query(write), client.query("COMMIT")]);
    else {
      await client.query(write);
      await client.query("COMMIT");
    }
    open = false;
    return { status: 201, body, replayed: false };
  } catch (err) {
    if (open) await client.query("ROLLBACK").catch(() => {});
    throw err;
  } finally {
    client.release();
  }
}

/**
 * Checks a team after a run: the chain links from the genesis to the head's hash, seq has no gap,
 * and the entries add up to the grants' remaining credits and to the head's balances.
 * @param {import("pg").Pool} pool
 * @param {string} teamId
 * @returns {Promise<{ entries: number, chainIntact: boolean, balanced: boolean }>}
 */
export async function checkTeam(pool, teamId) {
  // One snapshot for the three reads: spends still in flight when the load stops commit meanwhile.
  const client = await pool.connect();
  try {
    await client.query("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY");
    const { rows } = await client.query(
      `SELECT seq, id, created_at_ms, type, direction, amount_credits, balance_after_credits, grant_id, spend_id,
         feature, quantity, hash FROM entries WHERE team_id = $1 ORDER BY seq`,
      [teamId],
    );
    const head = (await client.query("SELECT * FROM team_heads WHERE team_id = $1", [teamId])).rows[0];
    const remaining = (
      await client.query("SELECT coalesce(sum(remaining), 0)::bigint AS r FROM grants WHERE team_id = $1", [teamId])
    ).rows[0];
    await client.query("COMMIT");
    let previous = GENESIS_HASH;
    let chainIntact = true;
    let balance = 0;
    for (const [i, r] of rows.entries()) {
      const e = {
        teamId,
        seq: Number(r.seq),
        id: r.id,
        createdAtMs: Number(r.created_at_ms),
        type: r.type,
        direction: r.direction,
        amount: Number(r.amount_credits),
        balanceAfter: Number(r.balance_after_credits),
        grantId: r.grant_id,
        spendId: r.spend_id,
        feature: r.feature,
        quantity: r.quantity === null ? null : Number(r.quantity),
      };
      balance += e.direction === "in" ? e.amount : -e.amount;
      if (e.seq !== i + 1 || e.balanceAfter !== balance || entryHash(previous, e) !== r.hash) chainIntact = false;
      previous = r.hash;
    }
    const headBalance = Number(head.free_credits) + Number(head.promotional_credits) + Number(head.paid_credits);
    return {
      entries: rows.length,
      chainIntact: chainIntact && head.last_hash === previous && Number(head.last_seq) === rows.length,
      balanced: balance === Number(remaining.r) && balance === headBalance,
    };
  } finally {
    client.release();
  }
}
