/**
 * fast-check arbitraries derived from the JSON Schemas in the served OpenAPI document, so the fuzz
 * tests follow the contract as the service publishes it (a new field or bound shows up without a
 * test edit). Two modes per schema:
 *
 * - `validArb`: values the schema accepts, biased to boundaries (min, max, min+1, max−1, the
 *   shortest and longest strings) and to small amounts, so valid requests keep reaching the ledger
 *   instead of all failing with 402.
 * - `fuzzArb`: mostly valid values in which any node may be swapped for an odd one (`oddValueArb`:
 *   0, −1, 1.5, 2**53, 1e12+1, NaN-like strings, huge strings, emoji, RTL, NUL, lone surrogates,
 *   wrong types, deep nesting), objects may lose a required key or gain an unknown or `__proto__`
 *   key, and arrays may be just past their bounds.
 *
 * The document carries `{}` (any) for `dimensions`: zod-openapi cannot describe the input pipe
 * (unknown → refuse `__proto__` → record) behind DimensionsInput. `DIMENSIONS_SCHEMA` supplies what
 * the zod schema accepts so the generator still makes valid dimensions.
 */
import fc from "fast-check";

export interface JsonSchema {
  $ref?: string;
  type?: string | string[];
  properties?: Record<string, JsonSchema>;
  required?: string[];
  additionalProperties?: boolean | JsonSchema;
  propertyNames?: JsonSchema;
  items?: JsonSchema;
  minItems?: number;
  maxItems?: number;
  minLength?: number;
  maxLength?: number;
  pattern?: string;
  format?: string;
  minimum?: number;
  maximum?: number;
  exclusiveMinimum?: number;
  exclusiveMaximum?: number;
  enum?: unknown[];
  const?: unknown;
  anyOf?: JsonSchema[];
  oneOf?: JsonSchema[];
  allOf?: JsonSchema[];
  nullable?: boolean;
}

/** What `dimensions` accepts (src/routes/schemas.ts Dimensions), which the document leaves as `{}`. */
export const DIMENSIONS_SCHEMA: JsonSchema = {
  type: "object",
  propertyNames: { type: "string", pattern: "^[A-Za-z0-9][A-Za-z0-9_.:-]{0,39}$" },
  additionalProperties: { type: "string", maxLength: 200 },
  maxItems: 16,
};

/** Overrides for properties the document under-describes, by property name. */
const PROPERTY_OVERRIDES: Record<string, JsonSchema> = { dimensions: DIMENSIONS_SCHEMA };

export type Resolver = (ref: string) => JsonSchema;

export function makeResolver(components: Record<string, JsonSchema>): Resolver {
  return (ref) => {
    const name = ref.replace("#/components/schemas/", "");
    const found = components[name];
    if (!found) throw new Error(`unresolved $ref ${ref}`);
    return found;
  };
}

// ---- odd values ----------------------------------------------------------------------------------

const LONE_SURROGATES = ["\ud800", "\udfff", "a\ud83d", "\ude00b"];
const ODD_STRINGS = [
  "",
  " ",
  "NaN",
  "-NaN",
  "Infinity",
  "-Infinity",
  "1e3",
  "0x10",
  "10",
  "-1",
  "null",
  "undefined",
  "true",
  "__proto__",
  "constructor",
  "toString",
  "\u0000",
  "a\u0000b",
  "😀",
  "👩‍👩‍👧‍👦",
  "\u202eevil\u202c",
  "مرحبا",
  "שלום",
  "\u200b",
  "\ufeff",
  "e\u0301",
  "ǅ",
  "ﬀ",
  "\r\n",
  "'; DROP TABLE entries; --",
  "=1+1",
  "@SUM(A1)",
  "../../etc/passwd",
  "%2F",
  "a/b",
  "<script>",
  ...LONE_SURROGATES,
];

/** Numbers at and around every bound the service has, plus the ones JSON can carry but zod may not. */
export const ODD_NUMBERS = [
  0,
  -0,
  -1,
  1,
  1.5,
  0.1,
  -1.5,
  2 ** 31,
  2 ** 32,
  2 ** 53,
  2 ** 53 - 1,
  2 ** 53 + 2,
  -(2 ** 53),
  1e12,
  1e12 + 1,
  1e12 - 1,
  1e15,
  1e15 + 1,
  1e21,
  1e308,
  -1e308,
  5e-324,
  604_800,
  604_801,
  1_000_000,
  1_000_001,
  1_000_000_000,
  1_000_000_001,
];

const hugeString = fc
  .constantFrom(10_000, 70_000, 200_000)
  .chain((n) => fc.constantFrom("a", "é", "😀", "\u0000", "\\", '"').map((c) => c.repeat(Math.ceil(n / c.length))));

