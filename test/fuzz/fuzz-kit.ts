/**
 * The fuzz tests' machinery: the OpenAPI document as a list of routes, a pre-made team with
 * credits, holds and grants for valid-ish requests to reach, plans (plain data fast-check can
 * shrink and print) that become raw HTTP requests against the team's live state, the properties
 * every response must satisfy, and a snapshot of everything a request could write.
 *
 * Calls go through the worker's fetch handler, not SELF (see test/model/ledger.model.test.ts:
 * SELF.fetch in pool-workers 0.15.1 adds a Proxy per call and a file of thousands of calls slows
 * down and overflows the stack).
 *
 * Properties, for every request:
 * - never a 5xx;
 * - an X-Request-Id header;
 * - every 4xx is application/problem+json with a `code` from the closed set in src/http/problem.ts whose
 *   status is the response's, `status`, `type`, `title`, `detail`, and `requestId` equal to the
 *   header;
 * - a rejected request (any 4xx) writes nothing: the watched teams (the pre-made one and a team
 *   that does not exist) have the same team document, grants, holds, entries and idempotency
 *   records before and after. The only changes allowed are expirations that fell due meanwhile
 *   (the alarm, or a read settling them): a pending hold past its deadline turning `expired`, a
 *   grant past its expiry turning `expired`, and `expire`/`void` entries for them. A request
 *   refused for a team id no request created must not have created that team.
 */
import { createExecutionContext, runInDurableObject } from "cloudflare:test";
import { env } from "cloudflare:workers";
import fc from "fast-check";
import { expect } from "vitest";
import { ERROR_STATUS } from "../../src/http/problem";
import worker from "../../src/index";
import type { TeamLedger } from "../../src/object/team-ledger";
import { ADMIN_KEY, ledgerStub } from "../support";
import { envString } from "../support/vite-env";
import {
  fuzzArb,
  isoDateTimeArb,
  type JsonSchema,
  makeResolver,
  oddStringArb,
  type Resolver,
  validArb,
} from "./schema-arbitraries";

// ---- configuration ------------------------------------------------------------------------------

export const REPLAY_SEED = envString("VITE_FUZZ_SEED");
export const REPLAY_PATH = envString("VITE_FUZZ_PATH");
/** Multiplies every route's number of runs (VITE_FUZZ_SCALE=10 for a long local run). */
export const SCALE = Number(envString("VITE_FUZZ_SCALE") ?? 1);
/** Prints the most frequent problem details per route. */
export const VERBOSE = envString("VITE_FUZZ_VERBOSE") !== undefined;

const BASE = "https://ledger.test";

// ---- the routes, from the served document -------------------------------------------------------

export interface ParamSpec {
  name: string;
  in: "path" | "query" | "header";
  required: boolean;
  schema: JsonSchema;
}

export interface RouteSpec {
  method: string;
  /** The template, e.g. /v1/teams/{teamId}/holds/{holdId}/capture */
  path: string;
  params: ParamSpec[];
  body: { schema: JsonSchema; required: boolean } | null;
  /** Statuses the document lists for the route. */
  documented: string[];
  /** What a 2xx carries. */
  produces: "json" | "csv" | "html";
}

export interface Contract {
  routes: RouteSpec[];
  resolve: Resolver;
}

interface OpenApiOperation {
  parameters?: { name: string; in: "path" | "query" | "header"; required?: boolean; schema: JsonSchema }[];
  requestBody?: { required?: boolean; content?: Record<string, { schema: JsonSchema }> };
  responses?: Record<string, { content?: Record<string, unknown> }>;
}

interface OpenApiDocument {
  paths: Record<string, Record<string, OpenApiOperation>>;
  components?: { schemas?: Record<string, JsonSchema> };
}

/** Reads /openapi.json through the worker and turns it into route specs (plus /openapi.json and /docs). */
export async function loadContract(): Promise<Contract> {
  const res = await worker.fetch(new Request(`${BASE}/openapi.json`), env, createExecutionContext());
  expect(res.status).toBe(200);
  const doc = (await res.json()) as OpenApiDocument;
  const routes: RouteSpec[] = [];
  for (const [path, ops] of Object.entries(doc.paths)) {
    for (const [method, op] of Object.entries(ops)) {
      const json = op.requestBody?.content?.["application/json"];
      const ok = op.responses?.["200"] ?? op.responses?.["201"];
      const produces = ok?.content && "text/csv" in ok.content ? "csv" : "json";
      routes.push({
        method: method.toUpperCase(),
        path,
        params: (op.parameters ?? []).map((p) => ({
          name: p.name,
          in: p.in,
          required: p.required ?? false,
          schema: p.schema,
        })),
        body: json ? { schema: json.schema, required: op.requestBody?.required ?? false } : null,
        documented: Object.keys(op.responses ?? {}),
        produces,
      });
    }
  }
  routes.push({ method: "GET", path: "/openapi.json", params: [], body: null, documented: ["200"], produces: "json" });
  routes.push({ method: "GET", path: "/docs", params: [], body: null, documented: ["200"], produces: "html" });
  return { routes, resolve: makeResolver(doc.components?.schemas ?? {}) };
}

export const routeName = (r: RouteSpec): string => `${r.method} ${r.path}`;

/**
 * encodeURIComponent, except that a lone surrogate (which it refuses) is sent as the bytes a
 * WTF-8 client would put on the wire (U+D800 → %ED%A0%80): invalid UTF-8 for the server to decode.
 */
export function pct(text: string): string {
  let out = "";
  for (let i = 0; i < text.length; i++) {
    const unit = text.charCodeAt(i);
    const next = text.charCodeAt(i + 1);
    if (unit >= 0xd800 && unit <= 0xdbff && next >= 0xdc00 && next <= 0xdfff) {
      out += encodeURIComponent(text.slice(i, i + 2));
      i += 1;
    } else if (unit >= 0xd800 && unit <= 0xdfff) {
      out += [0xe0 | (unit >> 12), 0x80 | ((unit >> 6) & 0x3f), 0x80 | (unit & 0x3f)]
        .map((b) => `%${b.toString(16).toUpperCase()}`)
        .join("");
    } else {
      out += encodeURIComponent(text[i] ?? "");
    }
  }
  return out;
}

// ---- sending ------------------------------------------------------------------------------------

