import { describe, expect, it } from "vitest";
import { constantTimeEqual, issueResumeToken, verifyResumeToken } from "./resume.ts";
import { fakeSigner } from "./testing.ts";

const signer = fakeSigner();
const NOW = 1_700_000_000;

describe("resume tokens", () => {
  it("round-trips for the same key before expiry", () => {
    const token = issueResumeToken(signer, "/", 124, NOW + 60);
    expect(token).toMatch(/^124\.1700000060\.[0-9a-f]+$/);
    expect(verifyResumeToken(signer, "/", token, NOW)).toEqual({ visitor: 124, expiresAt: NOW + 60 });
    expect(verifyResumeToken(signer, "/", token, NOW + 59)).toEqual({ visitor: 124, expiresAt: NOW + 60 });
  });

  it("is refused for another key", () => {
    const token = issueResumeToken(signer, "/a", 7, NOW + 60);
    expect(verifyResumeToken(signer, "/b", token, NOW)).toBeNull();
    expect(verifyResumeToken(signer, "/a ", token, NOW)).toBeNull();
    expect(verifyResumeToken(signer, "/a", token, NOW)).not.toBeNull();
  });

  it("is refused at and after its expiry second", () => {
    const token = issueResumeToken(signer, "/", 7, NOW + 60);
    expect(verifyResumeToken(signer, "/", token, NOW + 60)).toBeNull();
    expect(verifyResumeToken(signer, "/", token, NOW + 61)).toBeNull();
  });

  it("is refused when any part is tampered with", () => {
    const token = issueResumeToken(signer, "/", 7, NOW + 60);
    const [v, e, mac] = token.split(".") as [string, string, string];
    const flipped = mac.slice(0, -1) + (mac.endsWith("0") ? "1" : "0");
    expect(verifyResumeToken(signer, "/", `${v}.${e}.${flipped}`, NOW)).toBeNull();
    expect(verifyResumeToken(signer, "/", `8.${e}.${mac}`, NOW)).toBeNull();
    expect(verifyResumeToken(signer, "/", `${v}.${Number(e) + 3600}.${mac}`, NOW)).toBeNull();
    expect(verifyResumeToken(signer, "/", `${v}.${e}.${mac}x`, NOW)).toBeNull();
    expect(verifyResumeToken(signer, "/", `${v}.${e}.${mac.slice(0, -1)}`, NOW)).toBeNull();
  });

  it("is refused when signed with another secret", () => {
    const token = issueResumeToken(fakeSigner("another-secret-0123"), "/", 7, NOW + 60);
    expect(verifyResumeToken(signer, "/", token, NOW)).toBeNull();
  });

  it("is refused when malformed", () => {
    const mac = signer.sign(`/\n7\n${NOW + 60}`);
    for (const bad of [
      "",
      "garbage",
      "7",
      `7.${NOW + 60}`,
      `7.${NOW + 60}.${mac}.extra`,
      `-7.${NOW + 60}.${mac}`,
      `7.5.${NOW + 60}.${mac}`,
      `x.${NOW + 60}.${mac}`,
      `7.soon.${mac}`,
      `1e3.${NOW + 60}.${mac}`,
      `${"9".repeat(16)}.${NOW + 60}.${mac}`,
      `7.${NOW + 60}.${mac}${"a".repeat(200)}`,
    ]) {
      expect(verifyResumeToken(signer, "/", bad, NOW), bad).toBeNull();
    }
    // The well-formed version of the same token is accepted, so the refusals above are about form.
    expect(verifyResumeToken(signer, "/", `7.${NOW + 60}.${mac}`, NOW)).toEqual({ visitor: 7, expiresAt: NOW + 60 });
  });
});

describe("constantTimeEqual", () => {
  it("is true only for identical strings", () => {
    expect(constantTimeEqual("", "")).toBe(true);
    expect(constantTimeEqual("abc", "abc")).toBe(true);
    expect(constantTimeEqual("abc", "abd")).toBe(false);
    expect(constantTimeEqual("abc", "xbc")).toBe(false);
    expect(constantTimeEqual("abc", "ab")).toBe(false);
    expect(constantTimeEqual("ab", "abc")).toBe(false);
    expect(constantTimeEqual("", "a")).toBe(false);
    expect(constantTimeEqual("a", "a\u0000")).toBe(false);
    expect(constantTimeEqual("\u0000", "")).toBe(false);
    expect(constantTimeEqual("é", "e")).toBe(false);
  });
});
