import { describe, expect, it } from "vitest";
import { parseConfig } from "./config.ts";

// CORS_ORIGINS and ADMIN_TOKEN (issue 6: widget, badge, dashboard).
describe("CORS_ORIGINS", () => {
  it("defaults to *", () => {
    expect(parseConfig({}).corsOrigins).toBe("*");
    expect(parseConfig({ CORS_ORIGINS: " * " }).corsOrigins).toBe("*");
  });

  it("takes a comma-separated list of origins, trailing slashes dropped", () => {
    expect(parseConfig({ CORS_ORIGINS: "https://a.example, http://localhost:3000/" }).corsOrigins).toEqual([
      "https://a.example",
      "http://localhost:3000",
    ]);
  });

  it.each(["a.example", "https://a.example/path", "ftp://a.example", "https://a.example,,https://b.example", "*, https://a.example"])(
    "refuses %j naming the variable",
    (value) => {
      expect(() => parseConfig({ CORS_ORIGINS: value })).toThrow(/^CORS_ORIGINS: /);
    },
  );
});

describe("ADMIN_TOKEN", () => {
  it("is off by default and kept when long enough", () => {
    expect(parseConfig({}).adminToken).toBeUndefined();
    expect(parseConfig({ ADMIN_TOKEN: "0123456789abcdef" }).adminToken).toBe("0123456789abcdef");
  });

  it("refuses a short token or one with spaces, naming the variable", () => {
    expect(() => parseConfig({ ADMIN_TOKEN: "short" })).toThrow(/^ADMIN_TOKEN: /);
    expect(() => parseConfig({ ADMIN_TOKEN: "0123456789 abcdef" })).toThrow(/^ADMIN_TOKEN: /);
  });
});
