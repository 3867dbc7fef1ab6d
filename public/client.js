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
// The server keeps one connection per page view: a newer one with our resume token closes the older with this.
const RESUMED_ELSEWHERE = { code: 1008, reason: "resumed elsewhere" };
// Connections that end this many times in a row before their hello: the network blocks the transport, use the other.
const FAILURES_BEFORE_SWITCH = 2;
// On the event stream, try a WebSocket again this often (the page may have moved to a better network).
const WS_RETRY_MS = 5 * 60_000;
// An event stream carries no pings and a quiet key sends nothing: only this long a silence means a dead stream
// (longer than the WebSocket retry, which replaces a working stream first where it can).
const SSE_SILENCE_MS = 10 * 60_000;

/**
 * @param {{
 *   key?: string,
 *   url?: string | URL,
 *   streamUrl?: string | URL,
 *   onUpdate?: (u: { key: string, total: number, online: number, visitors: number, visitor: number | null }) => void,
 *   onState?: (s: { state: "connecting" | "live" | "reconnecting" | "offline" | "paused",
 *                   transport: "websocket" | "sse", code?: number, reason?: string, retryAt?: number }) => void,
 *   pauseWhenHidden?: boolean,
 * }} options  `url` defaults to /ws on the host that served this file, so an
 *   embed on another site still reaches its own counter; `streamUrl` (/sse)
 *   is the Server-Sent Events fallback, used where WebSockets cannot open
 *   (a proxy or a policy blocks them; see connectTransport). With
 *   `pauseWhenHidden`, the socket is closed while the tab is hidden (nobody
 *   is looking, so nobody is online) and reopened with the resume token when
 *   it is shown again, so the page view is still counted once.
 */
