/**
 * Model-based test of agency pools and caps (domain/pools.ts): random sequences run against one
 * agency and three subaccounts through the worker's HTTP API, and against the reference
 * (reference-pools.ts: one reference ledger per balance, the pool rules written again) side by
 * side. The black-box tests (test/routes/agency-*.test.ts) show each rule once; this one mixes
 * them, so that the switch moving, caps set and removed, holds resolved where they were made and
 * retries of earlier keys meet in orders nobody wrote down.
 *
 * Each run: fresh ids, two or three actors (owner, author, manager, viewer), sharing on or off at
 * first. Commands: paid grants (no expiry) to the agency or a subaccount; spends, batches (both
 * modes) and holds on either, with or without actor headers; captures (part or whole), releases
 * and extends (more credits and/or a new deadline) of any hold, now and then through the wrong
 * subaccount; the switch turned on or off (by an owner, a role that may not, or the key alone);
 * subaccount caps and member caps set and removed; retries of earlier requests with their
 * Idempotency-Key (the first answer byte for byte, wherever the switch and the caps are now);
 * restarts of every object.
 *
 * After every step: the status and, for refusals, the code and its facts (402 required/available,
 * 402 cap_exceeded cap/used/held/remaining, 403 reason); for successes the entries written, the
 * hold, the batch's results and the balance it shows (the pool's or the subaccount's own, with
 * poolTeamId saying which). Then the agency's balance, and each subaccount's as the API shows it
 * (the pool with its cap while shared, its own otherwise) and its own credits read from its
 * object while shared. At the end, sharing off: each object's entries, holds, grants and stored
 * keys against its reference ledger, the cap counters, and assertInvariants on all four.
 *
 *   VITE_POOLS_SEED=<seed> VITE_POOLS_PATH=<path> npx vitest run --project workers test/model/pools.model.test.ts
 */
import { abortAllDurableObjects, createExecutionContext } from "cloudflare:test";
import { env } from "cloudflare:workers";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import worker from "../../src/index";
import { ADMIN_KEY, assertInvariants, type CallResult, newKey, newTeamId, objectRows, readResponse } from "../support";
import { envString } from "../support/vite-env";
import {
  alignEntries,
  api,
  expectBalance,
  expectTablesMatch,
  Labels,
  same,
  type WireBalance,
  type WireEntry,
  wireEntry,
} from "./model-kit";
import type { BatchMode } from "./reference-ledger";
import {
  type Action,
  type CapFacts,
  type LedgerId,
  type PoolBatchResult,
  PoolsReference,
  type Prediction,
  type RefActor,
  type Role,
  type TeamRef,
} from "./reference-pools";

// ---- configuration ------------------------------------------------------------------------------

const SEED = Number(envString("VITE_POOLS_SEED") ?? 20_261_202);
const REPLAY_PATH = envString("VITE_POOLS_PATH");
const NUM_RUNS = Number(envString("VITE_POOLS_RUNS") ?? 16);
const MIN_COMMANDS = 40;
const MAX_COMMANDS = 50;
/** Every shrink attempt is a run on four new objects: a failure costs at most this many more runs. */
const MAX_SHRINKS = 25;
const SUBS = 3;
const ACTOR_IDS = ["ana", "bo", "cy"] as const;
/** Long enough that no hold reaches its deadline in a run. */
const TTL_SECONDS = 3600;

// ---- commands -----------------------------------------------------------------------------------

type Command =
  | { kind: "noop" }
  | { kind: "grant"; team: TeamRef; amount: number }
  | { kind: "spend"; team: TeamRef; amount: number; actor: number | null }
  | { kind: "batch"; team: TeamRef; mode: BatchMode; amounts: number[]; actor: number | null }
  | { kind: "hold"; team: TeamRef; amount: number; actor: number | null }
  | {
      kind: "capture";
      pick: number;
      anyHold: boolean;
      permille: number | null;
      actor: number | null;
      wrongTeam: boolean;
    }
  | { kind: "release"; pick: number; anyHold: boolean; actor: number | null; wrongTeam: boolean }
  | {
      kind: "extend";
      pick: number;
      anyHold: boolean;
      amount: number | null;
      ttl: boolean;
      actor: number | null;
      wrongTeam: boolean;
    }
  | { kind: "share"; on: boolean; actor: number | null }
  | { kind: "subCap"; sub: number; cap: number | null }
  | { kind: "memberCap"; actor: number; cap: number | null }
  | { kind: "retry"; pick: number }
  | { kind: "restart" };

