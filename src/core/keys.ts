import { InvalidKeyError } from "./errors.ts";

export const MAX_KEY_BYTES = 256;
export const DEFAULT_KEY = "/";

// C0 and C1 control characters, DEL included.
const CONTROL = /[\u0000-\u001f\u007f-\u009f]/;

/**
 * A key names what is counted ("/", "/blog/hello", "signup"). It reaches SQL
 * as a bound parameter, but is still checked so the table only holds text a
 * person can read and PostgreSQL can store (no lone surrogates).
 */
export function validateKey(raw: string | null | undefined): string {
  if (raw === null || raw === undefined) return DEFAULT_KEY;
  if (raw.length === 0) throw new InvalidKeyError("key must not be empty");
  if (!raw.isWellFormed()) throw new InvalidKeyError("key must be valid Unicode");
  if (CONTROL.test(raw)) throw new InvalidKeyError("key must not contain control characters");
  if (raw.length > MAX_KEY_BYTES || utf8Length(raw) > MAX_KEY_BYTES) {
    throw new InvalidKeyError(`key must be at most ${MAX_KEY_BYTES} bytes of UTF-8`);
  }
  return raw;
}

/** Bytes of UTF-8 for a well-formed string: 1 to 4 per code point. */
export function utf8Length(s: string): number {
  let n = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x80) n += 1;
    else if (c < 0x800) n += 2;
    else if (c >= 0xd800 && c <= 0xdbff) {
      n += 4; // a surrogate pair is one code point of four bytes
      i++;
    } else n += 3;
  }
  return n;
}
