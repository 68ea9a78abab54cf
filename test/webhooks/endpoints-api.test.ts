/**
 * The webhook endpoint routes, black box through the worker: PUT creates (201, secret shown once)
 * and replaces (200, secret kept unless sent), GET and the list never show the secret, DELETE
 * removes, and every bad input is a 400 problem saying why (SSRF refusals included), every
 * unknown endpoint or delivery a 404. The OpenAPI document lists what the routes answer.
 */
import { describe, expect, it } from "vitest";
import { MAX_WEBHOOK_ENDPOINTS } from "../../src/limits";
import { generateSecret, SECRET_PREFIX, toBase64 } from "../../src/webhooks/signing";
import { api, expectProblem, expectStatus } from "../support";
import { createEndpoint, getEndpoint, newEndpointId, newHook, putEndpoint } from "./support";

const HTTPS = "https://hooks.example.com/credits";

describe("PUT /v1/webhook-endpoints/{endpointId}", () => {
  it("creates an endpoint with a generated secret shown once, then GET shows only its prefix", async () => {
    const id = newEndpointId();
    const created = await putEndpoint(id, { url: HTTPS, events: ["balance.low", "grant.created"] });
    expectStatus(created, 201);
    expect(created.body).toMatchObject({
      id,
      url: HTTPS,
      events: ["balance.low", "grant.created"],
      status: "enabled",
      disabledReason: null,
      version: 1,
    });
    const secret = created.body.secret ?? "";
    expect(secret).toMatch(/^whsec_[A-Za-z0-9+/]{43}=$/);
    expect(created.body.secretPrefix).toBe(secret.slice(0, 10));

    const read = await api(`/v1/webhook-endpoints/${id}`);
    expectStatus(read, 200);
    expect(read.body).not.toHaveProperty("secret");
    expect(read.text).not.toContain(secret.slice(10));
    expect(read.body).toMatchObject({ id, secretPrefix: secret.slice(0, 10), status: "enabled" });

    const list = await api<{ endpoints: Record<string, unknown>[] }>("/v1/webhook-endpoints");
    expectStatus(list, 200);
    expect(list.body.endpoints.map((e) => e.id)).toContain(id);
    expect(list.text).not.toContain(secret.slice(10));
  });

  it("replaces an endpoint (200) and keeps its secret unless one is sent; a retried PUT shows no secret", async () => {
    const id = newEndpointId();
    const first = await createEndpoint(id, HTTPS, ["*"]);
    const again = await putEndpoint(id, { url: "https://other.example.com/x", events: ["hold.expired"] });
    expectStatus(again, 200);
    expect(again.body).not.toHaveProperty("secret");
    expect(again.body).toMatchObject({ url: "https://other.example.com/x", events: ["hold.expired"], version: 2 });
    expect(again.body.secretPrefix).toBe(first.secretPrefix);
    expect(again.body.createdAt).toBe(first.createdAt);

    const mine = generateSecret();
    const rotated = await putEndpoint(id, { url: HTTPS, events: ["*"], secret: mine });
    expectStatus(rotated, 200);
    expect(rotated.body.secret).toBe(mine);
    expect((await getEndpoint(id)).secretPrefix).toBe(mine.slice(0, 10));
  });

  it("takes a given secret of 24 to 64 bytes and refuses any other", async () => {
    const ok24 = SECRET_PREFIX + toBase64(crypto.getRandomValues(new Uint8Array(24)));
    const created = await putEndpoint(newEndpointId(), { url: HTTPS, events: ["*"], secret: ok24 });
    expectStatus(created, 201);
    expect(created.body.secret).toBe(ok24);
    for (const secret of [
      SECRET_PREFIX + toBase64(new Uint8Array(16)),
      SECRET_PREFIX + toBase64(new Uint8Array(65)),
      "sk_live_abc",
      `${SECRET_PREFIX}not base64!`,
      "",
    ]) {
      const id = newEndpointId();
      const p = expectProblem(await putEndpoint(id, { url: HTTPS, events: ["*"], secret }), 400, "invalid_request");
      expect(p.detail, secret).toMatch(/secret/);
      expectProblem(await api(`/v1/webhook-endpoints/${id}`), 404, "not_found");
    }
  });

  it("refuses URLs the policy does not allow, with the reason, and saves nothing", async () => {
    const cases: [string, RegExp][] = [
      ["http://hooks.example.com/x", /https/],
      ["https://10.0.0.8/x", /private/],
      ["https://169.254.169.254/latest", /link-local/],
      ["https://[::1]/x", /loopback/],
      ["https://[::ffff:192.168.0.1]/x", /IPv4-mapped private/],
      ["https://metadata.internal/x", /local name/],
      ["https://user:pw@hooks.example.com/", /user name or password/],
      ["http://127.0.0.2:9999/x", /https/],
      ["nope", /absolute URL/],
    ];
    for (const [url, reason] of cases) {
      const id = newEndpointId();
      const p = expectProblem(await putEndpoint(id, { url, events: ["*"] }), 400, "invalid_request");
      expect(p.detail, url).toMatch(/^url: /);
      expect(p.detail, url).toMatch(reason);
      expectProblem(await api(`/v1/webhook-endpoints/${id}`), 404, "not_found");
    }
    // The tests run with OUTBOUND_URL_POLICY=local: the local receiver is accepted.
    expectStatus(await putEndpoint(newEndpointId(), { url: newHook().url, events: ["*"] }), 201);
  });

  it("refuses bad bodies and ids with 400", async () => {
    const bodies: unknown[] = [
      {},
      { url: HTTPS },
      { url: HTTPS, events: [] },
      { url: HTTPS, events: ["balance.nope"] },
      { url: HTTPS, events: ["*", "balance.low"] },
      { url: HTTPS, events: ["balance.low", "balance.low"] },
      { url: HTTPS, events: ["*"], extra: 1 },
      { url: 42, events: ["*"] },
      { url: `https://a.example.com/\u0000`, events: ["*"] },
    ];
    for (const body of bodies)
      expectProblem(
        await api(`/v1/webhook-endpoints/${newEndpointId()}`, { method: "PUT", body }),
        400,
        "invalid_request",
      );
    for (const id of ["has space", "a".repeat(65), "semi;colon"])
      expectProblem(
        await api(`/v1/webhook-endpoints/${encodeURIComponent(id)}`, {
          method: "PUT",
          body: { url: HTTPS, events: ["*"] },
        }),
        400,
        "invalid_request",
      );
  });

  it(`allows at most ${MAX_WEBHOOK_ENDPOINTS} endpoints, and a PUT to an existing one still works then`, async () => {
    const list = await api<{ endpoints: { id: string }[] }>("/v1/webhook-endpoints");
    const made: string[] = [];
    for (let n = list.body.endpoints.length; n < MAX_WEBHOOK_ENDPOINTS; n++) {
      const id = newEndpointId();
      expectStatus(await putEndpoint(id, { url: HTTPS, events: ["*"] }), 201);
      made.push(id);
    }
    const p = expectProblem(await putEndpoint(newEndpointId(), { url: HTTPS, events: ["*"] }), 400, "invalid_request");
    expect(p.detail).toContain(String(MAX_WEBHOOK_ENDPOINTS));
    const existing = made[0] ?? list.body.endpoints[0]?.id ?? "";
    expectStatus(await putEndpoint(existing, { url: HTTPS, events: ["balance.low"] }), 200);
    for (const id of made) expectStatus(await api(`/v1/webhook-endpoints/${id}`, { method: "DELETE" }), 204);
    expectStatus(await putEndpoint(newEndpointId(), { url: HTTPS, events: ["*"] }), 201);
  });
});

