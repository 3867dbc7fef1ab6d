// `npm run dev:worker` and `npm run deploy:worker`: wrangler with nothing sent
// that the command does not need. Usage telemetry is off
// (WRANGLER_SEND_METRICS=false; wrangler.toml also says send_metrics = false),
// and `wrangler dev` does not fetch the request.cf object from Cloudflare
// (CLOUDFLARE_CF_FETCH_ENABLED=false), so local development works offline.
// Deploying still talks to your account, as it must. Values you set win.
//   node src/runtime/wrangler-cli.ts dev|deploy [wrangler options]
import { spawn } from "node:child_process";
import { join } from "node:path";
import process from "node:process";

const ROOT = decodeURIComponent(new URL("../..", import.meta.url).pathname);
const wrangler = join(ROOT, "node_modules", ".bin", process.platform === "win32" ? "wrangler.cmd" : "wrangler");
const env = { WRANGLER_SEND_METRICS: "false", CLOUDFLARE_CF_FETCH_ENABLED: "false", ...process.env };

const child = spawn(wrangler, process.argv.slice(2), { stdio: "inherit", env, shell: process.platform === "win32" });
for (const signal of ["SIGINT", "SIGTERM"] as const) process.on(signal, () => child.kill(signal));
child.on("exit", (code, signal) => process.exit(code ?? (signal === "SIGINT" ? 130 : 1)));
child.on("error", (err) => {
  console.error(`cannot run ${wrangler}: ${err.message} (run npm ci first)`);
  process.exit(1);
});
