// headcount widget. One line on any site:
//   <script src="https://HOST/widget.js" data-key="/my-page" async></script>
// or markup, after loading this file once:
//   <headcount-counter key="/my-page"></headcount-counter>
// Which numbers show: data-show="visits visitors online" on the script tag, or
// the `show` attribute on the element (default "visits online"): visits
// (the total), visitors (today's distinct visitors, UTC), online (right now).
//
// A classic script (not a module), so it works in a plain <script async> tag.
// It reuses the page's connection logic by importing client.js from the same
// place this file was loaded from; that module fetch is a CORS request, which
// the server allows for /client.js (CORS_ORIGINS). No cookies, no other hosts.
(() => {
  const self = document.currentScript ?? document.querySelector('script[src*="widget.js"]');
  const base = new URL(".", self?.src ?? location.href);
  let client;
  const loadClient = () => (client ??= import(new URL("client.js", base).href));

  const CSS = `
:host { display: inline-flex; vertical-align: middle; contain: content; }
/* A flex host has no line box, so the page's font-size and line-height cannot size it. */
:host([hidden]) { display: none; }
/* all: initial cuts every inherited property (colour, size, font, visibility)
   off from the host page; custom properties still inherit, so they theme it. */
.hc {
  all: initial;
  display: inline-flex; align-items: center; gap: .45em; box-sizing: border-box;
  font-family: var(--headcount-font, system-ui, -apple-system, "Segoe UI", Roboto, sans-serif);
  font-size: var(--headcount-font-size, 14px); line-height: 1.4;
  color: var(--headcount-color, #1f2328); background: var(--headcount-background, #f6f8fa);
  border: var(--headcount-border, 1px solid #d0d7de); border-radius: var(--headcount-radius, 999px);
  padding: var(--headcount-padding, .2em .75em);
  font-variant-numeric: tabular-nums; white-space: nowrap;
}
.dot { width: .55em; height: .55em; border-radius: 50%; flex: none; background: var(--headcount-waiting, #9a6700); }
.hc[data-state="live"] .dot { background: var(--headcount-accent, #1a7f37); }
.hc[data-state="paused"] .dot { opacity: .5; }
b { font-weight: var(--headcount-number-weight, 700); }
.sep { color: var(--headcount-muted, #59636e); }
/* The numbers shown (and their separators) are laid out as children of .hc. */
.parts { display: contents; }
[hidden] { display: none; }
@media (prefers-color-scheme: dark) {
  .hc { color: var(--headcount-color, #f0f6fc); background: var(--headcount-background, #151b23); border: var(--headcount-border, 1px solid #3d444d); }
  .hc[data-state="live"] .dot { background: var(--headcount-accent, #3fb950); }
  .sep { color: var(--headcount-muted, #9198a1); }
}`;
  // Numbers are not a live region: announcing every visitor would drown a screen reader.
  // A constructed stylesheet, not a <style> element: it is not inline style, so the widget works
  // under a Content-Security-Policy without 'unsafe-inline' (this server's page, and any host
  // page's). Browsers without constructable sheets (Safari before 16.4) get the <style>.
  const SHEET = (() => {
    try {
      const sheet = new CSSStyleSheet();
      sheet.replaceSync(CSS);
      return sheet;
    } catch {
      return null;
    }
  })();
  const HTML = `<span class="hc" part="counter" role="group" aria-label="Visitor counter" data-state="connecting"><span class="dot" aria-hidden="true"></span><span class="parts"></span><span class="site" hidden><span class="sep" aria-hidden="true">·</span> <b class="site-total">–</b> on this site</span></span>`;

  const SITE_REFRESH_MS = 60_000;
  // The numbers a counter can show, in this order; `show` picks some (default: visits and online).
  const PARTS = {
    visits: `<span><b class="total">–</b> <span class="total-label">visits</span></span>`,
    visitors: `<span><b class="visitors">–</b> <span class="visitors-label">visitors today</span></span>`,
    online: `<span><b class="online">–</b> online now</span>`,
  };
  const SEP = `<span class="sep" aria-hidden="true">·</span>`;
  /** The markup for a `show` value: the parts it names, in their fixed order; none known: the default. */
  const partsOf = (show) => {
    const asked = new Set(String(show ?? "").toLowerCase().split(/[\s,]+/));
    const names = Object.keys(PARTS).filter((p) => asked.has(p));
    return (names.length > 0 ? names : ["visits", "online"]).map((p) => PARTS[p]).join(SEP);
  };

  // One connection per key per page, whatever the number of counters showing it:
  // two widgets for the same key are still one page view.
  const shared = new Map();
  function subscribe(key, listener) {
    let entry = shared.get(key);
    if (!entry) {
      entry = { listeners: new Set(), last: {}, conn: null, closed: false };
      shared.set(key, entry);
      const e = entry;
      loadClient().then(({ connectCounter }) => {
        if (e.closed) return;
        e.conn = connectCounter({
          key,
          pauseWhenHidden: true,
          onUpdate: (u) => e.listeners.forEach((l) => l({ ...(e.last = { ...e.last, update: u }) })),
          onState: (s) => e.listeners.forEach((l) => l({ ...(e.last = { ...e.last, state: s.state, transport: s.transport }) })),
        });
      }, (err) => {
        e.listeners.forEach((l) => l({ ...(e.last = { ...e.last, state: "offline" }) }));
        console.error("headcount: could not load client.js", err);
      });
    }
    entry.listeners.add(listener);
    listener({ ...entry.last });
    const e = entry;
    return () => {
      e.listeners.delete(listener);
      if (e.listeners.size > 0) return;
      e.closed = true;
      e.conn?.close();
      shared.delete(key);
    };
  }

  class HeadcountCounter extends HTMLElement {
    static observedAttributes = ["key", "site", "show"];
    #root;
    #unsubscribe = null;
    #siteTimer;
    #settleTimer;
    #fmt = new Intl.NumberFormat(document.documentElement.lang || undefined);

    constructor() {
      super();
      this.#root = this.attachShadow({ mode: "open" });
      if (SHEET) this.#root.adoptedStyleSheets = [SHEET];
      this.#root.innerHTML = SHEET ? HTML : `<style>${CSS}</style>${HTML}`;
    }

    /** The key counted: the `key` attribute, else the embedding page's path. */
    get key() {
      return this.getAttribute("key") || location.pathname;
    }

    connectedCallback() {
      if (!this.#unsubscribe) this.#start();
    }

    disconnectedCallback() {
      this.#stop();
    }

    attributeChangedCallback(_name, before, after) {
      if (this.#unsubscribe && before !== after) {
        this.#stop();
        this.#start();
      }
    }

    #start() {
      const $ = (sel) => this.#root.querySelector(sel);
      const box = $(".hc");
      const site = this.hasAttribute("site");
      $(".parts").innerHTML = partsOf(this.getAttribute("show"));
      let counted = false;
      this.#unsubscribe = subscribe(this.key, ({ update, state, transport }) => {
        if (state) box.dataset.state = state;
        // WebSocket, or the event stream where WebSockets cannot open: visible on the element (data-transport).
        if (transport && this.dataset.transport !== transport) this.dataset.transport = transport;
        if (!update) return;
        // The first numbers mean our visit has committed: the site total now includes it
        // (or will within settleMs, where the server's cross-key view trails the counters).
        if (site && !counted) this.#site({ fresh: true, settle: true });
        counted = true;
        this.#set($(".total"), update.total);
        this.#set($(".online"), update.online);
        this.#set($(".visitors"), update.visitors ?? 0);
        const label = (sel, text) => $(sel) && ($(sel).textContent = text);
        label(".total-label", update.total === 1 ? "visit" : "visits");
        label(".visitors-label", update.visitors === 1 ? "visitor today" : "visitors today");
      });
      if (site) {
        this.#siteTimer = setInterval(() => document.visibilityState === "visible" && this.#site(), SITE_REFRESH_MS);
      }
    }

    #stop() {
      this.#unsubscribe?.();
      this.#unsubscribe = null;
      clearInterval(this.#siteTimer);
      clearTimeout(this.#settleTimer);
    }

    #set(el, n) {
      if (!el) return; // a number this counter does not show
      el.dataset.value = String(n);
      el.textContent = this.#fmt.format(n);
    }

    /**
     * Right after our visit: `fresh` skips the HTTP cache (it may hold a total from before the visit),
     * `settle` asks once more, also fresh, if the server says its sums trail the counters.
     */
    async #site({ fresh = false, settle = false } = {}) {
      const url = new URL("api/site", base);
      url.searchParams.set("prefix", this.getAttribute("site") ?? "");
      try {
        const res = await fetch(url, { credentials: "omit", cache: fresh ? "no-cache" : "default" });
        if (!res.ok) return;
        const { total, settleMs } = await res.json();
        if (!Number.isSafeInteger(total)) return;
        this.#set(this.#root.querySelector(".site-total"), total);
        this.#root.querySelector(".site").hidden = false;
        if (settle && Number.isSafeInteger(settleMs) && settleMs > 0) {
          clearTimeout(this.#settleTimer);
          this.#settleTimer = setTimeout(() => this.#site({ fresh: true }), Math.min(settleMs, 10_000));
        }
      } catch {
        // The site total is a nicety; the counter itself carries on.
      }
    }
  }

  if (!customElements.get("headcount-counter")) customElements.define("headcount-counter", HeadcountCounter);

  // The script tag itself renders a counter unless it only loads the element.
  if (!self || self.hasAttribute("data-element-only")) return;
  const el = document.createElement("headcount-counter");
  if (self.dataset.key) el.setAttribute("key", self.dataset.key);
  if (self.hasAttribute("data-site")) el.setAttribute("site", self.dataset.site ?? "");
  if (self.dataset.show) el.setAttribute("show", self.dataset.show);
  const mount = () => {
    const target = self.dataset.target ? document.querySelector(self.dataset.target) : null;
    if (target) target.append(el);
    else if (self.parentElement && self.closest("body")) self.after(el);
    else document.body.append(el);
  };
  if (document.body) mount();
  else document.addEventListener("DOMContentLoaded", mount, { once: true });
})();
