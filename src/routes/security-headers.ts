import type { Hono, MiddlewareHandler } from "hono";
import { secureHeaders } from "hono/secure-headers";

// Security headers for the HTML pages in public/ (hono/secure-headers). On
// Workers those pages are served by Workers assets before the Worker runs, so
// public/_headers carries the same values (a test holds the two equal).
//
// Both pages load only their own scripts, styles and sockets: no inline
// script or style ('unsafe-inline' nowhere; the widget styles its shadow root
// with a constructed stylesheet). Framing: the dashboard holds the admin
// token, so nobody may frame it; the page may be framed by this origin only,
// since a page framed elsewhere would open its socket with this server's own
// Origin and count another site's visitors past ALLOWED_ORIGINS (the widget
// is the way to embed a counter). No Strict-Transport-Security: HTTPS is the
// proxy in front's to terminate, and HSTS is a promise about the whole domain.

type Options = NonNullable<Parameters<typeof secureHeaders>[0]>;

/** What both pages share; secure-headers' other defaults are off (HSTS above; the rest are obsolete). */
const BASE: Options = {
  xContentTypeOptions: "nosniff",
  referrerPolicy: "no-referrer",
  crossOriginOpenerPolicy: "same-origin",
  crossOriginResourcePolicy: "same-origin",
  crossOriginEmbedderPolicy: false,
  originAgentCluster: false,
  strictTransportSecurity: false,
  xDnsPrefetchControl: false,
  xDownloadOptions: false,
  xPermittedCrossDomainPolicies: false,
  xXssProtection: false,
  removePoweredBy: false,
  // A handler's own header wins (the badge's `default-src 'none'`).
  overwrite: false,
};

/** `/` (index.html): the counter, the widget demo, the embed snippets. */
const PAGE: Options = {
  ...BASE,
  contentSecurityPolicy: {
    defaultSrc: ["'self'"],
    scriptSrc: ["'self'"],
    styleSrc: ["'self'"],
    imgSrc: ["'self'", "data:"],
    connectSrc: ["'self'"],
    objectSrc: ["'none'"],
    baseUri: ["'none'"],
    formAction: ["'self'"],
    frameAncestors: ["'self'"],
  },
  xFrameOptions: "SAMEORIGIN",
};

/** `/dashboard` (dashboard.html): holds the admin token in sessionStorage. */
const DASHBOARD: Options = {
  ...BASE,
  contentSecurityPolicy: {
    defaultSrc: ["'none'"],
    scriptSrc: ["'self'"],
    styleSrc: ["'self'"],
    imgSrc: ["'self'", "data:"],
    connectSrc: ["'self'"],
    baseUri: ["'none'"],
    // The token form is submitted by script; if that fails, the browser must not put the token in a URL.
    formAction: ["'none'"],
    frameAncestors: ["'none'"],
  },
  xFrameOptions: "DENY",
};

/** Every other response: nosniff only (the widget and its module are loaded cross-origin: no CORP). */
const ANY: Options = { ...BASE, crossOriginOpenerPolicy: false, crossOriginResourcePolicy: false, referrerPolicy: false, xFrameOptions: false };

/** The HTML pages by path; public/_headers has a rule for each. */
export const PAGE_PATHS = ["/", "/index.html", "/dashboard", "/dashboard.html"] as const;

export function mountSecurityHeaders(app: Hono): void {
  app.use("*", secureHeaders(ANY));
  const page: MiddlewareHandler = secureHeaders(PAGE);
  const dashboard: MiddlewareHandler = secureHeaders(DASHBOARD);
  for (const path of PAGE_PATHS) app.use(path, path.startsWith("/dashboard") ? dashboard : page);
}
