/**
 * Calls through the worker (black box): a fresh team id and Idempotency-Key per use, `call` for a
 * raw answer, and `api`, which also checks what every answer must carry (no 500, an X-Request-Id,
 * problem+json with the full RFC 9457 shape on errors) and, for every mutation sent with an
 * Idempotency-Key, sends it again and checks that the ledger's outcome replays byte for byte.
 */
import { SELF } from "cloudflare:test";
import { expect } from "vitest";
import { historyProblems } from "./object";

const TEAM_PATH = /^\/v1\/teams\/([A-Za-z0-9._:-]{1,128})(?:[/?]|$)/;

export const ADMIN_KEY = "test-admin-key";
const BASE = "https://ledger.test";

let counter = 0;
/** A team id no other test uses: storage persists within a test file. */
export function newTeamId(prefix = "team"): string {
  counter += 1;
  return `${prefix}-${Date.now().toString(36)}-${counter}-${crypto.randomUUID().slice(0, 8)}`;
}

let keyCounter = 0;
export function newKey(): string {
  keyCounter += 1;
  return `key-${keyCounter}-${crypto.randomUUID()}`;
}

export interface CallOptions {
  method?: string;
  body?: unknown;
  /** Raw body text, sent as is (for malformed JSON and oversized bodies). */
  rawBody?: string;
  idempotencyKey?: string;
  headers?: Record<string, string>;
  /** false: no Authorization header; a string: that header value. */
  auth?: false | string;
}

export interface CallResult<T = Record<string, unknown>> {
  status: number;
  headers: Headers;
  body: T;
  text: string;
}

/** Calls the worker with the admin key and JSON, and parses the reply. */
export async function call<T = Record<string, unknown>>(path: string, opts: CallOptions = {}): Promise<CallResult<T>> {
  const headers: Record<string, string> = { ...opts.headers };
  if (opts.auth !== false) headers.authorization = opts.auth ?? `Bearer ${ADMIN_KEY}`;
  let body: string | undefined;
  if (opts.rawBody !== undefined) body = opts.rawBody;
  else if (opts.body !== undefined) body = JSON.stringify(opts.body);
  if (body !== undefined && !("content-type" in headers)) headers["content-type"] = "application/json";
  if (opts.idempotencyKey) headers["idempotency-key"] = opts.idempotencyKey;
  const res = await SELF.fetch(`${BASE}${path}`, {
    method: opts.method ?? (body === undefined ? "GET" : "POST"),
    headers,
    body,
  });
  return readResponse<T>(res);
}

/** A response as a CallResult: status, headers, the text and its JSON (null when it is not JSON). */
export async function readResponse<T = Record<string, unknown>>(res: Response): Promise<CallResult<T>> {
  const text = await res.text();
  let parsed: unknown = null;
  try {
    parsed = text ? JSON.parse(text) : null;
  } catch {
    parsed = null;
  }
  return { status: res.status, headers: res.headers, body: parsed as T, text };
}

/** Fails with the whole response when the status is not the expected one. */
export function expectStatus(res: CallResult<unknown>, status: number): void {
  expect(res.status, `expected ${status}, got ${res.status}: ${res.text}`).toBe(status);
}

export interface Problem {
  type: string;
  title: string;
  status: number;
  detail: string;
  code: string;
  requestId: string;
  [extra: string]: unknown;
}

/**
 * Which answers to a keyed mutation are saved under the key. The ledger's outcomes always are
 * (successes, 402, 409); the worker's own refusals and faults never are (401, 413, 415, the 422 of
 * a reused key, 500). A 400 or a 404 may be either: the worker's validation or a team that does
 * not exist saves nothing, while the ledger's own (a capture larger than its hold, a hold or grant
 * that is not there) is saved like any outcome.
 */
export const ALWAYS_SAVED: readonly number[] = [200, 201, 402, 409];
export const NEVER_SAVED: readonly number[] = [401, 413, 415, 422, 500];

