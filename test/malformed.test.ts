import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { uniqueKey } from "./helpers/env.ts";
import { startServer, type RuntimeName, type RunningServer } from "./helpers/server.ts";
import { sleep, TestSocket, type Hello } from "./helpers/ws.ts";
import { closeCodeOf, closePayload, frame, Op, parseHttpHead, RawConn, rawHandshake, upgradeRequest } from "./helpers/raw-ws.ts";

// Issue 5, "tests that do the bad thing": a corpus of malformed inputs sent
// over raw TCP to a real server process of every runtime. For each input we
// record what the server did (an HTTP status, a WebSocket close code, the
// connection closing, or nothing within a bound) and check it is one of the
// answers acceptable for that input (RFC 9110/9112 for HTTP, RFC 6455 for
// WebSocket). After every input the server must still serve others: /healthz
// answers and an already-open watcher still gets updates. At the end no total
// has moved.
//
// One corpus, one table of runtime differences (RUNTIMES below): never a
// copied test.

/**
 * What the server did with an input:
 * "400", "426", … an HTTP status (the first response head on the connection);
 * "101" a completed handshake, "101+hello" one that was also counted as a visit;
 * "close 1002", … a WebSocket close frame with that code ("close none" without a code);
 * "closed" / "reset" the connection ended without an answer (FIN / RST);
 * "open" nothing within the bound, the connection still open;
 * "h2" an HTTP/2 SETTINGS frame (prior-knowledge HTTP/2);
 * "bytes <hex>" anything else.
 */
type Answer = string;

interface Ctx {
  garbageKey: string;
  /** /ws path for the garbage key: nobody ever legitimately visits it, so any 101 here would count a visit. */
  garbagePath: string;
  /** /ws path with a valid resume token for the frames key: a completed handshake counts no visit. */
  framesPath: string;
}

interface Input {
  name: string;
  /** "http": bytes on a fresh connection. "ws": bytes after a valid (resumed) handshake. */
  kind: "http" | "ws";
  /** Chunks written in order (a function may pace them). */
  send: (ctx: Ctx) => Array<string | Uint8Array> | ((conn: RawConn) => Promise<void>);
  /** Acceptable answers on every runtime. */
  accept: Answer[];
  /** How long to wait for an answer before recording "open". */
  boundMs?: number;
  /** Extra checks on the connection once answered. */
  check?: (conn: RawConn, answer: Answer) => void;
  /** The key a completed handshake would count a visit for (default: the garbage key). */
  visitKey?: (ctx: Ctx) => string;
}

const CRLF = "\r\n";
const H = (lines: string[]): string => lines.join(CRLF) + CRLF + CRLF;
const b = (...parts: Array<string | number[]>): Buffer =>
  Buffer.concat(parts.map((p) => (typeof p === "string" ? Buffer.from(p, "latin1") : Buffer.from(p))));

/** Acceptable answers for HTTP garbage: a client error, or the connection closed. */
const HTTP_REJECT = ["400", "closed", "reset"];
/** For a bad handshake to /ws: a refusal, never a 101. */
const UPGRADE_REJECT = ["400", "426", "closed", "reset"];
/** A protocol error after the handshake (RFC 6455 §7.4.1: 1002), or the connection failed outright (§7.1.7). */
const PROTOCOL_ERROR = ["close 1002", "closed", "reset"];

