/**
 * Outbound webhook endpoints: PUT creates or replaces one (its secret shown once), GET lists and
 * reads them (never the secret), DELETE removes one and its queue, and its deliveries can be
 * listed and sent again. The rules (URL policy, secret format, limits) live in the directory
 * object (src/webhooks/), which these routes reach only through its binding, as RPC; the shapes
 * here are the wire's.
 */
import { createRoute, type OpenAPIHono, z } from "@hono/zod-openapi";
import type { AppEnv } from "../app-env";
import { EVENT_TYPES } from "../domain/events";
import { ApiError } from "../http/problem";
import {
  DEFAULT_PAGE_SIZE,
  MAX_PAGE_SIZE,
  MAX_WEBHOOK_ENDPOINT_ID_LENGTH,
  MAX_WEBHOOK_ENDPOINTS,
  MAX_WEBHOOK_EVENT_TYPES,
  MAX_WEBHOOK_URL_LENGTH,
  WEBHOOK_SECRET_MAX_BYTES,
  WEBHOOK_SECRET_MIN_BYTES,
} from "../limits";
import { decodeCursor, encodeCursor, SEQ_PATTERN } from "./cursor";
import { commonErrors, errorResponse, ObjectId, Text } from "./schemas";

/** The one directory object's name (webhooks/directory-object.ts DIRECTORY_NAME). */
const DIRECTORY_NAME = "directory";
const CURSOR_TAG = "wd";
const SECRET_PREFIX = "whsec_";
/** The longest secret text: the prefix and base64 of the largest key. */
const MAX_SECRET_LENGTH = SECRET_PREFIX.length + 4 * Math.ceil(WEBHOOK_SECRET_MAX_BYTES / 3);

const directory = (env: Cloudflare.Env) => env.WEBHOOK_DIRECTORY.getByName(DIRECTORY_NAME);
const endpointObject = (env: Cloudflare.Env, endpointId: string) => env.WEBHOOK_ENDPOINT.getByName(endpointId);

const EndpointId = z
  .string()
  .regex(
    new RegExp(`^[A-Za-z0-9._:-]{1,${MAX_WEBHOOK_ENDPOINT_ID_LENGTH}}$`),
    `endpoint ids are 1-${MAX_WEBHOOK_ENDPOINT_ID_LENGTH} of A-Z a-z 0-9 . _ : -`,
  )
  .openapi({ example: "billing-app" });

const EndpointParams = z.object({
  endpointId: EndpointId.openapi({ param: { name: "endpointId", in: "path" } }),
});
const DeliveryParams = EndpointParams.extend({
  deliveryId: ObjectId.openapi({ param: { name: "deliveryId", in: "path" }, example: `dlv_${"0".repeat(32)}` }),
});

const EventSelector = z.enum([...EVENT_TYPES, "*"] as const);

const EndpointBody = z
  .object({
    url: Text(MAX_WEBHOOK_URL_LENGTH).openapi({
      description:
        "where deliveries are POSTed: https to a public host (under OUTBOUND_URL_POLICY=local also http://127.0.0.1 " +
        "and http://localhost); no user name or password; stored as parsed (lowercase host, a path of at least /)",
      example: "https://example.com/webhooks/credits",
    }),
    events: z
      .array(EventSelector)
      .min(1)
      .max(MAX_WEBHOOK_EVENT_TYPES)
      .refine((e) => new Set(e).size === e.length, "each event type once")
      .refine((e) => !e.includes("*") || e.length === 1, '"*" (every event type) stands alone: ["*"]')
      .openapi({ description: 'the event types to deliver, or ["*"] for all', example: ["balance.low"] }),
    secret: z
      .string()
      .min(1)
      .max(MAX_SECRET_LENGTH)
      .optional()
      .openapi({
        description:
          `"${SECRET_PREFIX}" + base64 of ${WEBHOOK_SECRET_MIN_BYTES} to ${WEBHOOK_SECRET_MAX_BYTES} bytes. Absent: a new ` +
          "endpoint gets a generated one (shown once, in this answer); an existing one keeps its own.",
      }),
  })
  .strict()
  .openapi("WebhookEndpointInput");

