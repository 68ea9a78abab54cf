/**
 * Builds the Hono app: middleware (request id, secure headers, body limits, auth, JSON bodies),
 * the one error handler, the routes, the generated OpenAPI document and the docs page.
 *
 * Two groups of paths, each with its own middleware: `/v1/*` (bearer key, JSON bodies of bounded
 * size) and `/webhooks/*`, for senders that authenticate by signature over the raw body (Stripe):
 * a body limit only, no bearer auth and no JSON check, so a webhook route reads the exact bytes it
 * must verify (routes/stripe-webhook.ts).
 */
import { OpenAPIHono } from "@hono/zod-openapi";
import { Scalar } from "@scalar/hono-api-reference";
import { bodyLimit } from "hono/body-limit";
import { HTTPException } from "hono/http-exception";
import { requestId } from "hono/request-id";
import { secureHeaders } from "hono/secure-headers";
import type { AppEnv } from "./app-env";
import { ApiError, type ErrorCode, problemResponse } from "./http/problem";
import { MAX_BATCH_BODY_BYTES, MAX_BODY_BYTES } from "./limits";
import { routeAccess } from "./middleware/access";
import { actorHeaders } from "./middleware/actor";
import { bearerAuth } from "./middleware/auth";
import { requireJsonBody } from "./middleware/json-body";
import { registerAdminRoutes } from "./routes/admin";
import { registerAgencyPoolRoutes } from "./routes/agency-pools";
import { registerApiKeyRoutes } from "./routes/api-keys";
import { registerCatalogRoutes } from "./routes/catalog";
import { registerCheckoutRoutes } from "./routes/checkout";
import { registerCreditRequestRoutes } from "./routes/credit-requests";
import { registerDiagnosticRoutes } from "./routes/diagnostics";
import { registerEntryRoutes } from "./routes/entries";
import { registerEstimateRoutes } from "./routes/estimate";
import { registerEventRoutes } from "./routes/events";
import { registerGrantRoutes } from "./routes/grants";
import { registerHoldRoutes } from "./routes/holds";
import { registerPaymentRoutes } from "./routes/payments";
import { registerReferralRoutes } from "./routes/referrals";
import { registerReportRoutes } from "./routes/reports";
import { registerSpendRoutes } from "./routes/spends";
import { registerStripeWebhookRoutes } from "./routes/stripe-webhook";
import { registerSystemRoutes } from "./routes/system";
import { registerTeamRoutes } from "./routes/teams";
import { registerVerifyRoutes } from "./routes/verify";
import { registerWebhookEndpointRoutes } from "./routes/webhook-endpoints";

/** Statuses Hono's own middleware throws, mapped onto our closed set of codes. */
function codeForStatus(status: number): ErrorCode {
  if (status === 401) return "unauthorized";
  if (status === 404) return "not_found";
  if (status === 413) return "payload_too_large";
  if (status >= 400 && status < 500) return "invalid_request";
  return "internal";
}

/** One line a person can act on, from zod's issues. */
function describeIssues(issues: readonly { path: readonly PropertyKey[]; message: string }[]): string {
  return issues
    .slice(0, 5)
    .map((i) => (i.path.length > 0 ? `${i.path.map(String).join(".")}: ${i.message}` : i.message))
    .join("; ");
}

