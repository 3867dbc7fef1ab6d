// The only globals core may use beyond ECMAScript (tsconfig.core.json): the
// WHATWG URL parser, which Node, Bun, Deno and Workers all provide the same.
// Anything else from the world (time, I/O, crypto) comes in through
// core/ports.ts. Declared by hand, narrowly, so `tsc -p tsconfig.core.json`
// has no runtime's ambient types; the main tsconfig excludes this file
// (DOM already declares URL there).

interface URL {
  readonly href: string;
  readonly origin: string;
  readonly protocol: string;
  readonly host: string;
  readonly hostname: string;
  readonly pathname: string;
}

declare var URL: {
  new (url: string, base?: string): URL;
  canParse(url: string, base?: string): boolean;
};
