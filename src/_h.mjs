import { registerHooks } from "node:module";
const DRIZZLE = new URL("../node_modules/drizzle-orm/", import.meta.url).href;
registerHooks({
  resolve(specifier, context, next) {
    if ((specifier.startsWith("./") || specifier.startsWith("../")) && context.parentURL?.startsWith(DRIZZLE)) {
      return { url: new URL(specifier, context.parentURL).href, format: "module", shortCircuit: true };
    }
    return next(specifier, context);
  },
});
const t = performance.now();
await import("drizzle-orm/sqlite-core");
await import("drizzle-orm/postgres-js");
const l = performance.now() - t;
setTimeout(()=>{ console.log(process.memoryUsage().rss/1e6|0, l|0); process.exit(0)}, 1500);
