import { postgresAvailable, TEST_DATABASE_URL } from "./env.ts";
import { freshDataDir, type RuntimeName } from "./server.ts";

// For suites where the store does not matter: PostgreSQL when it is up (it
// starts fastest and keeps the server's memory its own), else the embedded
// store. workerd keeps its local state in DATA_DIR even on PostgreSQL, so it
// gets a fresh one (not ./data in the working tree).

export const pgUp = await postgresAvailable();

export function anyStoreEnv(runtime: RuntimeName): Record<string, string> {
  if (!pgUp) return {};
  return runtime === "worker" ? { DATABASE_URL: TEST_DATABASE_URL, DATA_DIR: freshDataDir() } : { DATABASE_URL: TEST_DATABASE_URL };
}
