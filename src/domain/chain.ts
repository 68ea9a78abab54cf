/**
 * The team's hash chain: every entry carries `hash`, which commits to the entry and, through the
 * previous entry's hash, to the whole history before it. Pure and synchronous, so the writer
 * (store.appendEntry) and the verifier (routes/verify.ts over D1) share this one module: the team
 * object hashes inside its transactionSync, where crypto.subtle's promises cannot be awaited, so it
 * uses node:crypto's createHash, the runtime's native SHA-256, which is synchronous (nodejs_compat).
 *
 * Definition (v1), exactly:
 *
 *   canonical(entry) = JSON.stringify([
 *       teamId, seq, id, createdAtMs, type, direction, amount, balanceAfter,
 *       grantId, holdId, spendId, feature, quantity, dimensions, reference, actor,
 *     ])
 *     - a JSON array, in this order, with no whitespace (JSON.stringify's own output);
 *     - seq, createdAtMs (milliseconds since the epoch), amount, balanceAfter and quantity are
 *       integers, written as JSON numbers; the others are strings;
 *     - dimensions is the stored JSON text (a string, hashed as text, never re-serialized);
 *     - an absent optional field is JSON null.
 *   hash(entry) = lowercase hex of SHA-256( UTF-8( previousHash + canonical(entry) ) )
 *     where previousHash is the hash of the entry with seq - 1 (64 hex characters), and for the
 *     team's first entry (seq 1) it is GENESIS_HASH, 64 times "0".
 *
 * Entries are numbered 1, 2, 3, … without gaps; a missing seq, a NULL hash or a hash that differs
 * from the recomputed one is a break. (Entries written before the chain existed have a NULL hash;
 * the writer then continues from GENESIS_HASH, and the verifier reports the first NULL as a break.)
 *
 * Known answer (test/chain/canonical.test.ts, computed independently with node:crypto): the entry
 *   ["acme",1,"ent_00000000000000000000000000000001",1767225600000,"grant","in",100,100,
 *    "grt_00000000000000000000000000000001",null,null,null,null,null,null,null]
 * (that exact text is its canonical form) hashes, after GENESIS_HASH, to
 *   6a841abdfe6ec2047f23d04cbc768d51944b0b58891342bb1052b867ba05ddc2.
 */
import { createHash } from "node:crypto";

/** The previous hash of a team's first entry. */
export const GENESIS_HASH = "0".repeat(64);

/** What the chain commits to: every column of an entry except its hash. */
export interface ChainFields {
  teamId: string;
  seq: number;
  id: string;
  createdAtMs: number;
  type: string;
  direction: string;
  amount: number;
  balanceAfter: number;
  grantId: string | null;
  holdId: string | null;
  spendId: string | null;
  feature: string | null;
  quantity: number | null;
  /** The stored JSON text, as is. */
  dimensions: string | null;
  reference: string | null;
  actor: string | null;
}

/** The canonical fields in their fixed order; D1's columns follow the same order. */
export function canonicalTuple(f: ChainFields): (string | number | null)[] {
  return [
    f.teamId,
    f.seq,
    f.id,
    f.createdAtMs,
    f.type,
    f.direction,
    f.amount,
    f.balanceAfter,
    f.grantId,
    f.holdId,
    f.spendId,
    f.feature,
    f.quantity,
    f.dimensions,
    f.reference,
    f.actor,
  ];
}

export function canonicalEntry(f: ChainFields): string {
  return JSON.stringify(canonicalTuple(f));
}

/** hash(entry) given the previous entry's hash (GENESIS_HASH for seq 1). */
export function chainHash(previousHash: string, f: ChainFields): string {
  return createHash("sha256").update(previousHash).update(canonicalEntry(f), "utf8").digest("hex");
}

/** Where and how a chain stops being intact. */
export interface ChainBreak {
  seq: number;
  /**
   * hash_mismatch: the stored hash is not the recomputed one (the entry or its hash was changed);
   * missing_hash: the entry has no hash; missing_entry: no entry with this seq;
   * anchor_mismatch: the chain is consistent but differs from the team object's own hash here.
   */
  reason: "hash_mismatch" | "missing_hash" | "missing_entry" | "anchor_mismatch";
  /** The recomputed (or, for anchor_mismatch, the object's) hash; null for a missing entry. */
  expected: string | null;
  /** The stored hash; null when there is none. */
  found: string | null;
}

/**
 * Checks a chain fed one entry at a time, in seq order, keeping only the last hash: the caller
 * streams pages and nothing else is held. Stops at the first break.
 */
export class ChainVerifier {
  private prevHash: string;
  private nextSeq: number;
  /** Entries that linked correctly. */
  checked = 0;
  firstBreak: ChainBreak | null = null;

  /** Starts after `from` (seq 0 and GENESIS_HASH for the team's first entry). */
  constructor(from: { seq: number; hash: string } = { seq: 0, hash: GENESIS_HASH }) {
    this.prevHash = from.hash;
    this.nextSeq = from.seq + 1;
  }

  /** The last entry that linked correctly (seq 0 and GENESIS_HASH before any). */
  get last(): { seq: number; hash: string } {
    return { seq: this.nextSeq - 1, hash: this.prevHash };
  }

  /** Feeds the next entry; false once the chain is broken (further entries are ignored). */
  push(entry: ChainFields & { hash: string | null }): boolean {
    if (this.firstBreak) return false;
    if (entry.seq !== this.nextSeq) {
      this.firstBreak = { seq: this.nextSeq, reason: "missing_entry", expected: null, found: null };
      return false;
    }
    const expected = chainHash(this.prevHash, entry);
    if (entry.hash !== expected) {
      this.firstBreak = {
        seq: entry.seq,
        reason: entry.hash === null ? "missing_hash" : "hash_mismatch",
        expected,
        found: entry.hash,
      };
      return false;
    }
    this.prevHash = expected;
    this.nextSeq += 1;
    this.checked += 1;
    return true;
  }

  /** Records a break the caller found outside the entries themselves (a missing tail, an anchor). */
  fail(b: ChainBreak): void {
    if (!this.firstBreak) this.firstBreak = b;
  }
}
