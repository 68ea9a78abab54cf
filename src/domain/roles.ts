/**
 * Who may do what with a team's credits: the role matrix (API.md, from the seeds; a team may set its
 * own, `settings.roleMatrix`). A request may
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

/**
 * Which roles may do what: a team setting (`settings.roleMatrix`), the seeds' defaults when the
 * team has none. The subaccount rules (never buy; a manager uses credits only while sharing is on)
 * are not the matrix's: they hold whatever it says.
 */
export interface RoleMatrix {
  useCredits: ActorRole[];
  buyCredits: ActorRole[];
  decideCreditRequests: ActorRole[];
}

export const DEFAULT_ROLE_MATRIX: Readonly<RoleMatrix> = {
  useCredits: ["owner", "admin", "author", "designer", "manager"],
  buyCredits: ["owner", "admin"],
  decideCreditRequests: ["owner", "admin"],
};

/** The team's matrix (its setting, or the defaults). */
function matrixOf(team: { settings?: { roleMatrix?: RoleMatrix | null } } | undefined): Readonly<RoleMatrix> {
  return team?.settings?.roleMatrix ?? DEFAULT_ROLE_MATRIX;
}

/** Who may, said in a sentence. */
const whoMay = (roles: readonly ActorRole[]) => (roles.length === 0 ? "no role may" : `${roles.join(", ")} may`);

type WithMatrix = { settings?: { roleMatrix?: RoleMatrix | null } };

/** Why this actor may not buy credits for this team (checkout, credit requests), or null. */
export function buyingRefusal(
  team: Pick<Team, "kind"> & WithMatrix,
  plan: Plan | null,
  actor: Actor | undefined,
): Failure | null {
  if (team.kind === "subaccount")
    return failure("forbidden", "a subaccount cannot buy credits: its agency buys them", { reason: "subaccount" });
  const buyers = matrixOf(team).buyCredits;
  if (actor && !buyers.includes(actor.role))
    return failure("forbidden", `the role ${actor.role} may not buy credits (${whoMay(buyers)})`, {
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
export function decidingRefusal(actor: Actor | undefined, team?: WithMatrix): Failure | null {
  const deciders = matrixOf(team).decideCreditRequests;
  if (actor && !deciders.includes(actor.role))
    return failure("forbidden", `the role ${actor.role} may not decide credit requests (${whoMay(deciders)})`, {
      reason: "role",
      role: actor.role,
    });
  return null;
}

/**
 * Why this actor may not spend the team's credits, or null. `poolShared`: the credits are the
 * agency's pool, shared with this subaccount now (a subaccount's manager uses credits only then).
 */
export function spendingRefusal(
  team: Pick<Team, "kind"> & WithMatrix,
  actor: Actor | undefined,
  poolShared = false,
): Failure | null {
  if (!actor) return null;
  const users = matrixOf(team).useCredits;
  if (!users.includes(actor.role))
    return failure("forbidden", `the role ${actor.role} may not use credits (${whoMay(users)})`, {
      reason: "role",
      role: actor.role,
    });
  if (actor.role === "manager" && team.kind === "subaccount" && !poolShared)
    return failure("forbidden", "this subaccount's manager may use credits only while its agency shares them", {
      reason: "sharing_off",
    });
  return null;
}

/** Owners and admins of an agency: who turns sharing on and off and sets caps (API.md's matrix). */
export const POOL_ADMIN_ROLES: readonly ActorRole[] = ["owner", "admin"];

/** Why this actor may not turn an agency's sharing on or off or set a cap on its pool, or null. */
export function poolAdminRefusal(actor: Actor | undefined, what: string): Failure | null {
  if (actor && !POOL_ADMIN_ROLES.includes(actor.role))
    return failure("forbidden", `the role ${actor.role} may not ${what} (${whoMay(POOL_ADMIN_ROLES)})`, {
      reason: "role",
      role: actor.role,
    });
  return null;
}
