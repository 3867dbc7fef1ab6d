import { IncomingMessage } from "node:http";
import { Socket } from "node:net";
import { Hono } from "hono";
import { describe, expect, it } from "vitest";
import { upgradeRequest } from "./node-upgrade-request.ts";

function incoming(url: string, headers: Record<string, string | string[]>, method = "GET"): IncomingMessage {
  const msg = new IncomingMessage(new Socket());
  msg.url = url;
  msg.method = method;
  msg.headers = headers;
  return msg;
}

describe("upgradeRequest", () => {
  const msg = () =>
    incoming("/ws?key=%2Fa", { host: "example.test:8080", upgrade: "websocket", "x-many": "a, b", "set-cookie": ["c=1", "d=2"] });

  it("answers url, method and headers like a real Request", () => {
    const fake = upgradeRequest(msg());
    const headers = new Headers();
    for (const [name, value] of Object.entries(msg().headers)) for (const v of [value].flat()) headers.append(name, v!);
    const real = new Request("http://example.test:8080/ws?key=%2Fa", { headers });
    expect(fake).toBeInstanceOf(Request);
    expect(fake.url).toBe(real.url);
    expect(fake.method).toBe("GET");
    for (const name of ["Upgrade", "x-many", "set-cookie", "absent"]) {
      expect(fake.headers.get(name)).toBe(real.headers.get(name));
      expect(fake.headers.has(name)).toBe(real.headers.has(name));
    }
    expect([...fake.headers]).toEqual([...real.headers]);
    expect(fake.headers.getSetCookie()).toEqual(["c=1", "d=2"]);
  });

  it("builds the real Request for anything else", async () => {
    const fake = upgradeRequest(msg());
    expect(fake.signal).toBeInstanceOf(AbortSignal);
    expect(fake.bodyUsed).toBe(false);
    const copy = fake.clone();
    expect(copy.url).toBe(fake.url);
    expect(await fake.text()).toBe("");
  });

  it("reads a header set after a fill from the filled copy", () => {
    const fake = upgradeRequest(msg());
    fake.headers.set("x-added", "1");
    expect(fake.headers.get("x-added")).toBe("1");
    expect(fake.headers.get("upgrade")).toBe("websocket");
  });

  it("keeps a request target that starts with // a path, and throws on a bad Host like new Request", () => {
    expect(new URL(upgradeRequest(incoming("//evil.test/ws", { host: "example.test" })).url).host).toBe("example.test");
    expect(() => upgradeRequest(incoming("/ws", { host: "bad host" }))).toThrow(TypeError);
  });

  it("routes through Hono", async () => {
    const app = new Hono().get("/ws", (c) => c.json({ key: c.req.query("key"), upgrade: c.req.header("upgrade") }));
    const res = await app.fetch(upgradeRequest(msg()));
    expect(await res.json()).toEqual({ key: "/a", upgrade: "websocket" });
  });
});
