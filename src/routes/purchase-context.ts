/**
 * What every way of buying credits checks first (Checkout, credit requests): the team as its
 * object knows it, its plan as the price book has it now (the isolate's copy, at most 2 s stale,
 * so a pack shows and gives the same credits), and whether this actor may buy for this team
 * (domain/roles.ts: a paid plan, a buying role, never a subaccount). A refusal is thrown as the
 * problem it is (403 with its `reason`; 400 for a pack or amount the plan does not sell).
 */
import type { Context } from "hono";
import type { AppEnv } from "../app-env";
import { catalogView } from "../client/catalog-copy";
import { teamLedger, unwrap } from "../client/ledger-client";
import { type Plan, type PricedPurchase, type PurchaseChoice, pricePurchase } from "../domain/plans";
import { type Actor, buyingRefusal } from "../domain/roles";
import type { Team } from "../domain/vocabulary";
import { ApiError } from "../http/problem";

export interface PurchaseContext {
  team: Team;
  /** The team's plan (buying needs one, and a paid one). */
  plan: Plan;
  actor: Actor | undefined;
}

/** The team, its plan and the actor, once buying is allowed; throws the refusal otherwise. */
export async function purchaseContext(c: Context<AppEnv>, teamId: string): Promise<PurchaseContext> {
  const team = unwrap(c, await teamLedger(c.env, teamId).getTeam(teamId));
  const view = await catalogView(c.env, (p) => c.executionCtx.waitUntil(p));
  const plan = team.planId === null ? null : (view.plans.get(team.planId) ?? null);
  const actor = c.get("actor");
  const refusal = buyingRefusal(team, plan, actor);
  if (refusal) throw ApiError.from({ ...refusal, replayed: false });
  if (!plan) throw new Error("buyingRefusal lets no team without a plan through");
  return { team, plan, actor };
}

/** The credits and price of a pack or custom amount on the context's plan; 400 when it does not sell it. */
export function pricedOn(ctx: PurchaseContext, choice: PurchaseChoice): PricedPurchase {
  const priced = pricePurchase(ctx.plan, choice);
  if (!priced.ok) throw new ApiError("invalid_request", priced.detail);
  const { ok: _ok, ...rest } = priced;
  return rest;
}
