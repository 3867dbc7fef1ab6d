import { behaviourSuite } from "./behaviour.ts";

// The Workers build on workerd (wrangler's local dev server, test/helpers/worker-dev.ts):
// each key's Durable Object SQLite, then PostgreSQL through a Hyperdrive binding.
const worker = { runtime: "worker", dataDirLock: false, upgradeHeaderOn426: false, gracefulShutdown: false, startTimeoutMs: 90_000 } as const;

behaviourSuite({ ...worker, store: "embedded" });
behaviourSuite({ ...worker, store: "postgres" });