export function buildApp(): OpenAPIHono<AppEnv> {
  const app = new OpenAPIHono<AppEnv>({
    defaultHook: (result, c) => {
      if (!result.success) {
        const issues = result.error.issues
          .slice(0, 20)
          .map((i) => ({ path: i.path.map(String).join("."), message: i.message }));
        return problemResponse(c, "invalid_request", describeIssues(result.error.issues), { issues });
      }
    },
  });

  app.use("*", requestId({ headerName: "X-Request-Id" }));
  app.use("*", secureHeaders());
  // Bodies are bounded before anything reads them; only the batch route takes more.
  const limitFor = (maxSize: number) =>
    bodyLimit({
      maxSize,
      onError: (c) => problemResponse(c, "payload_too_large", `this route takes bodies of at most ${maxSize} bytes`),
    });
  const ordinaryBody = limitFor(MAX_BODY_BYTES);
  const batchBody = limitFor(MAX_BATCH_BODY_BYTES);
  app.use("/v1/*", (c, next) => (c.req.path.endsWith("/spends/batch") ? batchBody : ordinaryBody)(c, next));
  app.use("/v1/*", bearerAuth());
  app.use("/v1/*", routeAccess());
  app.use("/v1/*", requireJsonBody());
  app.use("/v1/*", actorHeaders());
  app.use("/webhooks/*", ordinaryBody);

  app.onError((err, c) => {
    if (err instanceof ApiError) return problemResponse(c, err.code, err.message, err.extras, err.originalRequestId);
    if (err instanceof HTTPException && err.status < 500) {
      const code = codeForStatus(err.status);
      return problemResponse(c, code, err.message || code);
    }
    console.error(
      JSON.stringify({
        requestId: c.get("requestId"),
        error: String(err),
        stack: err instanceof Error ? err.stack : undefined,
      }),
    );
    return problemResponse(c, "internal", "something went wrong on our side; retry with the same Idempotency-Key");
  });
  app.notFound((c) => problemResponse(c, "not_found", `no route for ${c.req.method} ${c.req.path}`));

  registerSystemRoutes(app);
  registerTeamRoutes(app);
  registerSpendRoutes(app);
  registerHoldRoutes(app);
  registerGrantRoutes(app);
  registerEntryRoutes(app);
  registerReportRoutes(app);
  registerAdminRoutes(app);
  registerDiagnosticRoutes(app);
  registerVerifyRoutes(app);
  registerWebhookEndpointRoutes(app);
  registerCatalogRoutes(app);
  registerEstimateRoutes(app);
  registerCreditRequestRoutes(app);
  registerPaymentRoutes(app);
  registerReferralRoutes(app);
  registerEventRoutes(app);
  registerCheckoutRoutes(app);
  registerStripeWebhookRoutes(app);
  registerApiKeyRoutes(app);
  registerAgencyPoolRoutes(app);

  app.openAPIRegistry.registerComponent("securitySchemes", "bearer", { type: "http", scheme: "bearer" });
  app.doc31("/openapi.json", {
    openapi: "3.1.0",
    info: {
      title: "Credits ledger",
      version: "1.0.0",
      description:
        "Credits for SaaS apps: grants, spends, holds and an exact history. Errors are application/problem+json.\n\n" +
        "**Idempotency.** Spends, batches, holds and their actions, grants, voids and payments require an " +
        "`Idempotency-Key` (1-255 printable ASCII characters); checkout sessions, credit requests and their " +
        "decisions accept one. (The estimate writes nothing; a referral is recorded once per pair; a redelivery resends " +
        "the same event id, which receivers deduplicate on.) " +
        "The first outcome the ledger decides for a key is saved for 48 hours and returned again, byte for byte " +
        "(status and body, with `Idempotent-Replayed: true`), to every request with the same key, route and body: " +
        "successes and refusals alike (402 insufficient_credits, 409 conflict or hold_not_pending, 404 of a hold " +
        "or grant, a 400 the ledger decides such as a capture larger than its hold). A replayed refusal's body " +
        "keeps the `requestId` of the request that got it first, also sent as `Original-Request-Id`. Requests " +
        "refused before the ledger looks at them save nothing and may be retried with the same key: validation " +
        "errors (400), a missing or wrong key (401), a body too large (413), a team that does not exist (404), " +
        "and faults (500). The same key with another body or route is 422 idempotency_key_reused.",
    },
    security: [{ bearer: [] }],
  });
  app.get("/docs", Scalar({ url: "/openapi.json", pageTitle: "Credits ledger API" }));
  return app;
}
