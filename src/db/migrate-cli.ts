import process from "node:process";
import { parseConfig } from "../core/config.ts";

// `npm run db:migrate`: applies the migrations to DATABASE_URL when it is set,
// else to the SQLite database in DATA_DIR (default ./data, created if
// missing), then exits. Servers migrate at start-up anyway; this is for
// deploys that migrate as a separate step. Exit 1 with the reason on failure.

async function main(): Promise<number> {
  try {
    const config = parseConfig(process.env);
    if (config.databaseUrl) {
      const { default: postgres } = await import("postgres");
      const { migrateBundled } = await import("./postgres-migrate.ts");
      const client = postgres(config.databaseUrl, { max: 1, connect_timeout: config.pg.connectTimeoutS, onnotice: () => {} });
      try {
        await migrateBundled(client);
      } finally {
        await client.end({ timeout: 5 });
      }
      process.stdout.write("migrated the PostgreSQL database in DATABASE_URL\n");
    } else {
      const { openSqliteFile } = await import("./sqlite/file.ts");
      const store = await openSqliteFile(config.dataDir);
      await store.close();
      process.stdout.write(`migrated ${store.path}\n`);
    }
    return 0;
  } catch (err) {
    process.stderr.write(`db:migrate: ${(err as Error).message}\n`);
    return 1;
  }
}

process.exitCode = await main();
