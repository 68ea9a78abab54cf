/**
 * What the two model tests (ledger.model.test.ts, plans.model.test.ts) share: calling the worker,
 * the wire shapes they read, and comparing the real object's answers with the reference's. The
 * references themselves (reference-ledger.ts, reference-plans.ts) stay apart from this file.
 */
import { createExecutionContext } from "cloudflare:test";
import { env } from "cloudflare:workers";
import fc from "fast-check";
import worker from "../../src/index";
import { ADMIN_KEY, type CallResult, objectRows, readResponse } from "../support";
import type { Category, KeyedOutcome, RefEntry, ReferenceLedger } from "./reference-ledger";

/** Sources the runs give their grants, by category. */
export const SOURCE: Record<Category, string> = { free: "allocation", promotional: "promotional", paid: "purchase" };
export const MINUTE_MS = 60_000;
/** How far past a deadline the object's clock is moved so that what is due is strictly due. */
export const EXPIRY_MARGIN_MS = 1_000;

// ---- calling the API ---------------------------------------------------------------------------

/**
 * Sends a request through the worker's own fetch handler: the whole HTTP API (body limits, auth,
 * JSON checks, validation, routes, idempotency, the team object over RPC), without SELF. A model
 * run makes thousands of calls; before the pool's prototype proxy was patched (patches/, upstream
 * workers-sdk#15092) every SELF.fetch made the next one slower, and this path kept the runs fast.
 */
export async function api<T>(
  path: string,
  opts: { method?: string; body?: unknown; idempotencyKey?: string } = {},
): Promise<CallResult<T>> {
  const headers: Record<string, string> = { authorization: `Bearer ${ADMIN_KEY}` };
  const body = opts.body === undefined ? undefined : JSON.stringify(opts.body);
  if (body !== undefined) headers["content-type"] = "application/json";
  if (opts.idempotencyKey) headers["idempotency-key"] = opts.idempotencyKey;
  const request = new Request(`https://ledger.test${path}`, {
    method: opts.method ?? (body === undefined ? "GET" : "POST"),
    headers,
    body,
  });
  return readResponse<T>(await worker.fetch(request, env, createExecutionContext()));
}

// ---- commands ----------------------------------------------------------------------------------

export type Ttl = 3600 | 7200;
export type CaptureAmount =
  | { type: "omit" }
  | { type: "full" }
  | { type: "part"; permille: number }
  | { type: "over"; by: number };
export const ttlArb = fc.constantFrom<Ttl>(3600, 7200);
export const pickArb = fc.nat({ max: 1000 });

/** The reference's expected outcome of one request, or a refusal by the route before the ledger. */
export type Prediction =
  | KeyedOutcome
  | { replayed: false; outcome: { ok: false; status: 400; code: "invalid_request" } };

// ---- the wire ----------------------------------------------------------------------------------

export interface WireGrant {
  id: string;
  remaining: number;
  held: number;
  status: string;
}
export interface WireBalance {
  available: number;
  held: number;
  total: number;
  byCategory: Record<Category, number>;
  grants?: WireGrant[];
}
export interface WireEntry {
  type: string;
  direction: string;
  amount: number;
  grantId?: string;
  holdId?: string;
  unitCredits?: number;
}

/**
 * A run's labels for the ids the real object issued: the reference names grants and holds by their
 * order of creation (0, 1, …); an id the run never saw is -1.
 */
export class Labels {
  readonly grantIds: string[] = [];
  readonly holdIds: string[] = [];

  grantLabel(id: string | undefined): number | null {
    if (id === undefined) return null;
    const i = this.grantIds.indexOf(id);
    return i < 0 ? -1 : i;
  }

  holdLabel(id: string | undefined): number | null {
    if (id === undefined) return null;
    const i = this.holdIds.indexOf(id);
    return i < 0 ? -1 : i;
  }
}

// ---- comparing ---------------------------------------------------------------------------------

/** JSON with object keys sorted, so equal values print equal. */
export function canon(v: unknown): string {
  return JSON.stringify(v, (_k, x: unknown) =>
    x !== null && typeof x === "object" && !Array.isArray(x)
      ? Object.fromEntries(Object.entries(x).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)))
      : x,
  );
}

/** Deep equality that fails with both values in full; lists line by line, differing lines marked. */
export function same(actual: unknown, expected: unknown, what: string): void {
  if (canon(actual) === canon(expected)) return;
  if (Array.isArray(actual) && Array.isArray(expected)) {
    const lines: string[] = [];
    for (let i = 0; i < Math.max(actual.length, expected.length); i++) {
      const a = i < actual.length ? canon(actual[i]) : "(none)";
      const e = i < expected.length ? canon(expected[i]) : "(none)";
      lines.push(a === e ? `    ${i}: ${a}` : `  ≠ ${i}: real ${a}\n         model ${e}`);
    }
    throw new Error(`${what} differ (real vs model):\n${lines.join("\n")}`);
  }
  throw new Error(`${what} differ:\n  real  ${canon(actual)}\n  model ${canon(expected)}`);
}

