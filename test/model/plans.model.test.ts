/**
 * Model-based test of prices, plans, periods and seats (issue 10): random sequences run against the
 * real team object (through the worker's HTTP API) and against the reference (reference-plans.ts,
 * the reference ledger with a price book, a plan and periods) side by side.
 *
 * Each run defines three features of its own (a metered one, a counted one, and one of either
 * kind, sometimes charged only on success; creditsPerUnit, sometimes tiers, `ceil` or `per_unit`)
 * and a plan (starter credits, monthly credits per seat, sometimes a rollover cap, sometimes its own
 * prices for the features: creditsPerUnit and/or tier prices), and creates a team on it with 1 to 3
 * seats. Commands: priced spends, priced batches and priced holds (whole and fractional quantities
 * such as 2.25 or 0.000001, tiers, and what the route refuses: an unknown tier, a fractional
 * quantity of a counted unit, 7 decimals, a plain spend of a charge-on-success feature), spends and
 * holds with an explicit amount, grants (any category, some expiring in hours), captures, releases,
 * extends, voids (allocation grants included), seat changes, crossings of one or two period
 * boundaries (the team's periods re-anchored in the past inside its object, then the boundary
 * opened by the alarm as the runtime fires it, sometimes run twice more across a restart of the
 * object, or by the next request), alarm
 * runs, restarts, time jumps of hours, price changes, and retries of earlier requests with the
 * same Idempotency-Key (the first answer again, byte for byte).
 *
 * After every step the status, the price charged (credits and unitCredits, also in a 402's
 * `required`), the entries written, the balance with its live grants and the team's period must be
 * the reference's, and the history must add up line by line. Grants the ledger makes itself
 * (starter, allocation, rollover, seats) must appear in the object's grants table in the
 * reference's order, with its amounts, references and periods. At the end: the entries table, the
 * holds, the grants, the periods table (one row per period opened, its seats and credits), the
 * stored idempotency keys, and assertInvariants.
 *
 * Runs are seeded (fixed by default) and bounded: VITE_PLANS_SEED, VITE_PLANS_PATH and
 * VITE_PLANS_RUNS replay or widen them, e.g.
 *
 *   VITE_PLANS_SEED=<seed> VITE_PLANS_PATH=<path> npx vitest run --project workers test/model/plans.model.test.ts
 */
import { abortAllDurableObjects, runInDurableObject } from "cloudflare:test";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import type { TeamLedger } from "../../src/object/team-ledger";
import {
  anchorDaysAgo,
  assertInvariants,
  historyProblems,
  ledgerStub,
  newKey,
  newKeyFor,
  newTeamId,
  objectRows,
  runAlarm,
} from "../support";
import { envString } from "../support/vite-env";
import {
  alignEntries,
  api,
  type CaptureAmount,
  EXPIRY_MARGIN_MS,
  expectBalance,
  expectTablesMatch,
  Labels,
  MINUTE_MS,
  type Prediction,
  pickArb,
  SOURCE,
  same,
  type Ttl,
  ttlArb,
  type WireBalance,
  type WireEntry,
  wireEntry,
} from "./model-kit";
import { type BatchMode, CATEGORY_LIST, type Category } from "./reference-ledger";
import {
  type Charge,
  MICRO,
  PlansReference,
  type Quantity,
  type RefFeature,
  type RefPlan,
  type RefPlanPrice,
  type Rounding,
  TIER_LIST,
  type Tier,
  type TierPrices,
  type Unit,
} from "./reference-plans";

// ---- configuration ------------------------------------------------------------------------------

/** Fixed unless asked otherwise, so CI runs the same sequences every time. */
const SEED = Number(envString("VITE_PLANS_SEED") ?? 20_261_210);
const REPLAY_PATH = envString("VITE_PLANS_PATH");
const NUM_RUNS = Number(envString("VITE_PLANS_RUNS") ?? 24);
const MIN_COMMANDS = 40;
const MAX_COMMANDS = 50;
/** Every shrink attempt is a run on a new team object: a failure costs at most 20 more runs. */
const MAX_SHRINKS = 20;

const DAY_MS = 24 * 3600 * 1000;
/** Seven decimals: no unit takes it (the route's 400). */
const TOO_PRECISE = 1.0000001;

// ---- a run's price book and plan ----------------------------------------------------------------

interface FeatureSpec {
  unit: Unit;
  creditsPerUnit: number;
  tiers: TierPrices | null;
  rounding: Rounding;
  chargeOnSuccess: boolean;
}

interface RunConfig {
  features: FeatureSpec[];
  /** The plan's own price for each feature (null: none). */
  overrides: (RefPlanPrice | null)[];
  starterCredits: number;
  monthlyCreditsPerSeat: number;
  rolloverMaxCredits: number;
  seats: number;
}

const priceArb = fc.integer({ min: 1, max: 9 });
const tiersArb: fc.Arbitrary<TierPrices | null> = fc
  .record({ fast: fc.option(priceArb), balanced: fc.option(priceArb), premium: fc.option(priceArb) })
  .map((t) => {
    const out: TierPrices = {};
    for (const tier of TIER_LIST) {
      const p = t[tier];
      if (p !== null) out[tier] = p;
    }
    return Object.keys(out).length > 0 ? out : null;
  });
const featureArb = (units: readonly Unit[], chargeOnSuccess: fc.Arbitrary<boolean>): fc.Arbitrary<FeatureSpec> =>
  fc.record({
    unit: fc.constantFrom(...units),
    creditsPerUnit: priceArb,
    tiers: fc.oneof(fc.constant(null), tiersArb),
    rounding: fc.constantFrom<Rounding>("ceil", "per_unit"),
    chargeOnSuccess,
  });
