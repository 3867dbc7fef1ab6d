import { describe, expect, it } from "vitest";
import { Counter, Gauge, Histogram, Registry } from "./metrics.ts";

function scrape(...metrics: Array<Counter | Gauge | Histogram>): string {
  const registry = new Registry();
  for (const m of metrics) registry.add(m);
  return registry.render();
}

describe("Counter", () => {
  it("renders as a counter and counts what inc() adds", () => {
    const c = new Counter("headcount_things_total", "Things");
    c.inc();
    c.inc(4);
    expect(c.value).toBe(5);
    expect(scrape(c)).toBe("# HELP headcount_things_total Things\n# TYPE headcount_things_total counter\nheadcount_things_total 5\n");
  });

  it("can be read from a function when scraped, still typed counter", () => {
    let refusals = 0;
    const c = new Counter("headcount_refusals_total", "Refusals", () => refusals);
    refusals = 3;
    expect(c.value).toBe(3);
    expect(scrape(c)).toBe("# HELP headcount_refusals_total Refusals\n# TYPE headcount_refusals_total counter\nheadcount_refusals_total 3\n");
    refusals = 7;
    expect(scrape(c)).toContain("\nheadcount_refusals_total 7\n");
  });

  it("renders labelled samples from a function, escaped, and sums them as its value", () => {
    const c = new Counter("headcount_sent_total", "Sent", () => [
      [{ kind: "a" }, 2],
      [{ kind: 'b"\\\n' }, 5],
    ]);
    expect(scrape(c).split("\n")).toEqual([
      "# HELP headcount_sent_total Sent",
      "# TYPE headcount_sent_total counter",
      'headcount_sent_total{kind="a"} 2',
      'headcount_sent_total{kind="b\\"\\\\\\n"} 5',
      "",
    ]);
    expect(c.value).toBe(7);
  });

  it("refuses inc() on a counter another object keeps", () => {
    const c = new Counter("headcount_x_total", "X", () => 1);
    expect(() => c.inc()).toThrow(/read from a function/);
    expect(c.value).toBe(1);
  });
});

describe("Gauge and Histogram", () => {
  it("render with their own types", () => {
    const h = new Histogram("headcount_h", "H", [1, 10]);
    h.observe(0.5);
    h.observe(5);
    h.observe(50);
    expect(scrape(new Gauge("headcount_g", "G", () => 4), h)).toBe(
      [
        "# HELP headcount_g G",
        "# TYPE headcount_g gauge",
        "headcount_g 4",
        "# HELP headcount_h H",
        "# TYPE headcount_h histogram",
        'headcount_h_bucket{le="1"} 1',
        'headcount_h_bucket{le="10"} 2',
        'headcount_h_bucket{le="+Inf"} 3',
        "headcount_h_sum 55.5",
        "headcount_h_count 3",
        "",
      ].join("\n"),
    );
  });
});
