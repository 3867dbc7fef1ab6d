// A small Prometheus text-format registry. Written here rather than using
// prom-client: prom-client imports node:cluster, node:v8 and perf_hooks at
// load time, which Workers do not provide, and its default metrics are
// Node-only; the text format itself is a few lines
// (https://prometheus.io/docs/instrumenting/exposition_formats/).

type Labels = Readonly<Record<string, string>>;

function escapeLabel(v: string): string {
  return v.replace(/\\/g, "\\\\").replace(/\n/g, "\\n").replace(/"/g, '\\"');
}

function labelText(labels: Labels | undefined): string {
  if (!labels) return "";
  const parts = Object.entries(labels).map(([k, v]) => `${k}="${escapeLabel(v)}"`);
  return parts.length ? `{${parts.join(",")}}` : "";
}

interface Metric {
  render(out: string[]): void;
}

/** One sample, or one per label set. */
export type Samples = number | Array<[Labels, number]>;

function renderSamples(out: string[], name: string, samples: Samples): void {
  if (typeof samples === "number") out.push(`${name} ${samples}`);
  else for (const [labels, n] of samples) out.push(`${name}${labelText(labels)} ${n}`);
}

/**
 * A value that only goes up. Either this registry holds it (`inc()`), or
 * it is read when scraped from a count kept elsewhere (`read`): a total an
 * object already keeps (refusals, reconnects, deliveries) is exposed as a
 * counter without a second copy to keep in step.
 */
export class Counter implements Metric {
  #value = 0;
  readonly name: string;
  readonly help: string;
  readonly read: (() => Samples) | undefined;
  constructor(name: string, help: string, read?: () => Samples) {
    this.name = name;
    this.help = help;
    this.read = read;
  }
  /** The total (for a counter read from a function, the unlabelled sample or the sum over label sets). */
  get value(): number {
    if (!this.read) return this.#value;
    const v = this.read();
    return typeof v === "number" ? v : v.reduce((sum, [, n]) => sum + n, 0);
  }
  inc(n = 1): void {
    if (this.read) throw new Error(`${this.name} is read from a function; it cannot be incremented`);
    this.#value += n;
  }
  render(out: string[]): void {
    out.push(`# HELP ${this.name} ${this.help}`, `# TYPE ${this.name} counter`);
    renderSamples(out, this.name, this.read ? this.read() : this.#value);
  }
}

/** A gauge read when scraped, so nothing is updated on the hot path. */
export class Gauge implements Metric {
  readonly name: string;
  readonly help: string;
  readonly read: () => Samples;
  constructor(name: string, help: string, read: () => Samples) {
    this.name = name;
    this.help = help;
    this.read = read;
  }
  render(out: string[]): void {
    out.push(`# HELP ${this.name} ${this.help}`, `# TYPE ${this.name} gauge`);
    renderSamples(out, this.name, this.read());
  }
}

export class Histogram implements Metric {
  readonly #counts: number[];
  #sum = 0;
  #count = 0;
  readonly name: string;
  readonly help: string;
  readonly buckets: readonly number[];
  constructor(name: string, help: string, buckets: readonly number[]) {
    this.name = name;
    this.help = help;
    this.buckets = buckets;
    this.#counts = buckets.map(() => 0);
  }
  observe(v: number): void {
    this.#sum += v;
    this.#count++;
    for (let i = 0; i < this.buckets.length; i++) if (v <= this.buckets[i]!) this.#counts[i]!++;
  }
  get count(): number {
    return this.#count;
  }
  render(out: string[]): void {
    out.push(`# HELP ${this.name} ${this.help}`, `# TYPE ${this.name} histogram`);
    this.buckets.forEach((b, i) => out.push(`${this.name}_bucket{le="${b}"} ${this.#counts[i]}`));
    out.push(`${this.name}_bucket{le="+Inf"} ${this.#count}`, `${this.name}_sum ${this.#sum}`, `${this.name}_count ${this.#count}`);
  }
}

export class Registry {
  readonly #metrics: Metric[] = [];
  add<M extends Metric>(m: M): M {
    this.#metrics.push(m);
    return m;
  }
  render(): string {
    const out: string[] = [];
    for (const m of this.#metrics) m.render(out);
    return out.join("\n") + "\n";
  }
}

/** The metrics the hub itself updates; runtimes add gauges for what they own. */
export function hubMetrics(registry: Registry) {
  return {
    visits: registry.add(new Counter("headcount_visits_committed_total", "Visits committed to the database")),
    visitors: registry.add(new Counter("headcount_visitors_total", "New distinct visitors of the day (server-wide), as this instance's commits found them")),
    bots: registry.add(new Counter("headcount_bots_total", "Visits filtered as bots (not counted as visits or visitors)")),
    commits: registry.add(new Counter("headcount_commits_total", "Increment statements committed")),
    batchSize: registry.add(
      new Histogram("headcount_commit_batch_visits", "Visits carried by one commit", [1, 2, 5, 10, 50, 100, 500, 1000, 5000]),
    ),
    broadcastLatency: registry.add(
      new Histogram("headcount_broadcast_latency_seconds", "From a visit's commit to the count broadcast carrying it", [
        0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1,
      ]),
    ),
    refusedVisits: registry.add(new Counter("headcount_visits_refused_total", "Visits refused because they could not be committed in time")),
    messageRateClosures: registry.add(new Counter("headcount_message_rate_closures_total", "Sockets closed for sending too many messages")),
    resumes: registry.add(new Counter("headcount_resumes_total", "Reconnects that presented a valid resume token (not counted as visits)")),
  };
}

export type HubMetrics = ReturnType<typeof hubMetrics>;
