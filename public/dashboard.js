// The dashboard: polls /api/top, /api/history, /api/webhooks and /api/origins
// and draws the chart in SVG.
// Keys are user text, so they only ever reach the page through textContent
// and attribute setters, never through innerHTML.

import { refreshDaily } from "./dashboard-daily.js";

const TOKEN_KEY = "headcount-admin-token";
const TOP_EVERY_MS = 2000;
const HISTORY_EVERY_MS = 5000;
const SVG = "http://www.w3.org/2000/svg";
const W = 800, H = 240, PAD_L = 40, PAD_B = 22, PAD_T = 10;

const $ = (id) => document.getElementById(id);
const fmt = new Intl.NumberFormat();
const params = new URLSearchParams(location.search);
let chartKey = params.get("key");
let minutes = Number(params.get("minutes")) || 180;
let timers = [];

class Unauthorized extends Error {}
/** No ADMIN_TOKEN and not on the server's machine (or through a proxy): a token is the way in. */
class LocalOnly extends Error {}

async function api(path) {
  const token = sessionStorage.getItem(TOKEN_KEY);
  const res = await fetch(path, { headers: token ? { Authorization: `Bearer ${token}` } : {}, cache: "no-store" });
  if (res.status === 401) throw new Unauthorized();
  if (res.status === 403) {
    const body = await res.json().catch(() => ({}));
    if (body.error === "admin_token_required") throw new LocalOnly(body.message);
  }
  if (!res.ok) throw new Error(`${path}: ${res.status}`);
  return res.json();
}

function status(text, state = "ok") {
  $("status").textContent = text;
  $("status").dataset.state = state;
}

function failed(err) {
  if (err instanceof Unauthorized) {
    stop();
    sessionStorage.removeItem(TOKEN_KEY);
    $("data").hidden = true;
    $("login").hidden = false;
    status("This dashboard needs the admin token.", "locked");
    $("token").focus();
    return;
  }
  if (err instanceof LocalOnly) {
    stop();
    $("data").hidden = true;
    $("forbidden").hidden = false;
    status("Set ADMIN_TOKEN to read this from another machine.", "locked");
    return;
  }
  status(`Could not refresh: ${err.message}`, "error");
}

function el(name, attrs = {}, text) {
  const node = name === "svg" || ["rect", "line", "text", "title", "g"].includes(name)
    ? document.createElementNS(SVG, name)
    : document.createElement(name);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, String(v));
  if (text !== undefined) node.textContent = text;
  return node;
}

async function refreshTop() {
  const { keys } = await api("/api/top?limit=20");
  const rows = keys.map(({ key, total, online, visitors, bots }) => {
    const tr = el("tr", { "data-key": key });
    if (key === chartKey) tr.setAttribute("aria-current", "true");
    const cell = el("td");
    const pick = el("button", { type: "button", title: `Chart ${key}` }, key);
    pick.addEventListener("click", () => choose(key));
    cell.append(pick);
    // Visitors and bots today; a dash where an older server lists none.
    const today = (n) => (Number.isSafeInteger(n) ? el("td", { class: "n", "data-value": n }, fmt.format(n)) : el("td", { class: "n" }, "–"));
    tr.append(
      cell,
      el("td", { class: "n", "data-value": total }, fmt.format(total)),
      today(visitors),
      today(bots),
      el("td", { class: "n", "data-value": online }, fmt.format(online)),
    );
    return tr;
  });
  $("top").tBodies[0].replaceChildren(...rows);
  $("empty").hidden = keys.length > 0;
  if (chartKey === null && keys.length > 0) choose(keys[0].key);
  status(`Updated ${new Date().toLocaleTimeString()}`);
}

async function refreshHistory() {
  if (chartKey === null) return;
  const key = chartKey;
  const data = await api(`/api/history?key=${encodeURIComponent(key)}&minutes=${minutes}`);
  if (key === chartKey) draw(data);
  await refreshDays();
}

/** The daily chart: the charted key's days, or the whole server's. */
function refreshDays() {
  const server = $("daily-scope").value === "server";
  if (!server && chartKey === null) return Promise.resolve();
  return refreshDaily(server ? null : chartKey, Number($("daily-days").value) || 30);
}

