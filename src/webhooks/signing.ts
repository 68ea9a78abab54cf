/**
 * Webhook secrets and signatures, per the Standard Webhooks spec: a secret is `whsec_` + base64 of
 * random bytes; a delivery is signed `v1,` + base64(HMAC-SHA256(key, `${id}.${timestamp}.${body}`))
 * where the key is the secret's decoded bytes. Kept apart from the objects so the format is
 * written once, for the directory (which checks and generates secrets) and the endpoint (which signs).
 */
import { WEBHOOK_SECRET_GENERATED_BYTES, WEBHOOK_SECRET_MAX_BYTES, WEBHOOK_SECRET_MIN_BYTES } from "../limits";

export const SECRET_PREFIX = "whsec_";
/** Characters of a secret that reads show: the prefix and 4 base64 characters (24 bits of the key). */
const SHOWN_CHARS = SECRET_PREFIX.length + 4;

const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

export function toBase64(bytes: Uint8Array): string {
  let text = "";
  for (const b of bytes) text += String.fromCharCode(b);
  return btoa(text);
}

/** The key bytes of a secret, or why it is not one this service accepts. */
export function parseSecret(secret: string): { ok: true; key: Uint8Array } | { ok: false; reason: string } {
  const rule = `a secret is "${SECRET_PREFIX}" + base64 of ${WEBHOOK_SECRET_MIN_BYTES} to ${WEBHOOK_SECRET_MAX_BYTES} bytes`;
  if (!secret.startsWith(SECRET_PREFIX)) return { ok: false, reason: rule };
  const encoded = secret.slice(SECRET_PREFIX.length);
  if (!BASE64.test(encoded)) return { ok: false, reason: `${rule}; the part after the prefix is not base64` };
  const key = Uint8Array.from(atob(encoded), (c) => c.charCodeAt(0));
  // Only the canonical spelling: another one (stray bits in the last character) decodes the same
  // and would make two different-looking secrets one key.
  if (toBase64(key) !== encoded) return { ok: false, reason: `${rule}; the base64 is not in its canonical form` };
  if (key.length < WEBHOOK_SECRET_MIN_BYTES || key.length > WEBHOOK_SECRET_MAX_BYTES)
    return { ok: false, reason: `${rule}; this one has ${key.length}` };
  return { ok: true, key };
}

/** A new secret from the runtime's CSPRNG. */
export function generateSecret(): string {
  return SECRET_PREFIX + toBase64(crypto.getRandomValues(new Uint8Array(WEBHOOK_SECRET_GENERATED_BYTES)));
}

/** What reads show of a secret: enough to tell two apart, too little to use. */
export function secretPrefix(secret: string): string {
  return secret.slice(0, SHOWN_CHARS);
}

/** An HMAC key for signing with a secret's key bytes. */
export function signingKey(key: Uint8Array): Promise<CryptoKey> {
  return crypto.subtle.importKey("raw", key, { name: "HMAC", hash: "SHA-256" }, false, ["sign"]);
}

/** The `webhook-signature` header value for one attempt. */
export async function signature(key: CryptoKey, id: string, timestampSeconds: number, body: string): Promise<string> {
  const mac = await crypto.subtle.sign("HMAC", key, new TextEncoder().encode(`${id}.${timestampSeconds}.${body}`));
  return `v1,${toBase64(new Uint8Array(mac))}`;
}
