import { describe, expect, it } from "vitest";
import { api, expectProblem, expectStatus, newTeamId } from "../support";

interface OpenApiParameter {
  name: string;
  in: string;
  required?: boolean;
}
interface OpenApiOperation {
  parameters?: OpenApiParameter[];
  responses?: Record<string, unknown>;
  requestBody?: unknown;
}
interface OpenApiDoc {
  openapi: string;
  info: { title: string; version: string };
  paths: Record<string, Record<string, OpenApiOperation>>;
  components?: { securitySchemes?: Record<string, unknown>; schemas?: Record<string, unknown> };
}

/** The routes of API.md this service implements so far, with their methods. */
const DOCUMENTED: [string, string][] = [
  ["/v1/teams/{teamId}", "put"],
  ["/v1/teams/{teamId}", "get"],
  ["/v1/teams/{teamId}/balance", "get"],
  ["/v1/teams/{teamId}/spends", "post"],
  ["/v1/teams/{teamId}/spends/batch", "post"],
  ["/v1/teams/{teamId}/holds", "post"],
  ["/v1/teams/{teamId}/holds/{holdId}", "get"],
  ["/v1/teams/{teamId}/holds/{holdId}/capture", "post"],
  ["/v1/teams/{teamId}/holds/{holdId}/release", "post"],
  ["/v1/teams/{teamId}/holds/{holdId}/extend", "post"],
  ["/v1/teams/{teamId}/grants", "post"],
  ["/v1/teams/{teamId}/grants/{grantId}/void", "post"],
  ["/v1/teams/{teamId}/entries", "get"],
  ["/healthz", "get"],
];

/** Buying credits (API.md): present, and `payments` takes a required Idempotency-Key like a spend. */
const BUYING: [string, string][] = [
  ["/v1/teams/{teamId}/checkout-sessions", "post"],
  ["/webhooks/stripe", "post"],
  ["/v1/stripe/unmatched-events", "get"],
  ["/v1/teams/{teamId}/credit-requests", "post"],
  ["/v1/teams/{teamId}/credit-requests", "get"],
  ["/v1/teams/{teamId}/credit-requests/{requestId}/accept", "post"],
  ["/v1/teams/{teamId}/credit-requests/{requestId}/reject", "post"],
  ["/v1/teams/{teamId}/payment-options", "get"],
  ["/v1/teams/{teamId}/payments", "post"],
];

const NEEDS_IDEMPOTENCY_KEY = DOCUMENTED.filter(
  ([path, method]) => method === "post" && path.startsWith("/v1/teams/{teamId}/"),
);

describe("GET /openapi.json", () => {
  it("is an OpenAPI 3.1 document listing every route, with their methods", async () => {
    const res = await api<OpenApiDoc>("/openapi.json", { auth: false });
    expectStatus(res, 200);
    expect(res.headers.get("content-type")).toContain("application/json");
    const doc = res.body;
    expect(doc.openapi).toMatch(/^3\.1/);
    expect(doc.info.title.length).toBeGreaterThan(0);
    for (const [path, method] of [...DOCUMENTED, ...BUYING]) {
      expect(doc.paths[path], path).toBeDefined();
      expect(doc.paths[path]?.[method], `${method.toUpperCase()} ${path}`).toBeDefined();
    }
    expect(doc.components?.securitySchemes?.bearer).toMatchObject({ type: "http", scheme: "bearer" });
  });

  it("declares the required Idempotency-Key header and the problem responses", async () => {
    const res = await api<OpenApiDoc>("/openapi.json", { auth: false });
    expectStatus(res, 200);
    for (const [path, method] of NEEDS_IDEMPOTENCY_KEY) {
      const op = res.body.paths[path]?.[method];
      const header = op?.parameters?.find((p) => p.in === "header" && p.name.toLowerCase() === "idempotency-key");
      expect(header, `${method.toUpperCase()} ${path} declares Idempotency-Key`).toBeDefined();
      expect(header?.required, `${method.toUpperCase()} ${path}`).toBe(true);
      for (const status of ["400", "401", "422"]) {
        expect(op?.responses?.[status], `${method.toUpperCase()} ${path} documents ${status}`).toBeDefined();
      }
    }
    const pay = res.body.paths["/v1/teams/{teamId}/payments"]?.post;
    expect(pay?.parameters?.find((p) => p.name.toLowerCase() === "idempotency-key")?.required).toBe(true);
    // Stripe's webhook is authenticated by its signature, not the bearer key.
    expect(res.body.paths["/webhooks/stripe"]?.post?.responses?.["400"]).toBeDefined();
    for (const path of [
      "/v1/teams/{teamId}/spends",
      "/v1/teams/{teamId}/spends/batch",
      "/v1/teams/{teamId}/holds",
      "/v1/teams/{teamId}/payments",
    ]) {
      expect(res.body.paths[path]?.post?.responses?.["402"], path).toBeDefined();
    }
    for (const action of ["capture", "release", "extend"]) {
      expect(res.body.paths[`/v1/teams/{teamId}/holds/{holdId}/${action}`]?.post?.responses?.["409"]).toBeDefined();
    }
  });
});

