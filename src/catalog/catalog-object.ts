/**
 * Catalog: the account's price book (features) and plans, in one SQLite-backed Durable Object
 * (named "account"). It is the single writer of this configuration and gives it one version
 * number that grows with every change, so copies elsewhere (client/catalog-copy.ts, one per worker
 * isolate) can ask "anything newer than version N?" and entries can record the version they were
 * priced at. Written rarely; read by copies, never on the spend path itself.
 */
import { DurableObject } from "cloudflare:workers";
import { type Failure, failure } from "../domain/failure";
import { creditsForMinor, type Plan } from "../domain/plans";
import type { Feature, PlanPrice, TierPrices, Unit, UnitRounding } from "../domain/pricing";
import type { Success } from "../domain/vocabulary";
import { MAX_FEATURE_ALLOCATIONS_PER_PLAN, MAX_FEATURES, MAX_PLANS } from "../limits";

/** The name of the one catalog object. */
export const CATALOG_NAME = "account";

export interface FeatureInput {
  name: string;
  unit: Unit;
  creditsPerUnit: number;
  tiers?: TierPrices | undefined;
  chargeOnSuccess?: boolean | undefined;
  creditPaymentEligible?: boolean | undefined;
  unitRounding?: UnitRounding | undefined;
}

export interface PlanInput {
  name: string;
  paid: boolean;
  currency: string;
  creditsPerCurrencyUnit: number;
  starterCredits?: number | undefined;
  monthlyCreditsPerSeat?: number | undefined;
  monthlyFeatureCreditsPerSeat?: Record<string, number> | undefined;
  rolloverMaxCredits?: number | undefined;
  packs?: { id: string; priceMinor: number }[] | undefined;
  customAmount?: { minMinor: number; maxMinor: number } | undefined;
  referral?: { signupCredits: number; upgradeCredits: number } | undefined;
  featurePrices?: Record<string, number | PlanPrice> | undefined;
}

/** The whole configuration at one version. */
export interface CatalogSnapshot {
  version: number;
  features: Feature[];
  plans: Plan[];
}

type Put<T> = Success<T> | Failure;

export class Catalog extends DurableObject<Cloudflare.Env> {
  private readonly sql: SqlStorage;

  constructor(ctx: DurableObjectState, env: Cloudflare.Env) {
    super(ctx, env);
    this.sql = ctx.storage.sql;
    ctx.storage.transactionSync(() => {
      this.sql.exec("CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL)");
      this.sql.exec("CREATE TABLE IF NOT EXISTS features (key TEXT PRIMARY KEY, doc TEXT NOT NULL)");
      this.sql.exec("CREATE TABLE IF NOT EXISTS plans (id TEXT PRIMARY KEY, doc TEXT NOT NULL)");
    });
  }

  /** The current version: 0 before anything was defined. */
  version(): number {
    const row = this.sql.exec<{ value: number }>("SELECT value FROM meta WHERE key = 'version'").toArray()[0];
    return row?.value ?? 0;
  }

  /** Everything, or null when the caller's copy at `knownVersion` is already current. */
  snapshotIfNewer(knownVersion: number): CatalogSnapshot | null {
    const version = this.version();
    return version === knownVersion ? null : this.snapshot();
  }

  snapshot(): CatalogSnapshot {
    return {
      version: this.version(),
      features: this.sql
        .exec<{ doc: string }>("SELECT doc FROM features ORDER BY key")
        .toArray()
        .map((r) => JSON.parse(r.doc) as Feature),
      plans: this.sql
        .exec<{ doc: string }>("SELECT doc FROM plans ORDER BY id")
        .toArray()
        .map((r) => JSON.parse(r.doc) as Plan),
    };
  }

  getFeature(key: string): Feature | null {
    const row = this.sql.exec<{ doc: string }>("SELECT doc FROM features WHERE key = ?", key).toArray()[0];
    return row ? (JSON.parse(row.doc) as Feature) : null;
  }

  getPlan(id: string): Plan | null {
    const row = this.sql.exec<{ doc: string }>("SELECT doc FROM plans WHERE id = ?", id).toArray()[0];
    return row ? (JSON.parse(row.doc) as Plan) : null;
  }

  putFeature(key: string, input: FeatureInput): Put<Feature> {
    return this.ctx.storage.transactionSync((): Put<Feature> => {
      const prev = this.getFeature(key);
      if (!prev && this.count("features") >= MAX_FEATURES)
        return failure("conflict", `the price book holds at most ${MAX_FEATURES} features`);
      // A tier that a plan prices cannot disappear from under it.
      const tiers = input.tiers && Object.keys(input.tiers).length > 0 ? input.tiers : null;
      for (const plan of this.allPlans()) {
        const priced = Object.hasOwn(plan.featurePrices, key) ? plan.featurePrices[key] : undefined;
        for (const tier of Object.keys(priced?.tiers ?? {}))
          if (!tiers || !(tier in tiers))
            return failure(
              "conflict",
              `plan "${plan.id}" prices tier "${tier}" of "${key}"; keep the tier or change the plan first`,
            );
      }
      const version = this.bump();
      const now = new Date().toISOString();
      const feature: Feature = {
        key,
        name: input.name,
        unit: input.unit,
        creditsPerUnit: input.creditsPerUnit,
        tiers,
        chargeOnSuccess: input.chargeOnSuccess ?? false,
        creditPaymentEligible: input.creditPaymentEligible ?? false,
        unitRounding: input.unitRounding ?? "ceil",
        version,
        createdAt: prev?.createdAt ?? now,
        updatedAt: now,
      };
      this.sql.exec(
        "INSERT INTO features (key, doc) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET doc = excluded.doc",
        key,
        JSON.stringify(feature),
      );
      return { ok: true, status: prev ? 200 : 201, body: feature, replayed: false };
    });
  }

