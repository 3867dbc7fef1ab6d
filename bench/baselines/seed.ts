// Baseline (a), the seed design: every visit runs its own
// `INSERT … ON CONFLICT DO UPDATE SET total = total + 1` and then sends the
// new count to every socket watching the key, so N visitors arriving together
// cost N statements on one hot row and O(N²) messages. Bare `ws` + postgres.js.
import http from "node:http";
import { randomBytes } from "node:crypto";
import postgres from "postgres";
import { WebSocketServer, type WebSocket } from "ws";
import { env, keyOf, listening, SEED_SQL, token } from "./common.ts";

const sql = postgres(env("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/test"), {
  max: Number(env("PG_POOL_MAX", "10")),
  onnotice: () => {},
});
const secret = randomBytes(32).toString("base64url");
const rooms = new Map<string, { peers: Set<WebSocket>; total: number; seq: number }>();

const wss = new WebSocketServer({ noServer: true, clientTracking: false, perMessageDeflate: false, maxPayload: 512 });
const server = http.createServer((_req, res) => res.writeHead(404).end());
server.on("upgrade", (req, socket, head) => {
  socket.on("error", () => {});
  const key = keyOf(req.url);
  if (key === null) return void socket.end("HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\n\r\n");
  wss.handleUpgrade(req, socket, head, (ws) => {
    let r = rooms.get(key);
    if (!r) rooms.set(key, (r = { peers: new Set(), total: 0, seq: 0 }));
    const room = r;
    room.peers.add(ws);
    ws.on("message", () => ws.send('{"type":"pong"}'));
    ws.on("close", () => room.peers.delete(ws));
    ws.on("error", () => {});
    sql.unsafe(SEED_SQL, [key]).then(
      (rows) => {
        const total = Number(rows[0]!.total);
        if (total > room.total) room.total = total;
        room.seq++;
        if (ws.readyState === 1) {
          ws.send(JSON.stringify({ type: "hello", key, total, online: room.peers.size, visitor: total, resume: token(secret, key, total), seq: room.seq }));
        }
        const text = JSON.stringify({ type: "count", key, total: room.total, online: room.peers.size, seq: room.seq });
        for (const peer of room.peers) if (peer !== ws && peer.readyState === 1) peer.send(text);
      },
      (err: unknown) => ws.close(1011, String(err).slice(0, 100)),
    );
  });
});
server.listen(Number(env("PORT", "0")), "127.0.0.1", () => listening((server.address() as { port: number }).port, "seed"));
process.on("SIGTERM", () => process.exit(0));