export interface Wire {
  method: string;
  /** Path and query, raw (the URL parser still normalises dot segments and backslashes). */
  target: string;
  headers: [string, string][];
  body:
    | { kind: "none" }
    | { kind: "text"; text: string }
    | { kind: "chunked"; text: string; chunk: number }
    | { kind: "bytes"; hex: string };
}

const hexToBytes = (hex: string) => new Uint8Array((hex.match(/../g) ?? []).map((b) => Number.parseInt(b, 16)));
const hexOf = (bytes: number[]) => bytes.map((b) => b.toString(16).padStart(2, "0")).join("");
const utf8 = (text: string) => [...new TextEncoder().encode(text)];
const utf16le = (text: string) => [...text].flatMap((c) => [c.charCodeAt(0) & 0xff, c.charCodeAt(0) >> 8]);

/** Bodies that are not valid UTF-8, or not UTF-8 at all. */
export const ODD_BYTE_BODIES: readonly string[] = [
  hexOf([...utf8('{"feature":"x","amount":1,"reference":"'), 0xc3, 0x28, ...utf8('"}')]),
  hexOf([...utf8('{"feature":"'), 0xc0, 0xaf, ...utf8('","amount":1}')]),
  hexOf([...utf8('{"feature":"x","amount":1,"reference":"'), 0xed, 0xa0, 0x80, ...utf8('"}')]),
  hexOf([...utf8('{"feature":"x","amount":1,"reference":"'), 0xf4, 0x90, 0x80, 0x80, ...utf8('"}')]),
  hexOf([0xff, 0xfe, ...utf16le('{"feature":"x","amount":1}')]),
  hexOf([0xef, 0xbb, 0xbf, ...utf8('{"feature":"x","amount":1,"ttlSeconds":60}')]),
  hexOf([0xff, 0xfe, 0xfd]),
  hexOf([0x00, 0x00, 0x00]),
  hexOf([0x1f, 0x8b, 0x08, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x03]),
  hexOf([...utf8('{"amount":1'), 0x00, ...utf8("}")]),
];

export interface Sent {
  status: number;
  headers: Headers;
  text: string;
  json: unknown;
}

/**
 * The Request for a wire description. Throws (in the test, before the worker sees anything) when
 * the runtime will not build such a request, e.g. a header value it refuses.
 */
export function buildRequest(w: Wire): Request {
  const headers = new Headers();
  for (const [k, v] of w.headers) headers.append(k, v);
  let body: BodyInit | undefined;
  if (w.body.kind === "text") body = w.body.text;
  else if (w.body.kind === "bytes") body = hexToBytes(w.body.hex);
  else if (w.body.kind === "chunked") {
    const bytes = new TextEncoder().encode(w.body.text);
    const size = Math.max(1, w.body.chunk);
    let at = 0;
    body = new ReadableStream<Uint8Array>({
      pull(controller) {
        if (at >= bytes.length) {
          controller.close();
          return;
        }
        controller.enqueue(bytes.slice(at, at + size));
        at += size;
      },
    });
  }
  return new Request(`${BASE}${w.target}`, { method: w.method, headers, body });
}

export async function send(w: Wire): Promise<Sent> {
  return sendRequest(buildRequest(w));
}

/** Through the worker's fetch handler; an exception here is the worker's, not the test's. */
export async function sendRequest(request: Request): Promise<Sent> {
  const res = await worker.fetch(request, env, createExecutionContext());
  const text = await res.text();
  let json: unknown = null;
  try {
    json = text ? JSON.parse(text) : null;
  } catch {
    json = null;
  }
  return { status: res.status, headers: res.headers, text, json };
}

/** A short printable form of a request, for failure messages. */
export function describeWire(w: Wire): string {
  const clip = (s: string, n: number) => (s.length > n ? `${s.slice(0, n)}…(${s.length} chars)` : s);
  const body =
    w.body.kind === "none"
      ? "(no body)"
      : w.body.kind === "bytes"
        ? `bytes ${w.body.hex}`
        : `${w.body.kind === "chunked" ? `chunked/${w.body.chunk} ` : ""}${clip(JSON.stringify(w.body.text), 600)}`;
  const headers = w.headers
    .filter(([k]) => k.toLowerCase() !== "authorization")
    .map(([k, v]) => `${k}: ${clip(JSON.stringify(v), 120)}`)
    .join("; ");
  const auth = w.headers.find(([k]) => k.toLowerCase() === "authorization")?.[1];
  return `${w.method} ${clip(w.target, 400)}\n  headers: ${headers}${auth === `Bearer ${ADMIN_KEY}` ? "" : `; authorization: ${JSON.stringify(auth ?? null)}`}\n  body: ${body}`;
}

// ---- the response properties ---------------------------------------------------------------------

const CODES = new Set<string>(Object.keys(ERROR_STATUS));

/** Every response: no 5xx, a request id; every 4xx a problem document from the closed set. */
export function checkResponse(res: Sent, what: string, method = "GET"): void {
  expect(res.status, `no 5xx on ${what}\n  response: ${res.text.slice(0, 500)}`).toBeLessThan(500);
  const requestId = res.headers.get("x-request-id");
  expect(requestId, `X-Request-Id on ${what}`).toBeTruthy();
  if (res.status < 400) return;
  const where = `${what}\n  response ${res.status}: ${res.text.slice(0, 400)}`;
  expect(res.headers.get("content-type") ?? "", `problem+json on ${where}`).toMatch(/^application\/problem\+json/);
  // A response to HEAD has no body to check.
  if (method.toUpperCase() === "HEAD") return;
  const body = res.json;
  expect(typeof body === "object" && body !== null && !Array.isArray(body), `a problem object on ${where}`).toBe(true);
  const p = body as Record<string, unknown>;
  expect(typeof p.code === "string" && CODES.has(p.code), `code in the closed set on ${where}`).toBe(true);
  expect(ERROR_STATUS[p.code as keyof typeof ERROR_STATUS], `the code's status on ${where}`).toBe(res.status);
  expect(p.status, `status member on ${where}`).toBe(res.status);
  expect(typeof p.type === "string" && typeof p.title === "string", `type and title on ${where}`).toBe(true);
  expect(typeof p.detail === "string" && p.detail.length > 0, `detail on ${where}`).toBe(true);
  expect(typeof p.requestId === "string" && p.requestId.length > 0, `requestId on ${where}`).toBe(true);
  // A replayed refusal names the request that got it first (also in Original-Request-Id).
  const replayed = res.headers.get("idempotent-replayed") === "true";
  const named = replayed ? res.headers.get("original-request-id") : requestId;
  expect(p.requestId, `requestId = ${replayed ? "Original-Request-Id" : "X-Request-Id"} on ${where}`).toBe(named);
}

