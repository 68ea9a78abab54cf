/**
 * Model-based test: random sequences of commands run against the real team object (through the
 * HTTP API) and against a small reference ledger (reference-ledger.ts) side by side. Commands:
 * grants (each category, priority 0..2, no expiry or +1h..+4h), spends, batch spends in both modes,
 * holds (ttl 1h or 2h), captures (full, partial, too large), releases, extends, voids, actions on
 * ids that do not exist, time jumps, alarm runs, object restarts, D1 outages, and retries of
 * earlier requests with the same Idempotency-Key and the same body (the first answer again, byte
 * for byte, refusals included; no second effect) or a different body (422 when the key is saved).
 *
 * After every step the status must be the reference's, the balance (available, held, total,
 * byCategory and the live grants) must be the reference's, and the history must add up line by
 * line: every new entry's balanceAfter is Σ in − Σ out up to it, and the last one is available. At the end of a sequence the entries
 * table, every hold, every grant and the stored idempotency keys must be the reference's, and
 * assertInvariants must pass; after D1 is back and the outbox drained, D1 holds every entry once.
 *
 * Time is never faked. A time jump shifts every expiry inside the object back by whole half hours
 * (and the reference's clock forward by as much). Expiries and deadlines are whole half hours from
 * their start, so a jump lands either 30+ minutes away from one or exactly on it (which counts as
 * passed); grant expiries are sent one second early, so the seconds a run really takes and the
 * test's clock against the object's never decide which.
 *
 * The service issues ids; the reference names grants and holds by creation order, and the test
 * maps one to the other from the replies. Calls go through the worker's fetch handler, not SELF
 * (see `api` below for why).
 *
 * A failure prints the seed, the path and the shrunk command list. To replay exactly that case:
 *
 *   VITE_MODEL_SEED=<seed> VITE_MODEL_PATH=<path> npx vitest run test/model
 *
 * (Vite passes only VITE_-prefixed variables into the workerd runtime the tests run in.)
 * VITE_MODEL_RUNS=<n> changes the number of sequences; VITE_MODEL_SEED alone replays a whole run.
 */
