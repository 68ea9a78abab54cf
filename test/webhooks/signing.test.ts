/**
 * Secrets, signatures and the retry schedule (src/webhooks/signing.ts, retry.ts): a signature this
 * service makes verifies with the standardwebhooks package (and a tampered one does not), secrets
 * are checked to the byte, and the schedule's numbers are the ones the README states.
 */
import { Webhook } from "standardwebhooks";
import { describe, expect, it } from "vitest";
import { WEBHOOK_RETRY_SPAN_MS } from "../../src/limits";
import { DEFAULT_RETRY_SCHEDULE, retryDelayMs } from "../../src/webhooks/retry";
import {
  generateSecret,
  parseSecret,
  SECRET_PREFIX,
  secretPrefix,
  signature,
  signingKey,
  toBase64,
} from "../../src/webhooks/signing";

const secretOf = (bytes: number) => SECRET_PREFIX + toBase64(new Uint8Array(bytes).fill(7));

describe("secrets", () => {
  it("generates whsec_ + base64 of 32 random bytes, different every time", () => {
    const a = generateSecret();
    const b = generateSecret();
    expect(a).toMatch(/^whsec_[A-Za-z0-9+/]{43}=$/);
    expect(a).not.toBe(b);
    const parsed = parseSecret(a);
    expect(parsed.ok && parsed.key.length).toBe(32);
  });

  it("accepts 24 to 64 bytes and refuses the rest", () => {
    for (const n of [24, 25, 32, 64]) expect(parseSecret(secretOf(n)).ok, `${n} bytes`).toBe(true);
    for (const n of [0, 1, 23, 65, 100]) expect(parseSecret(secretOf(n)).ok, `${n} bytes`).toBe(false);
  });

  it("refuses a missing prefix, non-base64 and a non-canonical spelling", () => {
    const good = secretOf(32);
    for (const bad of [
      good.slice(SECRET_PREFIX.length),
      `whsec-${good.slice(6)}`,
      `${good.slice(0, -1)}`,
      `${good}=`,
      `${good.slice(0, 10)}*${good.slice(11)}`,
      `whsec_${toBase64(new Uint8Array(32)).replaceAll("=", "")}`,
      // "AB==" decodes to one byte as "AA==" does: only the canonical spelling is the secret.
      `whsec_${"A".repeat(40)}AB==`,
    ])
      expect(parseSecret(bad).ok, bad).toBe(false);
  });

  it("shows only a prefix of a secret", () => {
    const s = generateSecret();
    expect(secretPrefix(s)).toBe(s.slice(0, 10));
    expect(secretPrefix(s).length).toBeLessThan(s.length / 4);
  });
});

describe("signatures", () => {
  it("verify with the standardwebhooks package, and a tampered body, id or timestamp does not", async () => {
    const secret = generateSecret();
    const parsed = parseSecret(secret);
    if (!parsed.ok) throw new Error(parsed.reason);
    const key = await signingKey(parsed.key);
    const id = "evt_0123456789abcdef0123456789abcdef";
    const ts = Math.floor(Date.now() / 1000);
    const body = JSON.stringify({ id, teamId: "acme", seq: 1, type: "balance.low", data: { é: "ü" } });
    const headers = {
      "webhook-id": id,
      "webhook-timestamp": String(ts),
      "webhook-signature": await signature(key, id, ts, body),
    };
    expect(headers["webhook-signature"]).toMatch(/^v1,[A-Za-z0-9+/]{43}=$/);
    const wh = new Webhook(secret);
    expect(wh.verify(body, headers)).toEqual(JSON.parse(body));
    expect(() => wh.verify(`${body} `, headers)).toThrow();
    expect(() => wh.verify(body, { ...headers, "webhook-id": "evt_other" })).toThrow();
    expect(() => wh.verify(body, { ...headers, "webhook-timestamp": String(ts + 1) })).toThrow();
    expect(() => new Webhook(generateSecret()).verify(body, headers)).toThrow();
    // The same computation as the library's own signer.
    expect(headers["webhook-signature"]).toBe(wh.sign(id, new Date(ts * 1000), body));
  });
});

describe("the retry schedule", () => {
  it("doubles from 1 minute to a cap of 8 hours, then the round is over after 18 attempts", () => {
    const mid = () => 0.5; // jitter factor exactly 1
    const delays = Array.from({ length: 17 }, (_, i) => retryDelayMs(i + 1, DEFAULT_RETRY_SCHEDULE, mid));
    expect(delays.slice(0, 10)).toEqual([1, 2, 4, 8, 16, 32, 64, 128, 256, 480].map((m) => m * 60_000));
    expect(delays.slice(9).every((d) => d === 8 * 3_600_000)).toBe(true);
    expect(retryDelayMs(18, DEFAULT_RETRY_SCHEDULE, mid)).toBeNull();
    const span = delays.reduce<number>((sum, d) => sum + (d ?? 0), 0);
    expect(span).toBe(WEBHOOK_RETRY_SPAN_MS);
    expect(span / 3_600_000).toBeCloseTo(72.5, 0);
  });

  it("jitters each delay by at most ±20%", () => {
    expect(retryDelayMs(3, DEFAULT_RETRY_SCHEDULE, () => 0)).toBe(0.8 * 4 * 60_000);
    expect(retryDelayMs(3, DEFAULT_RETRY_SCHEDULE, () => 0.999999)).toBeCloseTo(1.2 * 4 * 60_000, -1);
    const seen = new Set(Array.from({ length: 50 }, () => retryDelayMs(1, DEFAULT_RETRY_SCHEDULE)));
    expect(seen.size).toBeGreaterThan(1);
    for (const d of seen) expect(d).toBeGreaterThanOrEqual(48_000);
  });
});