const WebhookEndpoint = z
  .object({
    id: z.string(),
    url: z.string(),
    events: z.array(EventSelector),
    status: z.enum(["enabled", "disabled"]).openapi({
      description: "disabled when the receiver answered 410 Gone; a PUT enables it again",
    }),
    disabledReason: z.string().nullable(),
    secretPrefix: z.string().openapi({ description: "the first characters of the secret, to tell secrets apart" }),
    version: z.number().int().openapi({ description: "1 at creation, +1 at every change" }),
    createdAt: z.string(),
    updatedAt: z.string(),
  })
  .openapi("WebhookEndpoint");

const WebhookEndpointPut = WebhookEndpoint.extend({
  secret: z.string().optional().openapi({
    description: "the signing secret, only in the answer of the PUT that set it; never shown again",
  }),
}).openapi("WebhookEndpointPutReply");

const Attempt = z
  .object({
    at: z.string(),
    durationMs: z.number().int(),
    httpStatus: z
      .number()
      .int()
      .nullable()
      .openapi({ description: "null: no answer (network error, timeout, refused URL)" }),
    error: z.string().nullable().openapi({ description: "null on a 2xx; otherwise what went wrong, truncated" }),
  })
  .openapi("WebhookAttempt");

const Delivery = z
  .object({
    id: z.string(),
    eventId: z.string().openapi({ description: "the webhook-id of every attempt: receivers deduplicate on it" }),
    eventType: z.string(),
    teamId: z.string(),
    seq: z.number().int(),
    status: z.enum(["pending", "delivered", "failed"]).openapi({
      description: "failed: its attempts are used up (about three days of retries); redeliver sends it again",
    }),
    attemptCount: z.number().int(),
    nextAttemptAt: z.string().nullable(),
    lastError: z.string().nullable(),
    createdAt: z.string(),
    attempts: z.array(Attempt).openapi({ description: "oldest first (the most recent 40)" }),
  })
  .openapi("WebhookDelivery");

const DeliveriesQuery = z.object({
  limit: z.coerce.number().int().min(1).max(MAX_PAGE_SIZE).optional(),
  cursor: z.string().max(64).optional(),
});

const tags = ["Webhooks"];

const putEndpoint = createRoute({
  method: "put",
  path: "/v1/webhook-endpoints/{endpointId}",
  tags,
  summary: "Create or replace a webhook endpoint",
  description:
    "Outbound events, signed per the Standard Webhooks spec (headers webhook-id, webhook-timestamp, " +
    `webhook-signature). At most ${MAX_WEBHOOK_ENDPOINTS} endpoints. A PUT enables a disabled endpoint again.`,
  request: {
    params: EndpointParams,
    body: { content: { "application/json": { schema: EndpointBody } }, required: true },
  },
  responses: {
    200: { description: "Replaced", content: { "application/json": { schema: WebhookEndpointPut } } },
    201: { description: "Created", content: { "application/json": { schema: WebhookEndpointPut } } },
    ...commonErrors,
  },
});

const listEndpoints = createRoute({
  method: "get",
  path: "/v1/webhook-endpoints",
  tags,
  summary: "Every webhook endpoint, by id",
  responses: {
    200: {
      description: "The endpoints",
      content: { "application/json": { schema: z.object({ endpoints: z.array(WebhookEndpoint) }) } },
    },
    ...commonErrors,
  },
});

const getEndpoint = createRoute({
  method: "get",
  path: "/v1/webhook-endpoints/{endpointId}",
  tags,
  summary: "Read a webhook endpoint (never its secret)",
  request: { params: EndpointParams },
  responses: {
    200: { description: "The endpoint", content: { "application/json": { schema: WebhookEndpoint } } },
    ...commonErrors,
  },
});

const deleteEndpoint = createRoute({
  method: "delete",
  path: "/v1/webhook-endpoints/{endpointId}",
  tags,
  summary: "Delete a webhook endpoint and drop its pending deliveries",
  request: { params: EndpointParams },
  responses: { 204: { description: "Deleted" }, ...commonErrors },
});

const listDeliveries = createRoute({
  method: "get",
  path: "/v1/webhook-endpoints/{endpointId}/deliveries",
  tags,
  summary: "The endpoint's deliveries, newest first, with their attempts",
  request: { params: EndpointParams, query: DeliveriesQuery },
  responses: {
    200: {
      description: "A page of deliveries",
      content: {
        "application/json": {
          schema: z.object({ deliveries: z.array(Delivery), nextCursor: z.string().nullable() }),
        },
      },
    },
    ...commonErrors,
  },
});

