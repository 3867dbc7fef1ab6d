/// <reference types="bun" />
import { join } from "node:path";
import type { MiddlewareHandler } from "hono";
import { getMimeType } from "hono/utils/mime";
import { PUBLIC_DIR } from "./process-parts.ts";

// public/ on Bun, from wherever it is: inside the single binary
// (scripts/build.ts embeds it with `--asset ./public`, which keeps the
// relative path under the binary's virtual root, import.meta.dir), or on
// disk beside src/ when run as `bun src/runtime/bun.ts`. Serves what
// hono/bun's serveStatic served us: GET and HEAD, `index.html` for a
// directory, the type from the extension; anything else falls through to
// the app's notFound. https://bun.com/docs/bundler/executables#embed-directories

/** Where public/ is for this process. */
export function publicRoot(): string {
  return Bun.isStandaloneExecutable ? join(import.meta.dir, "public") : PUBLIC_DIR;
}

export function bunStatic(root = publicRoot()): MiddlewareHandler {
  return async (c, next) => {
    if (c.req.method !== "GET" && c.req.method !== "HEAD") return next();
    const name = fileName(c.req.path);
    if (name === undefined) return next();
    for (const candidate of name.endsWith("/") ? [`${name}index.html`] : [name, `${name}/index.html`]) {
      const path = join(root, candidate);
      // A directory does not "exist" as a file, so `/dir` falls to `/dir/index.html`.
      const file = Bun.file(path);
      if (!(await file.exists())) continue;
      c.header("Content-Type", getMimeType(path) ?? "application/octet-stream");
      c.header("Content-Length", String(file.size)); // kept when Hono answers HEAD with the GET response minus its body
      // A Blob body: Bun sends a disk file with sendfile and an embedded one from memory, HEAD without a body.
      return c.body(file);
    }
    return next();
  };
}

/** The request path as a name under the root, or undefined for one that could climb out of it or is ambiguous. */
function fileName(path: string): string | undefined {
  // As hono's serveStatic: no percent-escapes (Hono has decoded the path once already), no dot
  // segments, no empty segments, no backslashes, no NUL.
  if (/%|\\|\0|\/\/|(?:^|\/)\.{1,2}(?:$|\/)/.test(path)) return undefined;
  return path;
}