/** A plan price: its creditsPerUnit, tier prices (kept to the tiers the feature offers), both, or none. */
const overrideArb = fc.option(
  fc.record({
    creditsPerUnit: fc.option(priceArb),
    tiers: fc.record({ fast: fc.option(priceArb), balanced: fc.option(priceArb), premium: fc.option(priceArb) }),
  }),
  { freq: 2 },
);

const configArb: fc.Arbitrary<RunConfig> = fc
  .record({
    features: fc.tuple(
      featureArb(["minute", "second"], fc.constant(false)),
      featureArb(["lead", "request"], fc.constant(false)),
      featureArb(
        ["minute", "lead"],
        fc.integer({ min: 0, max: 2 }).map((n) => n === 0),
      ),
    ),
    overrides: fc.tuple(overrideArb, overrideArb, overrideArb),
    starterCredits: fc.constantFrom(0, 30),
    monthlyCreditsPerSeat: fc.constantFrom(0, 10, 25, 25),
    rolloverMaxCredits: fc.constantFrom(0, 0, 8, 1000),
    seats: fc.integer({ min: 1, max: 3 }),
  })
  .map(
    ({ features, overrides, ...rest }): RunConfig => ({
      ...rest,
      features,
      overrides: overrides.map((o, i) => {
        if (o === null) return null;
        const offered = features[i]?.tiers ?? {};
        const price: RefPlanPrice = {};
        if (o.creditsPerUnit !== null) price.creditsPerUnit = o.creditsPerUnit;
        const tiers: TierPrices = {};
        for (const tier of TIER_LIST) {
          const p = o.tiers[tier];
          if (p !== null && offered[tier] !== undefined) tiers[tier] = p;
        }
        if (Object.keys(tiers).length > 0) price.tiers = tiers;
        return price.creditsPerUnit === undefined && price.tiers === undefined ? null : price;
      }),
    }),
  );

// ---- commands -----------------------------------------------------------------------------------

interface ChargeCmd {
  feature: number;
  quantity: Quantity;
  tier: Tier | null;
}

type Command =
  | { kind: "noop" }
  | { kind: "grant"; amount: number; category: Category; priority: number; expiresInMinutes: number | null }
  | { kind: "spend"; amount: number }
  | { kind: "priced"; charge: ChargeCmd }
  | { kind: "pricedBatch"; mode: BatchMode; charges: ChargeCmd[] }
  | { kind: "pricedHold"; charge: ChargeCmd; ttlSeconds: Ttl }
  | { kind: "hold"; amount: number; ttlSeconds: Ttl }
  | { kind: "capture"; pick: number; amount: CaptureAmount }
  | { kind: "release"; pick: number }
  | { kind: "extend"; pick: number; amount: number | null; ttlSeconds: Ttl | null }
  | { kind: "void"; pick: number }
  | { kind: "seats"; seats: number }
  | { kind: "cross"; by: 1 | 2; via: "alarm" | "request"; again: boolean }
  | { kind: "alarm" }
  | { kind: "restart" }
  | { kind: "jump"; minutes: number }
  | { kind: "reprice"; feature: number; shift: number }
  | { kind: "retry"; pick: number };

const quantityArb: fc.Arbitrary<Quantity> = fc.oneof(
  { weight: 3, arbitrary: fc.constant<Quantity>({ type: "omit" }) },
  {
    weight: 5,
    arbitrary: fc.integer({ min: 1, max: 5 }).map((n): Quantity => ({ type: "micro", micro: n * MICRO })),
  },
  {
    weight: 8,
    arbitrary: fc
      .constantFrom(250_000, 500_000, 2_250_000, 1_000_001, 333_333, 100_000, 1, 3_999_999, 1_500_000, 4_750_000)
      .map((micro): Quantity => ({ type: "micro", micro })),
  },
  { weight: 1, arbitrary: fc.constant<Quantity>({ type: "tooPrecise" }) },
);
const chargeArb: fc.Arbitrary<ChargeCmd> = fc.record({
  feature: fc.integer({ min: 0, max: 2 }),
  quantity: quantityArb,
  // Mostly no tier; a tier the feature may or may not offer (then the route's 400).
  tier: fc.oneof({ weight: 5, arbitrary: fc.constant(null) }, { weight: 2, arbitrary: fc.constantFrom(...TIER_LIST) }),
});

