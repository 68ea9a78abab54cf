/**
 * The closed set of error codes, their HTTP statuses, and the one problem+json (RFC 9457) shape
 * every error leaves the service in. Routes and the ledger return codes from this list only.
 */
import type { Context } from "hono";

export const ERROR_STATUS = {
  invalid_request: 400,
  unauthorized: 401,
  insufficient_credits: 402,
  forbidden: 403,
  not_found: 404,
  conflict: 409,
  hold_not_pending: 409,
  payload_too_large: 413,
  idempotency_key_reused: 422,
  stripe_not_configured: 503,
  internal: 500,
} as const;

export type ErrorCode = keyof typeof ERROR_STATUS;
export type ErrorStatus = (typeof ERROR_STATUS)[ErrorCode];

const TITLES: Record<ErrorCode, string> = {
  invalid_request: "Invalid request",
  unauthorized: "Unauthorized",
  insufficient_credits: "Insufficient credits",
  forbidden: "Forbidden",
  not_found: "Not found",
  conflict: "Conflict",
  hold_not_pending: "Hold is not pending",
  payload_too_large: "Payload too large",
  idempotency_key_reused: "Idempotency key reused",
  stripe_not_configured: "Stripe is not configured",
  internal: "Internal error",
};

/** Extra members some codes carry (e.g. `available`, `required` on 402). JSON values only. */
export type ProblemExtras = Record<string, string | number | boolean | null | string[] | object>;

/** A domain failure as a value: what the ledger returns instead of throwing. */
export interface Failure {
  ok: false;
  code: ErrorCode;
  detail: string;
  extras?: ProblemExtras;
}

export function failure(code: ErrorCode, detail: string, extras?: ProblemExtras): Failure {
  return extras ? { ok: false, code, detail, extras } : { ok: false, code, detail };
}

/** Thrown by routes and middleware; turned into problem+json by the one error handler. */
export class ApiError extends Error {
  readonly code: ErrorCode;
  readonly extras: ProblemExtras | undefined;
  constructor(code: ErrorCode, detail: string, extras?: ProblemExtras) {
    super(detail);
    this.name = "ApiError";
    this.code = code;
    this.extras = extras;
  }
  static from(f: Failure): ApiError {
    return new ApiError(f.code, f.detail, f.extras);
  }
}

export function problemBody(code: ErrorCode, detail: string, requestId: string, extras?: ProblemExtras) {
  return {
    ...extras,
    type: `https://credits.dev/problems/${code.replaceAll("_", "-")}`,
    title: TITLES[code],
    status: ERROR_STATUS[code],
    detail,
    code,
    requestId,
  };
}

export function problemResponse(c: Context, code: ErrorCode, detail: string, extras?: ProblemExtras): Response {
  const requestId = (c.get("requestId") as string | undefined) ?? "unknown";
  return new Response(JSON.stringify(problemBody(code, detail, requestId, extras)), {
    status: ERROR_STATUS[code],
    headers: { "content-type": "application/problem+json", "x-request-id": requestId },
  });
}
