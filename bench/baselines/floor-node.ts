// Baseline (b), the floor for Node: a bare `ws` server doing the same
// coalesced work as headcount, and nothing else. Group commit to PostgreSQL
// (same statement), a hello per joiner (with an HMAC token), and one count per
// key per BROADCAST_INTERVAL_MS, encoded once into a single WebSocket frame
// written as-is to every watcher's socket. Same wire protocol (DESIGN.md §4).
import http from "node:http";
import { randomBytes } from "node:crypto";
import postgres from "postgres";
import * as wsModule from "ws";
import { WebSocketServer, type WebSocket } from "ws";
import { Coalescer, env, GroupCommit, GROUP_COMMIT_SQL, keyOf, listening, token } from "./common.ts";

// ws exports Sender (ws/wrapper.mjs) but @types/ws does not declare it.
const Sender = (wsModule as unknown as { Sender: { frame(data: Buffer, options: object): Buffer[] } }).Sender;

interface Room {
  peers: Set<WebSocket>;
  watchers: Set<WebSocket>;
  total: number;
  seq: number;
}

const sql = postgres(env("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/test"), {
  max: Number(env("PG_POOL_MAX", "10")),
  onnotice: () => {},
});
const interval = Number(env("BROADCAST_INTERVAL_MS", "25"));
const mode = env("FLOOR_SEND", "frame"); // "frame": one pre-built frame; "send": ws.send per socket
const secret = randomBytes(32).toString("base64url");
const rooms = new Map<string, Room>();
const room = (key: string): Room => {
  let r = rooms.get(key);
  if (!r) rooms.set(key, (r = { peers: new Set(), watchers: new Set(), total: 0, seq: 0 }));
  return r;
};

const coalescer = new Coalescer(interval, (key) => {
  const r = rooms.get(key);
  if (!r || r.watchers.size === 0) return;
  r.seq++;
  const text = JSON.stringify({ type: "count", key, total: r.total, online: r.peers.size, seq: r.seq });
  if (mode === "send") {
    for (const ws of r.watchers) ws.send(text);
    return;
  }
  const parts = Sender.frame(Buffer.from(text), {
    fin: true, opcode: 1, mask: false, readOnly: false, rsv1: false,
  } as never) as Buffer[];
  const frame = Buffer.concat(parts);
  for (const ws of r.watchers) (ws as unknown as { _socket: import("node:net").Socket })._socket.write(frame);
});

const commits = new GroupCommit<WebSocket>(
  async (keys, counts) => {
    const rows = await sql.unsafe(GROUP_COMMIT_SQL, [keys, counts] as never);
    return new Map(rows.map((r) => [r.key as string, Number(r.total)]));
  },
  (key, total, waiters) => {
    const r = room(key);
    if (total > r.total) r.total = total;
    let visitor = total - waiters.length + 1;
    for (const ws of waiters) {
      const v = visitor++;
      if (ws.readyState !== 1) continue;
      r.watchers.add(ws);
      ws.send(JSON.stringify({ type: "hello", key, total: r.total, online: r.peers.size, visitor: v, resume: token(secret, key, v), seq: r.seq }));
    }
    coalescer.touch(key);
  },
);

const wss = new WebSocketServer({ noServer: true, clientTracking: false, perMessageDeflate: false, maxPayload: 512 });
const server = http.createServer((_req, res) => res.writeHead(404).end());
server.on("upgrade", (req, socket, head) => {
  socket.on("error", () => {});
  const key = keyOf(req.url);
  if (key === null) return void socket.end("HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\n\r\n");
  wss.handleUpgrade(req, socket, head, (ws) => {
    const r = room(key);
    r.peers.add(ws);
    ws.on("message", () => ws.send('{"type":"pong"}'));
    ws.on("close", () => {
      r.peers.delete(ws);
      r.watchers.delete(ws);
      coalescer.touch(key);
    });
    ws.on("error", () => {});
    coalescer.touch(key);
    commits.add(key, ws);
  });
});
server.listen(Number(env("PORT", "0")), "127.0.0.1", () => listening((server.address() as { port: number }).port, "floor-node"));
process.on("SIGTERM", () => process.exit(0));
