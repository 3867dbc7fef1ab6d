import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Browser, BrowserContext, Page } from "playwright-core";
import WebSocket from "ws";
import { botContext, chromiumAvailable, launchChromium } from "./helpers/browser.ts";
import { uniqueKey } from "./helpers/env.ts";
import { startServer, type RunningServer, type RuntimeName } from "./helpers/server.ts";
import { sleep } from "./helpers/ws.ts";

// A real browser opens the page and sees the number change when another page
// opens (DESIGN.md §8), under the pages' Content-Security-Policy.

const value = async (page: Page, sel: string) => Number(await page.locator(sel).getAttribute("data-value"));

/** A page that records every CSP violation (the DOM event, and Chromium's console report) and script error. */
async function watchedPage(ctx: BrowserContext): Promise<{ page: Page; violations: string[] }> {
  const violations: string[] = [];
  await ctx.addInitScript(() => {
    document.addEventListener("securitypolicyviolation", (e) => console.error(`csp-violation ${e.effectiveDirective} ${e.blockedURI}`));
  });
  const page = await ctx.newPage();
  page.on("console", (m) => {
    if (/csp-violation|Content Security Policy/i.test(m.text())) violations.push(m.text());
  });
  page.on("pageerror", (err) => violations.push(`pageerror ${err.message}`));
  return { page, violations };
}

/** An upgrade from another site's page (Origin header), which the default ALLOWED_ORIGINS=self refuses. */
function refusedUpgrade(server: RunningServer, origin: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(server.wsUrl("/"), { origin });
    ws.on("unexpected-response", (req, res) => {
      res.resume();
      req.destroy();
      resolve(res.statusCode ?? 0);
    });
    ws.on("open", () => {
      ws.close();
      resolve(101);
    });
    ws.on("error", reject);
  });
}

