import { behaviourSuite } from "./behaviour.ts";

behaviourSuite({ runtime: "deno", store: "embedded", dataDirLock: true });
behaviourSuite({ runtime: "deno", store: "postgres", dataDirLock: true });
