import { defineConfig } from "drizzle-kit";

// Migrations for the Workers build's Durable Object SQLite (src/db/schema-do.ts).
// `npx drizzle-kit generate --config drizzle-do.config.ts` writes drizzle-do/,
// including migrations.js, which the Durable Object imports and applies in its
// constructor (wrangler bundles the .sql files as text).
export default defineConfig({
  dialect: "sqlite",
  driver: "durable-sqlite",
  schema: "./src/db/schema-do.ts",
  out: "./drizzle-do",
});