/** A 2xx: the route's media type, and JSON that parses where JSON is promised. */
export function checkSuccess(route: RouteSpec, res: Sent, what: string, method = "GET"): void {
  if (res.status >= 300 || method.toUpperCase() === "HEAD") return;
  const type = res.headers.get("content-type") ?? "";
  const where = `${what}\n  response ${res.status}: ${res.text.slice(0, 300)}`;
  if (route.produces === "json") {
    expect(type, `JSON on ${where}`).toMatch(/^application\/json/);
    expect(res.json, `parseable JSON on ${where}`).not.toBeNull();
  } else if (route.produces === "csv") {
    expect(type, `CSV on ${where}`).toMatch(/^text\/csv/);
  } else {
    expect(type, `HTML on ${where}`).toMatch(/^text\/html/);
  }
}

// ---- snapshots ----------------------------------------------------------------------------------

type Row = Record<string, SqlStorageValue>;

export interface TeamSnapshot {
  teamId: string;
  takenAtMs: number;
  team: string | null;
  entryCount: number;
  lastSeq: number;
  holds: Row[];
  grants: Row[];
  /** Aggregates of the successes saved under idempotency keys (status 200/201). */
  idempotency: Row;
  /** Keys under which a refusal is saved (status 0), in key order. */
  refusalKeys: string[];
}

export function snapshotTeam(teamId: string): Promise<TeamSnapshot> {
  return runInDurableObject(ledgerStub(teamId), (_instance: TeamLedger, state) => {
    const sql = state.storage.sql;
    const team = sql.exec<{ value: string }>("SELECT value FROM meta WHERE key = 'team'").toArray()[0];
    const entries = sql
      .exec<{ n: number; last: number | null }>("SELECT COUNT(*) AS n, MAX(seq) AS last FROM entries")
      .toArray()[0];
    const idempotency = sql
      .exec(
        `SELECT COUNT(*) AS n, COALESCE(MAX(created_at), 0) AS newest, COALESCE(SUM(created_at), 0) AS times,
           COALESCE(SUM(length(key) + length(fingerprint) + length(body) + status), 0) AS sizes
         FROM idempotency WHERE status <> 0`,
      )
      .toArray()[0];
    const refusalKeys = sql
      .exec<{ key: string }>("SELECT key FROM idempotency WHERE status = 0 ORDER BY key")
      .toArray()
      .map((r) => r.key);
    return {
      teamId,
      takenAtMs: Date.now(),
      team: team?.value ?? null,
      entryCount: entries?.n ?? 0,
      lastSeq: entries?.last ?? 0,
      holds: sql
        .exec("SELECT id, amount, captured_amount, status, expires_at, resolved_at, reason FROM holds ORDER BY id")
        .toArray(),
      grants: sql
        .exec("SELECT id, amount, remaining, held, status, expires_at, priority FROM grants ORDER BY seq")
        .toArray(),
      idempotency: idempotency ?? {},
      refusalKeys,
    };
  });
}

/** Entries in (afterSeq, uptoSeq]: bounded above, since an alarm may add more after the snapshot. */
function newEntries(teamId: string, afterSeq: number, uptoSeq: number): Promise<Row[]> {
  return runInDurableObject(ledgerStub(teamId), (_instance: TeamLedger, state) =>
    state.storage.sql
      .exec(
        "SELECT seq, type, direction, amount_credits AS amount, hold_id, grant_id FROM entries WHERE seq > ? AND seq <= ? ORDER BY seq",
        afterSeq,
        uptoSeq,
      )
      .toArray(),
  );
}

const same = (a: unknown, b: unknown) => JSON.stringify(a) === JSON.stringify(b);

/**
 * Differences between two snapshots that expirations falling due do not explain; empty when the
 * request wrote nothing.
 */
/**
 * What a refused request wrote beyond what it may: nothing, but for the refusal saved under its
 * own key when the ledger decided it (`savedKey`: the request's key when its status is one the
 * ledger decides, else null).
 */
export async function unexplainedChanges(
  before: TeamSnapshot,
  after: TeamSnapshot,
  savedKey: string | null = null,
): Promise<string[]> {
  const problems: string[] = [];
  if (before.team !== after.team) problems.push(`team document changed: ${before.team} → ${after.team}`);
  if (!same(before.idempotency, after.idempotency))
    problems.push(
      `idempotency records changed: ${JSON.stringify(before.idempotency)} → ${JSON.stringify(after.idempotency)}`,
    );
  const known = new Set(before.refusalKeys);
  for (const k of before.refusalKeys)
    if (!after.refusalKeys.includes(k)) problems.push(`saved refusal under ${JSON.stringify(k)} disappeared`);
  for (const k of after.refusalKeys)
    if (!known.has(k) && k !== savedKey) problems.push(`a refusal was saved under ${JSON.stringify(k)}`);
  const entries = after.lastSeq === before.lastSeq ? [] : await newEntries(after.teamId, before.lastSeq, after.lastSeq);
  if (after.entryCount - before.entryCount !== entries.length)
    problems.push(`entries changed below seq ${before.lastSeq}: count ${before.entryCount} → ${after.entryCount}`);
  const settledGrants = new Set<string>();
  for (const e of entries) {
    const housekeeping = e.type === "expire" || (e.type === "void" && e.hold_id !== null);
    if (!housekeeping) problems.push(`new entry ${JSON.stringify(e)}`);
    if (typeof e.grant_id === "string") settledGrants.add(e.grant_id);
  }
  const due = (row: Row | undefined) =>
    row !== undefined && typeof row.expires_at === "number" && row.expires_at <= after.takenAtMs;
  const holdsBefore = new Map(before.holds.map((h) => [h.id, h]));
  for (const h of after.holds) {
    const b = holdsBefore.get(h.id);
    holdsBefore.delete(h.id);
    if (!b) {
      problems.push(`new hold ${JSON.stringify(h)}`);
      continue;
    }
    if (same(b, h)) continue;
    const expired = b.status === "pending" && h.status === "expired" && due(b) && b.amount === h.amount;
    if (!expired) problems.push(`hold changed: ${JSON.stringify(b)} → ${JSON.stringify(h)}`);
  }
  for (const h of holdsBefore.values()) problems.push(`hold disappeared ${JSON.stringify(h)}`);
  const grantsBefore = new Map(before.grants.map((g) => [g.id, g]));
  for (const g of after.grants) {
    const b = grantsBefore.get(g.id);
    grantsBefore.delete(g.id);
    if (!b) {
      problems.push(`new grant ${JSON.stringify(g)}`);
      continue;
    }
    if (same(b, g)) continue;
    const settled =
      (settledGrants.has(String(g.id)) || (g.status === "expired" && due(b))) &&
      b.amount === g.amount &&
      b.expires_at === g.expires_at &&
      b.priority === g.priority;
    if (!settled) problems.push(`grant changed: ${JSON.stringify(b)} → ${JSON.stringify(g)}`);
  }
  for (const g of grantsBefore.values()) problems.push(`grant disappeared ${JSON.stringify(g)}`);
  return problems;
}

