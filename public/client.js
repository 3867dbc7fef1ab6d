// The connection to one headcount counter, shared by the page and the widget.
// Wire protocol: DESIGN.md §4. One call is one page view: the resume token
// from the first hello is presented on every reconnect so the visit is
// counted once. It lives in memory only, so a reload is a new page view.

const BASE_MS = 500;
const CAP_MS = 30_000;
// A socket that stayed up this long was not part of a failure streak.
const HEALTHY_MS = 10_000;
const PING_MS = 25_000;
// Half-open TCP never fires close; only silence tells us the socket is dead.
const SILENCE_MS = 60_000;
// 1008 means the server objects to us (rate, origin); hammering makes it worse.
const POLICY_MIN_MS = 30_000;

/**
 * @param {{
 *   key?: string,
 *   url?: string | URL,
 *   onUpdate?: (u: { key: string, total: number, online: number, visitor: number | null }) => void,
 *   onState?: (s: { state: "connecting" | "live" | "reconnecting" | "offline" | "paused",
 *                   code?: number, reason?: string, retryAt?: number }) => void,
 *   pauseWhenHidden?: boolean,
 * }} options  `url` defaults to /ws on the host that served this file, so an
 *   embed on another site still reaches its own counter. With
 *   `pauseWhenHidden`, the socket is closed while the tab is hidden (nobody
 *   is looking, so nobody is online) and reopened with the resume token when
 *   it is shown again, so the page view is still counted once.
 */
export function connectCounter({ key = "/", url = "/ws", onUpdate = () => {}, onState = () => {}, pauseWhenHidden = false } = {}) {
  const endpoint = new URL(url, import.meta.url);
  endpoint.protocol = endpoint.protocol.replace(/^http/, "ws");
  endpoint.searchParams.set("key", key);

  let ws = null;
  let resumeToken = null;
  let visitor = null;
  let shownTotal = -1;
  let seq = null; // null until this socket's hello: seq is per instance
  let attempt = 0;
  let stopped = false;
  let paused = false;
  // Hidden before the first hello: the visit is in flight, so keep the socket until it is ours.
  let pauseAfterHello = false;
  let state = null;
  let retryTimer, pingTimer, silenceTimer, healthyTimer;

  // A throwing callback must not wedge the reconnect loop; report it later.
  const call = (fn, arg) => {
    try {
      fn(arg);
    } catch (err) {
      setTimeout(() => {
        throw err;
      });
    }
  };
  const setState = (next, extra = {}) => {
    state = next;
    call(onState, { state: next, ...extra });
  };

  function open() {
    clearTimeout(retryTimer);
    retryTimer = undefined;
    if (stopped || paused || ws) return;
    const target = new URL(endpoint);
    if (resumeToken) target.searchParams.set("resume", resumeToken);
    setState("connecting");
    let sock;
    try {
      sock = new WebSocket(target);
    } catch (err) {
      retry({ reason: String(err?.message ?? err) });
      return;
    }
    ws = sock;
    seq = null;
    armSilence();
    sock.onopen = () => {
      pingTimer = setInterval(() => sock.send('{"type":"ping"}'), PING_MS);
    };
    sock.onmessage = (ev) => {
      armSilence();
      receive(ev.data);
    };
    // error is always followed by close; close carries the code we need.
    sock.onclose = (ev) => {
      detach();
      retry({ code: ev.code, reason: ev.reason });
    };
  }

  function receive(data) {
    let msg;
    try {
      msg = JSON.parse(data);
    } catch {
      return;
    }
    if (msg?.type === "hello") {
      seq = msg.seq;
      resumeToken = typeof msg.resume === "string" ? msg.resume : resumeToken;
      if (Number.isSafeInteger(msg.visitor)) visitor = msg.visitor;
      clearTimeout(healthyTimer);
      healthyTimer = setTimeout(() => (attempt = 0), HEALTHY_MS);
      setState("live");
      show(msg);
      if (pauseAfterHello) pause();
    } else if (msg?.type === "count" && seq !== null && msg.seq > seq) {
      // Counts before the hello are dropped: the hello carries newer numbers.
      seq = msg.seq;
      show(msg);
    }
  }

  function show({ total, online }) {
    if (!Number.isSafeInteger(total) || !Number.isSafeInteger(online)) return;
    // Another instance may be a commit behind; a total never goes back.
    shownTotal = Math.max(shownTotal, total);
    call(onUpdate, { key, total: shownTotal, online, visitor });
  }

  function armSilence() {
    clearTimeout(silenceTimer);
    silenceTimer = setTimeout(() => {
      const dead = ws;
      detach();
      dead?.close(4000, "no message for 60 s");
      retry({ reason: "the server stopped answering" });
    }, SILENCE_MS);
  }

  function detach() {
    clearInterval(pingTimer);
    clearTimeout(silenceTimer);
    clearTimeout(healthyTimer);
    if (ws) ws.onopen = ws.onmessage = ws.onclose = null;
    ws = null;
  }

  function retry({ code, reason }) {
    if (stopped || paused) return;
    if (globalThis.navigator?.onLine === false) {
      setState("offline", { code, reason }); // the online event resumes
      return;
    }
    // Full jitter: a restart's clients spread out instead of returning together.
    let delay = Math.random() * Math.min(CAP_MS, BASE_MS * 2 ** Math.min(attempt, 16));
    if (code === 1008) delay = POLICY_MIN_MS + Math.random() * POLICY_MIN_MS;
    attempt++;
    retryTimer = setTimeout(open, delay);
    setState("reconnecting", { code, reason, retryAt: Date.now() + delay });
  }

  const online = () => {
    if (ws || stopped || paused) return;
    attempt = 0;
    open();
  };
  globalThis.addEventListener?.("online", online);

  function pause() {
    pauseAfterHello = false;
    if (stopped || paused) return;
    if (ws && !resumeToken) {
      pauseAfterHello = true;
      return;
    }
    paused = true;
    clearTimeout(retryTimer);
    retryTimer = undefined;
    const sock = ws;
    detach();
    sock?.close(1000, "page hidden");
    setState("paused");
  }

  function unpause() {
    pauseAfterHello = false;
    if (stopped || !paused) return;
    paused = false;
    attempt = 0;
    open();
  }

  const doc = pauseWhenHidden ? globalThis.document : undefined;
  const visibility = () => (doc.visibilityState === "hidden" ? pause() : unpause());
  doc?.addEventListener("visibilitychange", visibility);

  if (doc?.visibilityState === "hidden") {
    // Opened in a background tab: the page view starts when it is first shown.
    paused = true;
    setState("paused");
  } else {
    open();
  }

  return {
    get state() {
      return state;
    },
    /** Closes the socket until resume(); the page view keeps its resume token. */
    pause,
    /** Reopens after pause() without counting a new visit (while the token is valid). */
    resume: unpause,
    /** Stops for good: no reconnects. */
    close() {
      if (stopped) return;
      stopped = true;
      clearTimeout(retryTimer);
      globalThis.removeEventListener?.("online", online);
      doc?.removeEventListener("visibilitychange", visibility);
      const sock = ws;
      detach();
      sock?.close(1000);
      setState("offline");
    },
  };
}
