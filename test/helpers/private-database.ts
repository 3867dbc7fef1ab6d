import postgres from "postgres";
import { afterAll, beforeAll } from "vitest";
import { TEST_DATABASE_URL } from "./env.ts";

/**
 * A PostgreSQL database of the suite's own, created before its tests and
 * dropped after them (force: a server the suite left connected does not keep
 * it): for suites that count keys or rows, which the shared test database
 * holds from every other suite. Call it inside a describe; hooks registered
 * after it run before its drop.
 */
export function privateDatabase(prefix: string): URL {
  const name = `${prefix}_${process.pid}_${Date.now().toString(36)}`;
  const url = new URL(TEST_DATABASE_URL);
  url.pathname = `/${name}`;
  const admin = postgres(TEST_DATABASE_URL, { max: 1, onnotice: () => {} });
  beforeAll(async () => {
    await admin.unsafe(`create database ${name}`);
  });
  afterAll(async () => {
    await admin.unsafe(`drop database if exists ${name} with (force)`);
    await admin.end({ timeout: 5 });
  });
  return url;
}
