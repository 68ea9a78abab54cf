/**
 * API keys: POST /v1/api-keys makes a key (its secret is in this response and nowhere else: only
 * its digest is kept), GET lists them (prefix, scopes, team, created, last used; never the secret),
 * DELETE revokes one. Only an admin key bound to no team may manage keys (middleware/access.ts).
 * The directory is keys/key-directory-object.ts; checking a key is middleware/auth.ts.
 */
import { createRoute, type OpenAPIHono, z } from "@hono/zod-openapi";
import type { AppEnv } from "../app-env";
import { idempotency, teamLedger, unwrap } from "../client/ledger-client";
import { ApiError } from "../http/problem";
import { SCOPES } from "../keys/api-key";
import { dropKeyCopy } from "../keys/key-copy";
import { keyDirectoryStub } from "../keys/key-directory-object";
import { DEFAULT_PAGE_SIZE, MAX_API_KEY_NAME_LENGTH, MAX_CAP_CREDITS_PER_PERIOD, MAX_PAGE_SIZE } from "../limits";
import { decodeCursor, encodeCursor } from "./cursor";
import { commonErrors, errorResponse, mutationErrors, OptionalIdempotencyHeaders, TeamId, Text } from "./schemas";

const tags = ["API keys"];

const Scope = z.enum(SCOPES);

const KeyInput = z
  .object({
    name: Text(MAX_API_KEY_NAME_LENGTH),
    scopes: z
      .array(Scope)
      .min(1)
      .max(SCOPES.length)
      .refine((s) => new Set(s).size === s.length, "each scope once")
      .openapi({ description: "admin (everything), spend, read, billing" }),
    teamId: TeamId.optional().openapi({ description: "bind the key to this one team" }),
    expiresAt: z.iso.datetime({ offset: true }).optional().openapi({ description: "the key stops working then" }),
    spendLimitCreditsPerMonth: z
      .number()
      .int()
      .min(0)
      .max(MAX_CAP_CREDITS_PER_PERIOD)
      .optional()
      .openapi({
        description:
          "a key bound to a team only: at most this many credits a calendar month (UTC) spent or held with it " +
          "(a hold counts when made); past it, 402 cap_exceeded with scope key",
      }),
  })
  .strict()
  .refine((k) => k.spendLimitCreditsPerMonth === undefined || k.teamId !== undefined, {
    message: "spendLimitCreditsPerMonth: only a key bound to a team (teamId) has its own spend limit",
    path: ["spendLimitCreditsPerMonth"],
  })
  .openapi("ApiKeyInput");

const ApiKey = z
  .object({
    id: z.string(),
    name: z.string(),
    prefix: z.string().openapi({ description: "the key's first characters, ck_<id>" }),
    scopes: z.array(Scope),
    teamId: z.string().nullable(),
    createdAt: z.string(),
    expiresAt: z.string().nullable(),
    lastUsedAt: z.string().nullable().openapi({ description: "to the minute" }),
    spendLimitCreditsPerMonth: z.number().int().nullable(),
  })
  .openapi("ApiKey");

const CreatedKey = ApiKey.extend({
  key: z.string().openapi({ description: "the secret key: shown this once, stored only as a digest" }),
}).openapi("CreatedApiKey");

const KeyParams = z.object({
  keyId: z
    .string()
    .regex(/^[a-z0-9]{16}$/, "not a key id this service issued")
    .openapi({ param: { name: "keyId", in: "path" } }),
});

const ListQuery = z.object({
  limit: z.coerce.number().int().min(1).max(MAX_PAGE_SIZE).optional(),
  cursor: z.string().max(200).optional(),
});

const postKey = createRoute({
  method: "post",
  path: "/v1/api-keys",
  tags,
  summary: "Make an API key (its secret is shown once)",
  description:
    "With an `Idempotency-Key`, a retry gets the same key again (the reply is kept sealed under the Idempotency-Key for 48 hours; nobody without that key can read it).",
  request: {
    headers: OptionalIdempotencyHeaders,
    body: { content: { "application/json": { schema: KeyInput } }, required: true },
  },
  responses: {
    ...mutationErrors,
    201: { description: "Made", content: { "application/json": { schema: CreatedKey } } },
    409: errorResponse("conflict: the account holds the most keys it may, or the same Idempotency-Key is in flight"),
  },
});

const listKeys = createRoute({
  method: "get",
  path: "/v1/api-keys",
  tags,
  summary: "The keys not revoked, newest first (never their secrets)",
  request: { query: ListQuery },
  responses: {
    200: {
      description: "A page of keys",
      content: {
        "application/json": { schema: z.object({ apiKeys: z.array(ApiKey), nextCursor: z.string().nullable() }) },
      },
    },
    ...commonErrors,
  },
});

const deleteKey = createRoute({
  method: "delete",
  path: "/v1/api-keys/{keyId}",
  tags,
  summary: "Revoke an API key",
  request: { params: KeyParams },
  responses: { 204: { description: "Revoked" }, ...commonErrors },
});

const CURSOR_TAG = "k";

export function registerApiKeyRoutes(app: OpenAPIHono<AppEnv>): void {
  app.openapi(postKey, async (c) => {
    const input = c.req.valid("json");
    const expiresAtMs = input.expiresAt === undefined ? null : Date.parse(input.expiresAt);
    if (expiresAtMs !== null && expiresAtMs <= Date.now())
      throw new ApiError("invalid_request", "expiresAt must be in the future");
    const key = c.req.valid("header")["idempotency-key"];
    const idem = key === undefined ? null : idempotency(c, key, input);
    const reply = await keyDirectoryStub(c.env).create(
      {
        name: input.name,
        scopes: input.scopes,
        teamId: input.teamId ?? null,
        expiresAtMs,
        spendLimitCreditsPerMonth: input.spendLimitCreditsPerMonth ?? null,
      },
      idem,
    );
    if (!reply.ok) throw ApiError.from(reply);
    dropKeyCopy();
    if (reply.body.replayed) c.header("Idempotent-Replayed", "true");
    // The stored text, parsed: serialized again it is the same bytes (JSON keeps the key order).
    return c.json(JSON.parse(reply.body.text) as z.infer<typeof CreatedKey>, 201);
  });

  app.openapi(listKeys, async (c) => {
    const { limit, cursor } = c.req.valid("query");
    const after = cursor ? decodeCursor(cursor, CURSOR_TAG, [/^\d{1,15}$/, /^[a-z0-9]{16}$/]) : null;
    const page = await keyDirectoryStub(c.env).list(
      limit ?? DEFAULT_PAGE_SIZE,
      after ? { createdAtMs: Number(after[0]), id: after[1] ?? "" } : null,
    );
    const last = page.keys.at(-1);
    const nextCursor = page.more && last ? encodeCursor(CURSOR_TAG, [Date.parse(last.createdAt), last.id]) : null;
    return c.json({ apiKeys: page.keys, nextCursor }, 200);
  });

  app.openapi(deleteKey, async (c) => {
    const { keyId } = c.req.valid("param");
    const directory = keyDirectoryStub(c.env);
    // A key bound to a team is refused by that team's object first, so it stops moving credits the
    // moment this answers (every isolate's copy of the directory learns within 2 s, for reads).
    const bound = await directory.boundTeam(keyId);
    if (bound?.teamId) unwrap(c, await teamLedger(c.env, bound.teamId).revokeKey(bound.teamId, keyId));
    const reply = await directory.revoke(keyId);
    if (!reply.ok) throw ApiError.from(reply);
    dropKeyCopy();
    return c.body(null, 204);
  });
}