// ---- the pre-made team --------------------------------------------------------------------------

let keyCounter = 0;
export function freshKey(tag: string): string {
  keyCounter += 1;
  return `fz-${tag}-${keyCounter}`;
}

const adminHeaders = (extra: [string, string][] = []): [string, string][] => [
  ["authorization", `Bearer ${ADMIN_KEY}`],
  ...extra,
];

async function setupCall(method: string, target: string, body?: unknown): Promise<Record<string, unknown>> {
  const headers = adminHeaders(
    method === "POST" ? [["idempotency-key", freshKey("setup")]] : method === "PUT" ? [] : [],
  );
  if (body !== undefined) headers.push(["content-type", "application/json"]);
  const res = await send({
    method,
    target,
    headers,
    body: body === undefined ? { kind: "none" } : { kind: "text", text: JSON.stringify(body) },
  });
  expect(res.status, `setup ${method} ${target}: ${res.text}`).toBeLessThan(300);
  return res.json as Record<string, unknown>;
}

const DAY_MS = 86_400_000;
const WEEK_SECONDS = 7 * 86_400;
/** Below this, the pre-made team gets another grant so spends keep reaching the ledger. */
const TOP_UP_BELOW = 2_000_000_000_000;

export async function grantTo(teamId: string, body: Record<string, unknown>): Promise<string> {
  const reply = await setupCall("POST", `/v1/teams/${teamId}/grants`, body);
  return String((reply.grant as Record<string, unknown>).id);
}

export async function holdOn(teamId: string, amount: number): Promise<string> {
  const reply = await setupCall("POST", `/v1/teams/${teamId}/holds`, {
    amount,
    ttlSeconds: WEEK_SECONDS,
    feature: "fuzz_hold",
  });
  return String((reply.hold as Record<string, unknown>).id);
}

/**
 * A team with credits in every category (one expiring, one with a high priority), a voided grant,
 * pending holds, a captured and a released hold, and a few spends with dimensions.
 */
export async function makeTeam(teamId: string): Promise<void> {
  await setupCall("PUT", `/v1/teams/${teamId}`, { name: "fuzz team", seats: 3 });
  for (const priority of [0, 1, 2])
    await grantTo(teamId, { amount: 1_000_000_000_000, category: "paid", source: "purchase", priority });
  await grantTo(teamId, {
    amount: 1_000_000,
    category: "free",
    source: "allocation",
    expiresAt: new Date(Date.now() + 30 * DAY_MS).toISOString(),
  });
  await grantTo(teamId, { amount: 500_000, category: "promotional", source: "promotional", priority: 7 });
  const voided = await grantTo(teamId, { amount: 100, category: "paid", source: "manual" });
  await setupCall("POST", `/v1/teams/${teamId}/grants/${voided}/void`);
  for (const amount of [10, 1_000, 1_000_000]) await holdOn(teamId, amount);
  const captured = await holdOn(teamId, 50);
  await setupCall("POST", `/v1/teams/${teamId}/holds/${captured}/capture`, { amount: 20 });
  const released = await holdOn(teamId, 60);
  await setupCall("POST", `/v1/teams/${teamId}/holds/${released}/release`, { reason: "fuzz" });
  await setupCall("POST", `/v1/teams/${teamId}/spends`, {
    feature: "email_finder",
    amount: 5,
    dimensions: { campaign: "spring", channel: "web" },
  });
  await setupCall("POST", `/v1/teams/${teamId}/spends`, { feature: "render/4k", amount: 7, reference: "r-1" });
}

export type ScopedKeys = Record<"spendKey" | "readKey" | "billingKey" | "boundElsewhere", string>;
let madeKeys: ScopedKeys | null = null;

/** API keys with each scope, and an admin key bound to a team no request names; made once per file. */
export async function scopedKeys(): Promise<ScopedKeys> {
  if (madeKeys) return madeKeys;
  const make = async (scopes: string[], teamId?: string) =>
    String((await setupCall("POST", "/v1/api-keys", { name: "fuzz", scopes, ...(teamId ? { teamId } : {}) })).key);
  madeKeys = {
    spendKey: await make(["spend"]),
    readKey: await make(["read"]),
    billingKey: await make(["billing"]),
    boundElsewhere: await make(["admin"], "fz-bound-elsewhere"),
  };
  return madeKeys;
}

/** Keeps the pre-made team able to pay and holding pending holds; true when it wrote something. */
export async function topUp(snap: TeamSnapshot): Promise<boolean> {
  let wrote = false;
  const available = snap.grants
    .filter((g) => g.status === "active")
    .reduce((sum, g) => sum + Number(g.remaining) - Number(g.held), 0);
  if (available < TOP_UP_BELOW) {
    await grantTo(snap.teamId, { amount: 1_000_000_000_000, category: "paid", source: "purchase" });
    await grantTo(snap.teamId, { amount: 1_000_000_000_000, category: "paid", source: "purchase", priority: 3 });
    wrote = true;
  }
  if (snap.holds.filter((h) => h.status === "pending").length < 3) {
    await holdOn(snap.teamId, 25);
    await holdOn(snap.teamId, 2_500);
    wrote = true;
  }
  return wrote;
}

// ---- plans --------------------------------------------------------------------------------------