const teamArb: fc.Arbitrary<TeamRef> = fc.oneof(
  { weight: 2, arbitrary: fc.constant<TeamRef>("agency") },
  { weight: 5, arbitrary: fc.integer({ min: 0, max: SUBS - 1 }) },
);
/** An actor of the run (its index), or none: the key alone decides. */
const actorArb = fc.option(fc.integer({ min: 0, max: 2 }), { freq: 3 });
const rarely = fc.integer({ min: 0, max: 4 }).map((n) => n === 0);
const capArb = fc.option(fc.integer({ min: 0, max: 90 }), { freq: 4 });

const commandArb: fc.Arbitrary<Command> = fc.oneof(
  { withCrossShrink: true },
  { weight: 1, arbitrary: fc.constant<Command>({ kind: "noop" }) },
  {
    weight: 6,
    arbitrary: fc.record({
      kind: fc.constant("grant" as const),
      // The pool is the balance most requests draw from: it gets as many grants as the three own ones.
      team: fc.oneof(fc.constant<TeamRef>("agency"), fc.integer({ min: 0, max: SUBS - 1 })),
      amount: fc.integer({ min: 10, max: 120 }),
    }),
  },
  {
    weight: 10,
    arbitrary: fc.record({
      kind: fc.constant("spend" as const),
      team: teamArb,
      amount: fc.integer({ min: 1, max: 40 }),
      actor: actorArb,
    }),
  },
  {
    weight: 4,
    arbitrary: fc.record({
      kind: fc.constant("batch" as const),
      team: teamArb,
      mode: fc.constantFrom<BatchMode>("all_or_nothing", "until_insufficient"),
      amounts: fc.array(fc.integer({ min: 1, max: 20 }), { minLength: 1, maxLength: 4 }),
      actor: actorArb,
    }),
  },
  {
    weight: 8,
    arbitrary: fc.record({
      kind: fc.constant("hold" as const),
      team: teamArb,
      amount: fc.integer({ min: 1, max: 40 }),
      actor: actorArb,
    }),
  },
  {
    weight: 6,
    arbitrary: fc.record({
      kind: fc.constant("capture" as const),
      pick: fc.nat({ max: 1000 }),
      anyHold: rarely,
      permille: fc.option(fc.integer({ min: 1, max: 1000 })),
      actor: actorArb,
      wrongTeam: rarely,
    }),
  },
  {
    weight: 4,
    arbitrary: fc.record({
      kind: fc.constant("release" as const),
      pick: fc.nat({ max: 1000 }),
      anyHold: rarely,
      actor: actorArb,
      wrongTeam: rarely,
    }),
  },
  {
    weight: 4,
    arbitrary: fc
      .record({
        kind: fc.constant("extend" as const),
        pick: fc.nat({ max: 1000 }),
        anyHold: rarely,
        amount: fc.integer({ min: 1, max: 20 }),
        change: fc.constantFrom("amount", "ttl", "both"),
        actor: actorArb,
        wrongTeam: rarely,
      })
      .map(
        ({ change, amount, ...rest }): Command => ({
          ...rest,
          amount: change === "ttl" ? null : amount,
          ttl: change !== "amount",
        }),
      ),
  },
  {
    weight: 5,
    arbitrary: fc.record({
      kind: fc.constant("share" as const),
      on: fc.boolean(),
      actor: fc.option(fc.integer({ min: 0, max: 2 }), { freq: 2 }),
    }),
  },
  {
    weight: 3,
    arbitrary: fc.record({
      kind: fc.constant("subCap" as const),
      sub: fc.integer({ min: 0, max: SUBS - 1 }),
      cap: capArb,
    }),
  },
  {
    weight: 3,
    arbitrary: fc.record({
      kind: fc.constant("memberCap" as const),
      actor: fc.integer({ min: 0, max: 2 }),
      cap: capArb,
    }),
  },
  { weight: 5, arbitrary: fc.record({ kind: fc.constant("retry" as const), pick: fc.nat({ max: 1000 }) }) },
  { weight: 1, arbitrary: fc.constant<Command>({ kind: "restart" }) },
);

