/**
 * Text a client sends must be well-formed Unicode without NUL. A lone surrogate (e.g. the JSON
 * string "x\ud800y") cannot be stored as UTF-8: SQLite would keep U+FFFD instead, and the hash
 * chain, computed over what was sent, would no longer match what was stored. NUL ends strings in
 * too many tools (SQLite's own text functions among them). Both are refused at the edge, in every
 * string field, so what the ledger stores and hashes is exactly what the client sent.
 */

/** A high surrogate not followed by a low one, or a low one not preceded by a high one. */
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

/** True when `s` has no lone surrogate and no NUL. */
export function isStorableText(s: string): boolean {
  return !s.includes("\u0000") && !LONE_SURROGATE.test(s);
}

export const STORABLE_TEXT_RULE = "must be well-formed Unicode (no lone surrogates) without NUL characters";
