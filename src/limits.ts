/**
 * Every bound the service enforces, in one place (TigerBeetle style: a limit on everything).
 * Units are in the names. The relations between limits are checked at the bottom, at import time,
 * so a bad edit fails every test instead of failing in production.
 */

/** Largest credit amount one grant, spend, hold or capture may carry. */
export const MAX_AMOUNT_CREDITS = 1_000_000_000_000; // 10^12
/** Largest total a team may hold; keeps every sum far inside Number.MAX_SAFE_INTEGER. */
export const MAX_BALANCE_CREDITS = 1_000_000_000_000_000; // 10^15
/** Largest `quantity` on a spend or hold. */
export const MAX_QUANTITY = 1_000_000_000;
/** Grant priorities are 0..MAX_PRIORITY; lower is spent first. */
export const MAX_PRIORITY = 1_000_000;

/** Request bodies: ordinary routes and the batch route. */
export const MAX_BODY_BYTES = 64 * 1024;
export const MAX_BATCH_BODY_BYTES = 1024 * 1024;
/** Items in one `spends/batch` request. */
export const MAX_BATCH_ITEMS = 1000;

/** Page sizes for lists. */
export const DEFAULT_PAGE_SIZE = 50;
export const MAX_PAGE_SIZE = 200;

/** History exports (CSV) read this many entries per page, so an export never holds more in memory. */
export const EXPORT_PAGE_ROWS = 500;
/** Groups in one usage report, largest first; the rest are cut and the report says so. */
export const MAX_USAGE_GROUPS = 1000;

/** Holds live between these bounds; extend resets the deadline within the same bounds. */
export const MIN_HOLD_TTL_SECONDS = 1;
export const MAX_HOLD_TTL_SECONDS = 7 * 24 * 60 * 60;
/** A grant's expiry may be at most this far in the future. */
export const MAX_GRANT_LIFETIME_SECONDS = 100 * 365 * 24 * 60 * 60;

/** Strings supplied by clients. */
export const MAX_TEAM_ID_LENGTH = 128;
export const MAX_IDEMPOTENCY_KEY_LENGTH = 255;
export const MAX_REFERENCE_LENGTH = 200;
export const MAX_NAME_LENGTH = 200;
export const MAX_PLAN_ID_LENGTH = 64;
export const MAX_FEATURE_LENGTH = 64;
export const MAX_DIMENSIONS = 16;
export const MAX_DIMENSION_KEY_LENGTH = 40;
export const MAX_DIMENSION_VALUE_LENGTH = 200;
export const MAX_SEATS = 100_000;

/** Idempotency records are kept at least this long (API.md promises 24 hours), then purged. */
export const IDEMPOTENCY_RETENTION_SECONDS = 48 * 60 * 60;
/** Records purged per alarm run, so a purge never stalls the object. */
export const IDEMPOTENCY_PURGE_BATCH = 500;

/** Expirations (grants and holds) settled per call; the alarm continues where a call stopped. */
export const SETTLE_BATCH = 500;

/** Outbox to D1: entries per D1 batch, batches per alarm run, and the retry backoff. */
export const OUTBOX_ROWS_PER_D1_BATCH = 500;
export const OUTBOX_BATCHES_PER_ALARM = 20;
export const OUTBOX_FLUSH_DELAY_MS = 200;
export const OUTBOX_BACKOFF_BASE_MS = 1_000;
export const OUTBOX_BACKOFF_MAX_MS = 60_000;
/** A D1 write slower than this counts as failed; the retry is safe because inserts are idempotent. */
export const OUTBOX_D1_TIMEOUT_MS = 10_000;

/** Chain verification over D1: rows per D1 read, and entries checked per request (then a cursor). */
export const VERIFY_PAGE_ROWS = 1_000;
export const VERIFY_MAX_ENTRIES_PER_REQUEST = 100_000;

function check(condition: boolean, message: string): void {
  if (!condition) throw new Error(`limits.ts: ${message}`);
}
check(MAX_AMOUNT_CREDITS * MAX_BATCH_ITEMS <= MAX_BALANCE_CREDITS, "a full batch must fit in a balance");
check(MAX_BALANCE_CREDITS * 2 < Number.MAX_SAFE_INTEGER, "balance arithmetic must stay safe");
check(MAX_AMOUNT_CREDITS * MAX_QUANTITY > 0, "quantity bound sane");
check(DEFAULT_PAGE_SIZE <= MAX_PAGE_SIZE, "default page within max");
check(EXPORT_PAGE_ROWS >= MAX_PAGE_SIZE && EXPORT_PAGE_ROWS <= 1000, "export pages are bounded");
check(MIN_HOLD_TTL_SECONDS < MAX_HOLD_TTL_SECONDS, "hold TTL range");
check(OUTBOX_BACKOFF_BASE_MS <= OUTBOX_BACKOFF_MAX_MS, "backoff range");
check(IDEMPOTENCY_RETENTION_SECONDS >= 24 * 60 * 60, "API.md promises 24 hours of idempotency");
check(OUTBOX_ROWS_PER_D1_BATCH <= 1000, "D1 batches stay small");
check(VERIFY_PAGE_ROWS <= VERIFY_MAX_ENTRIES_PER_REQUEST, "a verify page fits in one request");