interface RunConfig {
  roles: Role[];
  sharing: boolean;
  /** Credits granted before the first command: the pool's, then each subaccount's own. */
  opening: [number, number[]];
}
const configArb: fc.Arbitrary<RunConfig> = fc.record({
  // Viewers are refused everything: one in six actors is enough to see it.
  roles: fc.array(fc.constantFrom<Role>("owner", "owner", "author", "author", "manager", "manager", "viewer"), {
    minLength: 2,
    maxLength: 3,
  }),
  sharing: fc.boolean(),
  opening: fc.tuple(
    fc.integer({ min: 100, max: 300 }),
    fc.array(fc.integer({ min: 0, max: 80 }), { minLength: SUBS, maxLength: SUBS }),
  ),
});
const runArb = fc.limitShrink(
  fc.tuple(configArb, fc.array(commandArb, { minLength: MIN_COMMANDS, maxLength: MAX_COMMANDS })),
  MAX_SHRINKS,
);

// ---- calling the API ------------------------------------------------------------------------------

/** model-kit's `api` with actor headers: the worker's own fetch handler, the admin key. */
async function send<T>(
  path: string,
  opts: { method?: string; body?: unknown; key?: string; actor?: RefActor | null },
): Promise<CallResult<T>> {
  const headers: Record<string, string> = { authorization: `Bearer ${ADMIN_KEY}` };
  const body = opts.body === undefined ? undefined : JSON.stringify(opts.body);
  if (body !== undefined) headers["content-type"] = "application/json";
  if (opts.key) headers["idempotency-key"] = opts.key;
  if (opts.actor) {
    headers["x-actor-id"] = opts.actor.id;
    headers["x-actor-role"] = opts.actor.role;
  }
  const request = new Request(`https://ledger.test${path}`, {
    method: opts.method ?? (body === undefined ? "GET" : "POST"),
    headers,
    body,
  });
  return readResponse<T>(await worker.fetch(request, env, createExecutionContext()));
}

// ---- the wire -----------------------------------------------------------------------------------

interface PoolBalance extends WireBalance {
  teamId: string;
  poolTeamId: string;
  caps?: { scope: string; subject: string; creditsPerPeriod: number; used: number; held: number; remaining: number }[];
}
type WireResult =
  | { index: number; status: "spent"; spend: { amount: number } }
  | { index: number; status: "insufficient"; required: number; available: number }
  | { index: number; status: "skipped" }
  | {
      index: number;
      status: "cap_exceeded";
      required: number;
      scope: string;
      subject: string;
      cap: number;
      remaining: number;
    };
interface Reply {
  code?: string;
  reason?: string;
  required?: number;
  available?: number;
  failedIndex?: number;
  scope?: string;
  subject?: string;
  cap?: number;
  used?: number;
  held?: number;
  remaining?: number;
  balance?: PoolBalance;
  entries?: WireEntry[];
  grant?: { id: string };
  hold?: { id: string; amount: number; capturedAmount: number; status: string };
  results?: WireResult[];
}

/** A keyed request of the run: what to send again on a retry. */
interface Req {
  team: TeamRef;
  key: string;
  path: string;
  body: Record<string, unknown>;
  actor: RefActor | null;
  action: Action | { op: "grant"; amount: number };
}

class World {
  readonly labels: Record<string, Labels>;
  readonly requests: Req[] = [];
  readonly originals = new Map<string, { status: number; text: string }>();
  readonly trace: string[] = [];

  constructor(
    readonly agencyId: string,
    readonly subIds: string[],
    readonly actors: RefActor[],
  ) {
    this.labels = { agency: new Labels() };
    for (let i = 0; i < subIds.length; i++) this.labels[String(i)] = new Labels();
  }

  labelsOf(ledger: LedgerId): Labels {
    const l = this.labels[String(ledger)];
    if (!l) throw new Error(`no labels for ${ledger}`);
    return l;
  }

  teamId(team: TeamRef): string {
    return team === "agency" ? this.agencyId : (this.subIds[team] ?? "");
  }

  actor(index: number | null): RefActor | null {
    return index === null ? null : (this.actors[index % this.actors.length] ?? null);
  }
}

const capFacts = (c: CapFacts) => ({
  scope: c.scope,
  subject: c.subject,
  creditsPerPeriod: c.cap,
  used: c.used,
  held: c.held,
  remaining: c.remaining,
});

// ---- one step -------------------------------------------------------------------------------------

