/// <reference types="bun" />
// Sockets that never read, as a hostile client makes them: each completes a
// WebSocket handshake, then never reads another byte, and sends a masked ping
// frame every so often, so it looks alive to anything that only watches what
// a client writes. Run by Bun (a project dependency) because it needs
// socket options no JavaScript socket API offers: a tiny receive buffer and a
// 536-byte MSS (TCP_MAXSEG, set before connect, so the server's side uses it
// too). On loopback the MSS is 64 KiB and the server's kernel send buffer
// autotunes to about a megabyte per socket, which a test would need minutes
// of broadcasts to fill; with these options the kernel holds a few KiB, and
// what the server buffers itself shows within seconds, as it would from a
// client behind a slow or hostile network.
//
//   bun test/helpers/non-readers.ts <port> <path> <count> [pingMs]
//
// Prints one JSON line when every socket has its 101 ({"ready":n,"failed":m}),
// then one a second ({"open":n,"cut":m}): a socket is cut once the server has
// ended the connection (its TCP state is no longer ESTABLISHED: a FIN
// or, as data from us reaches a socket the server has closed, a RST).
// Exits, closing everything, when stdin closes or on SIGTERM.
import { dlopen, FFIType } from "bun:ffi";
import { BROWSER_UA } from "./env.ts";

const [portArg, path, countArg, pingArg] = process.argv.slice(2);
const port = Number(portArg);
const count = Number(countArg);
const pingMs = Number(pingArg ?? 500);
if (!Number.isInteger(port) || !path || !Number.isInteger(count)) {
  console.error("usage: bun test/helpers/non-readers.ts <port> <path> <count> [pingMs]");
  process.exit(2);
}

const AF_INET = 2;
const SOCK_STREAM = 1;
const SOL_SOCKET = 1;
const SO_RCVBUF = 8;
const SO_RCVTIMEO = 20;
const IPPROTO_TCP = 6;
const TCP_MAXSEG = 2;
const TCP_INFO = 11;
const TCP_ESTABLISHED = 1;
const MSG_DONTWAIT = 0x40;
const MSG_NOSIGNAL = 0x4000;

const libc = dlopen("libc.so.6", {
  socket: { args: [FFIType.i32, FFIType.i32, FFIType.i32], returns: FFIType.i32 },
  setsockopt: { args: [FFIType.i32, FFIType.i32, FFIType.i32, FFIType.ptr, FFIType.u32], returns: FFIType.i32 },
  getsockopt: { args: [FFIType.i32, FFIType.i32, FFIType.i32, FFIType.ptr, FFIType.ptr], returns: FFIType.i32 },
  connect: { args: [FFIType.i32, FFIType.ptr, FFIType.u32], returns: FFIType.i32 },
  send: { args: [FFIType.i32, FFIType.ptr, FFIType.u64, FFIType.i32], returns: FFIType.i64 },
  recv: { args: [FFIType.i32, FFIType.ptr, FFIType.u64, FFIType.i32], returns: FFIType.i64 },
  close: { args: [FFIType.i32], returns: FFIType.i32 },
}).symbols;

const int = (n: number) => new Int32Array([n]);

function setInt(fd: number, level: number, name: number, value: number): void {
  if (libc.setsockopt(fd, level, name, int(value), 4) !== 0) throw new Error(`setsockopt(${level}, ${name}) failed`);
}

function sockaddr(): Uint8Array {
  const a = new Uint8Array(16);
  const v = new DataView(a.buffer);
  v.setUint16(0, AF_INET, true);
  v.setUint16(2, port, false);
  a.set([127, 0, 0, 1], 4);
  return a;
}

function sendAll(fd: number, bytes: Uint8Array): boolean {
  return Number(libc.send(fd, bytes, bytes.byteLength, MSG_NOSIGNAL)) === bytes.byteLength;
}

/** Connects and completes the handshake; reads only until the end of the 101 head (the hello may come along). */
function open(): number | null {
  const fd = libc.socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return null;
  setInt(fd, SOL_SOCKET, SO_RCVBUF, 4096);
  setInt(fd, IPPROTO_TCP, TCP_MAXSEG, 536);
  // A 5 s receive timeout (struct timeval) so a server that never answers cannot hang the helper.
  const tv = new BigInt64Array([5n, 0n]);
  libc.setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, tv, 16);
  if (libc.connect(fd, sockaddr(), 16) !== 0) {
    libc.close(fd);
    return null;
  }
  const key = Buffer.from(crypto.getRandomValues(new Uint8Array(16))).toString("base64");
  const request = `GET ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: ${key}\r\nSec-WebSocket-Version: 13\r\nUser-Agent: ${BROWSER_UA}\r\n\r\n`;
  if (!sendAll(fd, Buffer.from(request))) {
    libc.close(fd);
    return null;
  }
  const buf = new Uint8Array(512);
  let head = "";
  while (!head.includes("\r\n\r\n")) {
    const n = Number(libc.recv(fd, buf, buf.byteLength, 0));
    if (n <= 0) break;
    head += Buffer.from(buf.subarray(0, n)).toString("latin1");
  }
  if (!head.startsWith("HTTP/1.1 101")) {
    libc.close(fd);
    return null;
  }
  return fd;
}

/** The TCP state from TCP_INFO (its first byte). */
function tcpState(fd: number): number {
  const info = new Uint8Array(256);
  const len = int(info.byteLength);
  return libc.getsockopt(fd, IPPROTO_TCP, TCP_INFO, info, len) === 0 ? info[0]! : -1;
}

const sockets: number[] = [];
let failed = 0;
for (let i = 0; i < count; i++) {
  const fd = open();
  if (fd === null) failed++;
  else sockets.push(fd);
}
console.log(JSON.stringify({ ready: sockets.length, failed }));

const cut = new Set<number>();
// An empty masked ping: FIN + opcode 9, mask bit, zero length, a masking key.
const ping = new Uint8Array([0x89, 0x80, 1, 2, 3, 4]);
const tick = () => {
  for (const fd of sockets) {
    if (cut.has(fd)) continue;
    // A failed send alone proves nothing (our own buffer may be full); the state is what the server did.
    libc.send(fd, ping, ping.byteLength, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (tcpState(fd) !== TCP_ESTABLISHED) cut.add(fd);
  }
};
const pinger = setInterval(tick, pingMs);
const reporter = setInterval(() => console.log(JSON.stringify({ open: sockets.length - cut.size, cut: cut.size })), 1000);

const done = () => {
  clearInterval(pinger);
  clearInterval(reporter);
  for (const fd of sockets) libc.close(fd);
  process.exit(0);
};
process.on("SIGTERM", done);
process.stdin.on("end", done);
process.stdin.resume();