const corpus: Input[] = [
  // --- broken request lines -------------------------------------------------
  { name: "request line without a version (HTTP/0.9 simple request)", kind: "http", send: () => ["GET /healthz\r\n\r\n"], accept: [...HTTP_REJECT, "505"] },
  { name: "explicit HTTP/0.9", kind: "http", send: () => [H(["GET /healthz HTTP/0.9", "Host: x"])], accept: [...HTTP_REJECT, "505"] },
  { name: "unknown method with symbols", kind: "http", send: () => [H(["F@O% /healthz HTTP/1.1", "Host: x"])], accept: [...HTTP_REJECT, "405", "501"] },
  { name: "request line of spaces", kind: "http", send: () => ["     \r\n\r\n"], accept: HTTP_REJECT },
  { name: "binary junk then CRLFCRLF", kind: "http", send: () => [b([0x00, 0xff, 0x13, 0x37, 0x80, 0x81, 0xfe, 0x7f, 0x1b, 0x5b], "\r\n\r\n")], accept: HTTP_REJECT },
  { name: "extra token after the version", kind: "http", send: () => [H(["GET /healthz HTTP/1.1 extra", "Host: x"])], accept: HTTP_REJECT },
  { name: "lower-case protocol name", kind: "http", send: () => [H(["GET /healthz http/1.1", "Host: x"])], accept: [...HTTP_REJECT, "505"] },
  { name: "request line without a target", kind: "http", send: () => [H(["GET HTTP/1.1", "Host: x"])], accept: [...HTTP_REJECT, "505"] },
  { name: "bare CR line endings", kind: "http", send: () => ["GET /healthz HTTP/1.1\rHost: x\r\r"], accept: [...HTTP_REJECT, "open"], boundMs: 1000 },
  { name: "TLS ClientHello on the plain port", kind: "http", send: () => [b([0x16, 0x03, 0x01, 0x00, 0xa5, 0x01, 0x00, 0x00, 0xa1, 0x03, 0x03], "\r\n\r\n")], accept: HTTP_REJECT },
  // --- wrong HTTP versions ----------------------------------------------------
  { name: "HTTP/2 connection preface on plain TCP", kind: "http", send: () => ["PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"], accept: [...HTTP_REJECT, "505"] },
  { name: "HTTP/2.0 on an HTTP/1 request line", kind: "http", send: () => [H(["GET /healthz HTTP/2.0", "Host: x"])], accept: [...HTTP_REJECT, "505"] },
  { name: "HTTP/9.9", kind: "http", send: () => [H(["GET /healthz HTTP/9.9", "Host: x"])], accept: [...HTTP_REJECT, "505"] },
  { name: "HTTP/1.0 WebSocket upgrade", kind: "http", send: (c) => [upgradeRequest(c.garbagePath, { version: "HTTP/1.0" })], accept: [...UPGRADE_REJECT, "505"] },
  // --- NUL bytes and non-ASCII --------------------------------------------------
  { name: "NUL in the method", kind: "http", send: () => [H(["G\0ET /healthz HTTP/1.1", "Host: x"])], accept: HTTP_REJECT },
  { name: "NUL in the path", kind: "http", send: () => [H(["GET /heal\0thz HTTP/1.1", "Host: x"])], accept: HTTP_REJECT },
  { name: "NUL in a header value", kind: "http", send: () => [H(["GET /healthz HTTP/1.1", "Host: x", "X-A: a\0b"])], accept: HTTP_REJECT },
  { name: "NUL in a header name", kind: "http", send: () => [H(["GET /healthz HTTP/1.1", "Host: x", "X-\0A: b"])], accept: HTTP_REJECT },
  { name: "NUL in the handshake key", kind: "http", send: (c) => [upgradeRequest(c.garbagePath, { headers: { "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25j\0A==" } })], accept: UPGRADE_REJECT },
  { name: "raw UTF-8 in the path", kind: "http", send: () => [b(H(["GET /caf\xc3\xa9 HTTP/1.1", "Host: x"]))], accept: [...HTTP_REJECT, "404"] },
  { name: "invalid UTF-8 bytes in the path", kind: "http", send: () => [b(H(["GET /\xff\xfe HTTP/1.1", "Host: x"]))], accept: [...HTTP_REJECT, "404"] },
  { name: "non-ASCII in the method", kind: "http", send: () => [b(H(["G\xc9T /healthz HTTP/1.1", "Host: x"]))], accept: [...HTTP_REJECT, "405", "501"] },
  { name: "raw UTF-8 key in a handshake", kind: "http", send: (c) => [b(upgradeRequest(c.garbagePath + "\xc3\xa9"))], accept: UPGRADE_REJECT, visitKey: (c) => c.garbageKey + "é" },
  // --- malformed headers ----------------------------------------------------------
  { name: "header line without a colon", kind: "http", send: () => [H(["GET /healthz HTTP/1.1", "Host: x", "Foo bar"])], accept: HTTP_REJECT },
  { name: "whitespace before the colon", kind: "http", send: () => [H(["GET /healthz HTTP/1.1", "Host : x"])], accept: HTTP_REJECT },
  { name: "HTTP/1.1 without Host", kind: "http", send: () => [H(["GET /healthz HTTP/1.1"])], accept: HTTP_REJECT },
  { name: "two Host headers", kind: "http", send: () => [H(["GET /healthz HTTP/1.1", "Host: a", "Host: b"])], accept: HTTP_REJECT },
  { name: "a 100 KB header", kind: "http", send: () => [H(["GET /healthz HTTP/1.1", "Host: x", `X-Big: ${"a".repeat(100 * 1024)}`])], accept: [...HTTP_REJECT, "413", "431"] },
  { name: "10,000 headers", kind: "http", send: () => [H(["GET /healthz HTTP/1.1", "Host: x", ...Array.from({ length: 10_000 }, (_, i) => `X-H${i}: v`)])], accept: [...HTTP_REJECT, "413", "431"] },
  { name: "a 100 KB request target", kind: "http", send: () => [H([`GET /${"a".repeat(100 * 1024)} HTTP/1.1`, "Host: x"])], accept: [...HTTP_REJECT, "413", "414", "431"] },
  { name: "100 KB handshake key header", kind: "http", send: (c) => [upgradeRequest(c.garbagePath, { headers: { "Sec-WebSocket-Key": "A".repeat(100 * 1024) } })], accept: [...UPGRADE_REJECT, "413", "431"] },
  // --- bodies ------------------------------------------------------------------------
  { name: "Content-Length of 2^70", kind: "http", send: () => [H(["POST /api/counters HTTP/1.1", "Host: x", "Content-Length: 1180591620717411303424"])], accept: [...HTTP_REJECT, "413"] },
  { name: "negative Content-Length", kind: "http", send: () => [H(["POST /api/counters HTTP/1.1", "Host: x", "Content-Length: -1"])], accept: HTTP_REJECT },
  { name: "non-numeric Content-Length", kind: "http", send: () => [H(["POST /api/counters HTTP/1.1", "Host: x", "Content-Length: abc"])], accept: HTTP_REJECT },
  { name: "two different Content-Lengths", kind: "http", send: () => [H(["POST /api/counters HTTP/1.1", "Host: x", "Content-Length: 5", "Content-Length: 6"]) + "hello!"], accept: HTTP_REJECT },
  { name: "chunked body with a non-hex chunk size", kind: "http", send: () => [H(["POST /api/counters HTTP/1.1", "Host: x", "Transfer-Encoding: chunked"]) + "zz\r\nhello\r\n0\r\n\r\n"], accept: [...HTTP_REJECT, "404"] },
  { name: "chunked body with a 2^80 chunk size", kind: "http", send: () => [H(["POST /api/counters HTTP/1.1", "Host: x", "Transfer-Encoding: chunked"]) + "FFFFFFFFFFFFFFFFFFFF\r\nhello\r\n"], accept: [...HTTP_REJECT, "404", "413"] },
  { name: "Transfer-Encoding and Content-Length together", kind: "http", send: () => [H(["POST /api/counters HTTP/1.1", "Host: x", "Content-Length: 4", "Transfer-Encoding: chunked"]) + "0\r\n\r\n"], accept: [...HTTP_REJECT, "404"] },
  // --- bad or missing upgrade headers (to the garbage key, with no resume token) -----
  { name: "handshake without Sec-WebSocket-Key", kind: "http", send: (c) => [upgradeRequest(c.garbagePath, { headers: { "Sec-WebSocket-Key": null } })], accept: UPGRADE_REJECT },
  { name: "Sec-WebSocket-Key of 8 bytes", kind: "http", send: (c) => [upgradeRequest(c.garbagePath, { headers: { "Sec-WebSocket-Key": Buffer.alloc(8, 7).toString("base64") } })], accept: UPGRADE_REJECT },
  { name: "Sec-WebSocket-Key that is not base64", kind: "http", send: (c) => [upgradeRequest(c.garbagePath, { headers: { "Sec-WebSocket-Key": "not*base64*at*all*!!!!==" } })], accept: UPGRADE_REJECT },
  { name: "Sec-WebSocket-Key percent-encoded", kind: "http", send: (c) => [upgradeRequest(c.garbagePath, { headers: { "Sec-WebSocket-Key": "%E0%A4%A%zz%41%41%41%41%41%3D%3D" } })], accept: UPGRADE_REJECT },
  { name: "empty Sec-WebSocket-Key", kind: "http", send: (c) => [upgradeRequest(c.garbagePath, { headers: { "Sec-WebSocket-Key": "" } })], accept: UPGRADE_REJECT },
  { name: "two Sec-WebSocket-Key headers", kind: "http", send: (c) => [upgradeRequest(c.garbagePath).replace(CRLF + CRLF, `${CRLF}Sec-WebSocket-Key: AAAAAAAAAAAAAAAAAAAAAA==${CRLF}${CRLF}`)], accept: UPGRADE_REJECT },
  { name: "Sec-WebSocket-Version 8", kind: "http", send: (c) => [upgradeRequest(c.garbagePath, { headers: { "Sec-WebSocket-Version": "8" } })], accept: UPGRADE_REJECT },
  { name: "Sec-WebSocket-Version 99", kind: "http", send: (c) => [upgradeRequest(c.garbagePath, { headers: { "Sec-WebSocket-Version": "99" } })], accept: UPGRADE_REJECT },
  { name: "no Sec-WebSocket-Version", kind: "http", send: (c) => [upgradeRequest(c.garbagePath, { headers: { "Sec-WebSocket-Version": null } })], accept: UPGRADE_REJECT },
  { name: "Connection without the Upgrade token", kind: "http", send: (c) => [upgradeRequest(c.garbagePath, { headers: { Connection: "keep-alive" } })], accept: UPGRADE_REJECT },
  { name: "Upgrade: websocketx", kind: "http", send: (c) => [upgradeRequest(c.garbagePath, { headers: { Upgrade: "websocketx" } })], accept: UPGRADE_REJECT },
  { name: "Connection: Upgrade without an Upgrade header", kind: "http", send: (c) => [upgradeRequest(c.garbagePath, { headers: { Upgrade: null } })], accept: UPGRADE_REJECT },
  { name: "POST /ws with upgrade headers", kind: "http", send: (c) => [upgradeRequest(c.garbagePath, { method: "POST" })], accept: [...UPGRADE_REJECT, "404", "405"] },
  { name: "HEAD /ws with upgrade headers", kind: "http", send: (c) => [upgradeRequest(c.garbagePath, { method: "HEAD" })], accept: [...UPGRADE_REJECT, "404", "405"] },
  { name: "upgrade to a route that is not a socket", kind: "http", send: () => [upgradeRequest("/healthz")], accept: [...UPGRADE_REJECT, "200", "404"] },
  // (Were one of these accepted, Hono's lenient decoding would count the visit for the undecoded text.)
  { name: "invalid percent-encoding in the counter key", kind: "http", send: (c) => [upgradeRequest(c.garbagePath + "%zz")], accept: UPGRADE_REJECT, visitKey: (c) => c.garbageKey + "%zz" },
  { name: "truncated percent-encoding in the counter key", kind: "http", send: (c) => [upgradeRequest(c.garbagePath + "%E0%A4%A")], accept: UPGRADE_REJECT, visitKey: (c) => c.garbageKey + "%E0%A4%A" },
  { name: "percent-encoded invalid UTF-8 in the counter key", kind: "http", send: (c) => [upgradeRequest(c.garbagePath + "%FF%FE")], accept: UPGRADE_REJECT, visitKey: (c) => c.garbageKey + "%FF%FE" },
  { name: "percent-encoded NUL in the counter key", kind: "http", send: (c) => [upgradeRequest(c.garbagePath + "%00")], accept: UPGRADE_REJECT },
  // --- slow clients ---------------------------------------------------------------------
  {
    name: "slow client that never finishes its headers",
    kind: "http",
    send: () => async (conn) => {
      await conn.write("GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: ");
      // One byte every 200 ms for 2 s, never the blank line.
      for (let i = 0; i < 10 && conn.ended === null; i++) {
        await sleep(200);
        await conn.write("a");
      }
    },
    accept: ["open", "closed", "reset", "408", "400"],
    boundMs: 500,
  },
  {
    name: "handshake that never finishes its headers",
    kind: "http",
    send: (c) => [upgradeRequest(c.garbagePath).slice(0, -4)],
    accept: ["open", "closed", "reset", "408", "400"],
    boundMs: 1500,
  },
  // --- WebSocket frames after a valid (resumed) handshake ------------------------------
  { name: "binary frame", kind: "ws", send: () => [frame({ opcode: Op.binary, payload: new Uint8Array([1, 2, 3]) })], accept: ["close 1003"] },
  { name: "text frame of invalid UTF-8", kind: "ws", send: () => [frame({ opcode: Op.text, payload: new Uint8Array([0x7b, 0xc3, 0x28, 0x7d]) })], accept: ["close 1007", "closed", "reset"] },
  { name: "text frame with a UTF-8 surrogate", kind: "ws", send: () => [frame({ opcode: Op.text, payload: new Uint8Array([0x22, 0xed, 0xa0, 0x80, 0x22]) })], accept: ["close 1007", "closed", "reset"] },
  { name: "invalid UTF-8 split across fragments", kind: "ws", send: () => [frame({ opcode: Op.text, fin: false, payload: new Uint8Array([0x22, 0xf0, 0x9f]) }), frame({ opcode: Op.continuation, payload: new Uint8Array([0x28, 0x22]) })], accept: ["close 1007", "closed", "reset"] },
  { name: "unmasked client frame", kind: "ws", send: () => [frame({ opcode: Op.text, mask: false, payload: '{"type":"ping"}' })], accept: PROTOCOL_ERROR },
  { name: "reserved data opcode 3", kind: "ws", send: () => [frame({ opcode: 0x3, payload: "x" })], accept: PROTOCOL_ERROR },
  { name: "reserved control opcode 0xB", kind: "ws", send: () => [frame({ opcode: 0xb, payload: "x" })], accept: PROTOCOL_ERROR },
  { name: "RSV1 set without an extension", kind: "ws", send: () => [frame({ opcode: Op.text, rsv: 4, payload: '{"type":"ping"}' })], accept: PROTOCOL_ERROR },
  { name: "RSV2 and RSV3 set", kind: "ws", send: () => [frame({ opcode: Op.text, rsv: 3, payload: '{"type":"ping"}' })], accept: PROTOCOL_ERROR },
  { name: "ping with a 126-byte payload", kind: "ws", send: () => [frame({ opcode: Op.ping, payload: "p".repeat(126) })], accept: PROTOCOL_ERROR },
  { name: "fragmented ping", kind: "ws", send: () => [frame({ opcode: Op.ping, fin: false, payload: "a" }), frame({ opcode: Op.continuation, payload: "b" })], accept: PROTOCOL_ERROR },
  { name: "length header claiming 2^40 bytes", kind: "ws", send: () => [frame({ opcode: Op.text, claimedLength: 2n ** 40n, payload: '{"type":"ping"}' })], accept: ["close 1009", ...PROTOCOL_ERROR] },
  { name: "length header with the 64th bit set", kind: "ws", send: () => [frame({ opcode: Op.text, claimedLength: 2n ** 63n + 5n, payload: "hello" })], accept: ["close 1009", ...PROTOCOL_ERROR] },
  { name: "text message over 512 bytes", kind: "ws", send: () => [frame({ opcode: Op.text, payload: JSON.stringify({ type: "ping", pad: "x".repeat(600) }) })], accept: ["close 1009"] },
  { name: "fragments adding up to over 512 bytes", kind: "ws", send: () => [frame({ opcode: Op.text, fin: false, payload: '{"pad":"' + "x".repeat(300) }), frame({ opcode: Op.continuation, fin: false, payload: "x".repeat(300) }), frame({ opcode: Op.continuation, payload: '"}' })], accept: ["close 1009"] },
  { name: "a fragment never finished (FIN=0, then silence)", kind: "ws", send: () => [frame({ opcode: Op.text, fin: false, payload: '{"type":' })], accept: ["open", "close 1002", "close 1008", "closed"], boundMs: 1000 },
  { name: "half a frame header, then silence", kind: "ws", send: () => [Buffer.from([0x81])], accept: ["open", "close 1002", "close 1008", "closed"], boundMs: 1000 },
  { name: "continuation frame without a start", kind: "ws", send: () => [frame({ opcode: Op.continuation, payload: '{"type":"ping"}' })], accept: PROTOCOL_ERROR },
  { name: "new text frame inside a fragmented message", kind: "ws", send: () => [frame({ opcode: Op.text, fin: false, payload: '{"type":' }), frame({ opcode: Op.text, payload: '{"type":"ping"}' })], accept: PROTOCOL_ERROR },
  { name: "close frame with code 1005", kind: "ws", send: () => [frame({ opcode: Op.close, payload: closePayload(1005) })], accept: PROTOCOL_ERROR },
  { name: "close frame with code 1006", kind: "ws", send: () => [frame({ opcode: Op.close, payload: closePayload(1006) })], accept: PROTOCOL_ERROR },
  { name: "close frame with code 999", kind: "ws", send: () => [frame({ opcode: Op.close, payload: closePayload(999) })], accept: PROTOCOL_ERROR },
  { name: "close frame with code 5000", kind: "ws", send: () => [frame({ opcode: Op.close, payload: closePayload(5000) })], accept: PROTOCOL_ERROR },
  { name: "close frame with a 1-byte payload", kind: "ws", send: () => [frame({ opcode: Op.close, payload: new Uint8Array([0x03]) })], accept: PROTOCOL_ERROR },
  { name: "close frame with an invalid UTF-8 reason", kind: "ws", send: () => [frame({ opcode: Op.close, payload: closePayload(1000, new Uint8Array([0xc3, 0x28])) })], accept: ["close 1007", ...PROTOCOL_ERROR] },
  { name: "text frame that is not JSON", kind: "ws", send: () => [frame({ opcode: Op.text, payload: "{not json" })], accept: ["close 1003"] },
  {
    name: "ping flood (5,000 pings in one write)",
    kind: "ws",
    send: () => [Buffer.concat(Array.from({ length: 5000 }, (_, i) => frame({ opcode: Op.ping, payload: String(i) })))],
    // Pings are control frames, not messages: answering them all is fine, and so is a policy close.
    accept: ["open", "close 1008"],
    boundMs: 1500,
    check: (conn, answer) => {
      if (answer === "open") expect(conn.frames.filter((f) => f.opcode === Op.pong).length).toBeGreaterThan(0);
    },
  },
  {
    name: "message flood (200 pings as text messages in one write)",
    kind: "ws",
    send: () => [Buffer.concat(Array.from({ length: 200 }, () => frame({ opcode: Op.text, payload: '{"type":"ping"}' })))],
    accept: ["close 1008"],
  },
];