const commandArb: fc.Arbitrary<Command> = fc.oneof(
  { withCrossShrink: true },
  { weight: 1, arbitrary: fc.constant<Command>({ kind: "noop" }) },
  {
    weight: 6,
    arbitrary: fc.record({
      kind: fc.constant("grant" as const),
      amount: fc.integer({ min: 1, max: 40 }),
      category: fc.constantFrom(...CATEGORY_LIST),
      priority: fc.integer({ min: 0, max: 1 }),
      expiresInMinutes: fc.option(fc.integer({ min: 2, max: 8 }).map((h) => h * 30)),
    }),
  },
  { weight: 3, arbitrary: fc.record({ kind: fc.constant("spend" as const), amount: fc.integer({ min: 1, max: 40 }) }) },
  { weight: 14, arbitrary: fc.record({ kind: fc.constant("priced" as const), charge: chargeArb }) },
  {
    weight: 3,
    arbitrary: fc.record({
      kind: fc.constant("pricedBatch" as const),
      mode: fc.constantFrom<BatchMode>("all_or_nothing", "until_insufficient"),
      charges: fc.array(chargeArb, { minLength: 1, maxLength: 3 }),
    }),
  },
  {
    weight: 8,
    arbitrary: fc.record({ kind: fc.constant("pricedHold" as const), charge: chargeArb, ttlSeconds: ttlArb }),
  },
  {
    weight: 2,
    arbitrary: fc.record({
      kind: fc.constant("hold" as const),
      amount: fc.integer({ min: 1, max: 40 }),
      ttlSeconds: ttlArb,
    }),
  },
  {
    weight: 6,
    arbitrary: fc.record({
      kind: fc.constant("capture" as const),
      pick: pickArb,
      amount: fc.oneof(
        fc.constant<CaptureAmount>({ type: "omit" }),
        fc.constant<CaptureAmount>({ type: "full" }),
        fc.record({ type: fc.constant("part" as const), permille: fc.integer({ min: 1, max: 999 }) }),
        fc.record({ type: fc.constant("over" as const), by: fc.integer({ min: 1, max: 3 }) }),
      ),
    }),
  },
  { weight: 3, arbitrary: fc.record({ kind: fc.constant("release" as const), pick: pickArb }) },
  {
    weight: 2,
    arbitrary: fc
      .record({
        kind: fc.constant("extend" as const),
        pick: pickArb,
        amount: fc.integer({ min: 1, max: 20 }),
        ttlSeconds: ttlArb,
        change: fc.constantFrom("amount", "ttl", "both"),
      })
      .map(
        ({ change, amount, ttlSeconds, ...rest }): Command => ({
          ...rest,
          amount: change === "ttl" ? null : amount,
          ttlSeconds: change === "amount" ? null : ttlSeconds,
        }),
      ),
  },
  { weight: 3, arbitrary: fc.record({ kind: fc.constant("void" as const), pick: pickArb }) },
  {
    weight: 6,
    arbitrary: fc.record({ kind: fc.constant("seats" as const), seats: fc.integer({ min: 1, max: 5 }) }),
  },
  {
    weight: 5,
    arbitrary: fc.record({
      kind: fc.constant("cross" as const),
      by: fc.constantFrom<1 | 2>(1, 1, 1, 2),
      via: fc.constantFrom<"alarm" | "request">("alarm", "request"),
      again: fc.boolean(),
    }),
  },
  { weight: 2, arbitrary: fc.constant<Command>({ kind: "alarm" }) },
  { weight: 1, arbitrary: fc.constant<Command>({ kind: "restart" }) },
  {
    weight: 3,
    arbitrary: fc.record({
      kind: fc.constant("jump" as const),
      minutes: fc.integer({ min: 1, max: 4 }).map((n) => n * 30),
    }),
  },
  {
    weight: 2,
    arbitrary: fc.record({
      kind: fc.constant("reprice" as const),
      feature: fc.integer({ min: 0, max: 2 }),
      shift: fc.integer({ min: 1, max: 8 }),
    }),
  },
  { weight: 5, arbitrary: fc.record({ kind: fc.constant("retry" as const), pick: pickArb }) },
);

const runArb = fc.limitShrink(
  fc.tuple(configArb, fc.array(commandArb, { minLength: MIN_COMMANDS, maxLength: MAX_COMMANDS })),
  MAX_SHRINKS,
);

// ---- requests -----------------------------------------------------------------------------------

type Op =
  | { op: "grant"; amount: number; category: Category; priority: number; expiresAt: number | null; iso: string | null }
  | { op: "void"; grant: number | null }
  | { op: "spend"; amount: number }
  | { op: "priced"; charge: Charge }
  | { op: "pricedBatch"; mode: BatchMode; charges: Charge[] }
  | { op: "pricedHold"; charge: Charge; ttlSeconds: Ttl }
  | { op: "hold"; amount: number; ttlSeconds: Ttl }
  | { op: "capture"; hold: number | null; amount: number | null }
  | { op: "release"; hold: number | null }
  | { op: "extend"; hold: number | null; amount: number | null; ttlSeconds: Ttl | null };

interface Req {
  op: Op;
  key: string;
  path: string;
  body: Record<string, unknown> | undefined;
}

interface WireTeam {
  seats: number;
  planId: string | null;
  currentPeriod: { index: number } | null;
}
type WireResult =
  | { status: "spent"; spend: { amount: number; unitCredits?: number } }
  | { status: "insufficient"; required: number; available: number }
  | { status: "skipped" };
interface Reply {
  code?: string;
  required?: number;
  available?: number;
  failedIndex?: number;
  balance?: WireBalance;
  entries?: WireEntry[];
  grant?: { id: string };
  hold?: { id: string; amount: number; capturedAmount: number; status: string; unitCredits?: number };
  spend?: { amount: number; unitCredits?: number };
  results?: WireResult[];
}

const chargeBody = (c: Charge): Record<string, unknown> => {
  const body: Record<string, unknown> = { feature: c.feature };
  if (c.quantity.type === "micro") body.quantity = c.quantity.micro / MICRO;
  if (c.quantity.type === "tooPrecise") body.quantity = TOO_PRECISE;
  if (c.tier !== null) body.tier = c.tier;
  return body;
};

class World extends Labels {
  readonly requests: Req[] = [];
  readonly originals = new Map<string, string>();
  readonly trace: string[] = [];

  constructor(
    readonly teamId: string,
    readonly featureKeys: string[],
  ) {
    super();
  }

