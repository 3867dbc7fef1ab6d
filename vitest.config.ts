import { defineConfig } from "vitest/config";

// Two groups: everything else runs first, in parallel; then the suites that
// stop or restart the shared PostgreSQL server run alone, one file at a time,
// so they never pull the database from under another suite.
const shared = {
  testTimeout: 60_000,
  hookTimeout: 120_000,
  // Real processes on two shared cores: something that happens in 50 ms alone can take
  // seconds while Chromium, workerd and PostgreSQL compete. A poll still fails if it never happens.
  expect: { poll: { timeout: 5_000, interval: 50 } },
};

export default defineConfig({
  test: {
    // Server suites start real processes; two cores do not like more than two at once.
    maxWorkers: 2,
    projects: [
      {
        test: {
          ...shared,
          name: "main",
          include: ["src/**/*.test.ts", "test/**/*.test.ts"],
          exclude: ["test/**/*.disruptive.test.ts", "**/node_modules/**"],
          sequence: { groupOrder: 0 },
        },
      },
      {
        test: {
          ...shared,
          name: "disruptive",
          include: ["test/**/*.disruptive.test.ts"],
          fileParallelism: false,
          sequence: { groupOrder: 1 },
        },
      },
    ],
  },
});
