import { describe, expect, it } from "vitest";
import { boundedInt, headerName, oneOf, originList, parseText, textOr, type TextSchema } from "./schemas.ts";

function message<T>(schema: TextSchema<T>, raw: string | undefined): string {
  const result = parseText(schema, raw);
  if (result.ok) throw new Error(`accepted ${JSON.stringify(raw)} as ${JSON.stringify(result.value)}`);
  return result.message;
}

function value<T>(schema: TextSchema<T>, raw: string | undefined): T {
  const result = parseText(schema, raw);
  if (!result.ok) throw new Error(`refused ${JSON.stringify(raw)}: ${result.message}`);
  return result.value;
}

describe("boundedInt", () => {
  const limit = boundedInt(1, 100, 10);

  it("reads decimal digits, trimmed, inclusive of both bounds", () => {
    expect(value(limit, "1")).toBe(1);
    expect(value(limit, "100")).toBe(100);
    expect(value(limit, " 42 ")).toBe(42);
    expect(value(limit, "007")).toBe(7);
  });

  it("gives the default when absent or blank, and undefined when it has none", () => {
    expect(value(limit, undefined)).toBe(10);
    expect(value(limit, "")).toBe(10);
    expect(value(limit, "   ")).toBe(10);
    const optional = boundedInt(1, 100);
    expect(value(optional, undefined)).toBeUndefined();
    expect(value(optional, " ")).toBeUndefined();
    expect(value(optional, "5")).toBe(5);
  });

  it("refuses anything but digits, saying what it got", () => {
    for (const raw of ["-1", "+1", "1.5", "1e2", "0x10", "ten", "1 2", "١٢", "Infinity", "NaN"]) {
      expect(message(limit, raw)).toBe(`expected a whole number, got "${raw}"`);
    }
  });

  it("refuses out of range rather than clamping, quoting the digits as written", () => {
    expect(message(limit, "0")).toBe("must be between 1 and 100, got 0");
    expect(message(limit, "101")).toBe("must be between 1 and 100, got 101");
    expect(message(limit, "99999999999999999999999")).toBe("must be between 1 and 100, got 99999999999999999999999");
    expect(message(boundedInt(1, 100), "0")).toBe("must be between 1 and 100, got 0");
  });

  it("puts its default through the same checks", () => {
    expect(() => value(boundedInt(1, 100, 500), undefined)).toThrow(/must be between 1 and 100, got 500/);
  });
});

describe("textOr, oneOf, headerName, originList", () => {
  it("textOr trims and defaults", () => {
    expect(value(textOr("x"), undefined)).toBe("x");
    expect(value(textOr("x"), "  ")).toBe("x");
    expect(value(textOr("x"), " y ")).toBe("y");
  });

  it("oneOf ignores case and lists the options when refusing", () => {
    const level = oneOf(["debug", "info"], "info");
    expect(value(level, "DEBUG")).toBe("debug");
    expect(value(level, undefined)).toBe("info");
    expect(message(level, "Trace")).toBe('must be one of debug, info, got "trace"');
  });

  it("headerName lower-cases and refuses what cannot be a header", () => {
    expect(value(headerName, " X-Forwarded-For ")).toBe("x-forwarded-for");
    expect(value(headerName, "")).toBeUndefined();
    expect(message(headerName, "x forwarded")).toBe('"x forwarded" is not an HTTP header name');
  });

  it("originList takes * or http(s) origins, trailing slash dropped", () => {
    expect(value(originList, undefined)).toBe("*");
    expect(value(originList, " * ")).toBe("*");
    expect(value(originList, "https://a.example/, http://localhost:3000")).toEqual(["https://a.example", "http://localhost:3000"]);
    for (const bad of ["a.example", "https://a.example/path", "https://a.example?x", "ftp://a.example", "ws://a.example", "https://A.example", "https://a.example:443", "*, https://a.example", "https://a.example,"]) {
      expect(message(originList, bad)).toMatch(/^expected "\*" or a comma-separated list of origins such as https:\/\/example\.com, got "/);
    }
  });
});