/**
 * Runtime differences, in one place. `lenient`: answers outside an input's
 * own list that are still acceptable (the runtime's HTTP stack is more
 * forgiving than the RFC, and nothing changes but a read or a visit a
 * conforming client could make all the same), each with its reason. `bugs`:
 * runtime bugs, with the wrong answer the runtime gives today. For each, the
 * input's own test checks the server survives it and that the answer is the
 * known wrong one (a new, different answer is red too), and an expected
 * failure (`it.fails`) asserts the right answer: it turns red the day the
 * runtime is fixed; then delete the entry. Visits counted by either are
 * accounted for in the totals check, visit by visit.
 */
interface RuntimeTarget {
  runtime: RuntimeName;
  lenient: Record<string, { answers: Answer[]; why: string }>;
  bugs: Record<string, { answer: Answer; bug: string }>;
}

// The app cannot refuse these itself: neither runtime shows it the request's HTTP version (Node's can: src/runtime/node-ws.ts).
const HTTP10_UPGRADE_BUN =
  "Bun bug: Bun.serve's server.upgrade() completes a WebSocket handshake on an HTTP/1.0 request (RFC 6455 §4.1: HTTP/1.1 or later), and the visit is counted";
const HTTP10_UPGRADE_DENO =
  "Deno bug: Deno.upgradeWebSocket() completes a WebSocket handshake on an HTTP/1.0 request (RFC 6455 §4.1: HTTP/1.1 or later), and the visit is counted";
