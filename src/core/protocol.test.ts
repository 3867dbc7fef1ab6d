import { describe, expect, it } from "vitest";
import { CloseCode, encode, MAX_CLIENT_MESSAGE_BYTES, parseClientMessage, PONG } from "./protocol.ts";

const parse = (text: string | null, size?: number) =>
  parseClientMessage(text, size ?? (text === null ? 4 : new TextEncoder().encode(text).byteLength));

describe("close codes", () => {
  it("match DESIGN.md §4", () => {
    expect(CloseCode).toEqual({
      normal: 1000,
      goingAway: 1001,
      unsupportedData: 1003,
      policy: 1008,
      tooBig: 1009,
      internal: 1011,
      tryAgainLater: 1013,
    });
  });
});

describe("encode", () => {
  it("writes the documented shapes", () => {
    expect(PONG).toBe('{"type":"pong"}');
    const hello = { type: "hello", key: "/", total: 124, online: 5, visitors: 40, visitor: 124, resume: "t", seq: 18 } as const;
    expect(JSON.parse(encode(hello))).toEqual(hello);
    expect(encode({ type: "count", key: "/", total: 124, online: 5, visitors: 40, seq: 18 })).toBe(
      '{"type":"count","key":"/","total":124,"online":5,"visitors":40,"seq":18}',
    );
  });
});

describe("parseClientMessage", () => {
  it("accepts a ping", () => {
    expect(parse('{"type":"ping"}')).toEqual({ ok: true, message: { type: "ping" } });
  });

  it("accepts a ping with extra fields, normalised to just the type", () => {
    expect(parse('{"type":"ping","at":123}')).toEqual({ ok: true, message: { type: "ping" } });
  });

  it("refuses binary frames with 1003", () => {
    const r = parse(null);
    expect(r.ok).toBe(false);
    if (!r.ok) {
      expect(r.code).toBe(1003);
      expect(r.reason).toMatch(/binary/);
    }
  });

  it("refuses text that is not JSON with 1003", () => {
    for (const text of ["ping", "{", "", "{'type':'ping'}"]) {
      const r = parse(text);
      expect(r).toMatchObject({ ok: false, code: 1003, reason: "message is not JSON" });
    }
  });

  it("refuses JSON that is not a ping with 1003", () => {
    for (const text of ['{"type":"hello"}', '{"type":"PING"}', "{}", '"ping"', "null", "[]", '["ping"]', "42", '{"kind":"ping"}']) {
      expect(parse(text)).toMatchObject({ ok: false, code: 1003, reason: "unknown message type" });
    }
  });

  it("refuses anything over the size limit with 1009, even a ping or a binary frame", () => {
    expect(MAX_CLIENT_MESSAGE_BYTES).toBe(512);
    expect(parse('{"type":"ping"}', 513)).toMatchObject({ ok: false, code: 1009 });
    expect(parse(null, 513)).toMatchObject({ ok: false, code: 1009 });
    const padded = `{"type":"ping","pad":"${"x".repeat(600)}"}`;
    expect(parse(padded)).toMatchObject({ ok: false, code: 1009, reason: "message too big" });
  });

  it("accepts exactly the size limit", () => {
    const base = '{"type":"ping","pad":""}';
    const text = `{"type":"ping","pad":"${"x".repeat(512 - base.length)}"}`;
    expect(new TextEncoder().encode(text).byteLength).toBe(512);
    expect(parse(text)).toEqual({ ok: true, message: { type: "ping" } });
  });
});
