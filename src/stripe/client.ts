/**
 * The Stripe SDK as the worker uses it: on its fetch HTTP client (Workers have no Node http) and
 * SubtleCrypto for webhook signatures (the synchronous verifier does not work there). The fetch
 * is looked up when each request leaves, not when the client is built, so the one client per key
 * an isolate keeps follows whatever `fetch` the runtime has (the tests stub Stripe's API there).
 */
import Stripe from "stripe";
import { STRIPE_MAX_NETWORK_RETRIES, STRIPE_TIMEOUT_MS } from "../limits";

let cached: { key: string; client: Stripe } | null = null;

/** The Stripe client for the configured key, or null when Stripe is not configured. */
export function stripeClient(env: Pick<Cloudflare.Env, "STRIPE_SECRET_KEY">): Stripe | null {
  const key = env.STRIPE_SECRET_KEY;
  if (!key) return null;
  if (cached?.key !== key) {
    const client = new Stripe(key, {
      httpClient: Stripe.createFetchHttpClient((input, init) => fetch(input, init)),
      maxNetworkRetries: STRIPE_MAX_NETWORK_RETRIES,
      timeout: STRIPE_TIMEOUT_MS,
      appInfo: { name: "credits-ledger" },
    });
    cached = { key, client };
  }
  return cached.client;
}

export const subtleCrypto = Stripe.createSubtleCryptoProvider();

/** Verifies a webhook's raw body and signature header; throws Stripe's signature error otherwise. */
export function verifyStripeEvent(
  rawBody: string,
  signature: string,
  secret: string,
  toleranceSeconds: number,
): Promise<Stripe.Event> {
  // Verification needs no API key: a client without one (the SDK allows it) does only this.
  return Stripe.webhooks.constructEventAsync(rawBody, signature, secret, toleranceSeconds, subtleCrypto);
}