import { abortAllDurableObjects, runDurableObjectAlarm, runInDurableObject } from "cloudflare:test";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import type { TeamLedger } from "../../src/object/team-ledger";
import {
  assertInvariants,
  d1With,
  drainOutbox,
  expectD1MatchesObject,
  historyProblems,
  injectD1,
  ledgerStub,
  newKey,
  newTeamId,
  reachRetryTime,
  restoreD1,
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
import { type BatchMode, CATEGORY_LIST, type Category, type Outcome, ReferenceLedger } from "./reference-ledger";

// ---- configuration ------------------------------------------------------------------------------

const REPLAY_SEED = envString("VITE_MODEL_SEED");
const REPLAY_PATH = envString("VITE_MODEL_PATH");
const NUM_RUNS = Number(envString("VITE_MODEL_RUNS") ?? 100);
/**
 * Commands per sequence: 100 runs × at least 105 commands (about 1% are no-ops) ≥ 10,000 steps per
 * CI run; the test checks the count. About 70 s on a 2-core machine.
 */
const MIN_COMMANDS = 105;
const MAX_COMMANDS = 135;
const MIN_TOTAL_STEPS = 10_000;

const FAKE_HOLD = `hld_${"0".repeat(32)}`;
const FAKE_GRANT = `grt_${"0".repeat(32)}`;

// ---- commands -----------------------------------------------------------------------------------

/** What a sequence is made of: plain data, so fast-check can shrink and print it. */
type Command =
  | { kind: "noop" }
  | { kind: "grant"; amount: number; category: Category; priority: number; expiresInMinutes: number | null }
  | { kind: "spend"; amount: number }
  | { kind: "batch"; mode: BatchMode; amounts: number[] }
  | { kind: "hold"; amount: number; ttlSeconds: Ttl }
  | { kind: "capture"; pick: number; anyHold: boolean; amount: CaptureAmount }
  | { kind: "release"; pick: number; anyHold: boolean; reason: boolean }
  | { kind: "extend"; pick: number; anyHold: boolean; amount: number | null; ttlSeconds: Ttl | null }
  | { kind: "void"; pick: number }
  | { kind: "missing"; target: "hold" | "grant" }
  | { kind: "jump"; minutes: number }
  | { kind: "alarm" }
  | { kind: "restart" }
  | { kind: "d1"; up: boolean }
  | { kind: "retry"; pick: number }
  | { kind: "reuse"; pick: number };

/** True one time in five: most hold actions pick a pending hold, some any hold (often a resolved one). */
const rarely = fc.integer({ min: 0, max: 4 }).map((n) => n === 0);

const commandArb: fc.Arbitrary<Command> = fc.oneof(
  { withCrossShrink: true },
  // First, so shrinking can turn any command that does not matter into a no-op.
  { weight: 1, arbitrary: fc.constant<Command>({ kind: "noop" }) },
  {
    weight: 14,
    arbitrary: fc.record({
      kind: fc.constant("grant" as const),
      amount: fc.integer({ min: 1, max: 60 }),
      category: fc.constantFrom(...CATEGORY_LIST),
      priority: fc.integer({ min: 0, max: 2 }),
      // No expiry, or +1h..+4h in half hours.
      expiresInMinutes: fc.option(fc.integer({ min: 2, max: 8 }).map((h) => h * 30)),
    }),
  },
  {
    weight: 12,
    arbitrary: fc.record({ kind: fc.constant("spend" as const), amount: fc.integer({ min: 1, max: 50 }) }),
  },
  {
    weight: 6,
    arbitrary: fc.record({
      kind: fc.constant("batch" as const),
      mode: fc.constantFrom<BatchMode>("all_or_nothing", "until_insufficient"),
      amounts: fc.array(fc.integer({ min: 1, max: 25 }), { minLength: 1, maxLength: 5 }),
    }),
  },
  {
    weight: 12,
    arbitrary: fc.record({
      kind: fc.constant("hold" as const),
      amount: fc.integer({ min: 1, max: 50 }),
      ttlSeconds: ttlArb,
    }),
  },
  {
    weight: 10,
    arbitrary: fc.record({
      kind: fc.constant("capture" as const),
      pick: pickArb,
      anyHold: rarely,
      amount: fc.oneof(
        fc.constant<CaptureAmount>({ type: "omit" }),
        fc.constant<CaptureAmount>({ type: "full" }),
        fc.record({ type: fc.constant("part" as const), permille: fc.integer({ min: 1, max: 999 }) }),
        fc.record({ type: fc.constant("over" as const), by: fc.integer({ min: 1, max: 5 }) }),
      ),
    }),
  },
  {
    weight: 5,
    arbitrary: fc.record({
      kind: fc.constant("release" as const),
      pick: pickArb,
      anyHold: rarely,
      reason: fc.boolean(),
    }),
  },
  {
    weight: 7,
    arbitrary: fc
      .record({
        kind: fc.constant("extend" as const),
        pick: pickArb,
        anyHold: rarely,
        amount: fc.integer({ min: 1, max: 30 }),
        ttlSeconds: ttlArb,
        // More credits, a new deadline, or both; now and then neither, which the route refuses
        // (400) before the ledger sees it.
        change: fc.constantFrom("amount", "amount", "ttl", "ttl", "both", "both", "neither"),
      })
      .map(
        ({ change, amount, ttlSeconds, ...rest }): Command => ({
          ...rest,
          amount: change === "amount" || change === "both" ? amount : null,
          ttlSeconds: change === "ttl" || change === "both" ? ttlSeconds : null,
        }),
      ),
  },
  { weight: 4, arbitrary: fc.record({ kind: fc.constant("void" as const), pick: pickArb }) },
  {
    weight: 1,
    arbitrary: fc.record({ kind: fc.constant("missing" as const), target: fc.constantFrom("hold", "grant") }),
  },
  {
    weight: 6,
    arbitrary: fc.record({
      kind: fc.constant("jump" as const),
      minutes: fc.integer({ min: 1, max: 4 }).map((n) => n * 30),
    }),
  },
  { weight: 3, arbitrary: fc.constant<Command>({ kind: "alarm" }) },
  // Faults: the object restarts (its in-memory state is rebuilt from storage), D1 goes down or up.
  { weight: 1, arbitrary: fc.constant<Command>({ kind: "restart" }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant("d1" as const), up: fc.boolean() }) },
  { weight: 8, arbitrary: fc.record({ kind: fc.constant("retry" as const), pick: pickArb }) },
  { weight: 4, arbitrary: fc.record({ kind: fc.constant("reuse" as const), pick: pickArb }) },
);