/** Which team a request names. */
export type TeamPick = { kind: "fixture" } | { kind: "ghost" } | { kind: "literal"; value: string };
/** Which hold or grant a request names, resolved against the live state when it is sent. */
export type IdPick =
  | { kind: "pending"; pick: number }
  | { kind: "anyHold"; pick: number }
  | { kind: "grant"; pick: number }
  | { kind: "unknown"; prefix: string }
  | { kind: "literal"; value: string };
export type KeyPick =
  | { kind: "fresh" }
  | { kind: "reuse"; pick: number }
  | { kind: "none" }
  | { kind: "duplicate" }
  | { kind: "literal"; value: string };
export type BodyPick =
  | { kind: "none" }
  | { kind: "json"; value: unknown }
  | { kind: "raw"; text: string }
  | { kind: "truncated"; value: unknown; cut: number }
  | { kind: "duplicateKey"; value: unknown; odd: unknown; oddFirst: boolean }
  | { kind: "wrapped"; value: unknown; how: "array" | "string" | "nested" | "bom" | "trailing" | "padded" }
  | { kind: "huge"; bytes: number; shape: "string" | "array" | "deep" }
  | { kind: "bytes"; hex: string };
export type PathStyle =
  | "plain"
  | "trailingSlash"
  | "doubleSlash"
  | "dotSegment"
  | "encodedDots"
  | "upperCase"
  | "backslash"
  | "encodeTeam"
  | "encodedSlash";
export type AuthPick =
  | "admin"
  | "none"
  | "wrong"
  | "lowerScheme"
  | "basic"
  | "twoHeaders"
  | "spendKey"
  | "readKey"
  | "billingKey"
  | "boundElsewhere"
  | "unknownKey";

export interface Plan {
  methodOverride: string | null;
  team: TeamPick;
  id: IdPick;
  pathStyle: PathStyle;
  query: { name: string; value: string; raw: boolean }[];
  key: KeyPick;
  auth: AuthPick;
  contentType: string | null;
  chunked: number | null;
  extraHeaders: [string, string][];
  body: BodyPick;
}

const TEAM_PATTERN = /^[A-Za-z0-9._:-]{1,128}$/;

const oddTeamIds = [
  "a".repeat(128),
  "a".repeat(129),
  "t".repeat(5_000),
  ".",
  "..",
  "%2e%2e",
  "%2E",
  "a%2Fb",
  "a/b",
  "%00",
  "a%00b",
  "%",
  "%zz",
  "%E0%A4%A",
  "%C3%28",
  "%F0%9F%98%80",
  "%EF%BF%BF",
  "team%20one",
  "team one",
  "team+one",
  "%2B",
  "?x",
  "#frag",
  ";matrix=1",
  "ﬀ",
  "😀",
  "\u202eevil",
  "team\ttab",
  "__proto__",
  "constructor",
  "-",
  "_",
  ":",
  "0",
];

const teamPickArb: fc.Arbitrary<TeamPick> = fc.oneof(
  { weight: 24, arbitrary: fc.constant<TeamPick>({ kind: "fixture" }) },
  { weight: 2, arbitrary: fc.constant<TeamPick>({ kind: "ghost" }) },
  {
    weight: 2,
    arbitrary: fc.stringMatching(TEAM_PATTERN).map((value): TeamPick => ({ kind: "literal", value })),
  },
  {
    weight: 2,
    arbitrary: fc
      .oneof(fc.constantFrom(...oddTeamIds), oddStringArb.map(pct))
      .map((value): TeamPick => ({ kind: "literal", value })),
  },
);

const objectIdPattern = /^[a-z]{3}_[0-9a-f]{32}$/;
const idPickArb: fc.Arbitrary<IdPick> = fc.oneof(
  { weight: 8, arbitrary: fc.nat({ max: 1000 }).map((pick): IdPick => ({ kind: "pending", pick })) },
  { weight: 3, arbitrary: fc.nat({ max: 1000 }).map((pick): IdPick => ({ kind: "anyHold", pick })) },
  { weight: 3, arbitrary: fc.nat({ max: 1000 }).map((pick): IdPick => ({ kind: "grant", pick })) },
  {
    weight: 1,
    arbitrary: fc.constantFrom("hld", "grt", "spd", "zzz").map((prefix): IdPick => ({ kind: "unknown", prefix })),
  },
  {
    weight: 2,
    arbitrary: fc
      .oneof(
        fc.stringMatching(objectIdPattern),
        fc.constantFrom(
          `hld_${"0".repeat(31)}`,
          `hld_${"0".repeat(33)}`,
          `HLD_${"0".repeat(32)}`,
          `hld_${"G".repeat(32)}`,
          "hld_",
          "x".repeat(10_000),
          "..",
          "%2e",
          "hld%5F00000000000000000000000000000000",
        ),
        oddStringArb.map(pct),
      )
      .map((value): IdPick => ({ kind: "literal", value })),
  },
);

const keyPickArb: fc.Arbitrary<KeyPick> = fc.oneof(
  { weight: 24, arbitrary: fc.constant<KeyPick>({ kind: "fresh" }) },
  { weight: 3, arbitrary: fc.nat({ max: 1000 }).map((pick): KeyPick => ({ kind: "reuse", pick })) },
  { weight: 1, arbitrary: fc.constant<KeyPick>({ kind: "none" }) },
  { weight: 1, arbitrary: fc.constant<KeyPick>({ kind: "duplicate" }) },
  {
    weight: 2,
    arbitrary: fc
      .oneof(
        fc.constantFrom(
          "k".repeat(255),
          "k".repeat(256),
          "k".repeat(300),
          "",
          " ",
          "key with spaces",
          "key\twith\ttabs",
          "clé",
          // UTF-8 bytes of non-ASCII text as a client would put them on the wire (read as Latin-1).
          "\u00f0\u009f\u0098\u0080",
          "\u00ff\u00fe",
          "a,b",
          "~!@#$%^&*()_+{}|:<>?",
        ),
        fc.stringMatching(/^[\x21-\x7e]{1,255}$/),
      )
      .map((value): KeyPick => ({ kind: "literal", value })),
  },
);

const authArb: fc.Arbitrary<AuthPick> = fc.oneof(
  { weight: 40, arbitrary: fc.constant<AuthPick>("admin") },
  { weight: 1, arbitrary: fc.constantFrom<AuthPick>("none", "wrong", "lowerScheme", "basic", "twoHeaders") },
  // Keys from the key directory: each scope, one bound to a team no request names, and a key of
  // the right form that the directory never made.
  {
    weight: 2,
    arbitrary: fc.constantFrom<AuthPick>("spendKey", "readKey", "billingKey", "boundElsewhere", "unknownKey"),
  },
);

