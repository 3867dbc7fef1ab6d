// The dashboard's daily chart: visits, distinct visitors and filtered bots per
// UTC day (GET /api/daily), for one key or the whole server, over 30, 90 or
// 365 days, as grouped bars in SVG. Keys only reach the page as text.

const SVG = "http://www.w3.org/2000/svg";
const W = 800, H = 240, PAD_L = 48, PAD_B = 22, PAD_T = 10;
const SERIES = [
  ["visits", "visits"],
  ["visitors", "visitors"],
  ["bots", "bots filtered"],
];
const fmt = new Intl.NumberFormat();

function svgEl(name, attrs = {}, text) {
  const node = document.createElementNS(SVG, name);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, String(v));
  if (text !== undefined) node.textContent = text;
  return node;
}

/** Fetches and draws; `key` null is the whole server. Resolves once drawn. */
export async function refreshDaily(key, days) {
  const url = `/api/daily?days=${days}${key === null ? "" : `&key=${encodeURIComponent(key)}`}`;
  const res = await fetch(url, { cache: "no-store" });
  if (!res.ok) throw new Error(`/api/daily: ${res.status}`);
  drawDaily(await res.json());
}

export function drawDaily({ key, days }) {
  const svg = document.getElementById("daily-chart");
  const max = Math.max(1, ...days.flatMap((d) => [d.visits, d.visitors, d.bots]));
  const plotW = W - PAD_L, plotH = H - PAD_B - PAD_T;
  const slot = plotW / days.length;
  const barW = Math.max(0.5, (slot - (slot > 4 ? 1 : 0)) / SERIES.length);
  const y = (v) => PAD_T + plotH - (v / max) * plotH;
  const children = [
    svgEl("line", { class: "axis", x1: PAD_L, y1: PAD_T + plotH, x2: W, y2: PAD_T + plotH }),
    svgEl("text", { x: PAD_L - 6, y: PAD_T + 10, "text-anchor": "end" }, fmt.format(max)),
    svgEl("text", { x: PAD_L - 6, y: PAD_T + plotH, "text-anchor": "end" }, "0"),
  ];
  // A label every week (every month over a year), in UTC days as the server counts them.
  const every = days.length > 120 ? 30 : 7;
  days.forEach((d, i) => {
    if ((days.length - 1 - i) % every !== 0) return;
    const x = PAD_L + i * slot + slot / 2;
    children.push(svgEl("text", { x, y: H - 4, "text-anchor": i === days.length - 1 ? "end" : "middle" }, d.day.slice(5)));
  });
  const bars = svgEl("g", { class: "bars" });
  days.forEach((d, i) => {
    SERIES.forEach(([name, label], s) => {
      const v = d[name];
      if (!v) return;
      const rect = svgEl("rect", {
        class: `bar ${name}`,
        x: (PAD_L + i * slot + s * barW).toFixed(2),
        y: y(v).toFixed(2),
        width: barW.toFixed(2),
        height: (PAD_T + plotH - y(v)).toFixed(2),
        "data-day": d.day,
        [`data-${name}`]: v,
      });
      rect.append(svgEl("title", {}, `${d.day}: ${fmt.format(v)} ${label}`));
      bars.append(rect);
    });
  });
  children.push(bars);
  svg.replaceChildren(...children);
  svg.dataset.key = key ?? "";
  const sum = (name) => days.reduce((n, d) => n + d[name], 0);
  const plural = (n, one, many) => `${fmt.format(n)} ${n === 1 ? one : many}`;
  const who = key === null ? "the whole server" : key;
  document.getElementById("daily-summary").textContent =
    `${who}, last ${days.length} days (UTC): ${plural(sum("visits"), "visit", "visits")}, ${plural(sum("bots"), "bot", "bots")} filtered; ` +
    `visitors today ${fmt.format(days.at(-1)?.visitors ?? 0)}, at most ${fmt.format(Math.max(0, ...days.map((d) => d.visitors)))} in a day.`;
  const rows = [...days].reverse().filter((d) => d.visits || d.visitors || d.bots).slice(0, 14).map((d) => {
    const tr = document.createElement("tr");
    for (const [text, cls] of [[d.day, ""], [fmt.format(d.visits), "n"], [fmt.format(d.visitors), "n"], [fmt.format(d.bots), "n"]]) {
      const td = document.createElement("td");
      if (cls) td.className = cls;
      td.textContent = text;
      tr.append(td);
    }
    return tr;
  });
  document.getElementById("daily-table").tBodies[0].replaceChildren(...rows);
}