  private id(ids: string[], label: number | null, prefix: string): string {
    const id = label === null ? undefined : ids[label];
    return id ?? `${prefix}_${"0".repeat(32)}`;
  }

  charge(c: ChargeCmd): Charge {
    return { feature: this.featureKeys[c.feature] ?? "missing", quantity: c.quantity, tier: c.tier };
  }

  request(op: Op, key: string): Req {
    const team = `/v1/teams/${this.teamId}`;
    const hold = (label: number | null) => `${team}/holds/${this.id(this.holdIds, label, "hld")}`;
    switch (op.op) {
      case "grant": {
        const body: Record<string, unknown> = {
          amount: op.amount,
          category: op.category,
          source: SOURCE[op.category],
          priority: op.priority,
        };
        if (op.iso !== null) body.expiresAt = op.iso;
        return { op, key, path: `${team}/grants`, body };
      }
      case "void":
        return { op, key, path: `${team}/grants/${this.id(this.grantIds, op.grant, "grt")}/void`, body: undefined };
      case "spend":
        return { op, key, path: `${team}/spends`, body: { feature: "plans-model", amount: op.amount } };
      case "priced":
        return { op, key, path: `${team}/spends`, body: chargeBody(op.charge) };
      case "pricedBatch":
        return {
          op,
          key,
          path: `${team}/spends/batch`,
          body: { items: op.charges.map(chargeBody), mode: op.mode },
        };
      case "pricedHold":
        return { op, key, path: `${team}/holds`, body: { ...chargeBody(op.charge), ttlSeconds: op.ttlSeconds } };
      case "hold":
        return { op, key, path: `${team}/holds`, body: { amount: op.amount, ttlSeconds: op.ttlSeconds } };
      case "capture":
        return { op, key, path: `${hold(op.hold)}/capture`, body: op.amount === null ? {} : { amount: op.amount } };
      case "release":
        return { op, key, path: `${hold(op.hold)}/release`, body: {} };
      case "extend": {
        const body: Record<string, unknown> = {};
        if (op.amount !== null) body.amount = op.amount;
        if (op.ttlSeconds !== null) body.ttlSeconds = op.ttlSeconds;
        return { op, key, path: `${hold(op.hold)}/extend`, body };
      }
    }
  }
}

/** Refused by the route before the ledger (400, saved nowhere): a charge the price book cannot price. */
function refusedByRoute(model: PlansReference, op: Op): boolean {
  switch (op.op) {
    case "priced":
      return !model.price(op.charge, "spend").ok;
    case "pricedBatch":
      return op.charges.some((c) => !model.price(c, "spend").ok);
    case "pricedHold":
      return !model.price(op.charge, "hold").ok;
    default:
      return false;
  }
}

function credits(model: PlansReference, c: Charge, kind: "spend" | "hold"): number {
  const p = model.price(c, kind);
  if (!p.ok) throw new Error("priced only after the route accepted it");
  return p.credits;
}

function apply(model: PlansReference, op: Op) {
  switch (op.op) {
    case "grant":
      return model.grant(op.amount, op.category, op.priority, op.expiresAt);
    case "void":
      return model.void(op.grant);
    case "spend":
      return model.spend(op.amount);
    case "priced":
      return model.spend(credits(model, op.charge, "spend"));
    case "pricedBatch":
      return model.batch(
        op.charges.map((c) => credits(model, c, "spend")),
        op.mode,
      );
    case "pricedHold":
      return model.hold(credits(model, op.charge, "hold"), op.ttlSeconds / 60);
    case "hold":
      return model.hold(op.amount, op.ttlSeconds / 60);
    case "capture":
      return model.capture(op.hold, op.amount);
    case "release":
      return model.release(op.hold);
    case "extend":
      return model.extend(op.hold, op.amount, op.ttlSeconds === null ? null : op.ttlSeconds / 60);
  }
}

function predict(model: PlansReference, r: Req): Prediction {
  if (refusedByRoute(model, r.op))
    return { replayed: false, outcome: { ok: false, status: 400, code: "invalid_request" } };
  return model.keyed(r.key, `POST ${r.path}\n${JSON.stringify(r.body ?? null)}`, () => apply(model, r.op));
}

// ---- one run ------------------------------------------------------------------------------------

let totalSteps = 0;
const stats = new Map<string, number>();
const count = (what: string): void => {
  stats.set(what, (stats.get(what) ?? 0) + 1);
};

/** When period `n` of an anchor starts, by the calendar (written here, not taken from domain/periods.ts). */
function monthsAfter(anchorMs: number, n: number): number {
  const a = new Date(anchorMs);
  const months = a.getUTCMonth() + n;
  const lastDay = new Date(Date.UTC(a.getUTCFullYear(), months + 1, 0)).getUTCDate();
  const day = Math.min(a.getUTCDate(), lastDay);
  const timeOfDay = anchorMs - Date.UTC(a.getUTCFullYear(), a.getUTCMonth(), a.getUTCDate());
  return Date.UTC(a.getUTCFullYear(), months, day) + timeOfDay;
}

/** Days ago to anchor the periods so that now lies well inside period `n` (a week or more from its bounds). */
function daysAgoFor(n: number): number {
  const now = Date.now();
  for (let d = Math.round(30.44 * n) + 12; d < 31 * n + 31; d++) {
    const anchor = now - d * DAY_MS;
    if (monthsAfter(anchor, n) <= now - 7 * DAY_MS && monthsAfter(anchor, n + 1) > now + 7 * DAY_MS) return d;
  }
  throw new Error(`no anchor puts now inside period ${n}`);
}