describe("GET /docs and GET /healthz", () => {
  it("/docs serves an HTML page that points at the OpenAPI document", async () => {
    const res = await api("/docs", { auth: false });
    expectStatus(res, 200);
    expect(res.headers.get("content-type")).toContain("text/html");
    expect(res.text).toContain("/openapi.json");
  });

  it("/healthz answers {ok: true} without a key", async () => {
    const res = await api("/healthz", { auth: false });
    expectStatus(res, 200);
    expect(res.body).toEqual({ ok: true });
    const withKey = await api("/healthz");
    expectStatus(withKey, 200);
  });
});

describe("unknown routes and methods", () => {
  it("404 not_found problem+json, with a request id", async () => {
    for (const path of ["/", "/nope", "/v2/teams/x", "/healthz/extra", "/openapi.yaml"]) {
      const res = await api(path, { auth: false });
      expectProblem(res, 404, "not_found");
    }
    for (const path of ["/v1/nope", "/v1/teams", "/v1/teams/x/balance/extra", "/v1/teams/x/spends/batch/1"]) {
      expectProblem(await api(path), 404, "not_found");
    }
  });

  it("a method a route does not take is 404, never 500", async () => {
    const teamId = newTeamId("nobody");
    const cases: [string, string][] = [
      ["DELETE", `/v1/teams/${teamId}`],
      ["PATCH", `/v1/teams/${teamId}`],
      ["POST", `/v1/teams/${teamId}/balance`],
      ["GET", `/v1/teams/${teamId}/spends`],
      ["PUT", `/v1/teams/${teamId}/grants`],
      ["DELETE", "/healthz"],
    ];
    for (const [method, path] of cases) {
      const res = await api(path, { method, body: method === "GET" || method === "DELETE" ? undefined : {} });
      expectProblem(res, 404, "not_found");
    }
    expectProblem(await api(`/v1/teams/${teamId}`), 404, "not_found");
  });
});

describe("request ids", () => {
  it("every response carries X-Request-Id, and a problem's requestId is the same value", async () => {
    const teamId = newTeamId("nobody");
    const responses = [
      await api("/healthz", { auth: false }),
      await api("/openapi.json", { auth: false }),
      await api("/docs", { auth: false }),
      await api("/nope", { auth: false }),
      await api(`/v1/teams/${teamId}`, { auth: false }),
      await api(`/v1/teams/${teamId}`),
      await api("/v1/teams/bad%20id/balance"),
    ];
    const ids = responses.map((r) => r.headers.get("x-request-id"));
    for (const id of ids) expect(id).toMatch(/^[\w=-]{8,}$/);
    expect(new Set(ids).size).toBe(ids.length);
    for (const r of responses.filter((x) => x.status >= 400)) {
      expect((r.body as { requestId: string }).requestId).toBe(r.headers.get("x-request-id"));
    }
  });
});
