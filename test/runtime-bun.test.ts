import { behaviourSuite } from "./behaviour.ts";

behaviourSuite({ runtime: "bun", store: "embedded", dataDirLock: true });
behaviourSuite({ runtime: "bun", store: "postgres", dataDirLock: true });