  putPlan(id: string, input: PlanInput): Put<Plan> {
    return this.ctx.storage.transactionSync((): Put<Plan> => {
      const prev = this.getPlan(id);
      if (!prev && this.count("plans") >= MAX_PLANS)
        return failure("conflict", `an account has at most ${MAX_PLANS} plans`);
      const featurePrices: Record<string, PlanPrice> = {};
      for (const [key, price] of Object.entries(input.featurePrices ?? {})) {
        const feature = this.getFeature(key);
        if (!feature)
          return failure(
            "invalid_request",
            `featurePrices: "${key}" is not in the price book; define the feature first`,
          );
        const p: PlanPrice = typeof price === "number" ? { creditsPerUnit: price } : price;
        for (const tier of Object.keys(p.tiers ?? {}))
          if (!feature.tiers || !(tier in feature.tiers))
            return failure("invalid_request", `featurePrices.${key}: the feature has no tier "${tier}"`);
        featurePrices[key] = p;
      }
      // Feature credits name features of the price book, as featurePrices do: a typo would grant
      // credits nothing can ever spend.
      const monthlyFeatureCreditsPerSeat: Record<string, number> = {};
      const featureCredits = Object.entries(input.monthlyFeatureCreditsPerSeat ?? {});
      if (featureCredits.length > MAX_FEATURE_ALLOCATIONS_PER_PLAN)
        return failure(
          "invalid_request",
          `monthlyFeatureCreditsPerSeat: at most ${MAX_FEATURE_ALLOCATIONS_PER_PLAN} features`,
        );
      for (const [key, credits] of featureCredits) {
        if (!this.getFeature(key))
          return failure(
            "invalid_request",
            `monthlyFeatureCreditsPerSeat: "${key}" is not in the price book; define the feature first`,
          );
        monthlyFeatureCreditsPerSeat[key] = credits;
      }
      const packIds = new Set<string>();
      for (const pack of input.packs ?? []) {
        if (packIds.has(pack.id)) return failure("invalid_request", `packs: the id "${pack.id}" is used twice`);
        packIds.add(pack.id);
      }
      const rate = { currency: input.currency.toLowerCase(), creditsPerCurrencyUnit: input.creditsPerCurrencyUnit };
      const packs = (input.packs ?? []).map((p) => ({ ...p, credits: creditsForMinor(rate, p.priceMinor) }));
      const empty = packs.find((p) => p.credits < 1);
      if (empty) return failure("invalid_request", `packs: "${empty.id}" would give no credits at the plan's rate`);
      const version = this.bump();
      const now = new Date().toISOString();
      const plan: Plan = {
        id,
        name: input.name,
        paid: input.paid,
        ...rate,
        starterCredits: input.starterCredits ?? 0,
        monthlyCreditsPerSeat: input.monthlyCreditsPerSeat ?? 0,
        monthlyFeatureCreditsPerSeat,
        rolloverMaxCredits: input.rolloverMaxCredits ?? 0,
        packs,
        customAmount: input.customAmount ?? null,
        referral: input.referral ?? null,
        featurePrices,
        version,
        createdAt: prev?.createdAt ?? now,
        updatedAt: now,
      };
      this.sql.exec(
        "INSERT INTO plans (id, doc) VALUES (?, ?) ON CONFLICT (id) DO UPDATE SET doc = excluded.doc",
        id,
        JSON.stringify(plan),
      );
      return { ok: true, status: prev ? 200 : 201, body: plan, replayed: false };
    });
  }

  private allPlans(): Plan[] {
    return this.sql
      .exec<{ doc: string }>("SELECT doc FROM plans")
      .toArray()
      .map((r) => JSON.parse(r.doc) as Plan);
  }

  private count(table: "features" | "plans"): number {
    return this.sql.exec<{ n: number }>(`SELECT COUNT(*) AS n FROM ${table}`).one().n;
  }

  private bump(): number {
    const version = this.version() + 1;
    this.sql.exec(
      "INSERT INTO meta (key, value) VALUES ('version', ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
      version,
    );
    return version;
  }
}

/** The catalog object's stub. */
export function catalogStub(env: Cloudflare.Env): DurableObjectStub<Catalog> {
  return env.CATALOG.get(env.CATALOG.idFromName(CATALOG_NAME));
}