/**
 * `call` plus what every response must satisfy: never a 500, always an X-Request-Id, and every
 * error as application/problem+json with the full RFC 9457 shape. A POST with an
 * Idempotency-Key is sent twice: the second answer must be the first one byte for byte (status
 * and body, marked Idempotent-Replayed) when the ledger decided it, and the same refusal, not
 * replayed, when the worker refused it first (ALWAYS_SAVED, NEVER_SAVED). After every request
 * that may write, the team's history must still add up line by line (object.ts historyProblems).
 */
export async function api<T = Record<string, unknown>>(path: string, opts: CallOptions = {}): Promise<CallResult<T>> {
  const res = await call<T>(path, opts);
  const method = opts.method ?? (opts.body === undefined && opts.rawBody === undefined ? "GET" : "POST");
  const what = `${method} ${path}`;
  checkAnswer(res, what);
  if (opts.idempotencyKey && method === "POST") await expectReplay(path, opts, res, what);
  // After every step that may write, the team's history still adds up line by line.
  const team = TEAM_PATH.exec(path)?.[1];
  if (method !== "GET" && team !== undefined) expect(await historyProblems(team), `after ${what}`).toEqual([]);
  return res;
}

function checkAnswer(res: CallResult<unknown>, what: string): void {
  expect(res.status, `no 500 on ${what}: ${res.text.slice(0, 500)}`).toBeLessThan(500);
  const requestId = res.headers.get("x-request-id");
  expect(requestId, `X-Request-Id on ${what}`).toBeTruthy();
  if (res.status >= 400) assertProblemShape(res, what);
}

/** Sends a keyed mutation again and checks that its outcome replays (or was never saved). */
export async function expectReplay(
  path: string,
  opts: CallOptions,
  first: CallResult<unknown>,
  what = `POST ${path}`,
): Promise<void> {
  const again = await call(path, opts);
  checkAnswer(again, `${what} (replayed)`);
  if (again.headers.get("idempotent-replayed") === "true") {
    expect(NEVER_SAVED, `${what}: a ${first.status} is never saved, yet it replayed`).not.toContain(first.status);
    expect(again.status, `${what}: the replay has the first status`).toBe(first.status);
    expect(again.text, `${what}: the replay is the first body byte for byte`).toBe(first.text);
  } else {
    expect(ALWAYS_SAVED, `${what}: the ledger decided ${first.status}, so the key must replay it`).not.toContain(
      first.status,
    );
    expect(again.status, `${what}: an unsaved refusal is refused the same way again`).toBe(first.status);
  }
}

export function assertProblemShape(res: CallResult<unknown>, what: string): void {
  expect(res.headers.get("content-type"), `problem+json on ${what}`).toContain("application/problem+json");
  const body = res.body as Partial<Problem> | null;
  expect(body, `a problem body on ${what}: ${res.text.slice(0, 300)}`).not.toBeNull();
  expect(typeof body?.type).toBe("string");
  expect(typeof body?.title).toBe("string");
  expect(body?.title?.length).toBeGreaterThan(0);
  expect(body?.status).toBe(res.status);
  expect(typeof body?.detail).toBe("string");
  expect(body?.detail?.length).toBeGreaterThan(0);
  expect(typeof body?.code).toBe("string");
  // A replayed refusal names the request that got it first; any other names this one.
  const replayed = res.headers.get("idempotent-replayed") === "true";
  const expectedId = replayed ? res.headers.get("original-request-id") : res.headers.get("x-request-id");
  expect(body?.requestId, `requestId on ${what}`).toBe(expectedId);
}

/** The response is the problem with this status and code. */
export function expectProblem(res: CallResult<unknown>, status: number, code: string): Problem {
  expectStatus(res, status);
  assertProblemShape(res, `response with ${status}`);
  const body = res.body as Problem;
  expect(body.code, res.text).toBe(code);
  expect(body.type).toMatch(/^https:\/\//);
  return body;
}
