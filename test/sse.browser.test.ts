import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Browser, BrowserContext, Page } from "playwright-core";
import { chromiumAvailable, launchChromium } from "./helpers/browser.ts";
import { uniqueKey } from "./helpers/env.ts";
import { startNoUpgradeProxy, type NoUpgradeProxy } from "./helpers/no-upgrade-proxy.ts";
import { startServer, type RunningServer, type RuntimeName } from "./helpers/server.ts";

// Counts on every network, and without JavaScript (README "Where WebSockets
// are blocked"): Chromium behind a proxy that refuses WebSocket upgrades
// counts and stays live over Server-Sent Events, on every runtime; with
// JavaScript off, the page's <noscript> pixel counts the visit.
//
// These tests count visits, so the browser must look like a person's: a
// normal Chrome User-Agent (headless Chromium's says "HeadlessChrome", which
// a bot filter drops) and navigator.webdriver hidden.

const CHROME_UA = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36";

const value = async (page: Page, sel: string) => Number(await page.locator(sel).first().getAttribute("data-value"));

async function visitorContext(browser: Browser, javaScriptEnabled = true): Promise<BrowserContext> {
  const ctx = await browser.newContext({ userAgent: CHROME_UA, javaScriptEnabled });
  await ctx.addInitScript(() => Object.defineProperty(Navigator.prototype, "webdriver", { get: () => false }));
  return ctx;
}

async function counter(server: RunningServer, key: string): Promise<{ total: number; online: number }> {
  return (await (await fetch(`${server.url}/api/counters?key=${encodeURIComponent(key)}`)).json()) as { total: number; online: number };
}