const stats = new Map<string, number>();
const count = (what: string): void => {
  stats.set(what, (stats.get(what) ?? 0) + 1);
};
let totalSteps = 0;

/** A hold action's target: a pending hold mostly, any hold now and then; through its team or another subaccount. */
function holdTarget(
  world: World,
  model: PoolsReference,
  pick: number,
  anyHold: boolean,
  wrongTeam: boolean,
): { hold: number; team: TeamRef } | null {
  const all = model.holds.map((h, i) => ({ h, i }));
  const pending = all.filter(({ h }) => model.ledger(h.ledger).holds[h.label]?.status === "pending");
  const from = anyHold || pending.length === 0 ? all : pending;
  const chosen = from[pick % Math.max(from.length, 1)];
  if (!chosen) return null;
  const team: TeamRef = wrongTeam
    ? chosen.h.team === "agency"
      ? 0
      : (chosen.h.team + 1) % world.subIds.length
    : chosen.h.team;
  return { hold: chosen.i, team };
}

function holdPath(world: World, model: PoolsReference, team: TeamRef, hold: number, verb: string): string {
  const h = model.holds[hold];
  const id = h ? world.labelsOf(h.ledger).holdIds[h.label] : undefined;
  return `/v1/teams/${world.teamId(team)}/holds/${id ?? "hld_none"}/${verb}`;
}

function resolve(world: World, model: PoolsReference, cmd: Command): Req | null {
  const base = (team: TeamRef) => `/v1/teams/${world.teamId(team)}`;
  switch (cmd.kind) {
    case "grant":
      return {
        team: cmd.team,
        key: newKey(),
        path: `${base(cmd.team)}/grants`,
        body: { amount: cmd.amount, category: "paid", source: "purchase" },
        actor: null,
        action: { op: "grant", amount: cmd.amount },
      };
    case "spend":
      return {
        team: cmd.team,
        key: newKey(),
        path: `${base(cmd.team)}/spends`,
        body: { feature: "model", amount: cmd.amount },
        actor: world.actor(cmd.actor),
        action: { op: "spend", amount: cmd.amount },
      };
    case "batch":
      return {
        team: cmd.team,
        key: newKey(),
        path: `${base(cmd.team)}/spends/batch`,
        body: { mode: cmd.mode, items: cmd.amounts.map((amount) => ({ feature: "model", amount })) },
        actor: world.actor(cmd.actor),
        action: { op: "batch", mode: cmd.mode, amounts: cmd.amounts },
      };
    case "hold":
      return {
        team: cmd.team,
        key: newKey(),
        path: `${base(cmd.team)}/holds`,
        body: { feature: "model", amount: cmd.amount, ttlSeconds: TTL_SECONDS },
        actor: world.actor(cmd.actor),
        action: { op: "hold", amount: cmd.amount, ttlMinutes: TTL_SECONDS / 60 },
      };
    case "capture": {
      const t = holdTarget(world, model, cmd.pick, cmd.anyHold, cmd.wrongTeam);
      if (!t) return null;
      const h = model.holds[t.hold];
      const held = h ? (model.ledger(h.ledger).holds[h.label]?.amount ?? 1) : 1;
      const amount = cmd.permille === null ? null : Math.max(1, Math.floor((held * cmd.permille) / 1000));
      return {
        team: t.team,
        key: newKey(),
        path: holdPath(world, model, t.team, t.hold, "capture"),
        body: amount === null ? {} : { amount },
        actor: world.actor(cmd.actor),
        action: { op: "capture", hold: t.hold, amount },
      };
    }
    case "release": {
      const t = holdTarget(world, model, cmd.pick, cmd.anyHold, cmd.wrongTeam);
      if (!t) return null;
      return {
        team: t.team,
        key: newKey(),
        path: holdPath(world, model, t.team, t.hold, "release"),
        body: {},
        actor: world.actor(cmd.actor),
        action: { op: "release", hold: t.hold },
      };
    }
    case "extend": {
      const t = holdTarget(world, model, cmd.pick, cmd.anyHold, cmd.wrongTeam);
      if (!t) return null;
      const body: Record<string, unknown> = {};
      if (cmd.amount !== null) body.amount = cmd.amount;
      if (cmd.ttl) body.ttlSeconds = TTL_SECONDS;
      return {
        team: t.team,
        key: newKey(),
        path: holdPath(world, model, t.team, t.hold, "extend"),
        body,
        actor: world.actor(cmd.actor),
        action: { op: "extend", hold: t.hold, amount: cmd.amount, ttlMinutes: cmd.ttl ? TTL_SECONDS / 60 : null },
      };
    }
    case "retry":
      return world.requests[cmd.pick % Math.max(world.requests.length, 1)] ?? null;
    default:
      return null;
  }
}