function draw({ key, minutes: span, now, points }) {
  const svg = $("chart");
  const last = Math.floor(now / 60_000) * 60_000;
  const first = last - (span - 1) * 60_000;
  const inRange = points.filter((p) => p.minute >= first && p.minute <= last);
  const max = Math.max(1, ...inRange.map((p) => p.visits));
  const plotW = W - PAD_L, plotH = H - PAD_B - PAD_T;
  const barW = plotW / span;
  const x = (minute) => PAD_L + ((minute - first) / 60_000) * barW;
  const y = (v) => PAD_T + plotH - (v / max) * plotH;

  const children = [
    el("line", { class: "axis", x1: PAD_L, y1: PAD_T + plotH, x2: W, y2: PAD_T + plotH }),
    el("text", { x: PAD_L - 6, y: PAD_T + 10, "text-anchor": "end" }, fmt.format(max)),
    el("text", { x: PAD_L - 6, y: PAD_T + plotH, "text-anchor": "end" }, "0"),
  ];
  // A tick per hour (per 4 hours on a day's view), labelled in local time.
  const every = span > 720 ? 240 : span > 180 ? 60 : 30;
  for (let t = Math.ceil(first / (every * 60_000)) * every * 60_000; t <= last; t += every * 60_000) {
    const label = new Date(t).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
    children.push(el("line", { class: "axis", x1: x(t), y1: PAD_T + plotH, x2: x(t), y2: PAD_T + plotH + 4 }));
    children.push(el("text", { x: x(t), y: H - 4, "text-anchor": "middle" }, label));
  }
  const bars = el("g", { class: "bars" });
  for (const p of inRange) {
    const rect = el("rect", {
      class: "bar",
      x: x(p.minute).toFixed(2),
      y: y(p.visits).toFixed(2),
      width: Math.max(1, barW - (barW > 3 ? 1 : 0)).toFixed(2),
      height: (PAD_T + plotH - y(p.visits)).toFixed(2),
      "data-minute": p.minute,
      "data-visits": p.visits,
    });
    rect.append(el("title", {}, `${new Date(p.minute).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" })}: ${fmt.format(p.visits)} visits`));
    bars.append(rect);
  }
  children.push(bars);
  svg.replaceChildren(...children);
  svg.dataset.key = key;
  const sum = inRange.reduce((n, p) => n + p.visits, 0);
  $("chart-summary").textContent = `${fmt.format(sum)} visits to ${key} in the last ${span / 60 >= 1 ? `${span / 60} h` : `${span} min`}, at most ${fmt.format(max)} in a minute.`;
}

function choose(key) {
  chartKey = key;
  $("chart-key").textContent = key;
  $("key").value = key;
  const url = new URL(location.href);
  url.searchParams.set("key", key);
  url.searchParams.set("minutes", String(minutes));
  history.replaceState(null, "", url);
  for (const tr of $("top").tBodies[0].rows) tr.setAttribute("aria-current", String(tr.dataset.key === key));
  refreshHistory().catch(failed);
}

async function refreshHooks() {
  const res = await api("/api/webhooks");
  if (!res.enabled) return;
  $("hooks").hidden = false;
  $("hooks-summary").textContent = `${fmt.format(res.delivered)} delivered · ${fmt.format(res.pending)} pending · ${fmt.format(res.dead)} dead`;
  $("hooks-summary").dataset.dead = String(res.dead);
  const rows = res.recentDead.map((d) => {
    const tr = el("tr");
    tr.append(el("td", {}, d.id), el("td", {}, d.key), el("td", { class: "n" }, String(d.attempts)), el("td", {}, d.lastError ?? ""));
    return tr;
  });
  $("dead").tBodies[0].replaceChildren(...rows);
  $("dead").hidden = rows.length === 0;
}

async function refreshOrigins() {
  const { allowed, refused, scope } = await api("/api/origins");
  $("origins").hidden = refused.length === 0;
  // Origins are whatever a client sent: text only, never markup.
  const items = refused.map(({ origin, count }) => {
    const li = el("li", { "data-origin": origin, "data-count": count });
    li.append(el("code", {}, origin), ` (${fmt.format(count)}×) — add to ALLOWED_ORIGINS`);
    return li;
  });
  $("refused").replaceChildren(...items);
  const now = allowed === "*" ? "any site" : allowed.join(", ");
  $("origins-scope").textContent =
    `ALLOWED_ORIGINS is now ${now}. Counted ${scope === "isolate" ? "by the Workers isolate that answered (each keeps its own list)" : "since this server started"}; the 50 latest origins are kept.`;
}

function stop() {
  timers.forEach(clearInterval);
  timers = [];
}

function start() {
  stop();
  if (document.visibilityState === "hidden") return;
  $("login").hidden = true;
  $("data").hidden = false;
  $("forbidden").hidden = true;
  refreshTop().then(() => refreshHistory()).then(() => refreshHooks()).then(() => refreshOrigins()).catch(failed);
  timers = [
    setInterval(() => refreshTop().catch(failed), TOP_EVERY_MS),
    setInterval(() => refreshHooks().catch(failed), HISTORY_EVERY_MS),
    setInterval(() => refreshOrigins().catch(failed), HISTORY_EVERY_MS),
    setInterval(() => refreshHistory().catch(failed), HISTORY_EVERY_MS),
  ];
}

$("login").addEventListener("submit", (ev) => {
  ev.preventDefault();
  sessionStorage.setItem(TOKEN_KEY, $("token").value.trim());
  $("token").value = "";
  start();
});

$("chart-form").addEventListener("submit", (ev) => {
  ev.preventDefault();
  minutes = Number($("minutes").value) || minutes;
  const key = $("key").value;
  if (key) choose(key);
});

for (const id of ["daily-scope", "daily-days"]) $(id).addEventListener("change", () => refreshDays().catch(failed));
$("daily-form").addEventListener("submit", (ev) => ev.preventDefault());

$("minutes").value = String(minutes);
if (chartKey !== null) {
  $("chart-key").textContent = chartKey;
  $("key").value = chartKey;
}
// Nobody is looking at a hidden tab: stop polling until it is shown again.
document.addEventListener("visibilitychange", () => (document.visibilityState === "hidden" ? stop() : start()));
start();
