// drizzle-kit: generates the D1 migrations in migrations/ from src/db/schema.ts (`npm run db:generate`).
import { defineConfig } from "drizzle-kit";

export default defineConfig({
  dialect: "sqlite",
  schema: "./src/db/schema.ts",
  out: "./migrations",
});
