import { describe, expect, it } from "vitest";
import { badgeColor, escapeXml, formatCount, renderBadge } from "./badge.ts";

describe("escapeXml", () => {
  it("escapes the five XML specials and leaves the rest", () => {
    expect(escapeXml(`<a href="x" title='y'>&</a>`)).toBe("&lt;a href=&quot;x&quot; title=&#39;y&#39;&gt;&amp;&lt;/a&gt;");
    expect(escapeXml("/blog/héllo ✓")).toBe("/blog/héllo ✓");
  });
});

describe("renderBadge", () => {
  it("shows the grouped total and the label", () => {
    const svg = renderBadge({ key: "/", total: 1234567 });
    expect(svg).toContain(">1,234,567</text>");
    expect(svg).toContain(">visits</text>");
    expect(svg).toContain('data-total="1234567"');
    expect(formatCount(0)).toBe("0");
    expect(formatCount(999)).toBe("999");
    expect(formatCount(1000)).toBe("1,000");
  });

  it("renders a key and a label full of markup as text", () => {
    const key = `/"><script>alert(1)</script><svg onload=alert(2)>&amp;`;
    const svg = renderBadge({ key, total: 3, label: `<b onclick="x">hi</b>` });
    expect(svg).not.toContain("<script");
    expect(svg).not.toContain("<b ");
    expect(svg.match(/<svg/g)).toHaveLength(1);
    expect(svg).toContain("&lt;script&gt;alert(1)&lt;/script&gt;");
    expect(svg).toContain("&amp;amp;");
    // Every attribute value is closed where it should be: no quote escapes its attribute.
    for (const m of svg.matchAll(/ aria-label="([^"]*)"/g)) expect(m[1]).not.toMatch(/[<>]/);
  });

  it("accepts only hex colours", () => {
    expect(badgeColor("#fff")).toBe("#fff");
    expect(badgeColor("0a0b0c")).toBe("#0a0b0c");
    expect(badgeColor(`red" onload="x`)).toBe("#1a7f37");
    expect(badgeColor("url(http://evil)")).toBe("#1a7f37");
    expect(badgeColor(undefined)).toBe("#1a7f37");
  });

  it("caps a long label", () => {
    const svg = renderBadge({ key: "/", total: 1, label: "x".repeat(500) });
    expect(svg).toContain(`>${"x".repeat(40)}</text>`);
    expect(svg).not.toContain("x".repeat(41));
  });
});
