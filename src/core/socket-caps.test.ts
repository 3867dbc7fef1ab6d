import { describe, expect, it } from "vitest";
import { SocketCaps } from "./socket-caps.ts";

describe("SocketCaps", () => {
  it("refuses per address at maxPerAddress and lets other addresses in", () => {
    const g = new SocketCaps(100, 3);
    for (let i = 0; i < 3; i++) expect(g.take("a")).toBe(true);
    expect(g.check("a")).toBe("per_ip");
    expect(g.take("a")).toBe(false);
    expect(g.check("b")).toBeNull();
    expect(g.take("b")).toBe(true);
    expect(g.open).toBe(4);
    expect(g.refusals).toBe(1);
  });

  it("refuses everyone at maxSockets, global before per address", () => {
    const g = new SocketCaps(5, 3);
    for (const a of ["a", "a", "a", "b", "c"]) expect(g.take(a)).toBe(true);
    expect(g.check("d")).toBe("global");
    expect(g.check("a")).toBe("global");
    expect(g.take("d")).toBe(false);
    expect(g.open).toBe(5);
  });

  it("check alone takes nothing", () => {
    const g = new SocketCaps(1, 1);
    for (let i = 0; i < 10; i++) expect(g.check("a")).toBeNull();
    expect(g.open).toBe(0);
    expect(g.refusals).toBe(0);
  });

  it("release frees a slot for the same address and for everyone", () => {
    const g = new SocketCaps(3, 2);
    g.take("a");
    g.take("a");
    g.take("b");
    expect(g.check("a")).toBe("global");
    g.release("a");
    expect(g.open).toBe(2);
    expect(g.check("c")).toBeNull();
    expect(g.take("a")).toBe(true);
    expect(g.take("a")).toBe(false);
    g.release("b");
    expect(g.take("a")).toBe(false);
  });

  it("forgets an address when its last socket closes (the map stays bounded)", () => {
    const g = new SocketCaps(10_000_000, 2);
    for (let i = 0; i < 10_000; i++) {
      expect(g.take(`addr-${i}`)).toBe(true);
      g.release(`addr-${i}`);
    }
    expect(g.open).toBe(0);
    // A fresh address after all that gets its full allowance
    expect(g.take("addr-5")).toBe(true);
    expect(g.take("addr-5")).toBe(true);
    expect(g.take("addr-5")).toBe(false);
  });
});
