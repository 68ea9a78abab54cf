/**
 * What an API key is: its scopes, its wire form and its digest. A key reads
 * `ck_<id>_<secret>`: the id (public, shown in lists as the key's prefix) finds the key; the secret
 * (32 random bytes, base64url) proves it. Only SHA-256 of the secret is stored: the secret is shown
 * once, when the key is made. Secrets are 256 random bits, so a fast digest is enough (there is
 * nothing to brute-force a dictionary against); digests are compared with timingSafeEqual.
 */

/** API.md's scopes: `admin` is everything; the others name what a key may do (middleware/access.ts). */
export const SCOPES = ["admin", "spend", "read", "billing"] as const;
export type Scope = (typeof SCOPES)[number];

/** A key as the worker checks it (never the secret). */
export interface KeyRecord {
  id: string;
  scopes: Scope[];
  /** The one team the key may act on; null: any team (and the account-wide routes, with `admin`). */
  teamId: string | null;
  /** SHA-256 of the secret, lowercase hex. */
  secretDigest: string;
  expiresAtMs: number | null;
  revokedAtMs: number | null;
  /**
   * A key bound to a team may carry its own limit: at most this many credits a calendar month
   * (UTC) spent or held with it (Unkey's credits per key); null: none. The team's object enforces it.
   */
  spendLimitCreditsPerMonth: number | null;
}

const KEY_FORM = /^ck_([a-z0-9]{16})_([A-Za-z0-9_-]{43})$/;

/** The key's id and secret, or null when the text is not a key of ours. */
export function parseApiKey(text: string): { id: string; secret: string } | null {
  const m = KEY_FORM.exec(text);
  return m?.[1] && m[2] ? { id: m[1], secret: m[2] } : null;
}

function base64url(bytes: Uint8Array): string {
  let s = "";
  for (const b of bytes) s += String.fromCharCode(b);
  return btoa(s).replaceAll("+", "-").replaceAll("/", "_").replace(/=+$/, "");
}

/** A new key: its id, its secret and the text the caller keeps. */
export function newApiKey(): { id: string; secret: string; key: string } {
  const alphabet = "abcdefghijklmnopqrstuvwxyz0123456789";
  const idBytes = crypto.getRandomValues(new Uint8Array(16));
  // 256 is a multiple of 36 only approximately: the id is an identifier, not a secret, so the
  // slight bias of `% 36` costs nothing.
  const id = Array.from(idBytes, (b) => alphabet[b % alphabet.length]).join("");
  const secret = base64url(crypto.getRandomValues(new Uint8Array(32)));
  return { id, secret, key: `ck_${id}_${secret}` };
}

const encoder = new TextEncoder();

/** Bytes as lowercase hex. */
export const toHex = (bytes: ArrayBuffer | Uint8Array): string =>
  Array.from(new Uint8Array(bytes), (b) => b.toString(16).padStart(2, "0")).join("");

/** SHA-256 of a secret (a key's, or the ADMIN_API_KEY), as lowercase hex. */
export async function secretDigest(secret: string): Promise<string> {
  return toHex(await crypto.subtle.digest("SHA-256", encoder.encode(secret)));
}

/** Equal digests, compared in constant time (both are 64 hex characters by construction). */
export function sameDigest(a: string, b: string): boolean {
  const x = encoder.encode(a);
  const y = encoder.encode(b);
  return x.byteLength === y.byteLength && crypto.subtle.timingSafeEqual(x, y);
}

/** Why a key that was found does not let the request in, if it does not. */
export function keyRefusal(key: KeyRecord, nowMs: number): "revoked" | "expired" | null {
  if (key.revokedAtMs !== null && key.revokedAtMs <= nowMs) return "revoked";
  if (key.expiresAtMs !== null && key.expiresAtMs <= nowMs) return "expired";
  return null;
}
