import { describe, expect, it } from "vitest";
import { addressKey, clientAddress, UNKNOWN_ADDRESS } from "./address.ts";

// The key every per-address limit uses: IPv4 as is, IPv6 by prefix, the
// trusted proxy chain read from the right, and a fall back to the peer for
// anything that is not an address (so a forged header never buys a fresh bucket).

describe("addressKey", () => {
  it.each([
    ["203.0.113.7", "203.0.113.7"],
    ["  203.0.113.7 ", "203.0.113.7"],
    ["203.0.113.7:8080", "203.0.113.7"],
    ["0.0.0.0", "0.0.0.0"],
    ["255.255.255.255", "255.255.255.255"],
    // Leading zeros are read as decimal and dropped: one address, one key.
    ["203.000.113.007", "203.0.113.7"],
  ])("IPv4 %j -> %j", (text, key) => {
    expect(addressKey(text)).toBe(key);
  });

  it.each([
    ["::ffff:203.0.113.7", "203.0.113.7"],
    ["::FFFF:203.0.113.7", "203.0.113.7"],
    ["::ffff:cb00:7107", "203.0.113.7"],
    ["0:0:0:0:0:ffff:203.0.113.7", "203.0.113.7"],
    ["[::ffff:203.0.113.7]:443", "203.0.113.7"],
  ])("IPv4-mapped %j is the IPv4 address %j, whatever the IPv6 prefix", (text, key) => {
    expect(addressKey(text)).toBe(key);
    expect(addressKey(text, 128)).toBe(key);
  });

  it("one /64, however it is written: compressed, expanded, upper case, bracketed, with a port or a zone", () => {
    const forms = [
      "2001:db8:1:2::1",
      "2001:db8:1:2:0:0:0:1",
      "2001:0db8:0001:0002:0000:0000:0000:0001",
      "2001:DB8:1:2::1",
      "2001:db8:1:2:ffff:ffff:ffff:ffff",
      "2001:db8:1:2::ffff:1.2.3.4",
      "[2001:db8:1:2::1]",
      "[2001:db8:1:2::1]:443",
      "2001:db8:1:2::1%eth0",
      "[2001:db8:1:2::1%25eth0]:80",
    ];
    for (const f of forms) expect(addressKey(f), f).toBe("2001:db8:1:2::/64");
    expect(addressKey("2001:db8:1:3::1")).toBe("2001:db8:1:3::/64");
  });

  it.each([
    [32, "2001:db8::/32"],
    [48, "2001:db8:1::/48"],
    [56, "2001:db8:1:200::/56"],
    [60, "2001:db8:1:2f0::/60"],
    [64, "2001:db8:1:2ff::/64"],
    [128, "2001:db8:1:2ff:a:b:c:d/128"],
  ])("prefix /%i of 2001:db8:1:2ff:a:b:c:d is %j", (bits, key) => {
    expect(addressKey("2001:db8:1:2ff:a:b:c:d", bits)).toBe(key);
  });

  it("prefixes are clamped to 0..128 bits", () => {
    expect(addressKey("2001:db8::1", 200)).toBe("2001:db8::1/128");
    expect(addressKey("2001:db8::1", -5)).toBe("::/0");
  });

  it("loopback and unspecified IPv6, and zero runs at either end", () => {
    expect(addressKey("::1", 128)).toBe("::1/128");
    expect(addressKey("::", 128)).toBe("::/128");
    expect(addressKey("::1")).toBe("::/64");
    expect(addressKey("fe80::1%eth0")).toBe("fe80::/64");
    expect(addressKey("1::", 128)).toBe("1::/128");
  });

  it.each([
    "",
    "   ",
    "unknown",
    "localhost",
    "example.com",
    "256.1.1.1",
    "1.2.3",
    "1.2.3.4.5",
    "1.2.3.-4",
    "1.2.3.4:abc",
    "1.2.3.4 5.6.7.8",
    "2001:db8::1::2",
    "2001:db8:1:2:3:4:5:6:7",
    "2001:db8:1:2:3:4:5",
    "12345::1",
    "g::1",
    ":::",
    "[2001:db8::1",
    "2001:db8::1]",
    "::ffff:1.2.3.4:80",
    "::ffff:300.2.3.4",
    "for=192.0.2.60",
  ])("%j is no address", (text) => {
    expect(addressKey(text)).toBeNull();
  });
});

