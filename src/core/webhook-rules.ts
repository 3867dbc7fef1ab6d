import * as v from "valibot";
import { ConfigError } from "./errors.ts";
import { validateKey } from "./keys.ts";
import { parseText, trimmed, type TextSchema } from "./schemas.ts";

// WEBHOOK_RULES: a JSON array of rules, each matching one key or a key
// prefix, with total milestones (`every` N, or a `milestones` list) and/or an
// online threshold (`online`, re-armed below `online - hysteresis`), and a
// target URL with an optional signing secret:
//   [{"key":"/launch","every":10000,"url":"https://hooks.example/h","secret":"…"},
//    {"prefix":"/blog/","milestones":[100,1000],"url":"…"},
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

// Each message starts with the field it is about, so the report reads
// "WEBHOOK_RULES: rule 0: every must be a whole number of 1 or more".

function positiveInt(field: string) {
  const message = `${field} must be a whole number of 1 or more`;
  return v.pipe(v.number(message), v.safeInteger(message), v.minValue(1, message));
}

/** A key or a key prefix: text a key may be (keys.ts); a number is read as its digits. */
function keyText(field: string) {
  return v.pipe(
    v.union([v.string(), v.number()], `${field} must be text`),
    v.rawTransform(({ dataset, addIssue, NEVER }) => {
      try {
        return validateKey(String(dataset.value));
      } catch (err) {
        addIssue({ message: (err as Error).message });
        return NEVER;
      }
    }),
  );
}

const httpUrl = v.pipe(
  v.string("url must be text"),
  v.rawTransform(({ dataset, addIssue, NEVER }) => {
    if (!URL.canParse(dataset.value)) {
      addIssue({ message: `url "${dataset.value}" is not a URL` });
      return NEVER;
    }
    const url = new URL(dataset.value);
    if (url.protocol !== "http:" && url.protocol !== "https:") {
      addIssue({ message: "url must be http or https" });
      return NEVER;
    }
    return url;
  }),
);

const secretMessage = "secret must be a string of 8 or more characters";

const ruleSchema = v.pipe(
  // A JSON array is an object to strictObject: refuse it here, as a person would.
  v.custom<object>((x) => typeof x === "object" && x !== null && !Array.isArray(x), "must be an object"),
  v.strictObject(
    {
      key: v.optional(keyText("key")),
      prefix: v.optional(keyText("prefix")),
      every: v.optional(positiveInt("every")),
      milestones: v.optional(
        v.pipe(
          v.array(positiveInt("milestones"), "milestones must be a non-empty list"),
          v.nonEmpty("milestones must be a non-empty list"),
          v.transform((list) => [...new Set(list)].sort((a, b) => a - b)),
        ),
      ),
      online: v.optional(positiveInt("online")),
      hysteresis: v.optional(positiveInt("hysteresis")),
      url: httpUrl,
      secret: v.optional(v.pipe(v.string(secretMessage), v.minLength(8, secretMessage))),
    },
    (issue) =>
      issue.expected === "never"
        ? `unknown field ${issue.received}`
        : issue.expected === "Object"
          ? "must be an object"
          : `${issue.expected?.replaceAll('"', "")} is required`,
  ),
  v.check((r) => (r.key === undefined) !== (r.prefix === undefined), 'needs exactly one of "key" or "prefix"'),
  v.check((r) => r.every !== undefined || r.milestones !== undefined || r.online !== undefined, 'needs "every", "milestones" or "online"'),
  v.transform(({ key, prefix, every, milestones, online, hysteresis: h, url, secret }): WebhookRule => {
    const hysteresis = h ?? Math.max(1, Math.ceil((online ?? 0) / 10));
    const id = JSON.stringify({ key, prefix, every, milestones, online, hysteresis, url: url.href });
    return { id, key, prefix, every, milestones, online, hysteresis, url: url.href, origin: url.origin, secret };
  }),
);

const rulesList = v.pipe(
  v.string(),
  v.parseJson(undefined, "must be a JSON array of rules"),
  v.array(ruleSchema, "must be a JSON array of rules"),
);

/** "rule 2 needs …" for the rule itself, "rule 2: every must …" for one of its fields. */
function describe(issue: v.BaseIssue<unknown>): string {
  const [at, ...inside] = issue.path ?? [];
  if (at === undefined) return issue.message;
  return `rule ${String(at.key)}${inside.length === 0 ? " " : ": "}${issue.message}`;
}

/** WEBHOOK_RULES as a setting: absent or blank is no rules. */
export const webhookRulesSchema: TextSchema<WebhookRule[]> = v.pipe(
  trimmed,
  v.rawTransform(({ dataset, addIssue, NEVER }) => {
    if (dataset.value === undefined) return [];
    const result = v.safeParse(rulesList, dataset.value, { abortEarly: true });
    if (result.success) return result.output;
    addIssue({ message: describe(result.issues[0]) });
    return NEVER;
  }),
);

/** Throws ConfigError naming WEBHOOK_RULES. */
export function parseWebhookRules(raw: string | undefined): WebhookRule[] {
  const result = parseText(webhookRulesSchema, raw);
  if (!result.ok) throw new ConfigError(VAR, result.message);
  return result.value;
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
