import { describe, expect, it } from "vitest";
import { maskAddress, SocketGate } from "./socket-gate.ts";

describe("SocketGate", () => {
  it("refuses per address at maxPerIp and lets other addresses in", () => {
    const g = new SocketGate(100, 3);
    for (let i = 0; i < 3; i++) expect(g.acquire("a")).toBeNull();
    expect(g.check("a")).toBe("per_ip");
    expect(g.acquire("a")).toBe("per_ip");
    expect(g.check("b")).toBeNull();
    expect(g.acquire("b")).toBeNull();
    expect(g.open).toBe(4);
    expect(g.refusals).toBe(1);
  });

  it("refuses everyone at maxSockets, global before per address", () => {
    const g = new SocketGate(5, 3);
    for (const a of ["a", "a", "a", "b", "c"]) expect(g.acquire(a)).toBeNull();
    expect(g.check("d")).toBe("global");
    expect(g.check("a")).toBe("global");
    expect(g.acquire("d")).toBe("global");
    expect(g.open).toBe(5);
  });

  it("check alone takes nothing", () => {
    const g = new SocketGate(1, 1);
    for (let i = 0; i < 10; i++) expect(g.check("a")).toBeNull();
    expect(g.open).toBe(0);
    expect(g.refusals).toBe(0);
  });

  it("release frees a slot for the same address and for everyone", () => {
    const g = new SocketGate(3, 2);
    g.acquire("a");
    g.acquire("a");
    g.acquire("b");
    expect(g.check("a")).toBe("global");
    g.release("a");
    expect(g.open).toBe(2);
    expect(g.check("c")).toBeNull();
    expect(g.acquire("a")).toBeNull();
    expect(g.acquire("a")).toBe("global");
    g.release("b");
    expect(g.acquire("a")).toBe("per_ip");
  });

  it("forgets an address when its last socket closes (the map stays bounded)", () => {
    const g = new SocketGate(10_000_000, 2);
    for (let i = 0; i < 10_000; i++) {
      expect(g.acquire(`addr-${i}`)).toBeNull();
      g.release(`addr-${i}`);
    }
    expect(g.open).toBe(0);
    // A fresh address after all that gets its full allowance
    expect(g.acquire("addr-5")).toBeNull();
    expect(g.acquire("addr-5")).toBeNull();
    expect(g.acquire("addr-5")).toBe("per_ip");
  });
});

describe("maskAddress", () => {
  it("keeps three octets of IPv4", () => {
    expect(maskAddress("203.0.113.57")).toBe("203.0.113.x");
    expect(maskAddress("127.0.0.1")).toBe("127.0.0.x");
    expect(maskAddress("127.0.0.1")).not.toContain("127.0.0.1");
  });

  it("keeps three octets of an IPv4-mapped IPv6 address", () => {
    expect(maskAddress("::ffff:127.0.0.1")).toBe("127.0.0.x");
    expect(maskAddress("::FFFF:198.51.100.200")).toBe("198.51.100.x");
  });

  it("keeps the first three groups of IPv6", () => {
    expect(maskAddress("2001:db8:85a3:8d3:1319:8a2e:370:7348")).toBe("2001:db8:85a3:…");
    expect(maskAddress("2001:db8:85a3::7348")).toBe("2001:db8:85a3:…");
  });

  it("never gives back a compressed IPv6 address whole", () => {
    for (const [addr, last] of [
      ["2001::1234", "1234"],
      ["fe80::1", "1"],
      ["::1", "1"],
      ["2001:db8::42", "42"],
      ["fe80::abcd%eth0", "abcd"],
    ] as const) {
      const masked = maskAddress(addr);
      expect(masked, addr).not.toBe(addr);
      expect(masked.split(/[:.…]/).filter(Boolean), `${addr} → ${masked}`).not.toContain(last);
      expect(masked).not.toContain("%");
    }
    expect(maskAddress("2001::1234")).toBe("2001:0:0:…");
    expect(maskAddress("::1")).toBe("0:0:0:…");
  });
});
