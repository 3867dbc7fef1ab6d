import { createServer, request, type Server } from "node:http";
import { connect, type AddressInfo, type Socket } from "node:net";

// A reverse proxy that forwards plain HTTP (streaming both ways, so event
// streams pass) and refuses every WebSocket upgrade with 403, as the
// corporate proxies, antivirus products and hotel networks the SSE fallback
// is for do; `blockUpgrades = false` lets them through (the reader moved to
// a better network). Test-only, on 127.0.0.1.

export interface NoUpgradeProxy {
  url: string;
  port: number;
  /** Upgrades refused so far. */
  refused: number;
  /** Refuse upgrades (default) or tunnel them to the target. */
  blockUpgrades: boolean;
  close(): Promise<void>;
}

export async function startNoUpgradeProxy(target: string): Promise<NoUpgradeProxy> {
  const upstream = new URL(target);
  const sockets = new Set<Socket>();
  const server: Server = createServer((req, res) => {
    const out = request(
      { host: upstream.hostname, port: upstream.port, method: req.method, path: req.url, headers: req.headers, agent: false },
      (up) => {
        res.writeHead(up.statusCode ?? 502, up.headers);
        // No buffering: each chunk goes on as it arrives (res is not corked), so events stay live.
        up.pipe(res);
      },
    );
    out.on("error", () => res.destroy());
    res.on("close", () => out.destroy());
    req.pipe(out);
  });
  const proxy: NoUpgradeProxy = { url: "", port: 0, refused: 0, blockUpgrades: true, close: async () => {} };
  server.on("upgrade", (req, socket: Socket, head: Buffer) => {
    if (proxy.blockUpgrades) {
      proxy.refused++;
      socket.end("HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
      return;
    }
    const up = connect(Number(upstream.port), upstream.hostname, () => {
      const lines = [`${req.method} ${req.url} HTTP/1.1`];
      for (let i = 0; i < req.rawHeaders.length; i += 2) lines.push(`${req.rawHeaders[i]}: ${req.rawHeaders[i + 1]}`);
      up.write(lines.join("\r\n") + "\r\n\r\n");
      up.write(head);
      up.pipe(socket).pipe(up);
    });
    sockets.add(up);
    up.on("close", () => sockets.delete(up));
    up.on("error", () => socket.destroy());
    socket.on("error", () => up.destroy());
  });
  server.on("connection", (s) => {
    sockets.add(s);
    s.on("close", () => sockets.delete(s));
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  proxy.port = port;
  proxy.url = `http://127.0.0.1:${port}`;
  proxy.close = () =>
    new Promise<void>((resolve) => {
      for (const s of sockets) s.destroy();
      server.close(() => resolve());
    });
  return proxy;
}
