import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Browser, Page } from "playwright-core";
import { chromiumAvailable, launchChromium } from "./helpers/browser.ts";
import { uniqueKey } from "./helpers/env.ts";
import { startServer, type RunningServer, type RuntimeName } from "./helpers/server.ts";

// A real browser opens the page and sees the number change when another page
// opens (DESIGN.md §8).

const value = async (page: Page, sel: string) => Number(await page.locator(sel).getAttribute("data-value"));

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
  });
}

browserSuite("node");
browserSuite("worker");