const JSON_TYPES = ["application/json", "application/json; charset=utf-8"];
const ODD_TYPES = [
  "application/json;charset=UTF-8",
  "APPLICATION/JSON",
  "application/json; charset=utf-16",
  "application/json; charset=latin1",
  "application/json;",
  "application/json; charset",
  "application/json ; charset=utf-8",
  "application/vnd.api+json",
  "application/merge-patch+json",
  "application/problem+json",
  "application/jsonx",
  "application/json, text/plain",
  " application/json",
  "text/json",
  "text/plain",
  "text/plain; charset=utf-8",
  "application/x-www-form-urlencoded",
  "multipart/form-data; boundary=xyz",
  "application/octet-stream",
  "*/*",
  "",
];

const pathStyleArb: fc.Arbitrary<PathStyle> = fc.oneof(
  { weight: 40, arbitrary: fc.constant<PathStyle>("plain") },
  {
    weight: 3,
    arbitrary: fc.constantFrom<PathStyle>(
      "trailingSlash",
      "doubleSlash",
      "dotSegment",
      "encodedDots",
      "upperCase",
      "backslash",
      "encodeTeam",
      "encodedSlash",
    ),
  },
);

const extraHeaderArb: fc.Arbitrary<[string, string]> = fc.constantFrom<[string, string]>(
  ["x-actor-id", "user-1"],
  ["x-actor-role", "owner"],
  ["x-actor-role", "\u00e9\u00e9"],
  ["accept", "text/csv"],
  ["accept", "application/xml"],
  ["accept-encoding", "gzip, br"],
  ["x-request-id", "client-chosen-id"],
  ["x-request-id", "x".repeat(300)],
  ["x-http-method-override", "DELETE"],
  ["content-encoding", "gzip"],
  ["expect", "100-continue"],
  ["origin", "https://evil.example"],
  ["cookie", "a=b"],
  ["x-forwarded-for", "1.2.3.4"],
);

/** Mostly `usual`, sometimes `unusual`. */
function mostly<T>(usual: fc.Arbitrary<T>, unusual: fc.Arbitrary<T>, oneIn = 5): fc.Arbitrary<T> {
  return fc.oneof({ weight: oneIn - 1, arbitrary: usual }, { weight: 1, arbitrary: unusual });
}

const base64url = (text: string) => btoa(text).replaceAll("=", "").replaceAll("+", "-").replaceAll("/", "_");

/** Cursors: ones the service issues (entries: s:<seq>, verify: v:<seq>:<hash>) and forgeries. */
const cursorArb = (verify: boolean) =>
  mostly(
    verify
      ? fc
          .tuple(fc.integer({ min: 0, max: 60 }), fc.stringMatching(/^[0-9a-f]{64}$/))
          .map(([n, hash]) => base64url(`v:${n}:${hash}`))
      : fc.integer({ min: 1, max: 60 }).map((n) => base64url(`s:${n}`)),
    fc.constantFrom(
      base64url("s:0"),
      base64url("s:-1"),
      base64url("s:999999999999999"),
      base64url("s:9999999999999999"),
      base64url("s:1e3"),
      btoa("s:1"),
      base64url(`v:1:${"0".repeat(64)}`),
      base64url(`v:0:${"f".repeat(64)}`),
      base64url(`v:999999999999999:${"a".repeat(64)}`),
      "====",
      "a",
      "!!",
      "x".repeat(65),
    ),
    3,
  );

const ENTRY_TYPE_LIST = ["grant", "spend", "hold", "capture", "release", "expire", "void", "refund", "adjustment"];

function queryValueArb(p: ParamSpec, resolve: Resolver, route: RouteSpec): fc.Arbitrary<string> {
  if (p.name === "cursor") return cursorArb(route.path.endsWith("/verify"));
  if (p.name === "type")
    return mostly(
      fc.subarray(ENTRY_TYPE_LIST, { minLength: 1 }).map((t) => t.join(",")),
      fc.constantFrom("spend,,hold", "SPEND", " spend ", "spend,", ",", "x".repeat(200), "x".repeat(201)),
    );
  if (p.name === "limit")
    return mostly(
      validArb(p.schema, resolve).map(String),
      fc.constantFrom("0", "-1", "1.5", "1e2", "0x10", "Infinity", "NaN", " 5", "5 ", "", "201", "9".repeat(400), "٣"),
    );
  if (p.schema.format === "date-time")
    return mostly(isoDateTimeArb, fc.constantFrom("2026-01-01", "yesterday", "0", "2026-01-01T00:00:00"), 8);
  return validArb(p.schema, resolve).map((v) => (typeof v === "string" ? v : JSON.stringify(v)));
}

function queryArb(route: RouteSpec, resolve: Resolver): fc.Arbitrary<Plan["query"]> {
  // A teamId in the query (reconcile) comes from the team pick, like a teamId in the path.
  const perParam = route.params
    .filter((p) => p.in === "query" && p.name !== "teamId")
    .map((p) => {
      const omit = fc.constant<Plan["query"]>([]);
      const value = mostly(queryValueArb(p, resolve, route), oddStringArb, 12);
      const one = fc.record({ name: fc.constant(p.name), value, raw: fc.constant(false) });
      const present = fc.oneof(
        { weight: 16, arbitrary: one.map((q) => [q]) },
        { weight: 1, arbitrary: fc.tuple(one, one).map(([a, b]) => [a, b]) },
        { weight: 1, arbitrary: one.map((q) => [{ ...q, raw: true }]) },
      );
      return fc.oneof({ weight: p.required ? 1 : 12, arbitrary: omit }, { weight: 12, arbitrary: present });
    });
  const extra = fc.oneof(
    { weight: 10, arbitrary: fc.constant<Plan["query"]>([]) },
    {
      weight: 1,
      arbitrary: fc
        .tuple(fc.constantFrom("unknown", "", "limit[]", "__proto__", "teamId", "a".repeat(2_000)), oddStringArb)
        .map(([name, value]) => [{ name, value, raw: false }]),
    },
  );
  return fc.tuple(fc.tuple(...perParam), extra).map(([parts, more]) => [...parts.flat(), ...more]);
}

