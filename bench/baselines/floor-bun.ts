// Baseline (c), the floor for Bun: Bun.serve's WebSocket with native topic
// publish doing the same coalesced work as headcount: group commit to
// PostgreSQL (same statement, postgres.js), a hello per joiner with an HMAC
// token (the joiner then subscribes to the key's topic), and one count per key
// per BROADCAST_INTERVAL_MS sent with server.publish. Same wire protocol.
import { randomBytes } from "node:crypto";
import postgres from "postgres";
import type { ServerWebSocket } from "bun";
import { Coalescer, env, GroupCommit, GROUP_COMMIT_SQL, keyOf, listening, token } from "./common.ts";

type Sock = ServerWebSocket<{ key: string }>;
const sql = postgres(env("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/test"), {
  max: Number(env("PG_POOL_MAX", "10")),
  onnotice: () => {},
});
const interval = Number(env("BROADCAST_INTERVAL_MS", "25"));
const secret = randomBytes(32).toString("base64url");
const rooms = new Map<string, { online: number; total: number; seq: number }>();
const room = (key: string) => {
  let r = rooms.get(key);
  if (!r) rooms.set(key, (r = { online: 0, total: 0, seq: 0 }));
  return r;
};

const coalescer = new Coalescer(interval, (key) => {
  const r = rooms.get(key);
  if (!r) return;
  r.seq++;
  server.publish(key, JSON.stringify({ type: "count", key, total: r.total, online: r.online, seq: r.seq }));
});

const commits = new GroupCommit<Sock>(
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
      ws.subscribe(key);
      ws.send(JSON.stringify({ type: "hello", key, total: r.total, online: r.online, visitor: v, resume: token(secret, key, v), seq: r.seq }));
    }
    coalescer.touch(key);
  },
);

const server = Bun.serve<{ key: string }, never>({
  port: Number(env("PORT", "0")),
  hostname: "127.0.0.1",
  fetch(req, srv) {
    const url = req.url;
    const path = url.slice(url.indexOf("/", 8));
    if (!path.startsWith("/ws")) return new Response("not found", { status: 404 });
    const key = keyOf(path);
    if (key === null) return new Response("bad key", { status: 400 });
    if (srv.upgrade(req, { data: { key } })) return undefined;
    return new Response("upgrade required", { status: 426 });
  },
  websocket: {
    perMessageDeflate: false,
    maxPayloadLength: 512,
    open(ws) {
      room(ws.data.key).online++;
      coalescer.touch(ws.data.key);
      commits.add(ws.data.key, ws);
    },
    message(ws) {
      ws.send('{"type":"pong"}');
    },
    close(ws) {
      room(ws.data.key).online--;
      coalescer.touch(ws.data.key);
    },
  },
});
listening(server.port!, "floor-bun");
process.on("SIGTERM", () => process.exit(0));
