// @ts-check
// Preloaded by `npm start` (`node --import ./src/runtime/node-preload.mjs …`):
// makes loading the server's modules cheap on Node. JavaScript, not
// TypeScript, because the point of its second hook is that Node never has to
// strip types itself (a .ts preload would make it load its stripper first).
// Checked by tsc all the same (@ts-check, JSDoc types).
// https://nodejs.org/api/module.html#moduleregisterhooksoptions
//
// 1. resolve: Node 24 hands its ESM resolver a package's whole `exports` map,
// serialised afresh, for every file it loads from that package, to find the
// package's "type" (nodejs/node#60425 made the C++ side cache it; the JS side
// still re-reads it). drizzle-orm's package.json is 178 KB, so importing its
// SQLite or PostgreSQL driver loads ~200 of its files at 1.3 s and 270 MB of
// short-lived garbage, and V8 keeps the young generation it grew for that:
// the server idled at 240 MB. With this hook the same imports take 87 ms and
// the process 66 MB. It answers one question itself: a relative `./x.js`
// import from a file of an ESM package ("type": "module", read once per
// package) is that package's ESM file. Everything else goes to Node.
//
// 2. load: the server's own .ts files, types stripped, from a cache. Node
// strips with amaro, a WebAssembly build of swc that stays in memory once
// loaded: 18 MB of RSS (a one-line .ts file idles at 60 MB, the same file as
// .mjs at 42). Served from the cache, a start never loads it. One cache file
// per source path (as many files as src/ has, however often they change),
// with the source's hash on its first line: a changed source is a miss,
// stripped again with module.stripTypeScriptTypes (the transform Node itself
// applies: whitespace in place of types, so lines and columns are unchanged)
// and rewritten. Where the cache cannot be written (a read-only install)
// every start is a miss and costs what Node's own stripping costs.
// https://nodejs.org/api/module.html#modulestriptypescripttypescode-options
import { createHash } from "node:crypto";
import { mkdirSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import { registerHooks, stripTypeScriptTypes } from "node:module";
import process from "node:process";
import { fileURLToPath } from "node:url";

const CACHE_DIR = fileURLToPath(new URL("../../node_modules/.cache/headcount-ts/", import.meta.url));

/** @type {Map<string, boolean>} */
const esm = new Map();

/**
 * The package root URL of a file inside node_modules, e.g. …/node_modules/@hono/node-server/.
 * @param {string} url
 * @returns {string | null}
 */
function packageRoot(url) {
  const at = url.lastIndexOf("/node_modules/");
  if (at < 0) return null;
  const rest = url.slice(at + "/node_modules/".length).split("/");
  const depth = rest[0]?.startsWith("@") ? 2 : 1;
  if (rest.length <= depth) return null;
  return url.slice(0, at + "/node_modules/".length) + rest.slice(0, depth).join("/") + "/";
}

/** @param {string} root */
function isEsmPackage(root) {
  let known = esm.get(root);
  if (known === undefined) {
    try {
      known = JSON.parse(readFileSync(new URL("package.json", root), "utf8")).type === "module";
    } catch {
      known = false;
    }
    esm.set(root, known);
  }
  return known;
}

/** @param {string} text */
const sha1 = (text) => createHash("sha1").update(text).digest("hex");

let cacheWritable = true;

/**
 * A project .ts file as JavaScript: from the cache, or stripped and cached.
 * @param {string} path
 * @returns {string}
 */
function strippedSource(path) {
  const source = readFileSync(path, "utf8");
  const stamp = `//${sha1(source)}\n`;
  const cached = `${CACHE_DIR}${sha1(path)}.js`;
  try {
    const text = readFileSync(cached, "utf8");
    if (text.startsWith(stamp)) return text.slice(stamp.length);
  } catch {
    // not cached yet
  }
  const stripped = quietly(() => stripTypeScriptTypes(source, { mode: "strip" }));
  if (cacheWritable) {
    try {
      mkdirSync(CACHE_DIR, { recursive: true });
      const tmp = `${cached}.${process.pid}.tmp`;
      writeFileSync(tmp, stamp + stripped);
      renameSync(tmp, cached); // atomic: a concurrent start reads the old file or the new one
    } catch {
      cacheWritable = false;
    }
  }
  return stripped;
}

/**
 * stripTypeScriptTypes warns once per process that it is experimental; the
 * server's stderr is one JSON object per line, and the transform is the one
 * Node itself runs on every .ts file, so that warning is held back.
 * @template T
 * @param {() => T} fn
 * @returns {T}
 */
function quietly(fn) {
  const emit = process.emitWarning;
  process.emitWarning = () => {};
  try {
    return fn();
  } finally {
    process.emitWarning = emit;
  }
}

registerHooks({
  resolve(specifier, context, nextResolve) {
    const parent = context.parentURL;
    if (parent?.startsWith("file:") && /^\.\.?\//.test(specifier) && /\.m?js$/.test(specifier)) {
      const root = packageRoot(parent);
      if (root && isEsmPackage(root)) {
        const url = new URL(specifier, parent).href;
        if (url.startsWith(root)) return { url, format: "module", shortCircuit: true };
      }
    }
    return nextResolve(specifier, context);
  },
  load(url, context, nextLoad) {
    if (!url.startsWith("file:") || !url.endsWith(".ts") || url.includes("/node_modules/")) return nextLoad(url, context);
    return { format: "module", source: strippedSource(fileURLToPath(url)), shortCircuit: true };
  },
});