const redeliver = createRoute({
  method: "post",
  path: "/v1/webhook-endpoints/{endpointId}/deliveries/{deliveryId}/redeliver",
  tags,
  summary: "Send a delivery again, with the same webhook-id",
  description:
    "Starts a new round of attempts now, whatever the delivery's status. No Idempotency-Key: repeating it " +
    "only queues the same delivery again, and receivers deduplicate on webhook-id.",
  request: { params: DeliveryParams },
  responses: {
    202: { description: "Queued", content: { "application/json": { schema: z.object({ delivery: Delivery }) } } },
    ...commonErrors,
    409: errorResponse("conflict: the endpoint is disabled; PUT it to enable it first"),
  },
});

function noEndpoint(endpointId: string): ApiError {
  return new ApiError("not_found", `no webhook endpoint ${endpointId}`);
}

export function registerWebhookEndpointRoutes(app: OpenAPIHono<AppEnv>): void {
  app.openapi(putEndpoint, async (c) => {
    const { endpointId } = c.req.valid("param");
    const reply = await directory(c.env).putEndpoint(endpointId, c.req.valid("json"));
    if (!reply.ok) throw ApiError.from(reply);
    try {
      // A PUT may enable the endpoint again: what waits goes out now. The PUT is saved whatever
      // happens here (its answer may carry the only copy of a new secret), and without this the
      // queue still moves at the next hand-off to the endpoint.
      await endpointObject(c.env, endpointId).wake(endpointId, reply.body.generation);
    } catch (err) {
      console.error(JSON.stringify({ requestId: c.get("requestId"), webhookWakeFailed: String(err) }));
    }
    return reply.status === 201 ? c.json(reply.body.endpoint, 201) : c.json(reply.body.endpoint, 200);
  });

  app.openapi(listEndpoints, async (c) => c.json({ endpoints: await directory(c.env).listEndpoints() }, 200));

  app.openapi(getEndpoint, async (c) => {
    const { endpointId } = c.req.valid("param");
    const endpoint = await directory(c.env).getEndpoint(endpointId);
    if (!endpoint) throw noEndpoint(endpointId);
    return c.json(endpoint, 200);
  });

  app.openapi(deleteEndpoint, async (c) => {
    const { endpointId } = c.req.valid("param");
    const gone = await directory(c.env).deleteEndpoint(endpointId);
    if (!gone) throw noEndpoint(endpointId);
    try {
      await endpointObject(c.env, endpointId).forget(endpointId, gone.generation);
    } catch (err) {
      // Deleted all the same: the endpoint's object drops its queue at its next run, finding no config.
      console.error(JSON.stringify({ requestId: c.get("requestId"), webhookForgetFailed: String(err) }));
    }
    return c.body(null, 204);
  });

  app.openapi(listDeliveries, async (c) => {
    const { endpointId } = c.req.valid("param");
    const { limit, cursor } = c.req.valid("query");
    const before = cursor === undefined ? null : Number(decodeCursor(cursor, CURSOR_TAG, [SEQ_PATTERN])[0]);
    const life = await directory(c.env).lifeOf(endpointId);
    if (!life) throw noEndpoint(endpointId);
    const page = await endpointObject(c.env, endpointId).listDeliveries(
      endpointId,
      life.generation,
      limit ?? DEFAULT_PAGE_SIZE,
      before,
    );
    const nextCursor = page.nextBefore === null ? null : encodeCursor(CURSOR_TAG, [page.nextBefore]);
    return c.json({ deliveries: page.deliveries, nextCursor }, 200);
  });

  app.openapi(redeliver, async (c) => {
    const { endpointId, deliveryId } = c.req.valid("param");
    const life = await directory(c.env).lifeOf(endpointId);
    if (!life) throw noEndpoint(endpointId);
    if (life.status === "disabled")
      throw new ApiError("conflict", `webhook endpoint ${endpointId} is disabled; PUT it to enable it, then redeliver`);
    const delivery = await endpointObject(c.env, endpointId).redeliver(endpointId, life.generation, deliveryId);
    if (!delivery) throw new ApiError("not_found", `no delivery ${deliveryId} for webhook endpoint ${endpointId}`);
    return c.json({ delivery }, 202);
  });
}