export const oddStringArb: fc.Arbitrary<string> = fc.oneof(
  { weight: 6, arbitrary: fc.constantFrom(...ODD_STRINGS) },
  { weight: 3, arbitrary: fc.string({ unit: "binary", maxLength: 40 }) },
  { weight: 2, arbitrary: fc.string({ unit: "grapheme", maxLength: 40 }) },
  { weight: 1, arbitrary: hugeString },
);

/** Deep nesting: arrays or objects nested n levels. */
export function nested(depth: number, kind: "array" | "object"): unknown {
  let v: unknown = 1;
  for (let i = 0; i < depth; i++) v = kind === "array" ? [v] : { a: v };
  return v;
}

/** A value of any JSON type, weighted to the ones that break validators. */
export const oddValueArb: fc.Arbitrary<unknown> = fc.oneof(
  { weight: 6, arbitrary: fc.constantFrom<unknown>(...ODD_NUMBERS) },
  { weight: 5, arbitrary: oddStringArb },
  { weight: 2, arbitrary: fc.constantFrom<unknown>(null, true, false, [], {}, [1], { "": 1 }, [[[]]]) },
  { weight: 1, arbitrary: fc.jsonValue({ maxDepth: 3 }) },
  {
    weight: 1,
    arbitrary: fc.constantFrom(20, 200, 5_000).chain((d) => fc.constantFrom(nested(d, "array"), nested(d, "object"))),
  },
);

// ---- valid values --------------------------------------------------------------------------------

/** ISO-8601 instants: mostly near now (past and future), some at the edges of the calendar. */
export const isoDateTimeArb: fc.Arbitrary<string> = fc.oneof(
  {
    weight: 4,
    arbitrary: fc
      .integer({ min: -400 * 86_400, max: 400 * 86_400 })
      .map((s) => new Date(Date.now() + s * 1000).toISOString()),
  },
  {
    weight: 1,
    arbitrary: fc.constantFrom(
      "1970-01-01T00:00:00Z",
      "0000-01-01T00:00:00Z",
      "9999-12-31T23:59:59.999Z",
      "2026-02-30T00:00:00Z",
      "2026-13-01T00:00:00Z",
      "2026-01-01T24:00:00Z",
      "2026-01-01T00:00:60Z",
      "2026-01-01T00:00:00+14:00",
      "2026-01-01T00:00:00-12:00",
      "2026-01-01T00:00:00.123456789Z",
      "2126-01-01T00:00:00Z",
    ),
  },
);

function integerArb(min: number, max: number): fc.Arbitrary<number> {
  const edges = [...new Set([min, max, min + 1, max - 1])].filter((n) => n >= min && n <= max);
  return fc.oneof(
    { weight: 4, arbitrary: fc.integer({ min, max: Math.min(max, min + 100) }) },
    { weight: 2, arbitrary: fc.constantFrom(...edges) },
    { weight: 1, arbitrary: fc.integer({ min, max }) },
  );
}

function stringArb(s: JsonSchema): fc.Arbitrary<string> {
  const min = s.minLength ?? 0;
  const max = s.maxLength ?? 300;
  if (s.format === "date-time") return isoDateTimeArb;
  if (s.pattern !== undefined) {
    const re = new RegExp(s.pattern);
    return fc.stringMatching(re).filter((v) => v.length >= min && v.length <= max);
  }
  const edges = fc.oneof(
    fc.constant("x".repeat(Math.max(min, 1))),
    fc.constant("é".repeat(max)),
    fc.constant("😀".repeat(Math.floor(max / 2))),
  );
  return fc.oneof(
    { weight: 4, arbitrary: fc.string({ unit: "grapheme", minLength: min, maxLength: Math.min(max, 40) }) },
    { weight: 1, arbitrary: edges.filter((v) => v.length >= min && v.length <= max) },
  );
}

function typeOf(s: JsonSchema): string | undefined {
  if (Array.isArray(s.type)) return s.type.find((t) => t !== "null");
  if (s.type !== undefined) return s.type;
  if (s.properties !== undefined) return "object";
  return undefined;
}

interface Walk {
  resolve: Resolver;
  /** Per node: the chance (1 in n) that a fuzzed node is odd instead of valid. 0: never. */
  oddOneIn: number;
}

function walk(schema: JsonSchema, w: Walk, depth: number): fc.Arbitrary<unknown> {
  if (schema.$ref !== undefined) return walk(w.resolve(schema.$ref), w, depth);
  const valid = validNode(schema, w, depth);
  if (w.oddOneIn === 0) return valid;
  return fc.oneof({ weight: w.oddOneIn, arbitrary: valid }, { weight: 1, arbitrary: oddValueArb });
}