describe("clientAddress", () => {
  const xff = { trustProxyHeader: "x-forwarded-for" };

  it("without a trusted header, the peer's key, and the header is ignored", () => {
    expect(clientAddress("198.51.100.1", "203.0.113.9", {})).toBe("203.0.113.9");
    expect(clientAddress(undefined, "::ffff:127.0.0.1", {})).toBe("127.0.0.1");
    expect(clientAddress(undefined, "2001:db8:1:2::99", {})).toBe("2001:db8:1:2::/64");
    expect(clientAddress(undefined, "2001:db8:1:2::99", { ipv6PrefixBits: 48 })).toBe("2001:db8:1::/48");
  });

  it("a peer that is no address shares one bucket", () => {
    expect(clientAddress(undefined, undefined, {})).toBe(UNKNOWN_ADDRESS);
    expect(clientAddress(undefined, "", {})).toBe(UNKNOWN_ADDRESS);
    expect(clientAddress(undefined, "unix:/run/x.sock", {})).toBe(UNKNOWN_ADDRESS);
  });

  it("one hop: the rightmost entry; whatever the client put to its left is ignored", () => {
    expect(clientAddress("203.0.113.9", "10.0.0.1", xff)).toBe("203.0.113.9");
    expect(clientAddress("1.1.1.1, 2.2.2.2, 203.0.113.9", "10.0.0.1", xff)).toBe("203.0.113.9");
    expect(clientAddress("garbage, 203.0.113.9", "10.0.0.1", xff)).toBe("203.0.113.9");
    expect(clientAddress("  203.0.113.9  ", "10.0.0.1", xff)).toBe("203.0.113.9");
    expect(clientAddress("[2001:db8:1:2::5]:4711", "10.0.0.1", xff)).toBe("2001:db8:1:2::/64");
  });

  it("two hops (CDN, then load balancer): the second entry from the right", () => {
    const rules = { ...xff, trustProxyHops: 2 };
    expect(clientAddress("203.0.113.9, 10.0.0.2", "10.0.0.3", rules)).toBe("203.0.113.9");
    expect(clientAddress("6.6.6.6, 203.0.113.9, 10.0.0.2", "10.0.0.3", rules)).toBe("203.0.113.9");
    expect(clientAddress("2001:db8:7:8::1, 10.0.0.2", "10.0.0.3", rules)).toBe("2001:db8:7:8::/64");
  });

  it("three hops: the third entry from the right", () => {
    const rules = { ...xff, trustProxyHops: 3 };
    expect(clientAddress("6.6.6.6, 203.0.113.9, 10.0.0.2, 10.0.0.3", "10.0.0.4", rules)).toBe("203.0.113.9");
    expect(clientAddress("203.0.113.9,10.0.0.2,10.0.0.3", "10.0.0.4", rules)).toBe("203.0.113.9");
  });

  it("a chain shorter than the hops falls back to the peer (the proxy), never to a client-chosen entry", () => {
    expect(clientAddress("203.0.113.9", "10.0.0.3", { ...xff, trustProxyHops: 2 })).toBe("10.0.0.3");
    expect(clientAddress("203.0.113.9, 10.0.0.2", "10.0.0.3", { ...xff, trustProxyHops: 3 })).toBe("10.0.0.3");
  });

  it("a garbage entry where the client should be falls back to the peer", () => {
    expect(clientAddress("203.0.113.9, garbage", "10.0.0.3", xff)).toBe("10.0.0.3");
    expect(clientAddress("203.0.113.9, ", "10.0.0.3", xff)).toBe("10.0.0.3");
    expect(clientAddress("unknown, 10.0.0.2", "10.0.0.3", { ...xff, trustProxyHops: 2 })).toBe("10.0.0.3");
    expect(clientAddress("for=203.0.113.9", "10.0.0.3", xff)).toBe("10.0.0.3");
    expect(clientAddress(",,,", "10.0.0.3", xff)).toBe("10.0.0.3");
  });

  it("an empty or missing header falls back to the peer", () => {
    expect(clientAddress("", "10.0.0.3", xff)).toBe("10.0.0.3");
    expect(clientAddress(null, "10.0.0.3", xff)).toBe("10.0.0.3");
    expect(clientAddress(undefined, undefined, xff)).toBe(UNKNOWN_ADDRESS);
  });

  it("clients anywhere in one /64 are one key; another /64 is another; the prefix is configurable", () => {
    const a = ["2001:db8:1:2::1", "2001:db8:1:2::dead:beef", "2001:db8:1:2:ffff::1"].map((ip) => clientAddress(ip, "10.0.0.1", xff));
    expect(new Set(a)).toEqual(new Set(["2001:db8:1:2::/64"]));
    expect(clientAddress("2001:db8:1:3::1", "10.0.0.1", xff)).toBe("2001:db8:1:3::/64");
    expect(clientAddress("2001:db8:1:3::1", "10.0.0.1", { ...xff, ipv6PrefixBits: 48 })).toBe(clientAddress("2001:db8:1:2::1", "10.0.0.1", { ...xff, ipv6PrefixBits: 48 }));
    expect(clientAddress("2001:db8:1:2::1", "10.0.0.1", { ...xff, ipv6PrefixBits: 128 })).not.toBe(clientAddress("2001:db8:1:2::2", "10.0.0.1", { ...xff, ipv6PrefixBits: 128 }));
  });
});
