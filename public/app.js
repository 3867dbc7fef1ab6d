import { connectCounter } from "./client.js";

const key = new URLSearchParams(location.search).get("key") || "/";
const fmt = new Intl.NumberFormat();
const plural = new Intl.PluralRules("en");
const $ = (id) => document.getElementById(id);
const [total, online, visitor, you, stateEl, label, eta, note, numbers, via, visitors] = [
  "total", "online", "visitor", "you", "state", "state-label", "state-eta", "note", "numbers", "state-transport", "visitors",
].map($);

const LABELS = { connecting: "Connecting…", live: "Live", reconnecting: "Reconnecting", offline: "Offline", paused: "Not shown yet" };
const TRANSPORTS = { websocket: "WebSocket", sse: "Server-Sent Events" };
let countdown;

$("key").textContent = key;
$("badge-key").textContent = key;
$("badge").src = `/badge/${encodeURIComponent(key)}.svg`;
$("badge").alt = `visits to ${key}`;

// Copy-paste snippets name this server; textContent keeps them text.
for (const code of document.querySelectorAll("code.snippet")) {
  code.textContent = code.textContent.replaceAll("{origin}", location.origin);
  const copy = document.createElement("button");
  copy.type = "button";
  copy.className = "copy";
  copy.textContent = "Copy";
  copy.addEventListener("click", async () => {
    await navigator.clipboard?.writeText(code.textContent);
    copy.textContent = "Copied";
    setTimeout(() => (copy.textContent = "Copy"), 1500);
  });
  code.parentElement.before(copy);
}

function setNumber(el, n) {
  if (el.dataset.value === String(n)) return;
  el.dataset.value = String(n);
  el.textContent = fmt.format(n);
  // Restart the highlight; the CSS only animates it without reduced motion.
  el.classList.remove("bump");
  void el.offsetWidth;
  el.classList.add("bump");
}

function render({ total: t, online: o, visitors: u, visitor: v }) {
  setNumber(total, t);
  setNumber(online, o);
  setNumber(visitors, u);
  $("visitors-label").textContent = u === 1 ? "visitor today" : "visitors today";
  $("total-label").textContent = plural.select(t) === "one" ? "visit to" : "visits to";
  // A bot's page (navigator.webdriver) is no visit: it has no number of its own.
  if (v !== null && v > 0) {
    visitor.dataset.value = String(v);
    visitor.textContent = fmt.format(v);
    you.hidden = false;
  }
}

/** Which transport carries the counter: WebSocket, or the event stream where WebSockets cannot open. */
function renderTransport(transport) {
  if (!TRANSPORTS[transport] || numbers.dataset.transport === transport) return;
  numbers.dataset.transport = stateEl.dataset.transport = transport;
  via.textContent = `· ${TRANSPORTS[transport]}`;
}

function renderState({ state, transport, code, reason, retryAt }) {
  clearInterval(countdown);
  stateEl.dataset.state = state;
  document.documentElement.dataset.state = state;
  label.textContent = LABELS[state];
  renderTransport(transport);
  eta.textContent = "";
  if (state === "reconnecting") {
    // The countdown is aria-hidden: a live region ticking every second is noise.
    const tick = () => (eta.textContent = ` in ${Math.max(0, Math.ceil((retryAt - Date.now()) / 1000))} s`);
    tick();
    countdown = setInterval(tick, 1000);
  }
  if (code === 1008) {
    note.textContent = `The server turned this page away${reason ? `: ${reason}` : ""}. Retrying slowly.`;
    note.hidden = false;
  } else if (state === "offline" && navigator.onLine === false) {
    note.textContent = "Your device is offline. The counter resumes when you are back.";
    note.hidden = false;
  } else if (state === "live") {
    note.hidden = true;
  }
}

connectCounter({ key, onUpdate: render, onState: renderState });
