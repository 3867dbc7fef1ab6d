import { describe, expect, it } from "vitest";
import { InvalidKeyError } from "./errors.ts";
import { DEFAULT_KEY, MAX_KEY_BYTES, validateKey } from "./keys.ts";

const bytes = (s: string): number => new TextEncoder().encode(s).byteLength;

function rejects(raw: string): InvalidKeyError {
  try {
    validateKey(raw);
  } catch (err) {
    expect(err).toBeInstanceOf(InvalidKeyError);
    return err as InvalidKeyError;
  }
  throw new Error(`validateKey accepted ${JSON.stringify(raw)}`);
}

describe("validateKey", () => {
  it("returns good keys unchanged", () => {
    for (const key of ["/", "/blog/hello", "signup", "/über/日本", "a b", "/emoji/😀", "\u00a0"]) {
      expect(validateKey(key)).toBe(key);
    }
  });

  it("maps a missing key to /", () => {
    expect(DEFAULT_KEY).toBe("/");
    expect(validateKey(null)).toBe("/");
    expect(validateKey(undefined)).toBe("/");
  });

  it("rejects the empty key with a 400 invalid_key error", () => {
    const err = rejects("");
    expect(err.status).toBe(400);
    expect(err.code).toBe("invalid_key");
    expect(err.message).toMatch(/empty/);
  });

  it("allows exactly 256 bytes of ASCII and refuses 257", () => {
    expect(MAX_KEY_BYTES).toBe(256);
    expect(validateKey("a".repeat(256))).toHaveLength(256);
    expect(rejects("a".repeat(257)).message).toMatch(/256 bytes/);
  });

  it("counts UTF-8 bytes, not UTF-16 code units", () => {
    // 2-byte characters: 128 of them are 256 bytes, but only 128 code units.
    const two = "é".repeat(128);
    expect(bytes(two)).toBe(256);
    expect(validateKey(two)).toBe(two);
    expect(bytes(two + "a")).toBe(257);
    rejects(two + "a");

    // 3-byte characters: 85 * 3 = 255.
    const three = "€".repeat(85);
    expect(validateKey(three + "a")).toBe(three + "a"); // 256
    rejects(three + "ab"); // 257
    rejects("€".repeat(86)); // 258, only 86 code units

    // 4-byte characters (surrogate pairs): 64 * 4 = 256.
    const four = "😀".repeat(64);
    expect(bytes(four)).toBe(256);
    expect(validateKey(four)).toBe(four);
    rejects(four + "a");
  });

  it("refuses C0, DEL and C1 control characters", () => {
    for (const c of ["\u0000", "\u0001", "\t", "\n", "\r", "\u001b", "\u001f", "\u007f", "\u0080", "\u0085", "\u009f"]) {
      expect(rejects(`/a${c}b`).message).toMatch(/control/);
      rejects(c);
    }
  });

  it("refuses lone surrogates but accepts a proper pair", () => {
    for (const bad of ["\ud800", "\udfff", "/a\ud83d", "/a\ude00b", "\ude00\ud83d"]) {
      expect(rejects(bad).message).toMatch(/Unicode/);
    }
    expect(validateKey("\ud83d\ude00")).toBe("😀");
  });
});
