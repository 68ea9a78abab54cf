/**
 * A key's creation answered again, byte for byte, without keeping its secret readable: the reply
 * to a keyed POST /v1/api-keys is stored sealed with AES-GCM under a key derived (HKDF-SHA-256)
 * from the request's Idempotency-Key, and filed under SHA-256 of that Idempotency-Key. Whoever
 * holds the directory's storage sees digests and ciphertext; only a caller who sends the same
 * Idempotency-Key again (with an account admin key) can open the reply. Records are purged after
 * IDEMPOTENCY_RETENTION_SECONDS, like the ledger's.
 */
import { toHex as hex } from "./api-key";

const encoder = new TextEncoder();

/** Where the reply is filed: the Idempotency-Key's digest (the key itself is never stored). */
export async function replyIndex(idempotencyKey: string): Promise<string> {
  return hex(await crypto.subtle.digest("SHA-256", encoder.encode(`index:${idempotencyKey}`)));
}

async function sealingKey(idempotencyKey: string, usage: "encrypt" | "decrypt"): Promise<CryptoKey> {
  const material = await crypto.subtle.importKey("raw", encoder.encode(idempotencyKey), "HKDF", false, ["deriveKey"]);
  return crypto.subtle.deriveKey(
    { name: "HKDF", hash: "SHA-256", salt: encoder.encode("credits-ledger api key reply"), info: new Uint8Array() },
    material,
    { name: "AES-GCM", length: 256 },
    false,
    [usage],
  );
}

export async function sealReply(idempotencyKey: string, text: string): Promise<{ iv: string; sealed: string }> {
  const iv = crypto.getRandomValues(new Uint8Array(12));
  const key = await sealingKey(idempotencyKey, "encrypt");
  const sealed = await crypto.subtle.encrypt({ name: "AES-GCM", iv }, key, encoder.encode(text));
  return { iv: hex(iv), sealed: hex(sealed) };
}

const fromHex = (h: string) => new Uint8Array((h.match(/../g) ?? []).map((b) => Number.parseInt(b, 16)));

export async function openReply(idempotencyKey: string, iv: string, sealed: string): Promise<string> {
  const key = await sealingKey(idempotencyKey, "decrypt");
  const plain = await crypto.subtle.decrypt({ name: "AES-GCM", iv: fromHex(iv) }, key, fromHex(sealed));
  return new TextDecoder().decode(plain);
}
