import postgres from "postgres";

// Tests that need PostgreSQL use this server (DESIGN.md §8). Outside CI a
// missing server skips those suites with a message; with CI=true it fails.

export const TEST_DATABASE_URL = process.env.TEST_DATABASE_URL ?? "postgres://postgres@127.0.0.1:5432/test";
export const IN_CI = process.env.CI === "true";

let probe: Promise<boolean> | undefined;

export function postgresAvailable(): Promise<boolean> {
  probe ??= (async () => {
    const sql = postgres(TEST_DATABASE_URL, { max: 1, connect_timeout: 3, onnotice: () => {} });
    try {
      await sql`select 1`;
      return true;
    } catch (err) {
      if (IN_CI) throw new Error(`CI=true but PostgreSQL at ${TEST_DATABASE_URL} is unreachable: ${(err as Error).message}`);
      console.warn(`PostgreSQL suites skipped: ${TEST_DATABASE_URL} unreachable (${(err as Error).message})`);
      return false;
    } finally {
      await sql.end({ timeout: 1 });
    }
  })();
  return probe;
}

/** A key prefix unique to one test, so suites sharing the database never collide. */
export function uniqueKey(label: string): string {
  return `/t/${label}/${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 8)}`;
}

/**
 * A desktop browser's User-Agent. Visits without one are bots and count no
 * visit (issue 13), so every test client that expects counting sends this.
 */
export const BROWSER_UA = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36";

/** A crawler's User-Agent: counted as a bot, never as a visit or a visitor. */
export const CRAWLER_UA = "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)";