/**
 * The boundary opened by the object's own alarm as the runtime fires it (set for now), like a
 * boundary in production: whether the period's row appeared within 10 s. (Repeated runs after it
 * go through runDurableObjectAlarm.)
 */
async function boundaryByAlarm(teamId: string, period: number): Promise<boolean> {
  await runInDurableObject(ledgerStub(teamId), (_i: TeamLedger, state) => state.storage.setAlarm(Date.now()));
  for (let i = 0; i < 500; i++) {
    const [row] = await objectRows<{ idx: number | null }>(teamId, "SELECT MAX(idx) AS idx FROM periods");
    if (row?.idx === period) return true;
    await new Promise((r) => setTimeout(r, 20));
  }
  return false;
}

/** Moves the grants the test made (not the periods') and the pending holds `minutes` closer. */
async function shiftTime(teamId: string, minutes: number): Promise<void> {
  const ms = minutes * MINUTE_MS;
  await runInDurableObject(ledgerStub(teamId), (_i: TeamLedger, state) => {
    state.storage.sql.exec(
      "UPDATE grants SET expires_at = expires_at - ? WHERE expires_at IS NOT NULL AND period IS NULL",
      ms,
    );
    state.storage.sql.exec("UPDATE holds SET expires_at = expires_at - ? WHERE status = 'pending'", ms);
  });
}

function resolve(world: World, model: PlansReference, cmd: Command): Req | null {
  const pickHold = (pick: number): number | null => {
    const pending = model.holds.filter((h) => h.status === "pending");
    // One pick in five may land on any hold (often a resolved one: 409).
    const pool = pick % 5 === 0 || pending.length === 0 ? model.holds : pending;
    const h = pool[Math.floor(pick / 5) % Math.max(pool.length, 1)];
    return h ? h.label : null;
  };
  switch (cmd.kind) {
    case "grant": {
      const m = cmd.expiresInMinutes;
      return world.request(
        {
          op: "grant",
          amount: cmd.amount,
          category: cmd.category,
          priority: cmd.priority,
          expiresAt: m === null ? null : model.now + m,
          iso: m === null ? null : new Date(Date.now() - EXPIRY_MARGIN_MS + m * MINUTE_MS).toISOString(),
        },
        newKey(),
      );
    }
    case "spend":
      return world.request({ op: "spend", amount: cmd.amount }, newKey());
    case "priced":
      return world.request({ op: "priced", charge: world.charge(cmd.charge) }, newKey());
    case "pricedBatch":
      return world.request(
        { op: "pricedBatch", mode: cmd.mode, charges: cmd.charges.map((c) => world.charge(c)) },
        newKey(),
      );
    case "pricedHold":
      return world.request(
        { op: "pricedHold", charge: world.charge(cmd.charge), ttlSeconds: cmd.ttlSeconds },
        newKey(),
      );
    case "hold":
      return world.request({ op: "hold", amount: cmd.amount, ttlSeconds: cmd.ttlSeconds }, newKey());
    case "capture": {
      const hold = pickHold(cmd.pick);
      const held = hold === null ? 1 : (model.holds[hold]?.amount ?? 1);
      const a = cmd.amount;
      const amount =
        a.type === "omit"
          ? null
          : a.type === "full"
            ? held
            : a.type === "part"
              ? Math.max(1, Math.floor((held * a.permille) / 1000))
              : held + a.by;
      return world.request({ op: "capture", hold, amount }, newKey());
    }
    case "release":
      return world.request({ op: "release", hold: pickHold(cmd.pick) }, newKey());
    case "extend":
      return world.request(
        { op: "extend", hold: pickHold(cmd.pick), amount: cmd.amount, ttlSeconds: cmd.ttlSeconds },
        newKey(),
      );
    case "void": {
      const g = model.grants[cmd.pick % Math.max(model.grants.length, 1)];
      return world.request({ op: "void", grant: g ? g.label : null }, newKey());
    }
    case "retry":
      return world.requests[cmd.pick % Math.max(world.requests.length, 1)] ?? null;
    default:
      return null;
  }
}

