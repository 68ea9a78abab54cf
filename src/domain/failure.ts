/**
 * Failures as values: the closed set of codes the ledger decides, with a sentence a person can act
 * on and the facts the code needs (e.g. `required` and `available` when credits are short). The
 * domain never knows HTTP: http/problem.ts maps each code to a status and a problem document.
 */

/** What the ledger itself can refuse. HTTP adds its own (unauthorized, payload_too_large, …). */
export const FAILURE_CODES = [
  "invalid_request",
  "unauthorized",
  "insufficient_credits",
  "cap_exceeded",
  "forbidden",
  "not_found",
  "conflict",
  "hold_not_pending",
  "idempotency_key_reused",
] as const;
export type FailureCode = (typeof FAILURE_CODES)[number];

/** Extra members some codes carry (e.g. `available`, `required` on insufficient_credits). JSON values only. */
export type FailureFacts = Record<string, string | number | boolean | null | string[] | object>;

/** A domain failure as a value: what the ledger returns instead of throwing. */
export interface Failure {
  ok: false;
  code: FailureCode;
  detail: string;
  extras?: FailureFacts;
}

export function failure(code: FailureCode, detail: string, extras?: FailureFacts): Failure {
  return extras ? { ok: false, code, detail, extras } : { ok: false, code, detail };
}

/** Not enough available credits: how many were required and how many there are. */
export function insufficient(required: number, available: number, extras?: Record<string, number>): Failure {
  return failure("insufficient_credits", `${required} credits required, ${available} available`, {
    required,
    available,
    ...extras,
  });
}
