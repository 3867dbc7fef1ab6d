import { describe, expect, it } from "vitest";
import { ConfigError } from "./errors.ts";
import { parseWebhookRules } from "./webhook-rules.ts";

const url = "https://hooks.example/h";

function refusal(rules: unknown): string {
  try {
    parseWebhookRules(typeof rules === "string" ? rules : JSON.stringify(rules));
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    expect((err as ConfigError).variable).toBe("WEBHOOK_RULES");
    return (err as Error).message;
  }
  throw new Error(`accepted ${JSON.stringify(rules)}`);
}

describe("parseWebhookRules", () => {
  it("reads nothing from an absent or blank value", () => {
    expect(parseWebhookRules(undefined)).toEqual([]);
    expect(parseWebhookRules("  ")).toEqual([]);
    expect(parseWebhookRules("[]")).toEqual([]);
  });

  it("reads each kind of rule, with derived fields", () => {
    const [every, milestones, online] = parseWebhookRules(
      JSON.stringify([
        { key: "/launch", every: 10_000, url, secret: "s3cret-value" },
        { prefix: "/blog/", milestones: [1000, 100, 1000], url: "http://127.0.0.1:9/x" },
        { key: "/pricing", online: 200, url },
      ]),
    );
    expect(every).toEqual({
      id: JSON.stringify({ key: "/launch", every: 10_000, hysteresis: 1, url }),
      key: "/launch",
      prefix: undefined,
      every: 10_000,
      milestones: undefined,
      online: undefined,
      hysteresis: 1,
      url,
      origin: "https://hooks.example",
      secret: "s3cret-value",
    });
    expect(milestones).toMatchObject({ prefix: "/blog/", milestones: [100, 1000], origin: "http://127.0.0.1:9" });
    // hysteresis defaults to a tenth of the threshold
    expect(online).toMatchObject({ online: 200, hysteresis: 20 });
    expect(parseWebhookRules(JSON.stringify([{ key: "/p", online: 5, hysteresis: 2, url }]))[0]).toMatchObject({ hysteresis: 2 });
  });

  it("gives the same rule the same id whatever its secret", () => {
    const [a] = parseWebhookRules(JSON.stringify([{ key: "/a", every: 5, url, secret: "first-secret" }]));
    const [b] = parseWebhookRules(JSON.stringify([{ every: 5, url, key: "/a" }]));
    expect(a!.id).toBe(b!.id);
  });

  it.each<[string, unknown, string]>([
    ["not JSON", "nope", "WEBHOOK_RULES: must be a JSON array of rules"],
    ["not an array", { key: "/a" }, "WEBHOOK_RULES: must be a JSON array of rules"],
    ["a rule that is not an object", [1], "WEBHOOK_RULES: rule 0 must be an object"],
    ["a rule that is a list", [[1]], "WEBHOOK_RULES: rule 0 must be an object"],
    ["every of 0", [{ key: "/a", every: 0, url }], "WEBHOOK_RULES: rule 0: every must be a whole number of 1 or more"],
    ["every as text", [{ key: "/a", every: "10", url }], "WEBHOOK_RULES: rule 0: every must be a whole number of 1 or more"],
    ["a fractional online", [{ key: "/a", online: 1.5, url }], "WEBHOOK_RULES: rule 0: online must be a whole number of 1 or more"],
    ["hysteresis of 0", [{ key: "/a", online: 5, hysteresis: 0, url }], "WEBHOOK_RULES: rule 0: hysteresis must be a whole number of 1 or more"],
    ["empty milestones", [{ key: "/a", milestones: [], url }], "WEBHOOK_RULES: rule 0: milestones must be a non-empty list"],
    ["a bad milestone", [{ key: "/a", milestones: [5, 0], url }], "WEBHOOK_RULES: rule 0: milestones must be a whole number of 1 or more"],
    ["both key and prefix", [{ key: "/a", prefix: "/a", every: 1, url }], 'WEBHOOK_RULES: rule 0 needs exactly one of "key" or "prefix"'],
    ["neither key nor prefix", [{ every: 1, url }], 'WEBHOOK_RULES: rule 0 needs exactly one of "key" or "prefix"'],
    ["no trigger", [{ key: "/a", url }], 'WEBHOOK_RULES: rule 0 needs "every", "milestones" or "online"'],
    ["an empty key", [{ key: "", every: 1, url }], "WEBHOOK_RULES: rule 0: key must not be empty"],
    ["no url", [{ key: "/a", every: 1 }], "WEBHOOK_RULES: rule 0: url is required"],
    ["a url that is not one", [{ key: "/a", every: 1, url: "not a url" }], 'WEBHOOK_RULES: rule 0: url "not a url" is not a URL'],
    ["an ftp url", [{ key: "/a", every: 1, url: "ftp://x" }], "WEBHOOK_RULES: rule 0: url must be http or https"],
    ["a short secret", [{ key: "/a", every: 1, url, secret: "short" }], "WEBHOOK_RULES: rule 0: secret must be a string of 8 or more characters"],
    ["an unknown field", [{ key: "/a", every: 1, url, evry: 2 }], 'WEBHOOK_RULES: rule 0: unknown field "evry"'],
    ["a bad second rule", [{ key: "/a", every: 1, url }, { key: "/b", every: -1, url }], "WEBHOOK_RULES: rule 1: every must be a whole number of 1 or more"],
  ])("refuses %s, saying which rule and field", (_, rules, expected) => {
    expect(refusal(rules)).toBe(expected);
  });
});
