/**
 * The closed set of error codes, their HTTP statuses, and the one problem+json (RFC 9457) shape
 * every error leaves the service in. The ledger's failures (domain/failure.ts) are a subset of
 * these codes; this module alone knows which status each one is.
 */
import type { Context } from "hono";
import type { FailureFacts } from "../domain/failure";
import type { Refusal } from "../domain/vocabulary";

export const ERROR_STATUS = {
  invalid_request: 400,
  unauthorized: 401,
  insufficient_credits: 402,
  cap_exceeded: 402,
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

const TITLES: Record<ErrorCode, string> = {
  invalid_request: "Invalid request",
  unauthorized: "Unauthorized",
  insufficient_credits: "Insufficient credits",
  cap_exceeded: "Cap exceeded",
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
export type ProblemExtras = FailureFacts;

/** Thrown by routes and middleware; turned into problem+json by the one error handler. */
export class ApiError extends Error {
  readonly code: ErrorCode;
  readonly extras: ProblemExtras | undefined;
  /** Set when this is the replay of a refusal saved under an Idempotency-Key: its request's id. */
  readonly originalRequestId: string | undefined;
  constructor(code: ErrorCode, detail: string, extras?: ProblemExtras, originalRequestId?: string) {
    super(detail);
    this.name = "ApiError";
    this.code = code;
    this.extras = extras;
    this.originalRequestId = originalRequestId;
  }
  /** A ledger refusal (its code is one of ERROR_STATUS's: ApiError takes no other). */
  static from(f: Refusal): ApiError {
    return new ApiError(f.code, f.detail, f.extras, f.replayed ? f.originalRequestId : undefined);
  }
}

function problemBody(code: ErrorCode, detail: string, requestId: string, extras?: ProblemExtras) {
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

/**
 * The problem response for a code. With `originalRequestId` it is the replay of a refusal saved
 * under an Idempotency-Key: the first answer byte for byte (its body names the request that got it
 * first, also sent as `Original-Request-Id`), marked `Idempotent-Replayed`.
 */
export function problemResponse(
  c: Context,
  code: ErrorCode,
  detail: string,
  extras?: ProblemExtras,
  originalRequestId?: string,
): Response {
  const requestId = (c.get("requestId") as string | undefined) ?? "unknown";
  const headers: Record<string, string> = { "content-type": "application/problem+json", "x-request-id": requestId };
  if (originalRequestId !== undefined) {
    headers["original-request-id"] = originalRequestId;
    headers["idempotent-replayed"] = "true";
  }
  return new Response(JSON.stringify(problemBody(code, detail, originalRequestId ?? requestId, extras)), {
    status: ERROR_STATUS[code],
    headers,
  });
}
