/**
 * The worker's copy of the price book and plans, one per isolate, so a priced spend reads its
 * price from memory: no D1 query and no extra RPC on the spend path in the steady state.
 *
 * Freshness: a copy younger than CATALOG_REFRESH_AFTER_MS is used as is; an older one is still
 * used while a single background refresh asks the catalog object for anything newer than the
 * copy's version (`snapshotIfNewer`: one small RPC, the whole catalog only when it changed); a
 * copy older than CATALOG_MAX_STALENESS_MS is never used: the request waits for the refresh. So a
 * change is seen by every isolate at most CATALOG_MAX_STALENESS_MS after its PUT returned, and at
 * once by the isolate that served the PUT (which drops its copy). See README "Prices and plans".
 */
import { type CatalogSnapshot, catalogStub } from "../catalog/catalog-object";

/** The catalog object, for the routes that define and list what it holds. */
export { catalogStub };

import type { Plan } from "../domain/plans";
import {
  type ChargeKind,
  type ChargeRequest,
  type Feature,
  type FeatureQuote,
  type PlanPrice,
  priceCharge,
} from "../domain/pricing";
import { ApiError } from "../http/problem";
import { CATALOG_MAX_STALENESS_MS, CATALOG_REFRESH_AFTER_MS } from "../limits";

/** The catalog indexed for pricing. */
export class CatalogView {
  readonly features: ReadonlyMap<string, Feature>;
  readonly plans: ReadonlyMap<string, Plan>;
  private readonly quotes = new Map<string, FeatureQuote>();

  constructor(readonly snapshot: CatalogSnapshot) {
    this.features = new Map(snapshot.features.map((f) => [f.key, f]));
    this.plans = new Map(snapshot.plans.map((p) => [p.id, p]));
    const planPrices = new Map<string, Record<string, PlanPrice>>();
    for (const plan of snapshot.plans)
      for (const [key, price] of Object.entries(plan.featurePrices)) {
        const forFeature = planPrices.get(key) ?? {};
        forFeature[plan.id] = price;
        planPrices.set(key, forFeature);
      }
    for (const f of snapshot.features)
      this.quotes.set(f.key, {
        feature: {
          key: f.key,
          unit: f.unit,
          creditsPerUnit: f.creditsPerUnit,
          tiers: f.tiers,
          chargeOnSuccess: f.chargeOnSuccess,
          unitRounding: f.unitRounding,
        },
        catalogVersion: snapshot.version,
        planPrices: planPrices.get(f.key) ?? {},
      });
  }

  get version(): number {
    return this.snapshot.version;
  }

  /** Pricing's view of one feature; undefined when the price book has no such feature. */
  quote(featureKey: string): FeatureQuote | undefined {
    return this.quotes.get(featureKey);
  }

  /** The quotes for several features (a batch), keyed by feature. */
  quotesFor(featureKeys: Iterable<string>): Record<string, FeatureQuote> {
    const out: Record<string, FeatureQuote> = {};
    for (const key of featureKeys) {
      const q = this.quotes.get(key);
      if (q) out[key] = q;
    }
    return out;
  }
}

interface Copy {
  view: CatalogView;
  fetchedAtMs: number;
}

let copy: Copy | null = null;
let refreshing: Promise<Copy> | null = null;

function refresh(env: Cloudflare.Env): Promise<Copy> {
  if (refreshing) return refreshing;
  const startedAtMs = Date.now();
  const known = copy;
  refreshing = catalogStub(env)
    .snapshotIfNewer(known?.view.version ?? -1)
    .then((snapshot) => {
      // Fresh from when the request left: what it read was current then.
      const next: Copy = {
        view: snapshot ? new CatalogView(snapshot) : (known as Copy).view,
        fetchedAtMs: startedAtMs,
      };
      copy = next;
      return next;
    })
    .finally(() => {
      refreshing = null;
    });
  return refreshing;
}

/**
 * The isolate's catalog, fresh within CATALOG_MAX_STALENESS_MS. `background` keeps a refresh
 * alive after the response (the execution context's waitUntil).
 */
export async function catalogView(
  env: Cloudflare.Env,
  background?: (p: Promise<unknown>) => void,
): Promise<CatalogView> {
  const now = Date.now();
  const current = copy;
  if (current && now - current.fetchedAtMs < CATALOG_REFRESH_AFTER_MS) return current.view;
  if (current && now - current.fetchedAtMs < CATALOG_MAX_STALENESS_MS) {
    const p = refresh(env).catch((err: unknown) => {
      console.error(JSON.stringify({ catalogRefresh: String(err) }));
    });
    background?.(p);
    return current.view;
  }
  return (await refresh(env)).view;
}

/** After a change through this isolate: its next request reads the catalog again. */
export function dropCatalogCopy(): void {
  copy = null;
}

/**
 * The price book's quote for a charge, after checking what can be checked without the team's
 * plan (an unknown feature or tier, a quantity the unit cannot take, a spend of a feature charged
 * only on success): those are the request's own 400s, refused before the ledger and saved
 * nowhere. The team object prices the charge again with its plan.
 */
export function quoteCharge(
  view: CatalogView,
  request: ChargeRequest,
  kind: ChargeKind,
  maxCredits: number,
  where?: string,
): FeatureQuote | undefined {
  const quote = view.quote(request.feature);
  const checked = priceCharge(request, quote, null, kind, maxCredits, where);
  if (!checked.ok) throw ApiError.from(checked);
  return quote;
}
