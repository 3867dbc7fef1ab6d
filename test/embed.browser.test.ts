import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Browser, BrowserContext, Page } from "playwright-core";
import { chromiumAvailable, launchChromium } from "./helpers/browser.ts";
import { uniqueKey } from "./helpers/env.ts";
import { ROOT, startServer, type RunningServer, type RuntimeName } from "./helpers/server.ts";
import { TestSocket } from "./helpers/ws.ts";

// Issue 6 in a real browser: the widget on a page of ANOTHER origin (a tiny
// static server on another port, reached as localhost while headcount is
// 127.0.0.1), the badge, the dashboard. HEADCOUNT_SCREENSHOTS=1 also writes
// docs/widget.png and docs/dashboard.png.

// The dashboard polls every 2 s (history every 5 s): give its polls time.
const SLOW = { timeout: 15_000, interval: 200 };
const ADMIN_TOKEN = "browser-admin-token-0123456789";
const MARKUP = `/<img src=x onerror="window.__pwned=1"><b>bold</b>&amp;`;
const SHOTS = process.env.HEADCOUNT_SCREENSHOTS ? join(ROOT, "docs") : null;

const HOSTILE_CSS = `
  * { color: red !important; font-size: 40px; line-height: 3; font-family: "Comic Sans MS", cursive; letter-spacing: 3px; }
  div { display: none }
  span, b { background: yellow; padding: 20px; border: 5px dashed blue; }
  :root { --unrelated: 1; }
`;

function hostPage(title: string, css: string, body: string): string {
  return `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>${title}</title><style>${css}</style></head>
<body><h1>${title}</h1><p class="intro">Some article text <span>with a span</span>.</p><div class="box">a div</div>
<aside id="slot" style="position:absolute; right:8px; top:8px"></aside>${body}<p class="outro">The end.</p></body></html>`;
}