/**
 * Shrinking keeps the length (the minimum guarantees the step count) and turns commands into no-ops
 * instead. Every shrink attempt is a run on a new team object, so the attempts are capped.
 */
const MAX_SHRINKS = 200;
const sequenceArb = fc.limitShrink(
  fc.array(commandArb, { minLength: MIN_COMMANDS, maxLength: MAX_COMMANDS }),
  MAX_SHRINKS,
);

// ---- requests -----------------------------------------------------------------------------------

/** One ledger operation with its targets resolved to reference labels (null: an id that does not exist). */
type Op =
  | {
      op: "grant";
      amount: number;
      category: Category;
      priority: number;
      expiresAt: number | null;
      expiresIso: string | null;
    }
  | { op: "void"; grant: number | null }
  | { op: "spend"; amount: number }
  | { op: "batch"; mode: BatchMode; amounts: number[] }
  | { op: "hold"; amount: number; ttlSeconds: Ttl }
  | { op: "capture"; hold: number | null; amount: number | null }
  | { op: "release"; hold: number | null; reason: boolean }
  | { op: "extend"; hold: number | null; amount: number | null; ttlSeconds: Ttl | null };

interface Request {
  op: Op;
  key: string;
  path: string;
  body: Record<string, unknown> | undefined;
}

interface WireHold {
  id: string;
  amount: number;
  capturedAmount: number;
  status: string;
}
type WireResult =
  | { index: number; status: "spent"; spend: { amount: number } }
  | { index: number; status: "insufficient"; required: number; available: number }
  | { index: number; status: "skipped" };
interface Reply {
  code?: string;
  required?: number;
  available?: number;
  failedIndex?: number;
  balance?: WireBalance;
  entries?: WireEntry[];
  grant?: { id: string };
  hold?: WireHold;
  results?: WireResult[];
  spend?: { amount: number };
}

/** A run's view of the real object: the ids it issued, by reference label. */
class World extends Labels {
  readonly requests: Request[] = [];
  /** The first response the ledger decided under each key (success or refusal): what a replay must repeat. */
  readonly originals = new Map<string, { status: number; text: string }>();
  readonly trace: string[] = [];

  constructor(readonly teamId: string) {
    super();
  }

  grantId(label: number | null): string {
    return label === null ? FAKE_GRANT : (this.grantIds[label] ?? FAKE_GRANT);
  }

  holdId(label: number | null): string {
    return label === null ? FAKE_HOLD : (this.holdIds[label] ?? FAKE_HOLD);
  }

  /** The path and body the API takes for an operation. */
  request(op: Op, key: string): Request {
    const team = `/v1/teams/${this.teamId}`;
    switch (op.op) {
      case "grant": {
        const body: Record<string, unknown> = {
          amount: op.amount,
          category: op.category,
          source: SOURCE[op.category],
          priority: op.priority,
        };
        if (op.expiresIso !== null) body.expiresAt = op.expiresIso;
        return { op, key, path: `${team}/grants`, body };
      }
      case "void":
        return { op, key, path: `${team}/grants/${this.grantId(op.grant)}/void`, body: undefined };
      case "spend":
        return { op, key, path: `${team}/spends`, body: { feature: "model", amount: op.amount } };
      case "batch":
        return {
          op,
          key,
          path: `${team}/spends/batch`,
          body: { items: op.amounts.map((amount) => ({ feature: "model", amount })), mode: op.mode },
        };
      case "hold":
        return {
          op,
          key,
          path: `${team}/holds`,
          body: { feature: "model", amount: op.amount, ttlSeconds: op.ttlSeconds },
        };
      case "capture":
        return {
          op,
          key,
          path: `${team}/holds/${this.holdId(op.hold)}/capture`,
          body: op.amount === null ? {} : { amount: op.amount },
        };
      case "release":
        return {
          op,
          key,
          path: `${team}/holds/${this.holdId(op.hold)}/release`,
          body: op.reason ? { reason: "model" } : {},
        };
      case "extend": {
        const body: Record<string, unknown> = {};
        if (op.amount !== null) body.amount = op.amount;
        if (op.ttlSeconds !== null) body.ttlSeconds = op.ttlSeconds;
        return { op, key, path: `${team}/holds/${this.holdId(op.hold)}/extend`, body };
      }
    }
  }
}

/** What the service fingerprints a request by: method, path and body. */
const fingerprint = (r: Request): string => `POST ${r.path}\n${JSON.stringify(r.body ?? null)}`;

