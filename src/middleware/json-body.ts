/**
 * Requests with a body must say it is JSON. Without this, a body sent as form data (curl -d's
 * default) would be silently ignored by the JSON validator and read as an empty object.
 */
import type { MiddlewareHandler } from "hono";
import type { AppEnv } from "../app-env";
import { ApiError } from "../http/problem";

const JSON_TYPE = /^application\/([\w.-]+\+)?json\s*(;.*)?$/i;

export function requireJsonBody(): MiddlewareHandler<AppEnv> {
  return async function requireJsonBodyMiddleware(c, next) {
    const method = c.req.method;
    if (method === "POST" || method === "PUT" || method === "PATCH") {
      const type = c.req.header("content-type");
      const length = c.req.header("content-length");
      const hasBody =
        type !== undefined ||
        (length !== undefined && length !== "0") ||
        c.req.header("transfer-encoding") !== undefined;
      if (hasBody && !(type && JSON_TYPE.test(type)))
        throw new ApiError("invalid_request", "send the body as JSON with Content-Type: application/json");
      // Many clients send Content-Type: application/json with an empty body on actions whose body
      // is optional (capture, release); read that as {} rather than as malformed JSON.
      if (type && length === "0") c.req.raw = new Request(c.req.raw, { body: "{}" });
    }
    await next();
  };
}
