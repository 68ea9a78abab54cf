/**
 * Stripe for the tests, with no network: webhook events built from Stripe's own example objects
 * (test/fixtures/stripe/, copied from stripe/openapi) and signed with the stripe package exactly
 * as Stripe signs them; and Stripe's API answered at the fetch level (the worker's Stripe client
 * looks `fetch` up per request, see src/stripe/client.ts), recording every call it makes.
 */
import { env, SELF } from "cloudflare:test";
import Stripe from "stripe";
import { afterEach, vi } from "vitest";
import objects from "../fixtures/stripe/objects.json";
import { type CallResult, readResponse } from "./calls";

type Json = Record<string, unknown>;
const clone = <T>(v: T): T => JSON.parse(JSON.stringify(v)) as T;

let n = 0;
/** A Stripe-looking id no other test uses. */
export function stripeId(prefix: string): string {
  n += 1;
  return `${prefix}_test_${Date.now().toString(36)}${n}${crypto.randomUUID().slice(0, 8)}`;
}

/** Stripe's example object of this kind, with `changes` applied on top (shallow). */
export function stripeObject(kind: keyof typeof objects, changes: Json = {}): Json {
  return { ...clone(objects[kind] as Json), ...changes };
}

/** A completed Checkout Session of ours: team, credits and payment intent set as checkout sets them. */
export function checkoutSession(
  teamId: string,
  credits: number,
  changes: Json & { id?: string; payment_intent?: string; amount_total?: number } = {},
): Json {
  const metadata = { teamId, credits: String(credits), ...(changes.metadata as Json | undefined) };
  return stripeObject("checkout.session", {
    id: stripeId("cs"),
    payment_intent: stripeId("pi"),
    mode: "payment",
    status: "complete",
    payment_status: "paid",
    amount_total: 2500,
    currency: "usd",
    client_reference_id: teamId,
    ...changes,
    metadata,
  });
}

export function refundObject(paymentIntentId: string, amount: number, changes: Json = {}): Json {
  return stripeObject("refund", {
    id: stripeId("re"),
    payment_intent: paymentIntentId,
    amount,
    status: "succeeded",
    ...changes,
  });
}

export function disputeObject(paymentIntentId: string, amount: number, changes: Json = {}): Json {
  return stripeObject("dispute", { id: stripeId("dp"), payment_intent: paymentIntentId, amount, ...changes });
}

/** A Stripe event wrapping `object`, as its webhook body (text). */
export function eventBody(type: string, object: Json, changes: Json = {}): string {
  return JSON.stringify(
    stripeObject("event", {
      id: stripeId("evt"),
      type,
      api_version: "2025-01-27.acacia",
      created: Math.floor(Date.now() / 1000),
      data: { object },
      ...changes,
    }),
  );
}

const webhooks = Stripe.webhooks;

/** The Stripe-Signature header for a body, signed with the tests' webhook secret (or another). */
export function signatureFor(body: string, opts: { secret?: string; timestamp?: number } = {}): Promise<string> {
  return webhooks.generateTestHeaderStringAsync({
    payload: body,
    secret: opts.secret ?? env.STRIPE_WEBHOOK_SECRET ?? "",
    timestamp: opts.timestamp ?? Math.floor(Date.now() / 1000),
    cryptoProvider: Stripe.createSubtleCryptoProvider(),
  });
}

/** POSTs a body to the webhook with the header given (a valid signature unless told). */
export async function postStripeWebhook(body: string, signature?: string | null): Promise<CallResult> {
  const headers: Record<string, string> = { "content-type": "application/json" };
  const sig = signature === undefined ? await signatureFor(body) : signature;
  if (sig !== null) headers["stripe-signature"] = sig;
  return readResponse(await SELF.fetch("https://ledger.test/webhooks/stripe", { method: "POST", headers, body }));
}

/** Signs and delivers one event; the answer must be 200. */
export async function deliver(type: string, object: Json): Promise<Json> {
  const res = await postStripeWebhook(eventBody(type, object));
  if (res.status !== 200) throw new Error(`webhook ${type}: ${res.status} ${res.text}`);
  return res.body;
}

/** One call the worker made to Stripe's API. */
export interface StripeCall {
  method: string;
  path: string;
  /** The form-encoded body, decoded (Stripe's API takes application/x-www-form-urlencoded). */
  form: URLSearchParams;
  idempotencyKey: string | null;
}

export type StripeAnswer = (
  call: StripeCall,
) => { status?: number; body: Json } | Promise<{ status?: number; body: Json }>;

/** Calls to the stub not answered yet (an object's alarm may be waiting on one). */
let inFlight = 0;

/**
 * Answers Stripe's API (https://api.stripe.com) with `answer` until the test ends; every other
 * request goes to the real fetch. Returns the calls made, in order. `answer` may wait (a gate
 * the test opens), to hold a payment mid-flight.
 */
export function stubStripeApi(answer: StripeAnswer): StripeCall[] {
  const calls: StripeCall[] = [];
  const realFetch = globalThis.fetch;
  vi.spyOn(globalThis, "fetch").mockImplementation(async (input: RequestInfo | URL, init?: RequestInit) => {
    const request = new Request(input, init);
    const url = new URL(request.url);
    if (url.hostname !== "api.stripe.com") return realFetch(input, init);
    inFlight += 1;
    try {
      const call: StripeCall = {
        method: request.method,
        path: url.pathname,
        // Stripe's API takes form bodies; decoded from bytes (Request.text() warns on a form content type).
        form: new URLSearchParams(new TextDecoder().decode(await request.arrayBuffer())),
        idempotencyKey: request.headers.get("idempotency-key"),
      };
      calls.push(call);
      const { status = 200, body } = await answer(call);
      return new Response(JSON.stringify(body), {
        status,
        headers: { "content-type": "application/json", "request-id": `req_${calls.length}` },
      });
    } finally {
      inFlight -= 1;
    }
  });
  return calls;
}

/**
 * Waits until no call to the stub is waiting for its answer, and a little longer, so the object
 * that made one has written what it learned. An object's alarm may fire on its own at any time
 * (it is due at once): tests that count Stripe calls wait for it this way.
 */
export async function stripeIdle(maxMs = 10_000): Promise<void> {
  const until = Date.now() + maxMs;
  let quietChecks = 0;
  while (quietChecks < 3) {
    if (Date.now() > until) throw new Error("a call to Stripe's stub never finished");
    await new Promise((r) => setTimeout(r, 50));
    quietChecks = inFlight === 0 ? quietChecks + 1 : 0;
  }
}

afterEach(() => {
  vi.restoreAllMocks();
});
