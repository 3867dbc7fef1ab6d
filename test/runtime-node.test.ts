import { behaviourSuite } from "./behaviour.ts";

behaviourSuite({ runtime: "node", store: "embedded", dataDirLock: true });
behaviourSuite({ runtime: "node", store: "postgres", dataDirLock: true });