function apply(model: ReferenceLedger, op: Op): Outcome {
  switch (op.op) {
    case "grant":
      return model.grant(op.amount, op.category, op.priority, op.expiresAt);
    case "void":
      return model.void(op.grant);
    case "spend":
      return model.spend(op.amount);
    case "batch":
      return model.batch(op.amounts, op.mode);
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

/** Refused by the route before the ledger sees it: an extend with nothing to extend. */
const refusedByRoute = (r: Request): boolean =>
  r.op.op === "extend" && r.op.amount === null && r.op.ttlSeconds === null;

function predict(model: ReferenceLedger, r: Request): Prediction {
  if (refusedByRoute(r)) return { replayed: false, outcome: { ok: false, status: 400, code: "invalid_request" } };
  return model.keyed(r.key, fingerprint(r), () => apply(model, r.op));
}

/** The same kind of request with another body (or, for a void, another route). */
function otherBody(world: World, r: Request): Request {
  const op = r.op;
  switch (op.op) {
    case "grant":
      return world.request({ ...op, amount: op.amount + 1 }, r.key);
    case "void":
      return world.request({ op: "spend", amount: 1 }, r.key);
    case "spend":
      return world.request({ ...op, amount: op.amount + 1 }, r.key);
    case "batch":
      return world.request({ ...op, amounts: [...op.amounts, 1] }, r.key);
    case "hold":
      return world.request({ ...op, amount: op.amount + 1 }, r.key);
    case "capture":
      return world.request({ ...op, amount: op.amount === null ? 1 : null }, r.key);
    case "release":
      return world.request({ ...op, reason: !op.reason }, r.key);
    case "extend":
      return world.request({ ...op, amount: (op.amount ?? 0) + 1 }, r.key);
  }
}

// ---- one run ------------------------------------------------------------------------------------

let totalSteps = 0;
/** How often each kind of outcome and entry came up, printed after the runs: what the runs reached. */
const stats = new Map<string, number>();
const count = (what: string): void => {
  stats.set(what, (stats.get(what) ?? 0) + 1);
};

async function shiftTime(teamId: string, minutes: number): Promise<void> {
  const ms = minutes * MINUTE_MS;
  await runInDurableObject(ledgerStub(teamId), (_instance: TeamLedger, state) => {
    state.storage.sql.exec("UPDATE grants SET expires_at = expires_at - ? WHERE expires_at IS NOT NULL", ms);
    state.storage.sql.exec("UPDATE holds SET expires_at = expires_at - ? WHERE status = 'pending'", ms);
  });
}

/** Turns a command into a request against the current state, or null for commands that are not one. */
function resolve(world: World, model: ReferenceLedger, cmd: Command): Request | null {
  const pickHold = (pick: number, anyHold: boolean): number | null => {
    const pending = model.holds.filter((h) => h.status === "pending");
    const pool = anyHold || pending.length === 0 ? model.holds : pending;
    const h = pool[pick % Math.max(pool.length, 1)];
    return h ? h.label : null;
  };
  switch (cmd.kind) {
    case "grant": {
      const expiresAt = cmd.expiresInMinutes === null ? null : model.now + cmd.expiresInMinutes;
      const expiresIso =
        cmd.expiresInMinutes === null
          ? null
          : new Date(Date.now() - EXPIRY_MARGIN_MS + cmd.expiresInMinutes * MINUTE_MS).toISOString();
      return world.request(
        { op: "grant", amount: cmd.amount, category: cmd.category, priority: cmd.priority, expiresAt, expiresIso },
        newKey(),
      );
    }
    case "spend":
      return world.request({ op: "spend", amount: cmd.amount }, newKey());
    case "batch":
      return world.request({ op: "batch", mode: cmd.mode, amounts: cmd.amounts }, newKey());
    case "hold":
      return world.request({ op: "hold", amount: cmd.amount, ttlSeconds: cmd.ttlSeconds }, newKey());
    case "capture": {
      const hold = pickHold(cmd.pick, cmd.anyHold);
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
      return world.request({ op: "release", hold: pickHold(cmd.pick, cmd.anyHold), reason: cmd.reason }, newKey());
    case "extend":
      return world.request(
        { op: "extend", hold: pickHold(cmd.pick, cmd.anyHold), amount: cmd.amount, ttlSeconds: cmd.ttlSeconds },
        newKey(),
      );
    case "void": {
      const g = model.grants[cmd.pick % Math.max(model.grants.length, 1)];
      return world.request({ op: "void", grant: g ? g.label : null }, newKey());
    }
    case "missing":
      return world.request(
        cmd.target === "hold" ? { op: "release", hold: null, reason: false } : { op: "void", grant: null },
        newKey(),
      );
    case "retry": {
      const r = world.requests[cmd.pick % Math.max(world.requests.length, 1)];
      return r ?? null;
    }
    case "reuse": {
      const r = world.requests[cmd.pick % Math.max(world.requests.length, 1)];
      return r ? otherBody(world, r) : null;
    }
    case "noop":
    case "jump":
    case "alarm":
    case "restart":
    case "d1":
      return null;
  }
}

async function send(world: World, model: ReferenceLedger, r: Request): Promise<string> {
  const entriesBefore = model.entries.length;
  const predicted = predict(model, r);
  const res = await api<Reply>(r.path, { method: "POST", body: r.body, idempotencyKey: r.key });
  const where = `${r.path} ${JSON.stringify(r.body ?? null)} key=${r.key}`;
  const replayedHeader = res.headers.get("idempotent-replayed");
  if (!world.requests.includes(r)) world.requests.push(r);

  if (predicted.replayed) {
    const original = world.originals.get(r.key);
    same(res.status, predicted.status, `replay of ${where}: status (${res.text})`);
    same(replayedHeader, "true", `replay of ${where}: Idempotent-Replayed`);
    same(res.text, original?.text, `replay of ${where}: the first response, byte for byte`);
    same(model.entries.length, entriesBefore, "a replay writes nothing");
    return `${res.status} replayed`;
  }

  const outcome = predicted.outcome;
  same(res.status, outcome.status, `${where}: status (${res.text})`);
  same(replayedHeader, null, `${where}: not a replay`);
  // What the ledger decided is saved under the key, refusals included; a 422 (the key was used
  // for another request) and the route's own 400 are not.
  if (outcome.status !== 422 && !refusedByRoute(r)) world.originals.set(r.key, { status: res.status, text: res.text });
  if (!outcome.ok) {
    same(res.body.code, outcome.code, `${where}: problem code`);
    if (outcome.status === 402) {
      same(res.body.required, outcome.required, `${where}: required`);
      same(res.body.available, outcome.available, `${where}: available`);
      if (outcome.failedIndex !== undefined) same(res.body.failedIndex, outcome.failedIndex, `${where}: failedIndex`);
    }
    return `${res.status} ${outcome.code}`;
  }

  switch (outcome.kind) {
    case "grant": {
      const id = res.body.grant?.id;
      same(outcome.grant, world.grantIds.length, "grant labels follow creation order");
      if (id === undefined) throw new Error(`${where}: no grant id in ${res.text}`);
      world.grantIds.push(id);
      break;
    }
    case "hold": {
      const hold = res.body.hold;
      if (hold === undefined) throw new Error(`${where}: no hold in ${res.text}`);
      if (r.op.op === "hold") {
        same(outcome.hold, world.holdIds.length, "hold labels follow creation order");
        world.holdIds.push(hold.id);
      }
      const h = model.holds[outcome.hold];
      same(
        { id: hold.id, amount: hold.amount, capturedAmount: hold.capturedAmount, status: hold.status },
        { id: world.holdIds[outcome.hold], amount: h?.amount, capturedAmount: h?.capturedAmount, status: h?.status },
        `${where}: hold`,
      );
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
      break;
    }
    case "spend":
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

async function step(world: World, model: ReferenceLedger, cmd: Command): Promise<string> {
  switch (cmd.kind) {
    case "jump":
      await shiftTime(world.teamId, cmd.minutes);
      model.advance(cmd.minutes);
      count("jump");
      return `t=${model.now}min`;
    case "restart":
      // A restart changes nothing the model knows; a D1 outage ends with it (a new instance).
      await abortAllDurableObjects();
      count("restart");
      return "object restarted";
    case "d1":
      if (cmd.up) await restoreD1(world.teamId);
      else await injectD1(world.teamId, (real) => d1With(real, () => Promise.reject(new Error("D1 down (model)"))));
      count(cmd.up ? "d1 up" : "d1 down");
      return cmd.up ? "D1 up" : "D1 down";
    case "alarm": {
      await reachRetryTime(world.teamId);
      const ran = await runDurableObjectAlarm(ledgerStub(world.teamId));
      model.settle();
      count(ran ? "alarm ran" : "alarm: none set");
      return ran ? "alarm ran" : "no alarm set";
    }
    default: {
      const r = resolve(world, model, cmd);
      if (!r) return "nothing to do";
      const outcome = await send(world, model, r);
      count(`${cmd.kind}${cmd.kind === r.op.op ? "" : ` (${r.op.op})`} → ${outcome}`);
      return `${JSON.stringify(r.op)} → ${outcome}`;
    }
  }
}

async function checkBalance(world: World, model: ReferenceLedger, what: string): Promise<void> {
  const res = await api<WireBalance>(`/v1/teams/${world.teamId}/balance`);
  same(res.status, 200, `${what}: GET balance (${res.text})`);
  // Reading settles what is due; so does the reference.
  model.settle();
  expectBalance(world, model, res.body, `${what}: GET balance`);
  // The history adds up line by line (test/support/history-lines.ts), read inside the object.
  same(await historyProblems(world.teamId), [], `${what}: the history adds up`);
}

async function finalChecks(world: World, model: ReferenceLedger): Promise<void> {
  const team = world.teamId;
  // Whatever D1 went through, every entry reaches it exactly once.
  await restoreD1(team);
  await drainOutbox(team);
  await expectD1MatchesObject(team);
  await expectTablesMatch(world, team, model);
  await assertInvariants(team);
}

async function runSequence(commands: Command[]): Promise<void> {
  const world = new World(newTeamId("model"));
  const model = new ReferenceLedger();
  const created = await api(`/v1/teams/${world.teamId}`, { method: "PUT", body: {} });
  if (created.status !== 201) throw new Error(`PUT team: ${created.status} ${created.text}`);
  let at = "setup";
  try {
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
    for (const e of model.entries)
      count(
        `entry ${e.type}/${e.direction}${e.hold === null ? "" : " of a hold"}${e.block === null ? "" : " (in a block)"}`,
      );
  } catch (err) {
    const message = err instanceof Error ? err.message : String(err);
    throw new Error(
      `${at} failed (team ${world.teamId}, t=${model.now}min):\n${message}\n--- last steps ---\n${world.trace.slice(-15).join("\n")}`,
    );
  }
}

// ---- the property -------------------------------------------------------------------------------

describe("ledger model", () => {
  it(
    "the team object behaves like the reference ledger",
    async () => {
      const replaying = REPLAY_SEED !== undefined;
      const params: fc.Parameters<[Command[]]> = replaying
        ? {
            seed: Number(REPLAY_SEED),
            numRuns: NUM_RUNS,
            ...(REPLAY_PATH ? { path: REPLAY_PATH, endOnFailure: true } : {}),
          }
        : { numRuns: NUM_RUNS };
      const details = await fc.check(fc.asyncProperty(sequenceArb, runSequence), params);
      if (details.failed) {
        const shrunk = (details.counterexample?.[0] ?? [])
          .map((cmd, i) => ({ i, cmd }))
          .filter(({ cmd }) => cmd.kind !== "noop")
          .map(({ i, cmd }) => `  #${i} ${JSON.stringify(cmd)}`)
          .join("\n");
        const error =
          details.errorInstance instanceof Error ? details.errorInstance.message : String(details.errorInstance);
        throw new Error(
          [
            `model test failed after ${details.numRuns} run(s), shrunk ${details.numShrinks} time(s)`,
            `seed: ${details.seed}  path: ${details.counterexamplePath ?? ""}`,
            `replay: VITE_MODEL_SEED=${details.seed} VITE_MODEL_PATH=${details.counterexamplePath ?? ""} npx vitest run test/model`,
            "shrunk commands (no-ops left out):",
            shrunk,
            "error:",
            error,
          ].join("\n"),
        );
      }
      const seen = [...stats].sort(([a], [b]) => (a < b ? -1 : 1)).map(([k, n]) => `  ${k}: ${n}`);
      console.log(
        `ledger model: ${details.numRuns} runs, ${totalSteps} steps (seed ${details.seed})\n${seen.join("\n")}`,
      );
      if (!replaying && NUM_RUNS >= 100) expect(totalSteps).toBeGreaterThanOrEqual(MIN_TOTAL_STEPS);
    },
    15 * 60_000,
  );
});