function suite(runtime: RuntimeName): void {
  describe(`Chromium with WebSockets blocked, served by ${runtime}`, () => {
    const enabled = chromiumAvailable();
    let server: RunningServer;
    let proxy: NoUpgradeProxy;
    let browser: Browser;

    beforeAll(async () => {
      if (!enabled) return;
      // A keep-alive every second: workerd notices a closed tab at a write.
      [server, browser] = await Promise.all([startServer({ runtime, env: { SSE_KEEPALIVE_MS: "1000" }, timeoutMs: 90_000 }), launchChromium()]);
      proxy = await startNoUpgradeProxy(server.url);
    });
    afterAll(async () => {
      await browser?.close();
      await proxy?.close();
      await server?.stop();
    });

    it.skipIf(!enabled)("the page and the widget fall back to Server-Sent Events: live, a second page raises the total, online counts both", async () => {
      const key = uniqueKey("blocked");
      const first = await (await visitorContext(browser)).newPage();
      await first.goto(`${proxy.url}/?key=${encodeURIComponent(key)}`);
      await first.locator("#state[data-state=live][data-transport=sse]").waitFor();
      expect(await first.locator("#state").textContent()).toMatch(/Live.*Server-Sent Events/);
      expect(await first.locator("#numbers").getAttribute("data-transport")).toBe("sse");
      await expect.poll(() => value(first, "#total")).toBe(1);
      expect(proxy.refused).toBeGreaterThanOrEqual(2);
      // The widget demo on the page (key "demo"), through the same proxy.
      const widget = first.locator("headcount-counter[data-transport=sse]").first();
      await widget.waitFor();
      await first.locator("headcount-counter .hc[data-state=live]").first().waitFor();
      const demoBefore = await value(first, "headcount-counter .total");
      expect(demoBefore).toBeGreaterThanOrEqual(1);

      const second = await (await visitorContext(browser)).newPage();
      await second.goto(`${proxy.url}/?key=${encodeURIComponent(key)}`);
      await second.locator("#state[data-state=live][data-transport=sse]").waitFor();
      await expect.poll(() => value(second, "#total")).toBe(2);
      await expect.poll(() => value(first, "#total")).toBe(2);
      await expect.poll(() => value(first, "#online")).toBe(2);
      await expect.poll(() => value(first, "headcount-counter .total")).toBe(demoBefore + 1);
      await expect.poll(() => value(first, "headcount-counter .online")).toBeGreaterThanOrEqual(2);

      // Two page views, each counted once: the failed WebSockets and the <noscript> pixel counted nothing.
      expect(await counter(server, key)).toMatchObject({ total: 2, online: 2 });
      await second.close();
      await expect.poll(() => value(first, "#online"), { timeout: 10_000 }).toBe(1);
      expect(await value(first, "#total")).toBe(2);
      await first.context().close();
    });

    it.skipIf(!enabled || runtime !== "node")("on the event stream, the page tries the WebSocket again and moves to it when it opens, as the same page view", async () => {
      const key = uniqueKey("back");
      const page = await (await visitorContext(browser)).newPage();
      // The page's timers under a clock the test moves: the retry comes after minutes.
      await page.clock.install();
      await page.goto(`${proxy.url}/?key=${encodeURIComponent(key)}`);
      await page.locator("#state[data-state=live][data-transport=sse]").waitFor();
      // Minutes pass in steps, with real time between them for the connections the page makes.
      const later = async () => {
        await page.clock.fastForward("02:00");
        return page.locator("#state").getAttribute("data-transport");
      };
      // Still blocked: the try fails and the stream carries on.
      const refused = proxy.refused;
      await expect.poll(async () => (await later()) && proxy.refused, { timeout: 20_000, interval: 300 }).toBeGreaterThan(refused);
      expect(await page.locator("#state").getAttribute("data-transport")).toBe("sse");
      proxy.blockUpgrades = false;
      try {
        await expect.poll(later, { timeout: 20_000, interval: 300 }).toBe("websocket");
        await page.locator("#state[data-state=live][data-transport=websocket]").waitFor();
        // The widget is a page view of its own, with its own retry time: minutes go on passing until it has moved too.
        const widgetMoved = async () => {
          await page.clock.fastForward("02:00");
          return page.locator("headcount-counter[data-transport=websocket]").count();
        };
        await expect.poll(widgetMoved, { timeout: 20_000, interval: 300 }).toBeGreaterThan(0);
        // The socket presented the resume token: one visit, one connection online once the stream has gone.
        await expect.poll(async () => counter(server, key)).toMatchObject({ key, total: 1, online: 1 });
        expect(await value(page, "#total")).toBe(1);
      } finally {
        proxy.blockUpgrades = true;
        await page.context().close();
      }
    });

    it.skipIf(!enabled)("with WebSockets open, the page stays on them", async () => {
      const key = uniqueKey("open");
      const page = await (await visitorContext(browser)).newPage();
      await page.goto(`${server.url}/?key=${encodeURIComponent(key)}`);
      await page.locator("#state[data-state=live][data-transport=websocket]").waitFor();
      await expect.poll(() => value(page, "#total")).toBe(1);
      await page.locator("headcount-counter[data-transport=websocket]").first().waitFor();
      await page.context().close();
    });

    it.skipIf(!enabled)("with JavaScript disabled, the page's <noscript> pixel counts the visit once", async () => {
      const key = uniqueKey("noscript");
      const ctx = await visitorContext(browser, false);
      const page = await ctx.newPage();
      const pixel = page.waitForResponse((r) => r.url().includes("/pixel.gif"));
      await page.goto(`${server.url}/?key=${encodeURIComponent(key)}`);
      const res = await pixel;
      expect(res.status()).toBe(200);
      expect(res.headers()["cache-control"]).toMatch(/no-store/);
      expect(await page.locator("noscript p, main > p").filter({ hasText: "Your visit is counted" }).count()).toBe(1);
      expect(await page.locator("#state").isVisible()).toBe(false);
      await expect.poll(async () => (await counter(server, key)).total).toBe(1);
      expect((await counter(server, key)).online).toBe(0);
      await ctx.close();
    });
  });
}

suite("node");
suite("bun");
suite("deno");
suite("worker");