function browserSuite(runtime: RuntimeName): void {
  describe(`the page in Chromium, served by ${runtime}`, () => {
    const enabled = chromiumAvailable();
    let server: RunningServer;
    let browser: Browser;

    beforeAll(async () => {
      if (!enabled) return;
      [server, browser] = await Promise.all([startServer({ runtime, timeoutMs: 60_000 }), launchChromium()]);
    });
    afterAll(async () => {
      await browser?.close();
      await server?.stop();
    });

    it.skipIf(!enabled)("shows the total, and it rises when a second page opens", async () => {
      const key = uniqueKey("browser");
      const first = await browser.newPage();
      await first.goto(`${server.url}/?key=${encodeURIComponent(key)}`);
      await first.locator("#state[data-state=live]").waitFor();
      await expect.poll(() => value(first, "#total")).toBe(1);
      expect(await first.locator("#total").textContent()).toContain("1");
      expect(await value(first, "#online")).toBe(1);

      const second = await (await browser.newContext()).newPage();
      await second.goto(`${server.url}/?key=${encodeURIComponent(key)}`);
      await expect.poll(() => value(second, "#total")).toBe(2);
      await expect.poll(() => value(first, "#total")).toBe(2);
      await expect.poll(() => value(first, "#online")).toBe(2);

      await second.close();
      await expect.poll(() => value(first, "#online")).toBe(1);
      expect(await value(first, "#total")).toBe(2);
    });

    it.skipIf(!enabled)("headless Chromium as it is (HeadlessChrome, navigator.webdriver) is a bot: it sees the counts, counts nothing, and shows up in bots", async () => {
      const key = uniqueKey("headless");
      const person = await browser.newPage();
      await person.goto(`${server.url}/?key=${encodeURIComponent(key)}`);
      await expect.poll(() => value(person, "#total")).toBe(1);
      await expect.poll(() => value(person, "#visitors")).toBe(1);
      const bot = await (await botContext(browser)).newPage();
      expect(await bot.evaluate(() => [navigator.webdriver, navigator.userAgent.includes("HeadlessChrome")])).toEqual([true, true]);
      await bot.goto(`${server.url}/?key=${encodeURIComponent(key)}`);
      await bot.locator("#state[data-state=live]").waitFor();
      // The bot's page shows the numbers, unchanged by it: no visit, no visitor, not online, no number of its own.
      await expect.poll(() => value(bot, "#total")).toBe(1);
      expect(await value(bot, "#visitors")).toBe(1);
      expect(await value(bot, "#online")).toBe(1);
      expect(await bot.locator("#you").isHidden()).toBe(true);
      const numbers = (await (await fetch(`${server.url}/api/counters/${encodeURIComponent(key)}`)).json()) as Record<string, number>;
      expect(numbers).toMatchObject({ total: 1, online: 1, visitors: 1, bots: 1 });
      await bot.close();
      await person.close();
    });

    it.skipIf(!enabled)("a prerendered page counts nothing until it is shown (document.prerendering, prerenderingchange)", async () => {
      const key = uniqueKey("prerender");
      const ctx = await browser.newContext();
      // Chromium prerenders only through speculation rules; the page sees the same thing through these two.
      await ctx.addInitScript(() => {
        const w = window as unknown as { __prerendering: boolean };
        w.__prerendering = true;
        Object.defineProperty(Document.prototype, "prerendering", { configurable: true, get: () => w.__prerendering });
      });
      const page = await ctx.newPage();
      await page.goto(`${server.url}/?key=${encodeURIComponent(key)}`);
      await sleep(1000);
      const numbers = async () => (await (await fetch(`${server.url}/api/counters/${encodeURIComponent(key)}`)).json()) as Record<string, number>;
      expect(await numbers()).toMatchObject({ total: 0, online: 0 });
      await page.evaluate(() => {
        (window as unknown as { __prerendering: boolean }).__prerendering = false;
        document.dispatchEvent(new Event("prerenderingchange"));
      });
      await expect.poll(() => value(page, "#total")).toBe(1);
      expect(await numbers()).toMatchObject({ total: 1, online: 1, visitors: 1 });
      await ctx.close();
    });

    it.skipIf(!enabled)("the page and the dashboard run under their CSP without a violation: the counter and the widget demo go live, the dashboard lists refused origins", async () => {
      const key = uniqueKey("csp");
      const ctx = await browser.newContext();
      const { page, violations } = await watchedPage(ctx);
      const response = await page.goto(`${server.url}/?key=${encodeURIComponent(key)}`);
      expect(response?.headers()["content-security-policy"]).toMatch(/script-src 'self'/);
      await page.locator("#state[data-state=live]").waitFor();
      await expect.poll(() => value(page, "#total")).toBe(1);
      // The widget demo: live, and styled by its constructed stylesheet (no inline <style> under this CSP).
      await page.locator("headcount-counter .hc[data-state=live]").first().waitFor();
      const look = await page.evaluate(() => {
        const hc = document.querySelector("headcount-counter")!.shadowRoot!.querySelector(".hc")!;
        return { numbers: getComputedStyle(hc).fontVariantNumeric, styleElements: document.querySelector("headcount-counter")!.shadowRoot!.querySelectorAll("style").length };
      });
      expect(look).toEqual({ numbers: "tabular-nums", styleElements: 0 });
      expect(await page.locator("#allow-origins").textContent()).toMatch(/ALLOWED_ORIGINS=https:\/\/that\.site/);

      expect(await refusedUpgrade(server, "https://refused.example")).toBe(403);
      expect(await refusedUpgrade(server, "https://refused.example")).toBe(403);
      const dashboard = await page.goto(`${server.url}/dashboard?key=${encodeURIComponent(key)}`);
      expect(dashboard?.headers()["content-security-policy"]).toMatch(/frame-ancestors 'none'/);
      await page.locator("#data:not([hidden])").waitFor();
      const row = page.locator("#top tbody tr").filter({ has: page.locator("td button", { hasText: key }) });
      await expect.poll(() => row.count(), { timeout: 10_000 }).toBe(1);
      await expect.poll(() => page.locator("#chart rect.bar").count(), { timeout: 10_000 }).toBeGreaterThan(0);
      const refused = page.locator('#refused li[data-origin="https://refused.example"]');
      await expect.poll(() => refused.count(), { timeout: 10_000 }).toBe(1);
      expect(await refused.textContent()).toBe("https://refused.example (2×) — add to ALLOWED_ORIGINS");
      expect(violations).toEqual([]);

      // The recorder itself works: an inline script is what the policy forbids.
      await page.evaluate(() => {
        const s = document.createElement("script");
        s.textContent = "window.__inline = 1";
        document.body.append(s);
      });
      await expect.poll(() => violations.length).toBeGreaterThan(0);
      expect(violations.join("\n")).toMatch(/script-src/);
      expect(await page.evaluate(() => (window as unknown as { __inline?: number }).__inline)).toBeUndefined();
      await ctx.close();
    });

    it.skipIf(!enabled)("through a proxy without ADMIN_TOKEN, the dashboard tells the person to set ADMIN_TOKEN", async () => {
      const ctx = await browser.newContext({ extraHTTPHeaders: { "X-Forwarded-For": "203.0.113.9" } });
      const { page, violations } = await watchedPage(ctx);
      await page.goto(`${server.url}/dashboard`);
      await page.locator("#forbidden:not([hidden])").waitFor();
      expect(await page.locator("#data").isHidden()).toBe(true);
      expect(await page.locator("#status").textContent()).toBe("Set ADMIN_TOKEN to read this from another machine.");
      expect(violations).toEqual([]);
      await ctx.close();
    });
  });
}

browserSuite("node");
browserSuite("worker");
