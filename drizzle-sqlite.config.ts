import { defineConfig } from "drizzle-kit";

// The SQLite migrations (src/db/sqlite/schema.ts): the embedded store's file in
// DATA_DIR and every Durable Object's storage. `npm run db:generate` writes
// drizzle-sqlite/ and then bundles it into src/db/sqlite/migrations.gen.ts
// (src/db/bundle-migrations.ts), which both stores import; never edit either.
export default defineConfig({
  dialect: "sqlite",
  schema: "./src/db/sqlite/schema.ts",
  out: "./drizzle-sqlite",
});
