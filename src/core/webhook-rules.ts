import { ConfigError } from "./errors.ts";
import { validateKey } from "./keys.ts";

// WEBHOOK_RULES: a JSON array of rules, each matching one key or a key
// prefix, with total milestones (`every` N, or a `milestones` list) and/or an
// online threshold (`online`, re-armed below `online - hysteresis`), and a
// target URL with an optional signing secret:
//   [{"key":"/launch","every":10000,"url":"https://hooks.example/h","secret":"…"},
//    {"prefix":"/blog/","milestones":[100,1000]},"url":"…"},
//    {"key":"/pricing","online":200,"hysteresis":20,"url":"…"}]

export interface WebhookRule {
  /** Canonical JSON of everything but the secret: the same rule has the same id everywhere. */
  id: string;
  key?: string;
  prefix?: string;
  every?: number;
  milestones?: number[];
  online?: number;
  hysteresis: number;
  url: string;
  origin: string;
  secret?: string;
}

const VAR = "WEBHOOK_RULES";

function positiveInt(v: unknown, what: string): number {
  if (typeof v !== "number" || !Number.isSafeInteger(v) || v < 1) throw new ConfigError(VAR, `${what} must be a whole number of 1 or more`);
  return v;
}

export function parseWebhookRules(raw: string | undefined): WebhookRule[] {
  if (raw === undefined || raw.trim() === "") return [];
  let list: unknown;
  try {
    list = JSON.parse(raw);
  } catch {
    throw new ConfigError(VAR, "must be a JSON array of rules");
  }
  if (!Array.isArray(list)) throw new ConfigError(VAR, "must be a JSON array of rules");
  return list.map((item, i): WebhookRule => {
    const at = `rule ${i}`;
    if (typeof item !== "object" || item === null) throw new ConfigError(VAR, `${at} must be an object`);
    const r = item as Record<string, unknown>;
    const known = new Set(["key", "prefix", "every", "milestones", "online", "hysteresis", "url", "secret"]);
    for (const k of Object.keys(r)) if (!known.has(k)) throw new ConfigError(VAR, `${at}: unknown field "${k}"`);
    if ((r.key === undefined) === (r.prefix === undefined)) throw new ConfigError(VAR, `${at} needs exactly one of "key" or "prefix"`);
    let key: string | undefined;
    let prefix: string | undefined;
    try {
      if (r.key !== undefined) key = validateKey(String(r.key));
      if (r.prefix !== undefined) prefix = validateKey(String(r.prefix));
    } catch (err) {
      throw new ConfigError(VAR, `${at}: ${(err as Error).message}`);
    }
    const every = r.every === undefined ? undefined : positiveInt(r.every, `${at}: every`);
    let milestones: number[] | undefined;
    if (r.milestones !== undefined) {
      if (!Array.isArray(r.milestones) || r.milestones.length === 0) throw new ConfigError(VAR, `${at}: milestones must be a non-empty list`);
      milestones = [...new Set(r.milestones.map((m) => positiveInt(m, `${at}: milestones`)))].sort((a, b) => a - b);
    }
    const online = r.online === undefined ? undefined : positiveInt(r.online, `${at}: online`);
    if (every === undefined && milestones === undefined && online === undefined) {
      throw new ConfigError(VAR, `${at} needs "every", "milestones" or "online"`);
    }
    const hysteresis =
      r.hysteresis === undefined ? Math.max(1, Math.ceil((online ?? 0) / 10)) : positiveInt(r.hysteresis, `${at}: hysteresis`);
    if (typeof r.url !== "string") throw new ConfigError(VAR, `${at}: url is required`);
    let url: URL;
    try {
      url = new URL(r.url);
    } catch {
      throw new ConfigError(VAR, `${at}: url "${r.url}" is not a URL`);
    }
    if (url.protocol !== "http:" && url.protocol !== "https:") throw new ConfigError(VAR, `${at}: url must be http or https`);
    if (r.secret !== undefined && (typeof r.secret !== "string" || r.secret.length < 8)) {
      throw new ConfigError(VAR, `${at}: secret must be a string of 8 or more characters`);
    }
    const id = JSON.stringify({ key, prefix, every, milestones, online, hysteresis, url: url.href });
    return { id, key, prefix, every, milestones, online, hysteresis, url: url.href, origin: url.origin, secret: r.secret as string | undefined };
  });
}

/** A rule that fires on totals (every N, a milestone list), written by the increment itself. */
export function isMilestoneRule(rule: WebhookRule): boolean {
  return rule.every !== undefined || rule.milestones !== undefined;
}

export function ruleMatches(rule: WebhookRule, key: string): boolean {
  return rule.key !== undefined ? rule.key === key : key.startsWith(rule.prefix!);
}

/**
 * The milestones of `rule` crossed by going from `before` to `after`
 * (before < m <= after), ascending, at most `limit`: the same events the
 * PostgreSQL increment statement writes (src/db/store.ts), for stores that
 * compute them in code (the Durable Object's SQLite).
 */
export function milestonesCrossed(rule: WebhookRule, before: number, after: number, limit = 100): number[] {
  const out = new Set<number>();
  if (rule.every !== undefined) {
    for (let m = (Math.floor(before / rule.every) + 1) * rule.every; m <= after && out.size < limit; m += rule.every) out.add(m);
  }
  for (const m of rule.milestones ?? []) if (m > before && m <= after && out.size < limit) out.add(m);
  return [...out].sort((a, b) => a - b);
}
