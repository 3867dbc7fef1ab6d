import { describe, expect, it } from "vitest";
import { parseConfig } from "./config.ts";
import { originAllowed, RefusedOrigins } from "./origins.ts";

describe("originAllowed", () => {
  const self = parseConfig({}).allowedOrigins;

  it("by default (self) allows a page of this server, by the name it was reached by, over http or https", () => {
    expect(self).toEqual(["self"]);
    expect(originAllowed("http://127.0.0.1:8080", "127.0.0.1:8080", self)).toBe(true);
    expect(originAllowed("https://count.example", "count.example", self)).toBe(true);
    expect(originAllowed("http://count.example", "COUNT.example", self)).toBe(true);
    // A browser leaves the default port out of both; a proxy may write it into Host.
    expect(originAllowed("https://count.example", "count.example:443", self)).toBe(true);
    expect(originAllowed("http://[::1]:8080", "[::1]:8080", self)).toBe(true);
  });

  it("by default refuses every other site, another port, and opaque origins", () => {
    expect(originAllowed("https://evil.example", "count.example", self)).toBe(false);
    expect(originAllowed("https://count.example.evil.example", "count.example", self)).toBe(false);
    expect(originAllowed("http://127.0.0.1:8081", "127.0.0.1:8080", self)).toBe(false);
    expect(originAllowed("null", "null", self)).toBe(false);
    expect(originAllowed("https://count.example", undefined, self)).toBe(false);
    expect(originAllowed("https://count.example", "", self)).toBe(false);
  });

  it("* allows any origin; a list allows its origins exactly, and self only when listed", () => {
    expect(originAllowed("https://evil.example", "count.example", "*")).toBe(true);
    const both = parseConfig({ ALLOWED_ORIGINS: "self, https://a.example" }).allowedOrigins;
    expect(originAllowed("https://a.example", "count.example", both)).toBe(true);
    expect(originAllowed("https://count.example", "count.example", both)).toBe(true);
    expect(originAllowed("http://a.example", "count.example", both)).toBe(false);
    const only = parseConfig({ ALLOWED_ORIGINS: "https://a.example" }).allowedOrigins;
    expect(originAllowed("https://count.example", "count.example", only)).toBe(false);
    expect(originAllowed("https://a.example", "count.example", only)).toBe(true);
  });
});

describe("RefusedOrigins", () => {
  it("counts refusals per origin, most refused first", () => {
    const r = new RefusedOrigins();
    for (let i = 0; i < 3; i++) r.record("https://x.example", 1000 + i);
    r.record("https://y.example", 2000);
    expect(r.list()).toEqual([
      { origin: "https://x.example", count: 3, lastAt: 1002 },
      { origin: "https://y.example", count: 1, lastAt: 2000 },
    ]);
    expect(r.total).toBe(4);
  });

  it("keeps at most its capacity of origins, dropping the least recently refused, and cuts long ones", () => {
    const r = new RefusedOrigins(50);
    r.record("https://kept.example", 0);
    for (let i = 0; i < 500; i++) {
      r.record(`https://spam${i}.example`, i + 1);
      if (i % 10 === 0) r.record("https://kept.example", i + 1); // refused lately: stays
    }
    expect(r.size).toBe(50);
    const origins = r.list().map((e) => e.origin);
    expect(origins).toContain("https://kept.example");
    expect(origins).toContain("https://spam499.example");
    expect(origins).not.toContain("https://spam0.example");
    expect(r.total).toBe(1 + 500 + 50);
    r.record(`https://${"a".repeat(5000)}.example`, 1);
    expect(Math.max(...r.list().map((e) => e.origin.length))).toBeLessThanOrEqual(201);
  });
});