function bodyArb(route: RouteSpec, resolve: Resolver): fc.Arbitrary<BodyPick> {
  const schema: JsonSchema = route.body?.schema ?? { type: "object", properties: {}, additionalProperties: false };
  const fuzzed = fuzzArb(schema, resolve);
  const valid = validArb(schema, resolve);
  const odd = fuzzArb({ type: "string" }, resolve, 1);
  const json = fc.oneof(
    { weight: 5, arbitrary: valid.map((value): BodyPick => ({ kind: "json", value })) },
    { weight: 4, arbitrary: fuzzed.map((value): BodyPick => ({ kind: "json", value })) },
  );
  const malformed: fc.Arbitrary<BodyPick> = fc.oneof(
    fc.record({ kind: fc.constant("truncated" as const), value: valid, cut: fc.nat({ max: 400 }) }),
    fc.record({ kind: fc.constant("duplicateKey" as const), value: valid, odd, oddFirst: fc.boolean() }),
    fc.record({
      kind: fc.constant("wrapped" as const),
      value: valid,
      how: fc.constantFrom("array", "string", "nested", "bom", "trailing", "padded"),
    }),
    fc
      .constantFrom(
        "",
        " ",
        "{",
        "}",
        "[]",
        "null",
        "0",
        '"text"',
        "true",
        "{}",
        "{,}",
        "{'amount': 1}",
        '{"amount": NaN}',
        '{"amount": Infinity}',
        '{"amount": -Infinity}',
        '{"amount": 1e999}',
        '{"amount": -0}',
        '{"amount": 01}',
        '{"amount": 0x10}',
        '{"amount": 1,}',
        '{"amount": 1} {"amount": 2}',
        '{"amount": 1 // comment\n}',
        '{"feature": "\\ud800", "amount": 1}',
        '{"feature": "\\u0000", "amount": 1}',
        '{"feature": "a\u0000b", "amount": 1}',
        '{"__proto__": {"amount": 1}}',
        '{"constructor": {"prototype": {"amount": 1}}}',
        "\u0000",
        "\ufeff{}",
        "\ud800",
      )
      .map((text): BodyPick => ({ kind: "raw", text })),
    fc.constantFrom(...ODD_BYTE_BODIES).map((hex): BodyPick => ({ kind: "bytes", hex })),
  );
  const huge: fc.Arbitrary<BodyPick> = fc.record({
    kind: fc.constant("huge" as const),
    bytes: fc.constantFrom(64 * 1024, 64 * 1024 + 1, 1024 * 1024 + 1, 2 * 1024 * 1024),
    shape: fc.constantFrom("string", "array", "deep"),
  });
  const none = fc.constant<BodyPick>({ kind: "none" });
  if (route.body === null)
    return fc.oneof(
      { weight: 12, arbitrary: none },
      { weight: 1, arbitrary: json },
      { weight: 1, arbitrary: malformed },
      { weight: 1, arbitrary: huge },
    );
  return fc.oneof(
    { weight: route.body.required ? 1 : 8, arbitrary: none },
    { weight: 40, arbitrary: json },
    { weight: 6, arbitrary: malformed },
    { weight: 1, arbitrary: huge },
  );
}

export function planArb(route: RouteSpec, resolve: Resolver): fc.Arbitrary<Plan> {
  const mutating = route.method !== "GET";
  return fc.record({
    methodOverride: fc.oneof(
      { weight: 40, arbitrary: fc.constant(null) },
      { weight: 1, arbitrary: fc.constantFrom("GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS", "post") },
    ),
    team: teamPickArb,
    id: idPickArb,
    pathStyle: pathStyleArb,
    query: queryArb(route, resolve),
    key: mutating
      ? keyPickArb
      : fc.oneof(
          { weight: 8, arbitrary: fc.constant<KeyPick>({ kind: "none" }) },
          { weight: 1, arbitrary: keyPickArb },
        ),
    auth: authArb,
    contentType: fc.oneof(
      { weight: 30, arbitrary: fc.constantFrom(...JSON_TYPES) },
      { weight: 2, arbitrary: fc.constantFrom(...ODD_TYPES) },
      { weight: 1, arbitrary: fc.constant(null) },
    ),
    chunked: fc.oneof(
      { weight: 12, arbitrary: fc.constant(null) },
      { weight: 1, arbitrary: fc.constantFrom(1, 7, 4096) },
    ),
    extraHeaders: fc.oneof(
      { weight: 8, arbitrary: fc.constant<[string, string][]>([]) },
      { weight: 1, arbitrary: fc.array(extraHeaderArb, { minLength: 1, maxLength: 3 }) },
    ),
    body: bodyArb(route, resolve),
  });
}

// ---- from plan to wire --------------------------------------------------------------------------

export interface World {
  fixtureTeam: string;
  ghostTeam: string;
  tag: string;
  /** The fixture's latest snapshot: the pools of holds and grants come from it. */
  fixture: TeamSnapshot;
  /** Idempotency keys of requests that succeeded, to reuse. */
  usedKeys: string[];
  /** API keys made once per file (scopedKeys). */
  keys: ScopedKeys;
}

function pickFrom<T>(list: readonly T[], pick: number): T | undefined {
  return list.length === 0 ? undefined : list[pick % list.length];
}

function resolveTeam(p: TeamPick, w: World): string {
  if (p.kind === "fixture") return w.fixtureTeam;
  if (p.kind === "ghost") return w.ghostTeam;
  return p.value;
}

/** Resolves an id pick; on a grant route, "pending" and "anyHold" mean an active grant and any grant. */
function resolveId(p: IdPick, w: World, grantRoute: boolean): string {
  const unknown = `hld_${"e".repeat(32)}`;
  const pending = grantRoute
    ? w.fixture.grants.filter((g) => g.status === "active")
    : w.fixture.holds.filter((h) => h.status === "pending");
  switch (p.kind) {
    case "pending":
      return String(pickFrom(pending, p.pick)?.id ?? unknown);
    case "anyHold":
      return String(pickFrom(grantRoute ? w.fixture.grants : w.fixture.holds, p.pick)?.id ?? unknown);
    case "grant":
      return String(pickFrom(w.fixture.grants, p.pick)?.id ?? unknown);
    case "unknown":
      return `${p.prefix}_${"0123456789abcdef".repeat(2)}`;
    case "literal":
      return p.value;
  }
}