function validNode(s: JsonSchema, w: Walk, depth: number): fc.Arbitrary<unknown> {
  if (s.const !== undefined) return fc.constant(s.const);
  if (s.enum !== undefined && s.enum.length > 0) return fc.constantFrom(...s.enum);
  const alternatives = s.anyOf ?? s.oneOf;
  if (alternatives !== undefined && alternatives.length > 0)
    return fc.oneof(...alternatives.map((a) => walk(a, w, depth + 1)));
  if (s.allOf !== undefined && s.allOf.length === 1 && s.allOf[0]) return walk(s.allOf[0], w, depth + 1);
  switch (typeOf(s)) {
    case "string":
      return stringArb(s);
    case "integer": {
      const min = s.minimum ?? (s.exclusiveMinimum !== undefined ? s.exclusiveMinimum + 1 : -(2 ** 31));
      const max = s.maximum ?? (s.exclusiveMaximum !== undefined ? s.exclusiveMaximum - 1 : 2 ** 31);
      return integerArb(min, max);
    }
    case "number":
      return fc.double({ min: s.minimum ?? -1e9, max: s.maximum ?? 1e9, noNaN: true, noDefaultInfinity: true });
    case "boolean":
      return fc.boolean();
    case "array": {
      const item = s.items ? walk(s.items, w, depth + 1) : fc.jsonValue({ maxDepth: 2 });
      const min = s.minItems ?? 0;
      const max = s.maxItems ?? 10;
      const small = fc.array(item, { minLength: min, maxLength: Math.min(max, min + 6) });
      if (s.maxItems === undefined || s.maxItems > 2000) return small;
      // Rarely, exactly at the bound and one past it (a 1000-item batch is one transaction).
      const atBound = fc
        .constantFrom(s.maxItems, s.maxItems + 1)
        .chain((n) => fc.array(item, { minLength: n, maxLength: n }));
      return fc.oneof({ weight: 30, arbitrary: small }, { weight: 1, arbitrary: atBound });
    }
    case "object":
      return objectArb(s, w, depth);
    default:
      return depth > 3 ? fc.jsonValue({ maxDepth: 1 }) : fc.jsonValue({ maxDepth: 3 });
  }
}

function objectArb(s: JsonSchema, w: Walk, depth: number): fc.Arbitrary<Record<string, unknown>> {
  if (s.properties === undefined || Object.keys(s.properties).length === 0) {
    // A record: keys from propertyNames, values from additionalProperties.
    const keyArb = s.propertyNames ? (validNode(s.propertyNames, w, depth + 1) as fc.Arbitrary<string>) : fc.string();
    const valueArb =
      typeof s.additionalProperties === "object" ? walk(s.additionalProperties, w, depth + 1) : fc.jsonValue();
    return fc.dictionary(keyArb, valueArb, { maxKeys: Math.min(s.maxItems ?? 4, 4), noNullPrototype: true });
  }
  const required = new Set(s.required ?? []);
  const model: Record<string, fc.Arbitrary<unknown>> = {};
  for (const [name, prop] of Object.entries(s.properties)) {
    model[name] = walk(PROPERTY_OVERRIDES[name] ?? prop, w, depth + 1);
  }
  return fc.record(model, { requiredKeys: [...required].filter((k) => k in model) });
}

export function validArb(schema: JsonSchema, resolve: Resolver): fc.Arbitrary<unknown> {
  return walk(schema, { resolve, oddOneIn: 0 }, 0);
}

/** Structural edits on top of a (mostly valid) object. */
type ObjectEdit =
  | { kind: "none" }
  | { kind: "drop"; pick: number }
  | { kind: "extra"; key: string; value: unknown }
  | { kind: "proto" };

const editArb: fc.Arbitrary<ObjectEdit> = fc.oneof(
  { weight: 12, arbitrary: fc.constant<ObjectEdit>({ kind: "none" }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant("drop" as const), pick: fc.nat({ max: 20 }) }) },
  {
    weight: 1,
    arbitrary: fc.record({
      kind: fc.constant("extra" as const),
      key: fc.oneof(fc.constantFrom("amount ", "Amount", "extra", "", "__proto__x", "constructor"), fc.string()),
      value: oddValueArb,
    }),
  },
  { weight: 1, arbitrary: fc.constant<ObjectEdit>({ kind: "proto" }) },
);

function applyEdit(value: unknown, edit: ObjectEdit): unknown {
  if (edit.kind === "none" || typeof value !== "object" || value === null || Array.isArray(value)) return value;
  const copy: Record<string, unknown> = { ...(value as Record<string, unknown>) };
  if (edit.kind === "drop") {
    const keys = Object.keys(copy);
    const key = keys[edit.pick % Math.max(keys.length, 1)];
    if (key !== undefined) delete copy[key];
  } else if (edit.kind === "extra") {
    copy[edit.key] = edit.value;
  } else {
    Object.defineProperty(copy, "__proto__", { value: { amount: 1 }, enumerable: true, configurable: true });
  }
  return copy;
}

/** Mostly-valid values with odd nodes and structural edits. */
export function fuzzArb(schema: JsonSchema, resolve: Resolver, oddOneIn = 14): fc.Arbitrary<unknown> {
  return fc.tuple(walk(schema, { resolve, oddOneIn }, 0), editArb).map(([value, edit]) => applyEdit(value, edit));
}
