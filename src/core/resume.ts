import type { Signer } from "./ports.ts";

// A resume token lets a reconnect of the same page view skip counting. It is
// stateless so any instance (or a restarted one) can check it:
//   <visitor>.<expires-unix-seconds>.<mac>   mac = HMAC(key \n visitor \n expires)
// It binds the key, so a token for "/a" never spares a visit to "/b".

export interface ResumeClaim {
  visitor: number;
  expiresAt: number; // unix seconds
}

export function issueResumeToken(signer: Signer, key: string, visitor: number, expiresAt: number): string {
  return `${visitor}.${expiresAt}.${signer.sign(`${key}\n${visitor}\n${expiresAt}`)}`;
}

/** Returns the claim when the token is well formed, signed for this key and unexpired. */
export function verifyResumeToken(signer: Signer, key: string, token: string, nowSeconds: number): ResumeClaim | null {
  if (token.length > 200) return null;
  const parts = token.split(".");
  if (parts.length !== 3) return null;
  const [v, e, mac] = parts as [string, string, string];
  if (!/^\d{1,15}$/.test(v) || !/^\d{1,12}$/.test(e)) return null;
  const visitor = Number(v);
  const expiresAt = Number(e);
  if (expiresAt <= nowSeconds) return null;
  if (!constantTimeEqual(mac, signer.sign(`${key}\n${visitor}\n${expiresAt}`))) return null;
  return { visitor, expiresAt };
}

/** Compares in time that depends only on the lengths, not on where they differ. */
export function constantTimeEqual(a: string, b: string): boolean {
  let diff = a.length ^ b.length;
  const n = Math.max(a.length, b.length);
  for (let i = 0; i < n; i++) diff |= (a.charCodeAt(i) | 0) ^ (b.charCodeAt(i) | 0);
  return diff === 0;
}