async function send(world: World, model: PlansReference, r: Req): Promise<string> {
  const entriesBefore = model.entries.length;
  const predicted = predict(model, r);
  const res = await api<Reply>(r.path, { method: "POST", body: r.body, idempotencyKey: r.key });
  const where = `${r.path} ${JSON.stringify(r.body ?? null)} key=${r.key}`;
  const replayed = res.headers.get("idempotent-replayed");
  if (!world.requests.includes(r)) world.requests.push(r);

  if (predicted.replayed) {
    same(res.status, predicted.status, `replay of ${where}: status (${res.text})`);
    same(replayed, "true", `replay of ${where}: Idempotent-Replayed`);
    same(res.text, world.originals.get(r.key), `replay of ${where}: the first response, byte for byte`);
    return `${res.status} replayed`;
  }
  const outcome = predicted.outcome;
  same(res.status, outcome.status, `${where}: status (${res.text})`);
  same(replayed, null, `${where}: not a replay`);
  // What the ledger decided is saved under the key (refusals too); the route's own 400s are not.
  if (outcome.status !== 422 && !refusedByRoute(model, r.op)) world.originals.set(r.key, res.text);
  if (!outcome.ok) {
    same(res.body.code, outcome.code, `${where}: problem code`);
    if (outcome.status === 402) {
      same(res.body.required, outcome.required, `${where}: required`);
      same(res.body.available, outcome.available, `${where}: available`);
      if (outcome.failedIndex !== undefined) same(res.body.failedIndex, outcome.failedIndex, `${where}: failedIndex`);
    }
    return `${res.status} ${outcome.code}`;
  }

  // The unit price the reference charges, for priced spends and holds.
  const unit = (c: Charge, kind: "spend" | "hold"): number | undefined => {
    const p = model.price(c, kind);
    return p.ok ? p.unitCredits : undefined;
  };
  switch (outcome.kind) {
    case "grant": {
      same(outcome.grant, world.grantIds.length, "grant labels follow creation order");
      const id = res.body.grant?.id;
      if (id === undefined) throw new Error(`${where}: no grant id in ${res.text}`);
      world.grantIds.push(id);
      break;
    }
    case "hold": {
      const hold = res.body.hold;
      if (hold === undefined) throw new Error(`${where}: no hold in ${res.text}`);
      if (r.op.op === "hold" || r.op.op === "pricedHold") {
        same(outcome.hold, world.holdIds.length, "hold labels follow creation order");
        world.holdIds.push(hold.id);
      }
      const h = model.holds[outcome.hold];
      same(
        { id: hold.id, amount: hold.amount, capturedAmount: hold.capturedAmount, status: hold.status },
        { id: world.holdIds[outcome.hold], amount: h?.amount, capturedAmount: h?.capturedAmount, status: h?.status },
        `${where}: hold`,
      );
      if (r.op.op === "pricedHold") {
        const u = unit(r.op.charge, "hold");
        same(hold.unitCredits, u, `${where}: the hold's unitCredits`);
        same(
          (res.body.entries ?? []).map((e) => e.unitCredits),
          (res.body.entries ?? []).map(() => u),
          `${where}: every hold entry's unitCredits`,
        );
      }
      break;
    }
    case "batch": {
      const results = (res.body.results ?? []).map((x) =>
        x.status === "spent"
          ? { status: x.status, amount: x.spend.amount }
          : x.status === "insufficient"
            ? { status: x.status, required: x.required, available: x.available }
            : { status: x.status },
      );
      same(results, outcome.results, `${where}: batch results`);
      if (r.op.op === "pricedBatch") {
        const charges = r.op.charges;
        same(
          (res.body.results ?? []).map((x) => (x.status === "spent" ? x.spend.unitCredits : null)),
          outcome.results.map((x, i) => {
            const c = charges[i];
            return x.status === "spent" && c ? unit(c, "spend") : null;
          }),
          `${where}: batch unitCredits`,
        );
      }
      break;
    }
    case "spend":
      if (r.op.op === "priced") {
        const u = unit(r.op.charge, "spend");
        same(
          { amount: res.body.spend?.amount, unitCredits: res.body.spend?.unitCredits },
          { amount: credits(model, r.op.charge, "spend"), unitCredits: u },
          `${where}: the price charged`,
        );
        same(
          (res.body.entries ?? []).map((e) => e.unitCredits),
          (res.body.entries ?? []).map(() => u),
          `${where}: every spend entry's unitCredits`,
        );
      }
      break;
    case "void":
      break;
  }
  if (outcome.kind !== "batch") {
    const aligned = alignEntries(
      (res.body.entries ?? []).map((e) => wireEntry(world, e)),
      model.entries.slice(entriesBefore),
    );
    same(aligned.real, aligned.expected, `${where}: entries written`);
  }
  expectBalance(world, model, res.body.balance, `${where}: reply`);
  return `${res.status}`;
}

function expectTeam(model: PlansReference, team: WireTeam | undefined, what: string): void {
  same(
    team && { seats: team.seats, planId: team.planId, period: team.currentPeriod?.index },
    { seats: model.seats, planId: model.planId, period: model.period },
    `${what}: the team`,
  );
}

async function step(world: World, model: PlansReference, cmd: Command): Promise<string> {
  const team = world.teamId;
  switch (cmd.kind) {
    case "jump":
      await shiftTime(team, cmd.minutes);
      model.advance(cmd.minutes);
      count("jump");
      return `t=${model.now}min`;
    case "restart":
      await abortAllDurableObjects();
      count("restart");
      return "object restarted";
    case "alarm": {
      const ran = await runAlarm(team);
      model.settle();
      count(ran ? "alarm ran" : "alarm: none set");
      return ran ? "alarm ran" : "no alarm set";
    }
    case "seats": {
      model.setSeats(cmd.seats);
      const res = await api<WireTeam>(`/v1/teams/${team}`, { method: "PUT", body: { seats: cmd.seats } });
      same(res.status, 200, `PUT seats ${cmd.seats}: status (${res.text})`);
      expectTeam(model, res.body, `PUT seats ${cmd.seats}`);
      count(`seats → ${model.grants.length > world.grantIds.length ? "credits added" : "nothing added"}`);
      return `seats=${cmd.seats}`;
    }
    case "cross": {
      const target = model.period + cmd.by;
      await anchorDaysAgo(team, daysAgoFor(target), monthsAfter);
      let runs = 0;
      if (cmd.via === "alarm") {
        if (await boundaryByAlarm(team, target)) runs++;
        if (cmd.again) {
          // A repeated alarm, also after a restart, opens nothing twice.
          if (await runAlarm(team)) runs++;
          await abortAllDurableObjects();
          if (await runAlarm(team)) runs++;
        }
      }
      model.cross(cmd.by);
      const res = await api<WireTeam>(`/v1/teams/${team}`);
      same(res.status, 200, `GET team after crossing: status (${res.text})`);
      expectTeam(model, res.body, `crossing into period ${target}`);
      count(`cross ${cmd.by} via ${cmd.via}${cmd.via === "alarm" ? ` (${runs} alarm runs)` : ""}`);
      return `period ${target} (${cmd.via}, ${runs} alarm runs)`;
    }
    case "reprice": {
      const key = world.featureKeys[cmd.feature];
      const f = key === undefined ? undefined : model.features.get(key);
      if (key === undefined || f === undefined) return "nothing to do";
      const next = (p: number) => ((p - 1 + cmd.shift) % 9) + 1;
      const tiers: TierPrices | null = f.tiers === null ? null : {};
      if (f.tiers !== null && tiers !== null)
        for (const tier of TIER_LIST) {
          const p = f.tiers[tier];
          if (p !== undefined) tiers[tier] = next(p);
        }
      const changed: RefFeature = { ...f, creditsPerUnit: next(f.creditsPerUnit), tiers };
      await putFeature(key, changed, 200);
      model.features.set(key, changed);
      count("reprice");
      return `${key} now ${changed.creditsPerUnit} ${JSON.stringify(tiers)}`;
    }
    case "noop":
      return "nothing to do";
    default: {
      const r = resolve(world, model, cmd);
      if (!r) return "nothing to do";
      const outcome = await send(world, model, r);
      count(`${cmd.kind}${cmd.kind === r.op.op ? "" : ` (${r.op.op})`} → ${outcome}`);
      return `${JSON.stringify(r.op)} → ${outcome}`;
    }
  }
}

