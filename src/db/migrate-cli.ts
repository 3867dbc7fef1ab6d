import { parseConfig, type Env } from "../core/config.ts";
import type { CommandOutput } from "./copy-cli.ts";

// db:migrate, the command (`npm run db:migrate`, `headcount db:migrate`):
// applies the migrations to DATABASE_URL when it is set, else to the SQLite
// database in DATA_DIR (default ./data, created if missing). Servers migrate
// at start-up anyway; this is for deploys that migrate as a separate step.
// Returns the exit code: 1 with the reason on failure.

/** `env`: the settings, as the server reads them (src/core/config.ts). */
export async function migrateCli(env: Env, out: CommandOutput): Promise<number> {
  try {
    const config = parseConfig(env);
    if (config.databaseUrl) {
      const { default: postgres } = await import("postgres");
      const { migrateBundled } = await import("./postgres-migrate.ts");
      const client = postgres(config.databaseUrl, { max: 1, connect_timeout: config.pg.connectTimeoutS, onnotice: () => {} });
      try {
        await migrateBundled(client);
      } finally {
        await client.end({ timeout: 5 });
      }
      out.stdout("migrated the PostgreSQL database in DATABASE_URL\n");
    } else {
      const { openSqliteFile } = await import("./sqlite/file.ts");
      const store = await openSqliteFile(config.dataDir);
      await store.close();
      out.stdout(`migrated ${store.path}\n`);
    }
    return 0;
  } catch (err) {
    out.stderr(`db:migrate: ${(err as Error).message}\n`);
    return 1;
  }
}