export const show = (e: Omit<RefEntry, "block">): string =>
  `${e.type}/${e.direction}/${e.amount}/g${e.grant ?? "-"}/h${e.hold ?? "-"}`;

export function wireEntry(labels: Labels, e: WireEntry): string {
  return show({
    type: e.type as RefEntry["type"],
    direction: e.direction as RefEntry["direction"],
    amount: e.amount,
    grant: labels.grantLabel(e.grantId),
    hold: labels.holdLabel(e.holdId),
  });
}

/**
 * Puts both lists side by side as text; inside a block of the reference (holds expiring on the same
 * virtual minute) both sides are sorted, since the order among them is not defined.
 */
export function alignEntries(real: string[], expected: readonly RefEntry[]): { real: string[]; expected: string[] } {
  const r = [...real];
  const x = expected.map(show);
  for (let i = 0; i < expected.length; ) {
    const block = expected[i]?.block ?? null;
    let j = i + 1;
    if (block !== null) while (j < expected.length && expected[j]?.block === block) j++;
    if (j - i > 1) {
      r.splice(i, j - i, ...r.slice(i, j).sort());
      x.splice(i, j - i, ...x.slice(i, j).sort());
    }
    i = j;
  }
  return { real: r, expected: x };
}

/**
 * The object's own tables against the reference after a run: its entries line by line, its holds,
 * its grants and the idempotency keys it stored (each key the ledger decided once, refusals
 * included; a reused key not again).
 */
export async function expectTablesMatch(labels: Labels, teamId: string, model: ReferenceLedger): Promise<void> {
  const entries = await objectRows<{
    type: string;
    direction: string;
    amount: number;
    grant_id: string | null;
    hold_id: string | null;
  }>(teamId, "SELECT type, direction, amount_credits AS amount, grant_id, hold_id FROM entries ORDER BY seq");
  const aligned = alignEntries(
    entries.map((e) =>
      wireEntry(labels, {
        type: e.type,
        direction: e.direction,
        amount: e.amount,
        grantId: e.grant_id ?? undefined,
        holdId: e.hold_id ?? undefined,
      }),
    ),
    model.entries,
  );
  same(aligned.real, aligned.expected, "entries table");

  const holds = await objectRows<{ id: string; amount: number; status: string; captured_amount: number }>(
    teamId,
    "SELECT id, amount, status, captured_amount FROM holds",
  );
  same(
    holds
      .map((h) => ({
        hold: labels.holdLabel(h.id),
        amount: h.amount,
        status: h.status,
        capturedAmount: h.captured_amount,
      }))
      .sort((a, b) => (a.hold ?? 0) - (b.hold ?? 0)),
    model.holds.map((h) => ({ hold: h.label, amount: h.amount, status: h.status, capturedAmount: h.capturedAmount })),
    "holds",
  );

  const grants = await objectRows<{ id: string; remaining: number; held: number; status: string }>(
    teamId,
    "SELECT id, remaining, held, status FROM grants",
  );
  same(
    grants
      .map((g) => {
        const label = labels.grantLabel(g.id);
        const m = label === null ? undefined : model.grants[label];
        // A grant used up before its expiry keeps the status `depleted` afterwards: it had nothing
        // left to expire. The reference calls every grant past its expiry `expired`.
        const status =
          g.status === "depleted" && m && model.grantStatus(m) === "expired" && g.remaining + g.held === 0
            ? "expired"
            : g.status;
        return { grant: label, unreserved: g.remaining, held: g.held, status };
      })
      .sort((a, b) => (a.grant ?? 0) - (b.grant ?? 0)),
    model.grants.map((g) => ({ grant: g.label, unreserved: g.unreserved, held: g.held, status: model.grantStatus(g) })),
    "grants",
  );

  const keys = await objectRows<{ key: string }>(teamId, "SELECT key FROM idempotency");
  same(keys.map((k) => k.key).sort(), [...model.keys.keys()].sort(), "stored idempotency keys");
}

/** A balance as the API shows it against the reference's: the totals, and the live grants one by one. */
export function expectBalance(
  labels: Labels,
  model: ReferenceLedger,
  actual: WireBalance | undefined,
  what: string,
): void {
  same(
    actual && { available: actual.available, held: actual.held, total: actual.total, byCategory: actual.byCategory },
    model.balance(),
    `${what}: balance`,
  );
  if (!(actual && actual.available >= 0)) throw new Error(`${what}: available below zero`);
  if (actual.grants) {
    const live = actual.grants
      .map((g) => ({ grant: labels.grantLabel(g.id), remaining: g.remaining, held: g.held, status: g.status }))
      .sort((a, b) => (a.grant ?? 0) - (b.grant ?? 0));
    const expected = model.grants
      .filter((g) => model.grantStatus(g) === "active" || g.held > 0)
      .map((g) => ({ grant: g.label, remaining: g.unreserved + g.held, held: g.held, status: model.grantStatus(g) }));
    same(live, expected, `${what}: live grants`);
  }
}