/**
 * The grants the ledger made itself since the last look (starter, allocation, rollover, seats):
 * read from the object's table, in creation order, they must be the reference's.
 */
async function learnSystemGrants(world: World, model: PlansReference, what: string): Promise<void> {
  if (model.grants.length === world.grantIds.length) return;
  const rows = await objectRows<{
    id: string;
    amount: number;
    category: string;
    source: string;
    reference: string | null;
    period: number | null;
  }>(world.teamId, "SELECT id, amount, category, source, reference, period FROM grants ORDER BY seq");
  const from = world.grantIds.length;
  const fields = (amount: number, category: string, source: string, reference: string | null, period: unknown) => ({
    amount,
    category,
    source,
    reference,
    period,
  });
  same(
    rows.slice(from).map((r) => fields(r.amount, r.category, r.source, r.reference, r.period)),
    model.grants.slice(from).map((g) => {
      const s = model.system.get(g.label);
      return fields(g.amount, g.category, s?.source ?? "(not a system grant)", s?.reference ?? null, s?.period ?? null);
    }),
    `${what}: the grants the ledger made itself`,
  );
  for (const r of rows.slice(from)) world.grantIds.push(r.id);
  for (const g of model.grants.slice(from)) count(`system grant ${model.system.get(g.label)?.reference.split(":")[0]}`);
}

async function checkBalance(world: World, model: PlansReference, what: string): Promise<void> {
  const res = await api<WireBalance>(`/v1/teams/${world.teamId}/balance`);
  same(res.status, 200, `${what}: GET balance (${res.text})`);
  model.settle();
  await learnSystemGrants(world, model, what);
  expectBalance(world, model, res.body, `${what}: GET balance`);
  same(await historyProblems(world.teamId), [], `${what}: the history adds up`);
}

async function finalChecks(world: World, model: PlansReference): Promise<void> {
  const team = world.teamId;
  await expectTablesMatch(world, team, model);

  // Exactly one row, so one allocation, per period the team was in; the seats it paid for.
  const periods = await objectRows<{ idx: number; seats: number; granted_credits: number; plan_id: string }>(
    team,
    "SELECT idx, seats, granted_credits, plan_id FROM periods ORDER BY idx",
  );
  same(
    periods.map((p) => ({ idx: p.idx, seats: p.seats, grantedCredits: p.granted_credits, planId: p.plan_id })),
    model.periods.map((p) => ({ idx: p.idx, seats: p.seats, grantedCredits: p.grantedCredits, planId: model.planId })),
    "periods",
  );
  // One allocation.granted event per period opened, with what it granted.
  const events = await objectRows<{ data: string }>(
    team,
    "SELECT data FROM events WHERE type = 'allocation.granted' ORDER BY seq",
  );
  same(
    events.map((e) => {
      const d = JSON.parse(e.data) as {
        period: { index: number };
        seats: number;
        allocationCredits: number;
        rolloverCredits: number;
      };
      return {
        idx: d.period.index,
        seats: d.seats,
        allocationCredits: d.allocationCredits,
        rolloverCredits: d.rolloverCredits,
      };
    }),
    model.periods.map((p) => ({ idx: p.idx, ...p.opened })),
    "allocation.granted events",
  );

  await assertInvariants(team);
}

async function putFeature(key: string, f: RefFeature, status: number): Promise<void> {
  const body: Record<string, unknown> = {
    name: key,
    unit: f.unit,
    creditsPerUnit: f.creditsPerUnit,
    unitRounding: f.rounding,
    chargeOnSuccess: f.chargeOnSuccess,
  };
  if (f.tiers !== null) body.tiers = f.tiers;
  const res = await api(`/v1/features/${key}`, { method: "PUT", body });
  same(res.status, status, `PUT feature ${key} (${res.text})`);
}

