/**
 * Who may call what: every `/v1` route's requirement, in one table, checked before the route runs.
 *
 * - A team route (`/v1/teams/{teamId}/…`) names the scopes that may call it; `admin` may call
 *   everything. A key bound to another team gets the same 404 as a team that does not exist
 *   (`team <id> not found`), whatever the route and whatever its scopes, so a key never learns
 *   whether a team it may not see exists.
 * - An account route (price book writes, plans, webhook endpoints, referrals, keys,
 *   reconciliation, unmatched Stripe events) needs an `admin` key bound to no team: 403 otherwise.
 * - Reading the price book and plans is open to every valid key (apps show prices to anyone).
 *
 * The table is the contract's scope list (API.md, issue "Organisations and access"); a test checks
 * that every route of the served OpenAPI document has a row here (test/routes/api-keys.test.ts).
 */
import type { MiddlewareHandler } from "hono";
import type { AppEnv, Caller } from "../app-env";
import { ApiError } from "../http/problem";
import type { Scope } from "../keys/api-key";

export type Requirement = { kind: "team"; scopes: readonly Scope[] } | { kind: "account" } | { kind: "anyKey" };

type Method = "GET" | "POST" | "PUT" | "DELETE";

const SPEND: readonly Scope[] = ["spend"];
const READ: readonly Scope[] = ["read"];
const BILLING: readonly Scope[] = ["billing"];
const ADMIN_ONLY: readonly Scope[] = [];
const team = (scopes: readonly Scope[]): Requirement => ({ kind: "team", scopes });
const ACCOUNT: Requirement = { kind: "account" };
const ANY_KEY: Requirement = { kind: "anyKey" };

/** Paths are written as in the OpenAPI document; `{…}` matches one path segment. */
export const ACCESS: readonly { method: Method; path: string; need: Requirement }[] = [
  { method: "PUT", path: "/v1/teams/{teamId}", need: team(ADMIN_ONLY) },
  { method: "GET", path: "/v1/teams/{teamId}", need: team(READ) },
  { method: "GET", path: "/v1/teams/{teamId}/balance", need: team([...SPEND, ...READ, ...BILLING]) },
  { method: "POST", path: "/v1/teams/{teamId}/spends", need: team(SPEND) },
  { method: "POST", path: "/v1/teams/{teamId}/spends/batch", need: team(SPEND) },
  { method: "POST", path: "/v1/teams/{teamId}/estimate", need: team(SPEND) },
  { method: "POST", path: "/v1/teams/{teamId}/holds", need: team(SPEND) },
  { method: "GET", path: "/v1/teams/{teamId}/holds/{holdId}", need: team([...SPEND, ...READ]) },
  { method: "POST", path: "/v1/teams/{teamId}/holds/{holdId}/capture", need: team(SPEND) },
  { method: "POST", path: "/v1/teams/{teamId}/holds/{holdId}/release", need: team(SPEND) },
  { method: "POST", path: "/v1/teams/{teamId}/holds/{holdId}/extend", need: team(SPEND) },
  { method: "POST", path: "/v1/teams/{teamId}/grants", need: team(ADMIN_ONLY) },
  { method: "POST", path: "/v1/teams/{teamId}/grants/{grantId}/void", need: team(ADMIN_ONLY) },
  { method: "GET", path: "/v1/teams/{teamId}/entries", need: team(READ) },
  { method: "GET", path: "/v1/teams/{teamId}/entries.csv", need: team(READ) },
  { method: "GET", path: "/v1/teams/{teamId}/entries/verify", need: team(READ) },
  { method: "GET", path: "/v1/teams/{teamId}/usage", need: team(READ) },
  { method: "GET", path: "/v1/teams/{teamId}/events", need: team(READ) },
  { method: "GET", path: "/v1/teams/{teamId}/replication", need: team(READ) },
  { method: "GET", path: "/v1/teams/{teamId}/ping", need: team(READ) },
  { method: "POST", path: "/v1/teams/{teamId}/checkout-sessions", need: team(BILLING) },
  { method: "GET", path: "/v1/teams/{teamId}/credit-requests", need: team(BILLING) },
  { method: "POST", path: "/v1/teams/{teamId}/credit-requests", need: team(BILLING) },
  { method: "GET", path: "/v1/teams/{teamId}/credit-requests/{requestId}", need: team(BILLING) },
  { method: "POST", path: "/v1/teams/{teamId}/credit-requests/{requestId}/accept", need: team(BILLING) },
  { method: "POST", path: "/v1/teams/{teamId}/credit-requests/{requestId}/reject", need: team(BILLING) },
  { method: "GET", path: "/v1/teams/{teamId}/payment-options", need: team(BILLING) },
  { method: "POST", path: "/v1/teams/{teamId}/payments", need: team(BILLING) },
  { method: "GET", path: "/v1/teams/{teamId}/member-caps", need: team(READ) },
  { method: "GET", path: "/v1/teams/{teamId}/subaccounts", need: team(READ) },
  { method: "PUT", path: "/v1/teams/{teamId}/member-caps/{actorId}", need: team(ADMIN_ONLY) },
  { method: "GET", path: "/v1/features", need: ANY_KEY },
  { method: "GET", path: "/v1/features/{featureKey}", need: ANY_KEY },
  { method: "PUT", path: "/v1/features/{featureKey}", need: ACCOUNT },
  { method: "GET", path: "/v1/plans", need: ANY_KEY },
  { method: "GET", path: "/v1/plans/{planId}", need: ANY_KEY },
  { method: "PUT", path: "/v1/plans/{planId}", need: ACCOUNT },
  { method: "POST", path: "/v1/referrals", need: ACCOUNT },
  { method: "GET", path: "/v1/admin/reconcile", need: ACCOUNT },
  { method: "POST", path: "/v1/admin/teams/{teamId}/history/resend", need: ACCOUNT },
  { method: "POST", path: "/v1/admin/history/redrive", need: ACCOUNT },
  { method: "GET", path: "/v1/admin/history/stats", need: ACCOUNT },
  { method: "GET", path: "/v1/stripe/unmatched-events", need: ACCOUNT },
  { method: "GET", path: "/v1/webhook-endpoints", need: ACCOUNT },
  { method: "GET", path: "/v1/webhook-endpoints/{endpointId}", need: ACCOUNT },
  { method: "PUT", path: "/v1/webhook-endpoints/{endpointId}", need: ACCOUNT },
  { method: "DELETE", path: "/v1/webhook-endpoints/{endpointId}", need: ACCOUNT },
  { method: "GET", path: "/v1/webhook-endpoints/{endpointId}/deliveries", need: ACCOUNT },
  { method: "POST", path: "/v1/webhook-endpoints/{endpointId}/deliveries/{deliveryId}/redeliver", need: ACCOUNT },
  { method: "GET", path: "/v1/api-keys", need: ACCOUNT },
  { method: "POST", path: "/v1/api-keys", need: ACCOUNT },
  { method: "DELETE", path: "/v1/api-keys/{keyId}", need: ACCOUNT },
];