describe("GET, DELETE and the deliveries of unknown endpoints", () => {
  it("DELETE removes an endpoint: then GET, DELETE and its deliveries are 404", async () => {
    const id = newEndpointId();
    await createEndpoint(id, HTTPS);
    const deleted = await api(`/v1/webhook-endpoints/${id}`, { method: "DELETE" });
    expectStatus(deleted, 204);
    expect(deleted.text).toBe("");
    expectProblem(await api(`/v1/webhook-endpoints/${id}`), 404, "not_found");
    expectProblem(await api(`/v1/webhook-endpoints/${id}`, { method: "DELETE" }), 404, "not_found");
    expectProblem(await api(`/v1/webhook-endpoints/${id}/deliveries`), 404, "not_found");
    const list = await api<{ endpoints: { id: string }[] }>("/v1/webhook-endpoints");
    expect(list.body.endpoints.map((e) => e.id)).not.toContain(id);
  });

  it("an unknown endpoint or delivery is 404; a malformed delivery id or cursor is 400", async () => {
    const ghost = newEndpointId();
    const dlv = `dlv_${"a".repeat(32)}`;
    expectProblem(await api(`/v1/webhook-endpoints/${ghost}`), 404, "not_found");
    expectProblem(
      await api(`/v1/webhook-endpoints/${ghost}/deliveries/${dlv}/redeliver`, { method: "POST" }),
      404,
      "not_found",
    );
    const id = newEndpointId();
    await createEndpoint(id, HTTPS);
    expectProblem(
      await api(`/v1/webhook-endpoints/${id}/deliveries/${dlv}/redeliver`, { method: "POST" }),
      404,
      "not_found",
    );
    expectProblem(
      await api(`/v1/webhook-endpoints/${id}/deliveries/not-an-id/redeliver`, { method: "POST" }),
      400,
      "invalid_request",
    );
    expectProblem(await api(`/v1/webhook-endpoints/${id}/deliveries?cursor=bogus`), 400, "invalid_request");
    expectProblem(await api(`/v1/webhook-endpoints/${id}/deliveries?limit=201`), 400, "invalid_request");
    const empty = await api<{ deliveries: unknown[]; nextCursor: string | null }>(
      `/v1/webhook-endpoints/${id}/deliveries`,
    );
    expectStatus(empty, 200);
    expect(empty.body).toEqual({ deliveries: [], nextCursor: null });
  });

  it("needs the admin key", async () => {
    expectProblem(await api("/v1/webhook-endpoints", { auth: false }), 401, "unauthorized");
  });
});

describe("the OpenAPI document", () => {
  it("lists the webhook routes with the statuses they answer", async () => {
    const res = await api<{ paths: Record<string, Record<string, { responses: Record<string, unknown> }>> }>(
      "/openapi.json",
      { auth: false },
    );
    expectStatus(res, 200);
    const op = (path: string, method: string) => res.body.paths[path]?.[method]?.responses ?? {};
    const one = "/v1/webhook-endpoints/{endpointId}";
    expect(Object.keys(op(one, "put"))).toEqual(expect.arrayContaining(["200", "201", "400", "404"]));
    expect(Object.keys(op(one, "get"))).toEqual(expect.arrayContaining(["200", "404"]));
    expect(Object.keys(op(one, "delete"))).toEqual(expect.arrayContaining(["204", "404"]));
    expect(Object.keys(op("/v1/webhook-endpoints", "get"))).toContain("200");
    expect(Object.keys(op(`${one}/deliveries`, "get"))).toEqual(expect.arrayContaining(["200", "400", "404"]));
    expect(Object.keys(op(`${one}/deliveries/{deliveryId}/redeliver`, "post"))).toEqual(
      expect.arrayContaining(["202", "404", "409"]),
    );
  });
});
