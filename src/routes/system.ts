/**
 * Liveness: GET /healthz answers without touching storage, so a load balancer's probe costs
 * nothing and says only that the worker runs.
 */
import { createRoute, type OpenAPIHono, z } from "@hono/zod-openapi";
import type { AppEnv } from "../app-env";

const healthz = createRoute({
  method: "get",
  path: "/healthz",
  tags: ["System"],
  summary: "Liveness probe",
  security: [],
  responses: {
    200: {
      description: "The worker runs",
      content: { "application/json": { schema: z.object({ ok: z.literal(true) }) } },
    },
  },
});

export function registerSystemRoutes(app: OpenAPIHono<AppEnv>): void {
  app.openapi(healthz, (c) => c.json({ ok: true as const }, 200));
}
