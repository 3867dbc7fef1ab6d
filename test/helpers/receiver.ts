import { createHmac, timingSafeEqual } from "node:crypto";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo, Socket } from "node:net";

// A real webhook receiver on loopback: records every delivery, verifies the
// signature the way the README tells receivers to, dedupes by event id, and
// counts its own open connections.

export interface Delivery {
  id: string;
  body: Record<string, unknown>;
  signatureValid: boolean | null;
  at: number;
}

export interface Receiver {
  url: string;
  deliveries: Delivery[];
  /** Distinct event ids, as a deduping receiver would process them. */
  unique(): Map<string, Delivery>;
  maxConnections: number;
  /** Decides each response; default 200 at once. */
  respond: (req: IncomingMessage, res: ServerResponse, attempt: number) => void;
  close(): Promise<void>;
}

export function verifySignature(secret: string, header: string | undefined, body: string, toleranceS = 300): boolean {
  const m = /^t=(\d+),v1=([0-9a-f]{64})$/.exec(header ?? "");
  if (!m) return false;
  if (Math.abs(Date.now() / 1000 - Number(m[1])) > toleranceS) return false;
  const expected = createHmac("sha256", secret).update(`${m[1]}.${body}`).digest();
  return timingSafeEqual(expected, Buffer.from(m[2]!, "hex"));
}

export async function startReceiver(secret?: string): Promise<Receiver> {
  let open = 0;
  const attempts = new Map<string, number>();
  const r: Receiver = {
    url: "",
    deliveries: [],
    maxConnections: 0,
    unique: () => new Map(r.deliveries.map((d) => [d.id, d])),
    respond: (_req, res) => res.writeHead(200).end("ok"),
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
  const server: Server = createServer((req, res) => {
    let raw = "";
    req.on("data", (c: Buffer) => (raw += c.toString()));
    req.on("end", () => {
      const body = JSON.parse(raw) as Record<string, unknown>;
      const id = String(body.id);
      const n = (attempts.get(id) ?? 0) + 1;
      attempts.set(id, n);
      r.deliveries.push({
        id,
        body,
        signatureValid: secret ? verifySignature(secret, req.headers["x-headcount-signature"] as string | undefined, raw) : null,
        at: Date.now(),
      });
      r.respond(req, res, n);
    });
  });
  server.on("connection", (socket: Socket) => {
    open++;
    r.maxConnections = Math.max(r.maxConnections, open);
    socket.on("close", () => open--);
  });
  server.keepAliveTimeout = 30_000;
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  r.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const close = r.close;
  r.close = () => {
    server.closeAllConnections();
    return close();
  };
  return r;
}

/**
 * Answers 200 with a body that never ends, as a broken or hostile receiver
 * might: 64 KiB chunks as fast as the client reads, until the client goes
 * away or `cap` bytes have gone. Resolves with the bytes written.
 */
export function endlessBody(res: ServerResponse, cap = 256 * 2 ** 20): Promise<number> {
  const chunk = Buffer.alloc(65_536, 0x61);
  let written = 0;
  return new Promise((resolve) => {
    const done = () => resolve(written);
    res.once("close", done);
    res.writeHead(200, { "Content-Type": "text/plain" });
    const pump = () => {
      while (written < cap && !res.destroyed) {
        written += chunk.byteLength;
        if (!res.write(chunk)) return void res.once("drain", pump);
      }
      res.end();
    };
    pump();
  });
}