const UNMASKED_FRAME_DENO =
  "Deno bug: Deno's server WebSocket accepts an unmasked client frame (RFC 6455 §5.1: the server must close the connection), and the hub answers the ping";

const RUNTIMES: RuntimeTarget[] = [
  {
    runtime: "node",
    lenient: {
      "request line without a version (HTTP/0.9 simple request)": { answers: ["200"], why: "llhttp reads it as a request and node:http answers in HTTP/1.1" },
      "explicit HTTP/0.9": { answers: ["200"], why: "node:http answers any HTTP/x.y with an HTTP/1.1 response" },
      "HTTP/2.0 on an HTTP/1 request line": { answers: ["200"], why: "node:http answers any HTTP/x.y with an HTTP/1.1 response" },
      "two Host headers": { answers: ["200"], why: "node:http keeps the first Host (RFC 9112 §3.2 says 400); a read only" },
      "ping flood (5,000 pings in one write)": { answers: ["closed"], why: "ws terminates a peer with too many unanswered auto-pongs (maxPendingAutoPongs), without a close frame" },
    },
    bugs: {},
  },
  {
    runtime: "bun",
    lenient: {
      "extra token after the version": { answers: ["505"], why: "Bun's parser refuses an unparseable request line with 505" },
      "bare CR line endings": { answers: ["505"], why: "Bun's parser refuses an unparseable request line with 505" },
      "NUL in the method": { answers: ["505"], why: "Bun's parser refuses an unparseable request line with 505" },
      "NUL in the path": { answers: ["505"], why: "Bun's parser refuses an unparseable request line with 505" },
      "non-ASCII in the method": { answers: ["505"], why: "Bun's parser refuses an unparseable request line with 505" },
      "two Host headers": { answers: ["200"], why: "Bun keeps one Host (RFC 9112 §3.2 says 400); a read only" },
      "raw UTF-8 key in a handshake": { answers: ["101+hello"], why: "Bun percent-encodes raw UTF-8 in the target: the same visit a browser makes for that key" },
    },
    bugs: {
      // Bun bug: HTTP/1.0 WebSocket upgrades are accepted (expected failure below).
      "HTTP/1.0 WebSocket upgrade": { answer: "101+hello", bug: HTTP10_UPGRADE_BUN },
    },
  },
  {
    runtime: "deno",
    lenient: {
      "HTTP/2 connection preface on plain TCP": { answers: ["h2"], why: "Deno.serve speaks HTTP/2 with prior knowledge on plain TCP" },
      "HTTP/1.1 without Host": { answers: ["200"], why: "Deno (hyper) does not require Host (RFC 9112 §3.2 says 400); a read only" },
      "raw UTF-8 key in a handshake": { answers: ["101+hello"], why: "Deno percent-encodes raw UTF-8 in the target: the same visit a browser makes for that key" },
      "message flood (200 pings as text messages in one write)": {
        answers: ["closed"],
        why: "the hub does close with 1008, but Deno drops the connection without delivering the close frame while the client is still writing",
      },
    },
    bugs: {
      // Deno bugs: HTTP/1.0 WebSocket upgrades and unmasked client frames are accepted (expected failures below).
      "HTTP/1.0 WebSocket upgrade": { answer: "101+hello", bug: HTTP10_UPGRADE_DENO },
      "unmasked client frame": { answer: "open", bug: UNMASKED_FRAME_DENO },
    },
  },
];