export function connectCounter({ key = "/", url = "/ws", streamUrl = "/sse", onUpdate = () => {}, onState = () => {}, pauseWhenHidden = false } = {}) {
  const endpoint = new URL(url, import.meta.url);
  endpoint.protocol = endpoint.protocol.replace(/^http/, "ws");
  endpoint.searchParams.set("key", key);
  const streamEndpoint = new URL(streamUrl, import.meta.url);
  streamEndpoint.searchParams.set("key", key);
  // An automated browser says so (navigator.webdriver): the server counts it as a bot, not a visit or a visitor.
  if (globalThis.navigator?.webdriver === true) {
    endpoint.searchParams.set("wd", "1");
    streamEndpoint.searchParams.set("wd", "1");
  }

  // The open connection: a WebSocket, or the event stream it falls back to (connectTransport).
  let link = null;
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
  const transports = transportChoice();

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
    call(onState, { state: next, transport: transports.current, ...extra });
  };

  function open() {
    clearTimeout(retryTimer);
    retryTimer = undefined;
    if (stopped || paused || link) return;
    const base = transports.current === "sse" ? streamEndpoint : endpoint;
    const target = new URL(base);
    if (resumeToken) target.searchParams.set("resume", resumeToken);
    setState("connecting");
    let conn;
    try {
      conn = connectTransport(transports.current, target);
    } catch (err) {
      if (transports.failed()) attempt = 0;
      retry({ reason: String(err?.message ?? err) });
      return;
    }
    attach(conn);
  }

  /** The connection becomes the page's: its messages are shown, its end starts a reconnect. */
  function attach(conn) {
    link = conn;
    seq = null;
    armSilence();
    conn.onopen = () => {
      if (conn.transport === "websocket") pingTimer = setInterval(() => conn.send('{"type":"ping"}'), PING_MS);
    };
    conn.onmessage = (data) => {
      armSilence();
      receive(data);
    };
    conn.onclose = ({ code, reason }) => {
      // Our own probe resumed this page view on a WebSocket, and the server holds one connection per page view:
      // it closed this stream for the probe, whose hello follows. Nothing to retry; the probe takes over.
      if (probe && code === RESUMED_ELSEWHERE.code && reason === RESUMED_ELSEWHERE.reason) {
        const taking = probe;
        probe = null;
        detach();
        probe = taking;
        return;
      }
      // Closed before its hello: the network may not carry this transport (a proxy may refuse it, or accept it and
      // then hold it). Switched: the other's first try need not wait out this one's backoff.
      const failed = seq === null;
      detach();
      if (failed && transports.failed()) attempt = 0;
      retry({ code, reason });
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
      transports.succeeded();
      seq = msg.seq;
      resumeToken = typeof msg.resume === "string" ? msg.resume : resumeToken;
      if (Number.isSafeInteger(msg.visitor)) visitor = msg.visitor;
      clearTimeout(healthyTimer);
      healthyTimer = setTimeout(() => (attempt = 0), HEALTHY_MS);
      setState("live");
      show(msg);
      if (pauseAfterHello) pause();
      else if (transports.current === "sse") scheduleProbe();
    } else if (msg?.type === "count" && seq !== null && msg.seq > seq) {
      // Counts before the hello are dropped: the hello carries newer numbers.
      seq = msg.seq;
      show(msg);
    }
  }

  function show({ total, online, visitors }) {
    if (!Number.isSafeInteger(total) || !Number.isSafeInteger(online)) return;
    // Another instance may be a commit behind; a total never goes back.
    shownTotal = Math.max(shownTotal, total);
    call(onUpdate, { key, total: shownTotal, online, visitors: Number.isSafeInteger(visitors) ? visitors : 0, visitor });
  }

  function armSilence() {
    clearTimeout(silenceTimer);
    const ms = link?.transport === "sse" ? SSE_SILENCE_MS : SILENCE_MS;
    silenceTimer = setTimeout(() => {
      const dead = link;
      detach();
      dead?.close(4000, `no message for ${ms / 1000} s`);
      retry({ reason: "the server stopped answering" });
    }, ms);
  }

  function detach() {
    clearInterval(pingTimer);
    clearTimeout(silenceTimer);
    clearTimeout(healthyTimer);
    stopProbe();
    if (link) link.onopen = link.onmessage = link.onclose = null;
    link = null;
  }

  // --- back to the WebSocket: while on the event stream, a socket is tried now and then ---
  let probe = null;
  let probeTimer;

  function scheduleProbe() {
    clearTimeout(probeTimer);
    if (!transports.canProbe()) return;
    probeTimer = setTimeout(probeWebSocket, WS_RETRY_MS * (0.75 + Math.random() / 2));
  }

  function stopProbe() {
    clearTimeout(probeTimer);
    probeTimer = undefined;
    const p = probe;
    probe = null;
    if (p) {
      p.onopen = p.onmessage = p.onclose = null;
      p.close(1000, "not needed");
    }
  }

  /**
   * Opens a socket with the resume token beside the live stream: once its hello
   * arrives (the same page view, not counted again) it replaces the stream; if
   * it cannot open, the stream carries on and another try is scheduled.
   */
  function probeWebSocket() {
    if (stopped || paused || !resumeToken || link?.transport !== "sse") return;
    const target = new URL(endpoint);
    target.searchParams.set("resume", resumeToken);
    let conn;
    try {
      conn = connectTransport("websocket", target);
    } catch {
      scheduleProbe();
      return;
    }
    probe = conn;
    conn.onmessage = (data) => {
      if (!/^\{"type":"hello"/.test(data)) return;
      probe = null;
      const stream = link;
      detach();
      stream?.close(1000, "switching to WebSocket");
      transports.switchTo("websocket");
      attach(conn);
      conn.onopen();
      receive(data);
    };
    conn.onclose = ({ code, reason } = {}) => {
      if (probe !== conn) return;
      probe = null;
      // The stream already gave way to this probe: without it there is no connection left.
      if (!link) retry({ code, reason });
      else scheduleProbe();
    };
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
    if (link || stopped || paused) return;
    attempt = 0;
    open();
  };
  globalThis.addEventListener?.("online", online);

  function pause() {
    pauseAfterHello = false;
    if (stopped || paused) return;
    if (link && !resumeToken) {
      pauseAfterHello = true;
      return;
    }
    paused = true;
    clearTimeout(retryTimer);
    retryTimer = undefined;
    const sock = link;
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

  const start = () => {
    if (doc?.visibilityState === "hidden") {
      // Opened in a background tab: the page view starts when it is first shown.
      paused = true;
      setState("paused");
    } else {
      open();
    }
  };
  // A prerendered page (speculation rules, the address bar's guess) is no page view until it is shown.
  const page = globalThis.document;
  if (page?.prerendering === true) {
    setState("paused");
    page.addEventListener("prerenderingchange", () => !stopped && start(), { once: true });
  } else {
    start();
  }

  return {
    get state() {
      return state;
    },
    /** "websocket", or "sse" where WebSockets cannot open. */
    get transport() {
      return transports.current;
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
      const sock = link;
      detach();
      sock?.close(1000);
      setState("offline");
    },
  };
}

// --- transports -------------------------------------------------------------
// WebSocket first. Where it cannot open (a corporate proxy, an antivirus
// product or a hotel network refuses the upgrade, or a policy forbids ws:),
// Server-Sent Events over plain HTTP carry the same messages one way: the
// server's /sse sends each /ws message as an event (`event: hello|count`,
// `data:` the same JSON) and a close as `event: end` with its code.

/**
 * Which transport to use next: the WebSocket, until FAILURES_BEFORE_SWITCH
 * connections in a row end before their hello; then the event stream, until
 * as many of its own do (both blocked, or the server down: they take turns,
 * with the backoff between tries).
 */
function transportChoice() {
  const hasSocket = typeof WebSocket === "function";
  const hasStream = typeof EventSource === "function";
  let current = hasSocket || !hasStream ? "websocket" : "sse";
  let failures = 0;
  return {
    get current() {
      return current;
    },
    /** A hello arrived: this transport works here. */
    succeeded() {
      failures = 0;
    },
    /** A connection failed before it was of any use; true when that switches the transport. */
    failed() {
      if (!hasSocket || !hasStream || ++failures < FAILURES_BEFORE_SWITCH) return false;
      current = current === "websocket" ? "sse" : "websocket";
      failures = 0;
      return true;
    },
    canProbe: () => current === "sse" && hasSocket,
    switchTo(next) {
      current = next;
      failures = 0;
    },
  };
}

/**
 * One connection on either transport, with the same small surface:
 * onopen(), onmessage(text), onclose({ code, reason }), send(text)
 * (WebSocket only) and close(code, reason). Throws where the browser refuses
 * to start it (an invalid URL, or an old browser's synchronous policy error).
 */
function connectTransport(transport, target) {
  const conn = { transport, onopen: null, onmessage: null, onclose: null, send() {}, close() {} };
  let ended = false;
  const end = (code, reason) => {
    if (ended) return;
    ended = true;
    conn.onclose?.({ code, reason });
  };
  if (transport === "websocket") {
    const sock = new WebSocket(target);
    sock.onopen = () => conn.onopen?.();
    sock.onmessage = (ev) => conn.onmessage?.(ev.data);
    // error is always followed by close; close carries the code we need.
    sock.onclose = (ev) => end(ev.code, ev.reason);
    conn.send = (text) => sock.readyState === 1 && sock.send(text);
    conn.close = (code, reason) => {
      ended = true;
      sock.onopen = sock.onmessage = sock.onclose = null;
      sock.close(code, reason);
    };
    return conn;
  }
  const es = new EventSource(target);
  const message = (ev) => conn.onmessage?.(ev.data);
  es.onopen = () => conn.onopen?.();
  es.addEventListener("hello", message);
  es.addEventListener("count", message);
  // The server's close, with the WebSocket close code it stands for.
  es.addEventListener("end", (ev) => {
    es.close();
    let info = {};
    try {
      info = JSON.parse(ev.data);
    } catch {
      // a malformed end is still an end
    }
    end(Number.isInteger(info.code) ? info.code : 1006, typeof info.reason === "string" ? info.reason : "");
  });
  // EventSource would reconnect by itself, without our resume token in the URL
  // and without our backoff: close it and let the caller reconnect.
  es.onerror = () => {
    es.close();
    end(1006, "event stream failed");
  };
  conn.close = () => {
    ended = true;
    es.close();
  };
  return conn;
}