const fingerprint = (r: Req): string => `POST ${r.path}\n${JSON.stringify(r.body)}`;

function predict(model: PoolsReference, r: Req): Prediction {
  if (r.action.op === "grant") return model.grant(r.team, r.key, fingerprint(r), r.action.amount);
  return model.request(r.team, r.key, fingerprint(r), r.actor, r.action);
}

function wireResults(results: WireResult[] | undefined): PoolBatchResult[] {
  return (results ?? []).map((x): PoolBatchResult => {
    switch (x.status) {
      case "spent":
        return { status: "spent", amount: x.spend.amount };
      case "insufficient":
        return { status: "insufficient", required: x.required, available: x.available };
      case "skipped":
        return { status: "skipped" };
      default:
        return {
          status: "cap_exceeded",
          required: x.required,
          scope: x.scope as CapFacts["scope"],
          subject: x.subject,
          cap: x.cap,
          remaining: x.remaining,
        };
    }
  });
}

async function sendKeyed(world: World, model: PoolsReference, r: Req): Promise<string> {
  const before = new Map<LedgerId, number>([["agency", model.pool.entries.length]]);
  model.own.forEach((l, i) => {
    before.set(i, l.entries.length);
  });
  const predicted = predict(model, r);
  const res = await send<Reply>(r.path, { body: r.body, key: r.key, actor: r.actor });
  const where = `${r.path} ${JSON.stringify(r.body)}${r.actor ? ` as ${r.actor.id}/${r.actor.role}` : ""} key=${r.key}`;
  const replayedHeader = res.headers.get("idempotent-replayed");
  if (!world.requests.includes(r)) world.requests.push(r);

  if (predicted.replayed) {
    const original = world.originals.get(r.key);
    same(res.status, original?.status, `replay of ${where}: status (${res.text})`);
    same(replayedHeader, "true", `replay of ${where}: Idempotent-Replayed`);
    same(res.text, original?.text, `replay of ${where}: the first response, byte for byte`);
    return `${res.status} replayed`;
  }
  const outcome = predicted.outcome;
  const ledger = predicted.ledger;
  const where2 = `${where} (model: ${ledger === "agency" ? "the pool" : `sub ${ledger}'s own`})`;
  same(res.status, outcome.status, `${where2}: status (${res.text})`);
  same(replayedHeader, null, `${where2}: not a replay`);
  world.originals.set(r.key, { status: res.status, text: res.text });
  if (!outcome.ok) {
    same(res.body.code, outcome.code, `${where2}: problem code`);
    if (outcome.code === "forbidden") same(res.body.reason, outcome.reason, `${where2}: reason`);
    if (outcome.code === "insufficient_credits") {
      same(res.body.required, outcome.required, `${where2}: required`);
      same(res.body.available, outcome.available, `${where2}: available`);
      if (outcome.failedIndex !== undefined) same(res.body.failedIndex, outcome.failedIndex, `${where2}: failedIndex`);
    }
    if (outcome.code === "cap_exceeded") {
      const b = res.body;
      same(
        {
          scope: b.scope,
          subject: b.subject,
          cap: b.cap,
          used: b.used,
          held: b.held,
          remaining: b.remaining,
          required: b.required,
        },
        {
          scope: outcome.scope,
          subject: outcome.subject,
          cap: outcome.cap,
          used: outcome.used,
          held: outcome.held,
          remaining: outcome.remaining,
          required: outcome.required,
        },
        `${where2}: cap_exceeded facts`,
      );
    }
    return `${res.status} ${outcome.code}${"reason" in outcome ? ` ${outcome.reason}` : ""}`;
  }

  const labels = world.labelsOf(ledger);
  const refLedger = model.ledger(ledger);
  switch (outcome.kind) {
    case "grant": {
      const id = res.body.grant?.id;
      same(outcome.grant, labels.grantIds.length, "grant labels follow creation order");
      if (id === undefined) throw new Error(`${where2}: no grant id in ${res.text}`);
      labels.grantIds.push(id);
      break;
    }
    case "hold": {
      const hold = res.body.hold;
      if (hold === undefined) throw new Error(`${where2}: no hold in ${res.text}`);
      if (r.action.op === "hold") {
        same(outcome.hold, labels.holdIds.length, "hold labels follow creation order");
        labels.holdIds.push(hold.id);
      }
      const h = refLedger.holds[outcome.hold];
      same(
        { id: hold.id, amount: hold.amount, capturedAmount: hold.capturedAmount, status: hold.status },
        { id: labels.holdIds[outcome.hold], amount: h?.amount, capturedAmount: h?.capturedAmount, status: h?.status },
        `${where2}: hold`,
      );
      break;
    }
    case "batch":
      same(wireResults(res.body.results), outcome.results, `${where2}: batch results`);
      break;
    default:
      break;
  }
  if (outcome.kind !== "batch") {
    const aligned = alignEntries(
      (res.body.entries ?? []).map((e) => wireEntry(labels, e)),
      refLedger.entries.slice(before.get(ledger) ?? 0),
    );
    same(aligned.real, aligned.expected, `${where2}: entries written`);
  }
  // Which balance answered: the pool's (poolTeamId the agency) or the subaccount's own.
  same(
    res.body.balance && { teamId: res.body.balance.teamId, poolTeamId: res.body.balance.poolTeamId },
    { teamId: world.teamId(r.team), poolTeamId: world.teamId(ledger) },
    `${where2}: whose balance`,
  );
  expectBalance(labels, refLedger, res.body.balance, `${where2}: reply`);
  return `${res.status}${ledger === "agency" && r.team !== "agency" ? " pooled" : ""}`;
}

