import { describe, expect, it } from "vitest";
import * as wsModule from "ws";

// @types/ws does not declare Sender, but ws exports it (ws/wrapper.mjs).
const Sender = (wsModule as unknown as { Sender: { frame(d: Buffer, o: object): Buffer[] } }).Sender;
import { textFrame } from "./node-ws.ts";

// The pre-built broadcast frame must be byte for byte what ws itself would
// write for the same text (unmasked, final, text opcode).
describe("textFrame", () => {
  for (const n of [0, 5, 125, 126, 200, 65535, 65536, 70000]) {
    it(`matches ws for a ${n}-byte payload`, () => {
      const text = "é".repeat(Math.floor(n / 2)) + "x".repeat(n % 2);
      const wsFrame = Buffer.concat(
        Sender.frame(Buffer.from(text), {
          fin: true,
          rsv1: false,
          opcode: 1,
          mask: false,
          readOnly: false,
        }),
      );
      expect(textFrame(text).equals(wsFrame)).toBe(true);
    });
  }
});