function serialize(body: BodyPick): string | null {
  switch (body.kind) {
    case "none":
    case "bytes":
      return null;
    case "json":
      return JSON.stringify(body.value) ?? "null";
    case "raw":
      return body.text;
    case "truncated": {
      const text = JSON.stringify(body.value) ?? "{";
      return text.slice(0, Math.min(body.cut, Math.max(0, text.length - 1)));
    }
    case "duplicateKey": {
      const text = JSON.stringify(body.value) ?? "{}";
      if (!text.startsWith("{") || text === "{}") return `{"a":1,"a":${JSON.stringify(body.odd)}}`;
      const firstKey = Object.keys(body.value as Record<string, unknown>)[0] ?? "a";
      const member = `${JSON.stringify(firstKey)}:${JSON.stringify(body.odd)}`;
      return body.oddFirst ? `{${member},${text.slice(1)}` : `${text.slice(0, -1)},${member}}`;
    }
    case "wrapped": {
      const text = JSON.stringify(body.value) ?? "null";
      if (body.how === "array") return `[${text}]`;
      if (body.how === "string") return JSON.stringify(text);
      if (body.how === "nested") return `{"body":${text}}`;
      if (body.how === "bom") return `\ufeff${text}`;
      if (body.how === "trailing") return `${text}garbage`;
      return ` \n\t${text}\r\n `;
    }
    case "huge": {
      if (body.shape === "string") return `{"feature":"x","amount":1,"reference":"${"a".repeat(body.bytes)}"}`;
      if (body.shape === "array")
        return `{"items":[${'{"feature":"x","amount":1},'.repeat(body.bytes / 27)}{"feature":"x","amount":1}],"mode":"all_or_nothing"}`;
      const depth = Math.floor(body.bytes / 2);
      return `{"feature":"x","amount":1,"dimensions":{"a":${"[".repeat(depth)}${"]".repeat(depth)}}}`;
    }
  }
}

function stylePath(path: string, style: PathStyle, team: string): string {
  switch (style) {
    case "plain":
      return path;
    case "trailingSlash":
      return `${path}/`;
    case "doubleSlash":
      return path.replace("/v1/", "//v1//");
    case "dotSegment":
      return path.replace("/v1/", "/v1/x/../");
    case "encodedDots":
      return path.replace("/v1/", "/v1/%2e/");
    case "upperCase":
      return path.toUpperCase();
    case "backslash":
      return path.replaceAll("/", "\\");
    case "encodeTeam":
      return path.replace(
        `/${team}`,
        `/${[...team].map((c) => `%${c.charCodeAt(0).toString(16).padStart(2, "0").toUpperCase()}`).join("")}`,
      );
    case "encodedSlash":
      return path.replace("/teams/", "%2Fteams%2F");
  }
}

export interface Materialized {
  wire: Wire;
  teamId: string;
  key: string | null;
  mutating: boolean;
}

export function materialize(route: RouteSpec, plan: Plan, w: World): Materialized {
  const teamId = resolveTeam(plan.team, w);
  const id = resolveId(plan.id, w, route.path.includes("{grantId}"));
  let path = route.path.replace("{teamId}", teamId).replace("{holdId}", id).replace("{grantId}", id);
  path = stylePath(path, plan.pathStyle, teamId);
  const query = [...plan.query];
  const teamQuery = route.params.find((p) => p.in === "query" && p.name === "teamId");
  if (teamQuery && !query.some((q) => q.name === "teamId")) query.unshift({ name: "teamId", value: teamId, raw: true });
  const qs = query.map((q) => (q.raw ? `${q.name}=${q.value}` : `${pct(q.name)}=${pct(q.value)}`)).join("&");
  const target = qs.length > 0 ? `${path}?${qs}` : path;

  const headers: [string, string][] = [];
  switch (plan.auth) {
    case "admin":
      headers.push(["authorization", `Bearer ${ADMIN_KEY}`]);
      break;
    case "wrong":
      headers.push(["authorization", `Bearer ${ADMIN_KEY}x`]);
      break;
    case "lowerScheme":
      headers.push(["authorization", `bearer ${ADMIN_KEY}`]);
      break;
    case "basic":
      headers.push(["authorization", `Basic ${btoa(`admin:${ADMIN_KEY}`)}`]);
      break;
    case "twoHeaders":
      headers.push(["authorization", `Bearer ${ADMIN_KEY}`], ["authorization", `Bearer ${ADMIN_KEY}`]);
      break;
    case "spendKey":
    case "readKey":
    case "billingKey":
    case "boundElsewhere":
      headers.push(["authorization", `Bearer ${w.keys[plan.auth]}`]);
      break;
    case "unknownKey":
      headers.push(["authorization", `Bearer ck_${"0".repeat(16)}_${"A".repeat(43)}`]);
      break;
    case "none":
      break;
  }
  let key: string | null = null;
  switch (plan.key.kind) {
    case "fresh":
      key = freshKey(w.tag);
      break;
    case "reuse":
      key = pickFrom(w.usedKeys, plan.key.pick) ?? freshKey(w.tag);
      break;
    case "duplicate":
      key = freshKey(w.tag);
      headers.push(["idempotency-key", key]);
      break;
    case "literal":
      key = plan.key.value;
      break;
    case "none":
      break;
  }
  if (key !== null) headers.push(["idempotency-key", key]);
  const bytes = plan.body.kind === "bytes" ? plan.body.hex : null;
  const text = serialize(plan.body);
  if ((text !== null || bytes !== null) && plan.contentType !== null) headers.push(["content-type", plan.contentType]);
  else if (text === null && plan.contentType !== null && plan.contentType !== "application/json")
    headers.push(["content-type", plan.contentType]);
  headers.push(...plan.extraHeaders);
  const method = plan.methodOverride ?? route.method;
  const canHaveBody = method.toUpperCase() !== "GET" && method.toUpperCase() !== "HEAD";
  const body: Wire["body"] =
    bytes !== null && canHaveBody
      ? { kind: "bytes", hex: bytes }
      : text === null || !canHaveBody
        ? { kind: "none" }
        : plan.chunked !== null
          ? { kind: "chunked", text, chunk: plan.chunked }
          : { kind: "text", text };
  return { wire: { method, target, headers, body }, teamId, key, mutating: method !== "GET" && method !== "HEAD" };
}

export { TEAM_PATTERN };