/** Serves fixed pages on 127.0.0.1 and a free port: the "other site". */
async function startHost(pages: Record<string, string>): Promise<{ origin: string; close(): Promise<void> }> {
  const server: Server = createServer((req, res) => {
    const html = pages[new URL(req.url ?? "/", "http://x").pathname];
    res.writeHead(html ? 200 : 404, { "Content-Type": "text/html; charset=utf-8" });
    res.end(html ?? "not found");
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  return { origin: `http://localhost:${port}`, close: () => new Promise((r) => server.close(() => r())) };
}

const widgetValue = async (page: Page, cls: string) =>
  Number(await page.locator(`headcount-counter .${cls}`).first().getAttribute("data-value"));
const widgetState = (page: Page) => page.locator("headcount-counter .hc").first().getAttribute("data-state");

/** Adds the one-line embed to a page that is already loaded, as a site would. */
async function embed(page: Page, serverUrl: string, key: string | null, extra: Record<string, string> = {}): Promise<void> {
  await page.evaluate(
    ({ src, key, extra }) => {
      const s = document.createElement("script");
      s.src = src;
      s.async = true;
      if (key !== null) s.dataset.key = key;
      s.dataset.target = "#slot";
      for (const [k, v] of Object.entries(extra)) s.setAttribute(k, v);
      document.body.append(s);
    },
    { src: `${serverUrl}/widget.js`, key, extra },
  );
  await page.locator("headcount-counter .hc[data-state=live]").waitFor();
}

/** Every element's box and a few computed styles, except the widget's slot. */
function layout(page: Page): Promise<string> {
  return page.evaluate(() => {
    const props = ["color", "font-size", "font-family", "display", "margin", "padding", "background-color", "line-height"];
    const rows = [...document.querySelectorAll("html, head, body, body *")]
      .filter((e) => !e.closest("#slot") && e.tagName !== "SCRIPT")
      .map((e) => {
        const r = e.getBoundingClientRect();
        const cs = getComputedStyle(e);
        return [e.tagName, r.x, r.y, r.width, r.height, ...props.map((p) => cs.getPropertyValue(p))].join("|");
      });
    return JSON.stringify({ rows, sheets: document.styleSheets.length, head: document.head.children.length });
  });
}

/** What the widget looks like: its box and its counter's computed style. */
function widgetLook(page: Page): Promise<Record<string, unknown>> {
  return page.evaluate(() => {
    const host = document.querySelector("headcount-counter")!;
    const hc = host.shadowRoot!.querySelector(".hc")!;
    const cs = getComputedStyle(hc);
    const r = host.getBoundingClientRect();
    const total = host.shadowRoot!.querySelector(".total")!;
    return {
      width: r.width,
      height: r.height,
      color: cs.color,
      fontSize: cs.fontSize,
      fontFamily: cs.fontFamily,
      background: cs.backgroundColor,
      padding: cs.padding,
      numberColor: getComputedStyle(total).color,
      numberBackground: getComputedStyle(total).backgroundColor,
      text: hc.textContent,
    };
  });
}

/** Overrides what the page believes about its visibility and tells it, as a tab switch would. */
async function setHidden(page: Page, hidden: boolean): Promise<void> {
  await page.evaluate((hidden) => {
    Object.defineProperty(document, "visibilityState", { configurable: true, get: () => (hidden ? "hidden" : "visible") });
    Object.defineProperty(document, "hidden", { configurable: true, get: () => hidden });
    document.dispatchEvent(new Event("visibilitychange"));
  }, hidden);
}

async function counterOf(server: RunningServer, key: string): Promise<{ total: number; online: number }> {
  return (await (await fetch(`${server.url}/api/counters/${encodeURIComponent(key)}`)).json()) as { total: number; online: number };
}

function embedSuite(runtime: RuntimeName): void {
  describe(`widget, badge and dashboard in Chromium, served by ${runtime}`, () => {
    const enabled = chromiumAvailable();
    let server: RunningServer;
    let browser: Browser;
    let host: Awaited<ReturnType<typeof startHost>>;
    const contexts: BrowserContext[] = [];
    const context = async () => {
      const c = await browser.newContext();
      contexts.push(c);
      return c;
    };

    beforeAll(async () => {
      if (!enabled) return;
      host = await startHost({
        "/plain": hostPage("A plain page", "", ""),
        "/hostile": hostPage("A hostile page", HOSTILE_CSS, ""),
        "/blog/no-key": hostPage("No key", "", ""),
      });
      // The other site's pages may count here because the server lists them (the default is this server's own pages only).
      [server, browser] = await Promise.all([
        startServer({ runtime, timeoutMs: 90_000, env: { ADMIN_TOKEN, ALLOWED_ORIGINS: `self,${host.origin}` } }),
        launchChromium(),
      ]);
    });
    afterAll(async () => {
      for (const c of contexts) await c.close().catch(() => {});
      await browser?.close();
      await host?.close();
      await server?.stop();
    });

    it.skipIf(!enabled)("counts on another origin, rises when a second page opens, no cookies, no other hosts", async () => {
      const key = uniqueKey("widget");
      const ctx = await context();
      const first = await ctx.newPage();
      const hosts = new Set<string>();
      first.on("request", (r) => hosts.add(new URL(r.url()).origin));
      await first.goto(`${host.origin}/plain`);
      await embed(first, server.url, key);
      await expect.poll(() => widgetValue(first, "total")).toBe(1);
      expect(await widgetValue(first, "online")).toBe(1);
      expect(await first.locator("headcount-counter .hc").first().textContent()).toMatch(/^\s*1\s+visit\s*·\s*1\s+online now/);

      const second = await (await context()).newPage();
      await second.goto(`${host.origin}/plain`);
      await embed(second, server.url, key);
      await expect.poll(() => widgetValue(second, "total")).toBe(2);
      await expect.poll(() => widgetValue(first, "total")).toBe(2);
      await expect.poll(() => widgetValue(first, "online")).toBe(2);
      await second.close();
      await expect.poll(() => widgetValue(first, "online")).toBe(1);

      // The widget reads the JSON API cross-origin (CORS); the dashboard's data stays same-origin.
      const cross = await first.evaluate(async (url) => {
        const counters = await fetch(`${url}/api/counters?key=/`).then((r) => r.ok, () => false);
        const top = await fetch(`${url}/api/top`).then((r) => r.status, () => "blocked");
        return { counters, top };
      }, server.url);
      expect(cross).toEqual({ counters: true, top: "blocked" });

      expect(await ctx.cookies()).toEqual([]);
      expect([...hosts].sort()).toEqual([host.origin, server.url].sort());
    });

    it.skipIf(!enabled)("data-show picks the numbers (visitors today among them), in a fixed order; without it, visits and online", async () => {
      const key = uniqueKey("show");
      const page = await (await context()).newPage();
      await page.goto(`${host.origin}/plain`);
      await embed(page, server.url, key, { "data-show": "online visitors visits" });
      await expect.poll(() => widgetValue(page, "visitors")).toBe(1);
      const text = () => page.locator("headcount-counter .hc").first().textContent();
      expect(await text()).toMatch(/^\s*1\s+visit\s*·\s*1\s+visitor today\s*·\s*1\s+online now/);
      // Markup: the element's `show` attribute; an unknown word is ignored, so this shows visitors alone.
      await page.evaluate(() => document.querySelector("headcount-counter")!.setAttribute("show", "visitors sparkles"));
      // (The site total's part is there, hidden, until data-site asks for it.)
      await expect.poll(text).toMatch(/^\s*1\s+visitor today\s*(·\s*–\s*on this site)?\s*$/);
      await page.close();
    });

    it.skipIf(!enabled)("the host page's CSS does not reach the widget, and the widget changes nothing on the page", async () => {
      const ctx = await context();
      const plain = await ctx.newPage();
      await plain.goto(`${host.origin}/plain`);
      await embed(plain, server.url, uniqueKey("plain"));
      await expect.poll(() => widgetValue(plain, "total")).toBe(1);
      const reference = await widgetLook(plain);

      const hostile = await ctx.newPage();
      await hostile.goto(`${host.origin}/hostile`);
      const before = await layout(hostile);
      await embed(hostile, server.url, uniqueKey("hostile"));
      await expect.poll(() => widgetValue(hostile, "total")).toBe(1);
      expect(await widgetLook(hostile)).toEqual(reference);
      expect(reference).toMatchObject({ fontSize: "14px", color: "rgb(31, 35, 40)", numberBackground: "rgba(0, 0, 0, 0)" });
      expect(await layout(hostile)).toBe(before);
      if (SHOTS) {
        mkdirSync(SHOTS, { recursive: true });
        await plain.setViewportSize({ width: 480, height: 230 });
        await plain.evaluate(() => {
          const slot = document.getElementById("slot")!;
          slot.style.cssText = "position:static;margin:16px 0";
          const themed = document.createElement("headcount-counter");
          themed.setAttribute("key", document.querySelector("headcount-counter")!.getAttribute("key")!);
          themed.style.cssText =
            "--headcount-background:#fff8c5;--headcount-color:#3b2300;--headcount-accent:#bf8700;--headcount-border:2px solid #bf8700;--headcount-radius:6px;--headcount-font:Georgia,serif;margin-left:12px";
          slot.append(themed);
        });
        await plain.waitForTimeout(300);
        await plain.screenshot({ path: join(SHOTS, "widget.png") });
      }
    });

    it.skipIf(!enabled)("hiding the tab closes the socket; showing it reconnects without a new visit", async () => {
      const key = uniqueKey("hidden");
      const page = await (await context()).newPage();
      const sockets: string[] = [];
      page.on("websocket", (ws) => sockets.push(ws.url()));
      await page.goto(`${host.origin}/plain`);
      await embed(page, server.url, key);
      await expect.poll(() => widgetValue(page, "total")).toBe(1);
      expect(await counterOf(server, key)).toMatchObject({ total: 1, online: 1 });

      await setHidden(page, true);
      await expect.poll(() => widgetState(page)).toBe("paused");
      await expect.poll(() => counterOf(server, key)).toMatchObject({ total: 1, online: 0 });

      await setHidden(page, false);
      await expect.poll(() => widgetState(page)).toBe("live");
      await expect.poll(() => counterOf(server, key)).toMatchObject({ total: 1, online: 1 });
      expect(await widgetValue(page, "total")).toBe(1);
      expect(sockets).toHaveLength(2);
      expect(new URL(sockets[1]!).searchParams.get("resume")).toMatch(/\S{10,}/);
    });

    it.skipIf(!enabled)("without data-key counts the embedding page's path, and data-site shows the site total", async () => {
      const page = await (await context()).newPage();
      await page.goto(`${host.origin}/blog/no-key`);
      const siteTotal = async () =>
        ((await (await fetch(`${server.url}/api/site?prefix=/blog/`, { cache: "no-store" })).json()) as { total: number }).total;
      const before = await counterOf(server, "/blog/no-key");
      const siteBefore = await siteTotal();
      // A visit just before the page's: on Workers the key's object has just reported to the index,
      // so the page's own visit reaches the index up to a report interval later, after the widget's
      // first ask. The widget asks again after the settleMs the server gives.
      const earlier = await TestSocket.join(server.wsUrl("/blog/no-key"));
      await embed(page, server.url, null, { "data-site": "/blog/" });
      await expect.poll(() => counterOf(server, "/blog/no-key")).toMatchObject({ total: before.total + 2 });
      expect(await page.locator("headcount-counter").getAttribute("key")).toBeNull();
      await expect.poll(() => widgetValue(page, "site-total"), SLOW).toBe(siteBefore + 2);
      expect(await siteTotal()).toBe(siteBefore + 2);
      await earlier.sock.close();
      expect(await page.locator("headcount-counter .site").textContent()).toMatch(/on this site/);
    });

    it.skipIf(!enabled)("the badge is valid SVG with the total, and a key full of markup is text everywhere", async () => {
      const a = await TestSocket.join(server.wsUrl(MARKUP));
      const b = await TestSocket.join(server.wsUrl(MARKUP));
      const total = b.hello.total;
      const page = await (await context()).newPage();
      await page.goto(`${server.url}/?key=${encodeURIComponent(MARKUP)}`);
      await expect.poll(() => page.locator("#total").getAttribute("data-value")).toBe(String(total + 1));
      expect(await page.locator("#key").textContent()).toBe(MARKUP);

      const res = await fetch(`${server.url}/badge/${encodeURIComponent(MARKUP)}.svg`);
      expect(res.headers.get("cache-control")).toBe("public, max-age=30");
      const svg = await res.text();
      const parsed = await page.evaluate((text) => {
        const doc = new DOMParser().parseFromString(text, "image/svg+xml");
        return {
          error: doc.querySelector("parsererror")?.textContent ?? null,
          root: doc.documentElement.localName,
          total: doc.querySelector("text[data-total]")?.textContent,
          title: doc.querySelector("title")?.textContent,
          elements: [...doc.querySelectorAll("*")].map((e) => e.localName).filter((n) => !["svg", "title", "linearGradient", "stop", "clipPath", "rect", "g", "text"].includes(n)),
        };
      }, svg);
      expect(parsed).toEqual({ error: null, root: "svg", total: String(total + 1), title: `${total + 1} visits to ${MARKUP}`, elements: [] });
      // The badge as an image on the demo page has loaded (a broken SVG would not).
      await expect.poll(() => page.locator("#badge").evaluate((img: HTMLImageElement) => img.complete && img.naturalWidth)).toBeGreaterThan(0);
      expect(await page.evaluate(() => (window as unknown as { __pwned?: number }).__pwned)).toBeUndefined();
      await a.sock.close();
      await b.sock.close();
    });

    it.skipIf(!enabled)("the dashboard asks for the token, lists the busiest keys live and charts this test's visits at their minute", async () => {
      const key = uniqueKey("chart");
      const from = Math.floor(Date.now() / 60_000) * 60_000;
      const joined = [];
      for (let i = 0; i < 3; i++) joined.push(await TestSocket.join(server.wsUrl(key)));
      const to = Math.floor(Date.now() / 60_000) * 60_000;
      const markup = await TestSocket.join(server.wsUrl(MARKUP));

      const page = await (await context()).newPage();
      await page.setViewportSize({ width: 1000, height: 900 });
      await page.goto(`${server.url}/dashboard?key=${encodeURIComponent(key)}&minutes=60`);
      await page.locator("#login:not([hidden])").waitFor();
      expect(await page.locator("#data").isHidden()).toBe(true);
      await page.fill("#token", ADMIN_TOKEN);
      await page.click("#login button[type=submit]");
      await page.locator("#data:not([hidden])").waitFor();
      expect(await page.locator("#login").isHidden()).toBe(true);

      const row = page.locator("#top tbody tr").filter({ has: page.locator("td button", { hasText: key }) });
      // Columns: key, visits, visitors today, bots today, online now (three visits by one person: one visitor).
      await expect.poll(() => row.locator("td").nth(1).getAttribute("data-value"), SLOW).toBe("3");
      await expect.poll(() => row.locator("td").nth(4).getAttribute("data-value"), SLOW).toBe("3");
      expect(await row.locator("td").nth(2).getAttribute("data-value")).toBe("1");
      expect(await row.locator("td").nth(3).getAttribute("data-value")).toBe("0");
      // Live: one more page view shows up without a reload.
      joined.push(await TestSocket.join(server.wsUrl(key)));
      await expect.poll(() => row.locator("td").nth(4).getAttribute("data-value"), SLOW).toBe("4");
      // The daily chart: today's visits, visitors and (none) bots for the charted key, then the whole server's.
      const today = (series: string) => page.locator(`#daily-chart rect.bar.${series}`).last().getAttribute(`data-${series}`);
      await expect.poll(() => page.locator("#daily-chart").getAttribute("data-key"), SLOW).toBe(key);
      await expect.poll(() => today("visits"), SLOW).toBe("4");
      expect(await today("visitors")).toBe("1");
      expect(await page.locator("#daily-chart rect.bar.bots").count()).toBe(0);
      expect(await page.locator("#daily-chart rect.bar.visits").count()).toBe(1);
      await page.selectOption("#daily-scope", "server");
      await expect.poll(() => page.locator("#daily-chart").getAttribute("data-key"), SLOW).toBe("");
      expect(Number(await today("visits"))).toBeGreaterThanOrEqual(5);
      await page.selectOption("#daily-days", "365");
      await expect.poll(() => page.locator("#daily-summary").textContent(), SLOW).toMatch(/^the whole server, last 365 days \(UTC\)/);
      await page.selectOption("#daily-scope", "key");
      await page.selectOption("#daily-days", "30");

      // The markup key is a row of text, not markup.
      const markupCell = page.locator("#top tbody tr td button").filter({ hasText: "onerror" });
      expect(await markupCell.textContent()).toBe(MARKUP);
      expect(await page.locator("#top img, #top b").count()).toBe(0);

      const bars = async () =>
        page.locator("#chart rect.bar").evaluateAll((rects) =>
          rects.map((r) => ({ minute: Number(r.getAttribute("data-minute")), visits: Number(r.getAttribute("data-visits")) })),
        );
      const inTest = (b: { minute: number }) => b.minute >= from && b.minute <= Math.floor(Date.now() / 60_000) * 60_000;
      await expect.poll(async () => (await bars()).filter(inTest).reduce((n, b) => n + b.visits, 0), SLOW).toBe(4);
      const drawn = await bars();
      const end = Math.floor(Date.now() / 60_000) * 60_000;
      expect(drawn.every((b) => b.minute >= from && b.minute <= end)).toBe(true);
      expect(drawn.filter((b) => b.minute >= from && b.minute <= to).reduce((n, b) => n + b.visits, 0)).toBeGreaterThanOrEqual(3);
      expect(await page.locator("#chart").getAttribute("data-key")).toBe(key);

      // The chart for the markup key draws its title as text.
      await page.locator("#top tbody tr td button").filter({ hasText: "onerror" }).click();
      await expect.poll(() => page.locator("#chart").getAttribute("data-key"), SLOW).toBe(MARKUP);
      expect(await page.locator("#chart-key").textContent()).toBe(MARKUP);
      expect(await page.evaluate(() => (window as unknown as { __pwned?: number }).__pwned)).toBeUndefined();

      if (SHOTS) {
        await page.locator("#top tbody tr td button", { hasText: key }).click();
        await expect.poll(() => page.locator("#chart").getAttribute("data-key"), SLOW).toBe(key);
        await page.screenshot({ path: join(SHOTS, "dashboard.png"), fullPage: true });
      }
      for (const j of [...joined, markup]) await j.sock.close();
    });
  });
}

embedSuite("node");
embedSuite("bun");
embedSuite("deno");
embedSuite("worker");