/** Every answer recorded, per runtime, printed at the end for comparison. */
const observed = new Map<string, Map<RuntimeName, Answer>>();

function classifyBytes(data: Buffer): Answer | null {
  if (data.byteLength === 0) return null;
  const head = parseHttpHead(data);
  if (head) return String(head.status);
  // An HTTP/2 frame header: 24-bit length, type 4 (SETTINGS), flags, stream 0.
  if (data.byteLength >= 9 && data[3] === 0x04 && data.readUInt32BE(5) === 0) return "h2";
  return `bytes ${data.subarray(0, 12).toString("hex")}`;
}

async function answerHttp(conn: RawConn, boundMs: number): Promise<Answer> {
  await conn.until(() => conn.head !== null || conn.ended !== null, boundMs);
  const head = conn.head;
  if (head?.status === 101) {
    // A completed handshake on garbage; was it also counted?
    const hello = await conn.until(() => conn.frames.some((f) => f.opcode === Op.text), 3000);
    return hello ? "101+hello" : "101";
  }
  if (head) return String(head.status);
  // Closed: give any bytes already on their way a moment.
  if (conn.ended !== null) {
    await sleep(20);
    return classifyBytes(conn.data) ?? (conn.ended === "reset" ? "reset" : "closed");
  }
  return classifyBytes(conn.data) ?? "open";
}