async function step(world: World, model: PoolsReference, cmd: Command): Promise<string> {
  switch (cmd.kind) {
    case "restart":
      await abortAllDurableObjects();
      count("restart");
      return "objects restarted";
    case "share": {
      const actor = world.actor(cmd.actor);
      const res = await send(`/v1/teams/${world.agencyId}`, {
        method: "PUT",
        body: { settings: { shareCreditsWithSubaccounts: cmd.on } },
        actor,
      });
      // Only an owner (or admin) or the key alone turns the switch (403 role before any change).
      const allowed = actor === null || actor.role === "owner";
      same(res.status, allowed ? 200 : 403, `sharing ${cmd.on} as ${actor?.role ?? "key"} (${res.text})`);
      if (allowed) model.sharing = cmd.on;
      count(`share ${cmd.on ? "on" : "off"} → ${res.status}`);
      return `sharing ${cmd.on ? "on" : "off"} → ${res.status}`;
    }
    case "subCap": {
      const res = await api(`/v1/teams/${world.subIds[cmd.sub]}`, {
        method: "PUT",
        body: { settings: { capCreditsPerPeriod: cmd.cap } },
      });
      same(res.status, 200, `sub ${cmd.sub} cap ${cmd.cap} (${res.text})`);
      model.subCaps[cmd.sub] = cmd.cap;
      count(`sub cap ${cmd.cap === null ? "removed" : "set"}`);
      return `sub ${cmd.sub} cap ${cmd.cap}`;
    }
    case "memberCap": {
      const actor = world.actor(cmd.actor);
      if (!actor) return "no actor";
      const res = await api<{ cap: Record<string, unknown> | null }>(
        `/v1/teams/${world.agencyId}/member-caps/${actor.id}`,
        { method: "PUT", body: { creditsPerPeriod: cmd.cap } },
      );
      same(res.status, 200, `member cap ${actor.id} ${cmd.cap} (${res.text})`);
      if (cmd.cap === null) model.memberCaps.delete(actor.id);
      else model.memberCaps.set(actor.id, cmd.cap);
      const view = res.body.cap;
      same(
        view && {
          scope: view.scope,
          subject: view.subject,
          creditsPerPeriod: view.creditsPerPeriod,
          used: view.used,
          held: view.held,
          remaining: view.remaining,
        },
        model.caps(null, actor.id).map(capFacts)[0] ?? null,
        `member cap ${actor.id}: the cap as it stands`,
      );
      count(`member cap ${cmd.cap === null ? "removed" : "set"}`);
      return `member ${actor.id} cap ${cmd.cap}`;
    }
    default: {
      const r = resolve(world, model, cmd);
      if (!r) return "nothing to do";
      const outcome = await sendKeyed(world, model, r);
      const on = r.team === "agency" ? "agency" : "sub";
      count(`${cmd.kind}${cmd.kind === r.action.op ? "" : ` (${r.action.op})`} on ${on} → ${outcome}`);
      return `${r.action.op} on ${r.team} ${JSON.stringify(r.body)} as ${r.actor?.role ?? "key"} → ${outcome}`;
    }
  }
}

