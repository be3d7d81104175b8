import { defineConfig } from "drizzle-kit";

/** Cluster mode's PostgreSQL migrations; drizzle.config.ts generates SQLite's. */
export default defineConfig({
  dialect: "postgresql",
  schema: "./src/cluster/postgres/schema.ts",
  out: "./drizzle-pg",
});