async function answerWs(conn: RawConn, boundMs: number): Promise<Answer> {
  const closeFrame = () => conn.frames.find((f) => f.opcode === Op.close);
  await conn.until(() => closeFrame() !== undefined || conn.ended !== null, boundMs);
  const f = closeFrame();
  if (f) return `close ${closeCodeOf(f)}`;
  if (conn.ended !== null) return conn.ended === "reset" ? "reset" : "closed";
  return "open";
}

async function counter(server: RunningServer, key: string): Promise<{ total: number; online: number }> {
  const res = await fetch(`${server.url}/api/counters/${encodeURIComponent(key)}`);
  expect(res.status).toBe(200);
  return (await res.json()) as { total: number; online: number };
}

describe.each(RUNTIMES)("malformed input on $runtime", (target) => {
  let server: RunningServer;
  const garbageKey = uniqueKey(`malformed-${target.runtime}-garbage`);
  const framesKey = uniqueKey(`malformed-${target.runtime}-frames`);
  const watchKey = uniqueKey(`malformed-${target.runtime}-watch`);
  let watcher: { sock: TestSocket; hello: Hello };
  /** A second page view on the watcher's key, closed: its token moves "online" without a visit (one socket per token). */
  let newcomer: Hello;
  let ctx: Ctx;
  /** Totals before the corpus, for every key an input could count a visit for. */
  const before = new Map<string, number>();
  /** Visits the corpus legitimately (lenient) or wrongly (bugs) counted, per key, from what was observed. */
  const visits = new Map<string, number>();

  beforeAll(async () => {
    server = await startServer({
      runtime: target.runtime,
      timeoutMs: 60_000,
      // Lift the abuse limits this suite is not about: it opens many connections from one address.
      env: { RATE_LIMIT_BURST: "100000", RATE_LIMIT_PER_SEC: "100000", MAX_SOCKETS_PER_IP: "10000" },
    });
    // Three real visits: the watcher, a newcomer whose token comes and goes, and one whose resume token every frame test presents.
    watcher = await TestSocket.join(server.wsUrl(watchKey));
    const comer = await TestSocket.join(server.wsUrl(watchKey));
    await comer.sock.close();
    newcomer = comer.hello;
    const seed = await TestSocket.join(server.wsUrl(framesKey));
    await seed.sock.close();
    ctx = {
      garbageKey,
      garbagePath: `/ws?key=${encodeURIComponent(garbageKey)}`,
      framesPath: `/ws?key=${encodeURIComponent(framesKey)}&resume=${encodeURIComponent(seed.hello.resume)}`,
    };
    const keys = new Set([garbageKey, framesKey, watchKey, ...corpus.flatMap((i) => (i.visitKey ? [i.visitKey(ctx)] : []))]);
    for (const key of keys) before.set(key, (await counter(server, key)).total);
    expect(Object.fromEntries(before)).toMatchObject({ [garbageKey]: 0, [framesKey]: 1, [watchKey]: 2 });
  });

  afterAll(async () => {
    await watcher?.sock.close().catch(() => {});
    await server?.stop();
  });

  /** The server still serves others: health answers, and the open watcher sees a newcomer come and go. */
  async function servesOthers(): Promise<void> {
    const health = await fetch(`${server.url}/healthz`, { signal: AbortSignal.timeout(5000) });
    expect(health.status).toBe(200);
    // A resumed socket on the watcher's key moves "online" without a visit.
    const probe = await TestSocket.join(server.wsUrl(watchKey, newcomer.resume), 5000);
    expect(probe.hello.total).toBe(2);
    await watcher.sock.until((n) => n.online === 2 && n.total === 2, 5000);
    await probe.sock.close();
    await watcher.sock.until((n) => n.online === 1 && n.total === 2, 5000);
  }

  for (const input of corpus) {
    const bug = target.bugs[input.name];
    /** The answers the RFCs allow, and the runtime's accepted leniency. */
    const right = [...input.accept, ...(target.lenient[input.name]?.answers ?? [])];
    it(`${input.kind} · ${input.name}`, async () => {
      expect(server.proc.exitCode, "server exited").toBeNull();
      let conn: RawConn;
      if (input.kind === "ws") {
        const hs = await rawHandshake(server.port, ctx.framesPath);
        // Resumed: the same visitor, no new visit.
        expect(hs.hello).toMatchObject({ type: "hello", visitor: 1, total: 1 });
        conn = hs.conn;
      } else {
        conn = await RawConn.open(server.port);
      }
      let answer: Answer;
      try {
        const plan = input.send(ctx);
        // A paced sender runs alongside the wait, and the server must keep serving others meanwhile.
        let pacing: Promise<void> | undefined;
        if (typeof plan === "function") pacing = plan(conn);
        else for (const chunk of plan) await conn.write(chunk);
        answer = input.kind === "ws" ? await answerWs(conn, input.boundMs ?? 3000) : await answerHttp(conn, input.boundMs ?? 3000);
        if (pacing) {
          await servesOthers();
          await pacing;
        }
        if (!observed.has(input.name)) observed.set(input.name, new Map());
        observed.get(input.name)!.set(target.runtime, answer);
        if (answer === "101+hello") {
          const key = input.visitKey?.(ctx) ?? garbageKey;
          visits.set(key, (visits.get(key) ?? 0) + 1);
        }
        input.check?.(conn, answer);
      } finally {
        conn.destroy();
      }
      expect(server.proc.exitCode, "server exited").toBeNull();
      await servesOthers();

      const said = `${target.runtime} answered ${JSON.stringify(answer)} to "${input.name}"`;
      // While a bug is open its known wrong answer passes here (the expected failure below wants the right one); any other answer is red.
      expect(bug ? [...right, bug.answer] : right, bug ? `${said}; known bug: ${bug.bug}` : said).toContain(answer);
    });

    if (bug) {
      // Expected failure: the runtime bug named in RUNTIMES. The server's survival is the test above;
      // this asserts the right answer, so it passes while the bug is open and turns red once it is
      // fixed (then delete the entry in RUNTIMES).
      it.fails(`[known ${target.runtime} bug] ${input.kind} · ${input.name}: answered as the RFC says`, () => {
        const answer = observed.get(input.name)?.get(target.runtime);
        expect(right, `${target.runtime} answered ${JSON.stringify(answer)}; ${bug.bug}`).toContain(answer);
      });
    }
  }

  it("totals moved by exactly the visits accounted for above (none for garbage), and every garbage socket has left", async () => {
    const expected = Object.fromEntries([...before].map(([key, total]) => [key, total + (visits.get(key) ?? 0)]));
    const actual = Object.fromEntries(await Promise.all([...before.keys()].map(async (key) => [key, (await counter(server, key)).total])));
    expect(actual).toEqual(expected);
    for (const key of [garbageKey, framesKey]) {
      await expect.poll(async () => (await counter(server, key)).online, { timeout: 5000 }).toBe(0);
    }
    expect((await counter(server, watchKey)).online).toBe(1);
    expect(server.proc.exitCode).toBeNull();
  });
});

afterAll(() => {
  const runtimes = RUNTIMES.map((r) => r.runtime);
  const rows = [...observed].map(([name, by]) => {
    const answers = runtimes.map((r) => by.get(r) ?? "-");
    return `${new Set(answers).size > 1 ? "≠" : " "} ${name.padEnd(58)} ${answers.map((a) => a.padEnd(12)).join(" ")}`;
  });
  if (observed.size === 0) return;
  console.log(`malformed inputs: ${corpus.length}\n  ${"input".padEnd(58)} ${runtimes.map((r) => r.padEnd(12)).join(" ")}\n${rows.join("\n")}`);
});
