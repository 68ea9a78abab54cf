/**
 * Grants: credits added to a team (category, source, priority, optional expiry), and void, which
 * removes what remains of one. Each writes its entries through the operation's LedgerTx.
 */
import { assert } from "../domain/assert";
import { failure } from "../domain/failure";
import type { Category, GrantInput, GrantReply, GrantSource, Outcome } from "../domain/vocabulary";
import { MAX_BALANCE_CREDITS, MAX_GRANT_LIFETIME_SECONDS } from "../limits";
import { publicGrant, type StoredGrant } from "./grant-store";
import { type LedgerTx, newId } from "./ledger-tx";
import { iso } from "./time";

/**
 * Adds a grant the ledger decided itself (starter credits, a period's allocation, a rollover, a
 * referral bonus): already validated, never refused. Writes its entry and its grant.created event.
 */
export function addGrant(
  tx: LedgerTx,
  g: {
    amount: number;
    category: Category;
    source: GrantSource;
    expiresAtMs: number | null;
    reference: string;
    period?: number;
    /** A plan's feature allocation (plans.ts): spendable only on this feature. */
    restrictedFeature?: string;
  },
): string {
  assert(Number.isSafeInteger(g.amount) && g.amount > 0, "a grant adds a positive number of credits");
  const id = newId("grt");
  tx.created(id, g.category, g.restrictedFeature ?? null);
  tx.store.grants.insert({ id, priority: 0, createdAtMs: tx.nowMs, ...g });
  tx.entry({ type: "grant", direction: "in", amount: g.amount, grantId: id, reference: g.reference });
  tx.emit("grant.created", {
    grantId: id,
    amount: g.amount,
    category: g.category,
    source: g.source,
    expiresAt: g.expiresAtMs === null ? null : iso(g.expiresAtMs),
    reference: g.reference,
    restrictedToFeature: g.restrictedFeature ?? null,
  });
  return id;
}

export function grant(tx: LedgerTx, input: GrantInput): Outcome<GrantReply> {
  let expiresAtMs: number | null = null;
  if (input.expiresAt !== undefined) {
    expiresAtMs = Date.parse(input.expiresAt);
    if (!(expiresAtMs > tx.nowMs)) return failure("invalid_request", "expiresAt must be in the future");
    if (expiresAtMs > tx.nowMs + MAX_GRANT_LIFETIME_SECONDS * 1000)
      return failure("invalid_request", `expiresAt must be within ${MAX_GRANT_LIFETIME_SECONDS} seconds`);
  }
  if (tx.store.grants.totalGranted() + input.amount > MAX_BALANCE_CREDITS)
    return failure("conflict", `a team holds at most ${MAX_BALANCE_CREDITS} credits`);
  const id = newId("grt");
  const restrictedFeature = input.restrictedToFeature ?? null;
  tx.created(id, input.category, restrictedFeature);
  tx.store.grants.insert({
    id,
    amount: input.amount,
    category: input.category,
    source: input.source,
    priority: input.priority ?? 0,
    expiresAtMs,
    reference: input.reference ?? null,
    createdAtMs: tx.nowMs,
    restrictedFeature,
  });
  tx.entry({ type: "grant", direction: "in", amount: input.amount, grantId: id, reference: input.reference });
  tx.emit("grant.created", {
    grantId: id,
    amount: input.amount,
    category: input.category,
    source: input.source,
    expiresAt: expiresAtMs === null ? null : iso(expiresAtMs),
    reference: input.reference ?? null,
    restrictedToFeature: restrictedFeature,
  });
  const created = tx.store.grants.get(id);
  assert(created, "grant just written");
  return { ok: true, status: 201, body: { grant: publicGrant(created), entries: tx.written, balance: tx.balance() } };
}

export function voidGrant(tx: LedgerTx, grantId: string): Outcome<GrantReply> {
  const g = tx.store.grants.get(grantId);
  if (!g) return failure("not_found", `grant ${grantId} not found`);
  // A grant used up before its expiry keeps the status `depleted` (settling only ends active
  // grants), but once past its expiry it has expired all the same.
  const pastExpiry = g.expiresAtMs !== null && g.expiresAtMs <= tx.nowMs;
  const status = g.status !== "voided" && pastExpiry ? "expired" : g.status;
  if (status === "expired" || status === "voided")
    return failure("conflict", `grant ${grantId} is ${status}; only a live grant can be voided`);
  endGrant(tx, g);
  const after = tx.store.grants.get(grantId);
  assert(after, "grant still there");
  return { ok: true, status: 200, body: { grant: publicGrant(after), entries: tx.written, balance: tx.balance() } };
}

/** Voids what remains of a live grant (reserved credits stay with their holds): one void entry. */
export function endGrant(tx: LedgerTx, g: StoredGrant, reference?: string): void {
  const unreserved = g.remaining - g.held;
  tx.store.grants.end(g.id, "voided");
  if (unreserved > 0) tx.entry({ type: "void", direction: "out", amount: unreserved, grantId: g.id, reference });
}