/** The price book and plan of a run, then the team on the plan. */
async function setUp(config: RunConfig): Promise<{ world: World; model: PlansReference }> {
  const keys = config.features.map((_f, i) => newKeyFor(`pm-f${i}`));
  const planId = newKeyFor("pm-plan");
  const featurePrices: Record<string, RefPlanPrice> = {};
  const wirePrices: Record<string, unknown> = {};
  config.overrides.forEach((o, i) => {
    const key = keys[i];
    if (o === null || key === undefined) return;
    featurePrices[key] = o;
    // A plan price is a number (creditsPerUnit) or an object; send both forms.
    wirePrices[key] = o.tiers === undefined && o.creditsPerUnit !== undefined ? o.creditsPerUnit : o;
  });
  const plan: RefPlan = {
    starterCredits: config.starterCredits,
    monthlyCreditsPerSeat: config.monthlyCreditsPerSeat,
    rolloverMaxCredits: config.rolloverMaxCredits,
    featurePrices,
  };
  const model = new PlansReference(planId, plan, config.seats);
  const world = new World(newTeamId("plans-model"), keys);
  for (const [i, spec] of config.features.entries()) {
    const key = keys[i];
    if (key === undefined) continue;
    const f: RefFeature = { ...spec };
    await putFeature(key, f, 201);
    model.features.set(key, f);
  }
  const res = await api(`/v1/plans/${planId}`, {
    method: "PUT",
    body: {
      name: planId,
      paid: true,
      currency: "usd",
      creditsPerCurrencyUnit: 100,
      starterCredits: plan.starterCredits,
      monthlyCreditsPerSeat: plan.monthlyCreditsPerSeat,
      rolloverMaxCredits: plan.rolloverMaxCredits,
      featurePrices: wirePrices,
    },
  });
  same(res.status, 201, `PUT plan (${res.text})`);
  const created = await api<WireTeam>(`/v1/teams/${world.teamId}`, {
    method: "PUT",
    body: { planId, seats: config.seats },
  });
  same(created.status, 201, `PUT team (${created.text})`);
  model.create();
  expectTeam(model, created.body, "creating the team");
  return { world, model };
}

/** Nothing of a finished run is left to run later: its team's alarm is taken away. */
async function quiet(teamId: string): Promise<void> {
  await runInDurableObject(ledgerStub(teamId), (_i: TeamLedger, state) => state.storage.deleteAlarm());
}

async function runSequence(config: RunConfig, commands: Command[]): Promise<void> {
  const { world, model } = await setUp(config);
  let at = "setup";
  try {
    await checkBalance(world, model, at);
    for (const [i, cmd] of commands.entries()) {
      if (cmd.kind === "noop") continue;
      at = `step ${i} ${JSON.stringify(cmd)}`;
      const summary = await step(world, model, cmd);
      world.trace.push(`#${i} ${cmd.kind}: ${summary}`);
      await checkBalance(world, model, at);
      totalSteps += 1;
    }
    at = "final checks";
    await finalChecks(world, model);
    await quiet(world.teamId);
    count(`runs ending in period ${Math.min(model.period, 6)}${model.period > 6 ? "+" : ""}`);
    for (const e of model.entries) count(`entry ${e.type}/${e.direction}`);
  } catch (err) {
    await quiet(world.teamId);
    const message = err instanceof Error ? err.message : String(err);
    throw new Error(
      `${at} failed (team ${world.teamId}, period ${model.period}, t=${model.now}min, plan ${JSON.stringify(model.terms)}, ` +
        `features ${JSON.stringify([...model.features])}):\n${message}\n--- last steps ---\n${world.trace.slice(-15).join("\n")}`,
    );
  }
}

// ---- the property -------------------------------------------------------------------------------

describe("plans model", () => {
  it(
    "priced spends and holds, periods and seat changes behave like the reference",
    async () => {
      const params: fc.Parameters<[[RunConfig, Command[]]]> = {
        seed: SEED,
        numRuns: NUM_RUNS,
        ...(REPLAY_PATH ? { path: REPLAY_PATH, endOnFailure: true } : {}),
      };
      const details = await fc.check(
        fc.asyncProperty(runArb, ([config, commands]) => runSequence(config, commands)),
        params,
      );
      // Nothing of these runs is left running for the files after this one (see also `quiet`).
      await abortAllDurableObjects();
      if (details.failed) {
        const [config, commands] = details.counterexample?.[0] ?? [null, []];
        const shrunk = commands
          .map((cmd, i) => ({ i, cmd }))
          .filter(({ cmd }) => cmd.kind !== "noop")
          .map(({ i, cmd }) => `  #${i} ${JSON.stringify(cmd)}`)
          .join("\n");
        const error =
          details.errorInstance instanceof Error ? details.errorInstance.message : String(details.errorInstance);
        const report = [
          `plans model failed after ${details.numRuns} run(s), shrunk ${details.numShrinks} time(s)`,
          `replay: VITE_PLANS_SEED=${details.seed} VITE_PLANS_PATH=${details.counterexamplePath ?? ""} npx vitest run --project workers test/model/plans.model.test.ts`,
          `config: ${JSON.stringify(config)}`,
          "shrunk commands (no-ops left out):",
          shrunk,
          "error:",
          error,
        ].join("\n");
        // Printed as well as thrown, so the case can be replayed even when the run is cut short.
        console.error(report);
        throw new Error(report);
      }
      const seen = [...stats].sort(([a], [b]) => (a < b ? -1 : 1)).map(([k, n]) => `  ${k}: ${n}`);
      console.log(
        `plans model: ${details.numRuns} runs, ${totalSteps} steps (seed ${details.seed})\n${seen.join("\n")}`,
      );
      expect(totalSteps).toBeGreaterThan(0);
    },
    10 * 60_000,
  );
});
