/**
 * Opaque cursors: what a list route needs to continue (a seq, a hash) as base64url text, tagged
 * with the route's own prefix so one route's cursor is not taken for another's. Decoding checks
 * the exact shape; anything else is a 400, never a guess.
 */
import { ApiError } from "../http/problem";

/** `tag:field:field…` as base64url without padding. */
export function encodeCursor(tag: string, fields: readonly (string | number)[]): string {
  return btoa([tag, ...fields].join(":"))
    .replaceAll("=", "")
    .replaceAll("+", "-")
    .replaceAll("/", "_");
}

/**
 * The fields of a cursor this service issued with `tag`, each matching its pattern, or a 400.
 * @example decodeCursor(encodeCursor("s", [42]), "s", [/^\d{1,15}$/]) // ["42"]
 */
export function decodeCursor(cursor: string, tag: string, patterns: readonly RegExp[]): string[] {
  let text = "";
  try {
    text = atob(cursor.replaceAll("-", "+").replaceAll("_", "/"));
  } catch {
    throw new ApiError("invalid_request", "cursor is not one this service issued");
  }
  const [head, ...fields] = text.split(":");
  if (head !== tag || fields.length !== patterns.length || !fields.every((f, i) => patterns[i]?.test(f)))
    throw new ApiError("invalid_request", "cursor is not one this service issued");
  return fields;
}

export const SEQ_PATTERN = /^\d{1,15}$/;
export const HASH_PATTERN = /^[0-9a-f]{64}$/;

/** A cursor that continues after a text key of any characters (a team id, an actor id): URI-encoded, so no `:`. */
export function encodeTextCursor(tag: string, text: string): string {
  return encodeCursor(tag, [encodeURIComponent(text)]);
}

/** The text key a cursor from encodeTextCursor(tag, …) continues after, or a 400. */
export function decodeTextCursor(cursor: string, tag: string): string {
  const [encoded = ""] = decodeCursor(cursor, tag, [/^[A-Za-z0-9%._~!*'()-]{1,1200}$/]);
  try {
    return decodeURIComponent(encoded);
  } catch {
    throw new ApiError("invalid_request", "cursor is not one this service issued");
  }
}
