import type { IncomingHttpHeaders, IncomingMessage } from "node:http";

// The upgrade request as the Hono app sees it, built for the one request per
// visitor that a burst is made of. An undici Request plus its Headers cost
// about 32 µs per upgrade, 5% of a 10,000-visitor burst's server CPU
// (bench/NOTES.md, "The upgrade request"), and the /ws route reads only the
// URL, the method and a handful of headers. So those come straight from what
// node:http has already parsed; anything else (body, signal, clone, iterating
// the headers...) builds the real Request or Headers on first use, so code
// that reads more still gets a genuine one. The same idea as
// @hono/node-server's lazy request, which it does not export.

function headerValue(headers: IncomingHttpHeaders, name: string): string | null {
  const v = headers[name.toLowerCase()];
  if (v === undefined) return null;
  // node:http keeps repeated set-cookie as an array and joins the rest; Headers#get joins with ", ".
  return Array.isArray(v) ? v.join(", ") : v;
}

/** Headers that answer get/has from node:http's object and fill themselves on anything else. */
class IncomingHeaders extends Headers {
  readonly #incoming: IncomingHttpHeaders;
  #filled = false;

  constructor(incoming: IncomingHttpHeaders) {
    super();
    this.#incoming = incoming;
  }

  #fill(): void {
    if (this.#filled) return;
    this.#filled = true;
    for (const [name, value] of Object.entries(this.#incoming)) {
      if (value === undefined) continue;
      if (Array.isArray(value)) for (const v of value) super.append(name, v);
      else super.append(name, value);
    }
  }

  override get(name: string): string | null {
    return this.#filled ? super.get(name) : headerValue(this.#incoming, name);
  }
  override has(name: string): boolean {
    return this.#filled ? super.has(name) : this.#incoming[name.toLowerCase()] !== undefined;
  }
  override getSetCookie(): string[] {
    this.#fill();
    return super.getSetCookie();
  }
  override set(name: string, value: string): void {
    this.#fill();
    super.set(name, value);
  }
  override append(name: string, value: string): void {
    this.#fill();
    super.append(name, value);
  }
  override delete(name: string): void {
    this.#fill();
    super.delete(name);
  }
  override forEach(cb: (value: string, key: string, parent: Headers) => void, thisArg?: unknown): void {
    this.#fill();
    super.forEach(cb, thisArg);
  }
  override entries(): HeadersIterator<[string, string]> {
    this.#fill();
    return super.entries();
  }
  override keys(): HeadersIterator<string> {
    this.#fill();
    return super.keys();
  }
  override values(): HeadersIterator<string> {
    this.#fill();
    return super.values();
  }
  override [Symbol.iterator](): HeadersIterator<[string, string]> {
    this.#fill();
    return super[Symbol.iterator]();
  }
}

const incomingKey = Symbol("incoming");
const urlKey = Symbol("url");
const headersKey = Symbol("headers");
const realKey = Symbol("request");

interface UpgradeRequest extends Request {
  [incomingKey]: IncomingMessage;
  [urlKey]: string;
  [headersKey]?: IncomingHeaders;
  [realKey]?: Request;
}

function real(self: UpgradeRequest): Request {
  return (self[realKey] ??= new Request(self[urlKey], { method: self.method, headers: self.headers }));
}

const proto: object = Object.create(Request.prototype, {
  url: { get(this: UpgradeRequest) { return this[urlKey]; } },
  method: { get(this: UpgradeRequest) { return this[incomingKey].method ?? "GET"; } },
  headers: { get(this: UpgradeRequest) { return (this[headersKey] ??= new IncomingHeaders(this[incomingKey].headers)); } },
});
// Everything else a Request has, from the real one (methods bound to it: undici checks its receiver).
for (const name of Object.getOwnPropertyNames(Request.prototype)) {
  if (name === "constructor" || name === "url" || name === "method" || name === "headers") continue;
  Object.defineProperty(proto, name, {
    get(this: UpgradeRequest) {
      const request = real(this);
      const value: unknown = Reflect.get(request, name);
      return typeof value === "function" ? value.bind(request) : value;
    },
  });
}

/** A Request for an upgrade that node:http has parsed; throws like `new Request` would on a bad URL. */
export function upgradeRequest(incoming: IncomingMessage): Request {
  // Concatenated, not resolved against a base: a request target of "//evil/ws" is a path here.
  const url = new URL(`http://${incoming.headers.host ?? "localhost"}${incoming.url ?? "/"}`).href;
  const request = Object.create(proto) as UpgradeRequest;
  request[incomingKey] = incoming;
  request[urlKey] = url;
  return request;
}
