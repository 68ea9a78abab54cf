/**
 * Who may do what with a team's credits: the role matrix (API.md, from the seeds). A request may
 * say which person it acts for (`X-Actor-Id`, `X-Actor-Role`); when it does, the role decides here;
 * when it does not, the API key's scopes alone decide. Pure: the rules and their reasons, as values.
 *
 *   role                         use credits            buy credits   decide credit requests
 *   owner, admin                 yes                    yes           yes
 *   author, designer             yes                    no            no
 *   viewer, accountant           no                     no            no
 *   manager (of a subaccount)    yes, when sharing on   no            no
 *
 * A subaccount never buys, whatever the role (Landingi: the agency buys for it). Buying needs a
 * paid plan (the Space, Visla): a team on no plan or a free plan is refused with the reason.
 * Paying an invoice or a service with credits (the client portal) is using credits: an accountant
 * may not, though invoices are an accountant's trade (Landingi's matrix: accountants never use
 * credits, and no seed names a role that pays invoices without using them).
 */
import { type Failure, failure } from "./failure";
import type { Plan } from "./plans";
import type { Team } from "./vocabulary";

export const ACTOR_ROLES = ["owner", "admin", "author", "designer", "viewer", "accountant", "manager"] as const;
export type ActorRole = (typeof ACTOR_ROLES)[number];

/** The person a request acts for, when it names one. */
export interface Actor {
  id: string;
  role: ActorRole;
}

const BUYERS: ReadonlySet<ActorRole> = new Set(["owner", "admin"]);
const DECIDERS: ReadonlySet<ActorRole> = new Set(["owner", "admin"]);
const USERS: ReadonlySet<ActorRole> = new Set(["owner", "admin", "author", "designer", "manager"]);

/** Why this actor may not buy credits for this team (checkout, credit requests), or null. */
export function buyingRefusal(team: Pick<Team, "kind">, plan: Plan | null, actor: Actor | undefined): Failure | null {
  if (team.kind === "subaccount")
    return failure("forbidden", "a subaccount cannot buy credits: its agency buys them", { reason: "subaccount" });
  if (actor && !BUYERS.has(actor.role))
    return failure("forbidden", `the role ${actor.role} may not buy credits (owners and admins may)`, {
      reason: "role",
      role: actor.role,
    });
  if (!plan)
    return failure("forbidden", "buying credits needs a paid plan; the team has no plan", { reason: "no_plan" });
  if (!plan.paid)
    return failure("forbidden", `buying credits needs a paid plan; ${plan.id} is free`, {
      reason: "free_plan",
      planId: plan.id,
    });
  return null;
}

/** Why this actor may not accept or reject a team's credit requests, or null. */
export function decidingRefusal(actor: Actor | undefined): Failure | null {
  if (actor && !DECIDERS.has(actor.role))
    return failure("forbidden", `the role ${actor.role} may not decide credit requests (owners and admins may)`, {
      reason: "role",
      role: actor.role,
    });
  return null;
}

/** Why this actor may not spend the team's credits, or null. */
export function spendingRefusal(team: Pick<Team, "kind" | "settings">, actor: Actor | undefined): Failure | null {
  if (!actor) return null;
  if (!USERS.has(actor.role))
    return failure("forbidden", `the role ${actor.role} may not use credits`, { reason: "role", role: actor.role });
  if (actor.role === "manager" && team.kind === "subaccount" && !team.settings.shareCreditsWithSubaccounts)
    return failure("forbidden", "this subaccount's manager may use credits only while its agency shares them", {
      reason: "sharing_off",
    });
  return null;
}