const COMPILED = ACCESS.map((row) => ({
  ...row,
  pattern: new RegExp(`^${row.path.replaceAll(".", "\\.").replaceAll(/\{[^}]+\}/g, "([^/]+)")}$`),
  teamParam: row.path.startsWith("/v1/teams/{teamId}"),
}));

/** The row for a request, and the team id it names (percent-decoded as the route will read it). */
export function requirementOf(method: string, path: string): { need: Requirement; teamId: string | null } | null {
  for (const row of COMPILED) {
    if (row.method !== method) continue;
    const m = row.pattern.exec(path);
    if (!m) continue;
    let teamId: string | null = null;
    if (row.teamParam && m[1] !== undefined) {
      try {
        teamId = decodeURIComponent(m[1]);
      } catch {
        teamId = m[1];
      }
    }
    return { need: row.need, teamId };
  }
  return null;
}

/** Throws the refusal for a caller that may not make this request; returns when it may. */
export function checkAccess(caller: Caller, need: Requirement, teamId: string | null): void {
  const admin = caller.scopes.includes("admin");
  switch (need.kind) {
    case "anyKey":
      return;
    case "account":
      if (!admin || caller.teamId !== null)
        throw new ApiError("forbidden", "this route is the account's: it needs an admin key bound to no team");
      return;
    case "team":
      if (caller.teamId !== null && caller.teamId !== teamId)
        throw new ApiError("not_found", `team ${teamId} not found`);
      if (!admin && !need.scopes.some((s) => caller.scopes.includes(s)))
        throw new ApiError(
          "forbidden",
          `this route needs a key with the scope ${["admin", ...need.scopes].join(" or ")}`,
          { reason: "scope" },
        );
      return;
  }
}

/** Applies the table; a path no row names is left to the router (its 404). */
export function routeAccess(): MiddlewareHandler<AppEnv> {
  return async function routeAccessMiddleware(c, next) {
    const found = requirementOf(c.req.method === "HEAD" ? "GET" : c.req.method, c.req.path);
    if (found) checkAccess(c.get("caller"), found.need, found.teamId);
    await next();
  };
}
