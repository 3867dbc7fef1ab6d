import { existsSync } from "node:fs";
import { chromium, type Browser, type BrowserContext } from "playwright-core";
import { BROWSER_UA } from "./env.ts";

// Debian's Chromium driven by playwright-core; no browser download.
export const CHROMIUM = process.env.CHROMIUM_PATH ?? "/usr/bin/chromium";

export function chromiumAvailable(): boolean {
  if (existsSync(CHROMIUM)) return true;
  if (process.env.CI === "true") throw new Error(`CI=true but ${CHROMIUM} is missing (apt-get install chromium)`);
  console.warn(`browser tests skipped: ${CHROMIUM} not found`);
  return false;
}

/** The browser's own newContext, before launchChromium made every context look like a person's. */
const automatedContext = new WeakMap<Browser, Browser["newContext"]>();

/**
 * Chromium as a person's browser: every context it opens (newContext and
 * newPage, unless the test sets its own userAgent) sends a desktop Chrome
 * User-Agent rather than "HeadlessChrome", and hides navigator.webdriver,
 * so the pages count visits (issue 13 filters headless and automated
 * browsers as bots). `botContext` opens one as it really is.
 */
export async function launchChromium(): Promise<Browser> {
  const browser = await launchRaw();
  const raw = browser.newContext.bind(browser);
  automatedContext.set(browser, raw);
  const person = async (options: Parameters<Browser["newContext"]>[0] = {}): Promise<BrowserContext> => {
    const ctx = await raw({ userAgent: BROWSER_UA, ...options });
    await ctx.addInitScript(() => Object.defineProperty(Navigator.prototype, "webdriver", { get: () => false }));
    return ctx;
  };
  browser.newContext = person;
  browser.newPage = async (options) => (await person(options)).newPage();
  return browser;
}

/** A context as headless Chromium really is: "HeadlessChrome" in its User-Agent and navigator.webdriver true. */
export function botContext(browser: Browser): Promise<BrowserContext> {
  return (automatedContext.get(browser) ?? browser.newContext.bind(browser))();
}

function launchRaw(): Promise<Browser> {
  return chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: [
      "--no-sandbox",
      "--disable-gpu",
      "--disable-quic",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
    ],
  });
}