/**
 * The balances after a step: the pool, and the subaccounts' `subs` (as shown, and their own while
 * shared). Every subaccount after a step that could move them all; the one a step used otherwise.
 */
async function checkBalances(world: World, model: PoolsReference, what: string, subs: number[]): Promise<void> {
  const pool = await send<PoolBalance>(`/v1/teams/${world.agencyId}/balance`, {});
  same(pool.status, 200, `${what}: GET agency balance`);
  expectBalance(world.labelsOf("agency"), model.pool, pool.body, `${what}: the pool`);
  for (const i of subs) {
    const subId = world.subIds[i] ?? "";
    const shown = await send<PoolBalance>(`/v1/teams/${subId}/balance`, {});
    same(shown.status, 200, `${what}: GET sub ${i} balance`);
    const ledger: LedgerId = model.sharing ? "agency" : i;
    same(
      { teamId: shown.body.teamId, poolTeamId: shown.body.poolTeamId },
      { teamId: subId, poolTeamId: world.teamId(ledger) },
      `${what}: sub ${i}'s balance is ${model.sharing ? "the pool's" : "its own"}`,
    );
    expectBalance(world.labelsOf(ledger), model.ledger(ledger), shown.body, `${what}: sub ${i} as shown`);
    if (model.sharing) {
      same(
        (shown.body.caps ?? []).map((c) => ({
          scope: c.scope,
          subject: c.subject,
          creditsPerPeriod: c.creditsPerPeriod,
          used: c.used,
          held: c.held,
          remaining: c.remaining,
        })),
        model.caps(i, null).map(capFacts),
        `${what}: sub ${i}'s caps`,
      );
      // Its own credits, unseen through the API while shared: read from its object.
      const [own] = await objectRows<{ available: number | null; held: number | null }>(
        subId,
        "SELECT SUM(CASE WHEN status = 'active' THEN remaining ELSE 0 END) AS available, SUM(held) AS held FROM grants",
      );
      const expected = model.ledger(i).balance();
      same(
        { available: own?.available ?? 0, held: own?.held ?? 0 },
        { available: expected.available, held: expected.held },
        `${what}: sub ${i}'s own credits`,
      );
    }
  }
}

async function finalChecks(world: World, model: PoolsReference): Promise<void> {
  // Sharing off, so that each subaccount's invariants are its own credits' (assertInvariants
  // follows a shared subaccount to the pool).
  const off = await api(`/v1/teams/${world.agencyId}`, {
    method: "PUT",
    body: { settings: { shareCreditsWithSubaccounts: false } },
  });
  same(off.status, 200, "sharing off at the end");
  model.sharing = false;
  await expectTablesMatch(world.labelsOf("agency"), world.agencyId, model.pool);
  for (const [i, subId] of world.subIds.entries()) await expectTablesMatch(world.labelsOf(i), subId, model.ledger(i));
  // The counters caps read: every pooled spend and capture, by subaccount and by actor.
  const usage = await objectRows<{ subject: string; spent: number }>(
    world.agencyId,
    "SELECT subject, spent_credits AS spent FROM cap_usage ORDER BY subject",
  );
  const expected = [
    ...world.subIds.flatMap((id, i) => {
      const n = model.subSpent[i] ?? 0;
      return n > 0 ? [{ subject: `subaccount:${id}`, spent: n }] : [];
    }),
    ...[...model.actorSpent].filter(([, n]) => n > 0).map(([a, n]) => ({ subject: `member:${a}`, spent: n })),
  ].sort((a, b) => (a.subject < b.subject ? -1 : a.subject > b.subject ? 1 : 0));
  same(
    usage.filter((u) => u.spent > 0),
    expected,
    "cap counters",
  );
  await assertInvariants(world.agencyId);
  for (const subId of world.subIds) await assertInvariants(subId);
}

