// The no-JS badge: a flat two-part SVG ("visits | 1,234") for READMEs and pages
// without scripts. Pure string building; every piece of user text goes
// through escapeXml, so a key full of markup renders as text.

const XML_ESCAPES: Record<string, string> = { "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" };

/** Escapes text for XML/HTML element content and quoted attribute values. */
export function escapeXml(text: string): string {
  return text.replace(/[&<>"']/g, (ch) => XML_ESCAPES[ch]!);
}

export interface BadgeOptions {
  key: string;
  total: number;
  label?: string;
  /** A #rgb / #rrggbb colour for the value half. */
  color?: string;
}

export const DEFAULT_BADGE_COLOR = "#1a7f37";
const MAX_LABEL = 40;

/** Accepts #rgb / #rrggbb only: anything else could break out of the attribute or load something. */
export function badgeColor(raw: string | undefined): string {
  if (!raw) return DEFAULT_BADGE_COLOR;
  const hex = raw.startsWith("#") ? raw : `#${raw}`;
  return /^#(?:[0-9a-f]{3}|[0-9a-f]{6})$/i.test(hex) ? hex : DEFAULT_BADGE_COLOR;
}

/** Approximate advance of 11px Verdana-ish text; exact widths would need font metrics. */
function textWidth(text: string): number {
  let w = 0;
  for (const ch of text) {
    if (/[ilj.,:;'|!]/.test(ch)) w += 3.5;
    else if (/[mwMW@%]/.test(ch)) w += 10;
    else if (/[A-Z0-9#]/.test(ch)) w += 7.5;
    else if (ch.charCodeAt(0) > 0x2e80) w += 11; // CJK and the like are wide
    else w += 6.5;
  }
  return Math.ceil(w);
}

export function formatCount(n: number): string {
  // Grouped with commas whatever the server's locale, so badges look the same everywhere.
  return Math.trunc(n).toString().replace(/\B(?=(\d{3})+(?!\d))/g, ",");
}

export function renderBadge({ key, total, label = "visits", color }: BadgeOptions): string {
  const left = [...label].slice(0, MAX_LABEL).join("") || "visits";
  const right = formatCount(total);
  const lw = textWidth(left) + 12;
  const rw = textWidth(right) + 12;
  const w = lw + rw;
  const fill = badgeColor(color);
  const l = escapeXml(left);
  const r = escapeXml(right);
  const title = escapeXml(`${right} ${left} to ${key}`);
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${w}" height="20" viewBox="0 0 ${w} 20" role="img" aria-label="${title}">
<title>${title}</title>
<linearGradient id="s" x2="0" y2="100%"><stop offset="0" stop-color="#bbb" stop-opacity=".1"/><stop offset="1" stop-opacity=".1"/></linearGradient>
<clipPath id="r"><rect width="${w}" height="20" rx="3" fill="#fff"/></clipPath>
<g clip-path="url(#r)"><rect width="${lw}" height="20" fill="#555"/><rect x="${lw}" width="${rw}" height="20" fill="${fill}"/><rect width="${w}" height="20" fill="url(#s)"/></g>
<g fill="#fff" text-anchor="middle" font-family="Verdana,Geneva,DejaVu Sans,sans-serif" font-size="11">
<text x="${lw / 2}" y="15" fill="#010101" fill-opacity=".3" aria-hidden="true">${l}</text><text x="${lw / 2}" y="14">${l}</text>
<text x="${lw + rw / 2}" y="15" fill="#010101" fill-opacity=".3" aria-hidden="true">${r}</text><text x="${lw + rw / 2}" y="14" data-total="${Math.trunc(total)}">${r}</text>
</g>
</svg>
`;
}
