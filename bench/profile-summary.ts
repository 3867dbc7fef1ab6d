// Summarises a V8 .cpuprofile (node --cpu-prof): self time by function and by file.
//   node bench/profile-summary.ts /tmp/prof/CPU.*.cpuprofile
import { readFileSync } from "node:fs";

interface Node { id: number; callFrame: { functionName: string; url: string; lineNumber: number }; hitCount: number; children?: number[] }
// Optional second argument: skip the first N ms of samples (start-up, migrations).
const file = process.argv[2]!;
const skipMs = Number(process.argv[3] ?? 0);
const p = JSON.parse(readFileSync(file, "utf8")) as { nodes: Node[]; samples: number[]; timeDeltas: number[] };
const byId = new Map(p.nodes.map((n) => [n.id, n]));
const self = new Map<number, number>();
let clock = 0;
for (let i = 0; i < p.samples.length; i++) {
  clock += p.timeDeltas[i] ?? 0;
  if (clock < skipMs * 1000) continue;
  self.set(p.samples[i]!, (self.get(p.samples[i]!) ?? 0) + (p.timeDeltas[i] ?? 0));
}
let total = 0;
for (const v of self.values()) total += v;
const fn = new Map<string, number>();
const fileT = new Map<string, number>();
for (const [id, t] of self) {
  const n = byId.get(id)!;
  const url = n.callFrame.url.replace(/^file:\/\/\/work\/main\//, "").replace(/.*node_modules\//, "nm:");
  const k = `${url || "(native)"}:${n.callFrame.functionName || "(anon)"}:${n.callFrame.lineNumber + 1}`;
  fn.set(k, (fn.get(k) ?? 0) + t);
  const pkg = url.startsWith("nm:") ? url.split("/").slice(0, url.startsWith("nm:@") ? 2 : 1).join("/") : url || `(${n.callFrame.functionName})`;
  fileT.set(pkg, (fileT.get(pkg) ?? 0) + t);
}
const pct = (t: number) => ((100 * t) / total).toFixed(1).padStart(5) + "%";
console.log(`total sampled ${(total / 1000).toFixed(0)} ms`);
console.log("-- by file/package --");
for (const [k, t] of [...fileT].sort((a, b) => b[1] - a[1]).slice(0, 25)) console.log(pct(t), k);
console.log("-- by function --");
for (const [k, t] of [...fn].sort((a, b) => b[1] - a[1]).slice(0, 40)) console.log(pct(t), k);