/** Which subaccounts' balances a step is checked on: all now and then, else the one it used, if any. */
function touched(world: World, cmd: Command, i: number): number[] {
  const all = world.subIds.map((_, n) => n);
  if (i % 4 === 0 || cmd.kind === "share" || cmd.kind === "restart" || cmd.kind === "retry") return all;
  const last = world.requests.at(-1);
  const team =
    "team" in cmd ? cmd.team : cmd.kind === "subCap" ? cmd.sub : cmd.kind === "memberCap" ? null : last?.team;
  return typeof team === "number" ? [team] : [];
}

async function runSequence(config: RunConfig, commands: Command[]): Promise<void> {
  const agencyId = newTeamId("pool-agency");
  const subIds = Array.from({ length: SUBS }, () => newTeamId("pool-sub"));
  const actors = config.roles.map((role, i) => ({ id: ACTOR_IDS[i] ?? `actor${i}`, role }));
  const world = new World(agencyId, subIds, actors);
  const model = new PoolsReference(subIds, agencyId);
  const made = await api(`/v1/teams/${agencyId}`, {
    method: "PUT",
    body: { kind: "agency", settings: { shareCreditsWithSubaccounts: config.sharing } },
  });
  if (made.status !== 201) throw new Error(`PUT agency: ${made.status} ${made.text}`);
  model.sharing = config.sharing;
  for (const id of subIds) {
    const sub = await api(`/v1/teams/${id}`, { method: "PUT", body: { kind: "subaccount", parentTeamId: agencyId } });
    if (sub.status !== 201) throw new Error(`PUT subaccount: ${sub.status} ${sub.text}`);
  }
  let at = "setup";
  try {
    const [poolCredits, ownCredits] = config.opening;
    const opening: Command[] = [
      { kind: "grant", team: "agency", amount: poolCredits },
      ...ownCredits.flatMap((amount, team): Command[] => (amount > 0 ? [{ kind: "grant", team, amount }] : [])),
    ];
    for (const cmd of opening) world.trace.push(`opening: ${await step(world, model, cmd)}`);
    for (const [i, cmd] of commands.entries()) {
      if (cmd.kind === "noop") continue;
      at = `step ${i} ${JSON.stringify(cmd)}`;
      const summary = await step(world, model, cmd);
      world.trace.push(`#${i} ${cmd.kind}: ${summary}`);
      await checkBalances(world, model, at, touched(world, cmd, i));
      totalSteps += 1;
    }
    at = "final checks";
    await finalChecks(world, model);
  } catch (err) {
    const message = err instanceof Error ? err.message : String(err);
    throw new Error(
      `${at} failed (agency ${agencyId}, actors ${JSON.stringify(actors)}, sharing at first ${config.sharing}):\n${message}\n--- last steps ---\n${world.trace.slice(-15).join("\n")}`,
    );
  }
}

// ---- the property -------------------------------------------------------------------------------

describe("agency pools model", () => {
  it(
    "an agency and its subaccounts behave like the reference pool",
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
      if (details.failed) {
        const [config, commands] = details.counterexample?.[0] ?? [undefined, []];
        const shrunk = commands
          .map((cmd, i) => ({ i, cmd }))
          .filter(({ cmd }) => cmd.kind !== "noop")
          .map(({ i, cmd }) => `  #${i} ${JSON.stringify(cmd)}`)
          .join("\n");
        const error =
          details.errorInstance instanceof Error ? details.errorInstance.message : String(details.errorInstance);
        throw new Error(
          [
            `pools model failed after ${details.numRuns} run(s), shrunk ${details.numShrinks} time(s)`,
            `seed: ${details.seed}  path: ${details.counterexamplePath ?? ""}`,
            `replay: VITE_POOLS_SEED=${details.seed} VITE_POOLS_PATH=${details.counterexamplePath ?? ""} npx vitest run --project workers test/model/pools.model.test.ts`,
            `config: ${JSON.stringify(config)}`,
            "shrunk commands (no-ops left out):",
            shrunk,
            "error:",
            error,
          ].join("\n"),
        );
      }
      const seen = [...stats].sort(([a], [b]) => (a < b ? -1 : 1)).map(([k, n]) => `  ${k}: ${n}`);
      console.log(
        `pools model: ${details.numRuns} runs, ${totalSteps} steps (seed ${details.seed})\n${seen.join("\n")}`,
      );
      expect(totalSteps).toBeGreaterThan(0);
    },
    10 * 60_000,
  );
});
