import { describe, expect, it } from "vitest";
import { Broadcaster } from "./broadcaster.ts";
import { FakeClock } from "./testing.ts";

function setup(intervalMs = 25) {
  const clock = new FakeClock(0);
  const emitted: Array<[number, string]> = [];
  const b = new Broadcaster(intervalMs, clock, (key) => emitted.push([clock.now(), key]));
  return { clock, emitted, b };
}

describe("Broadcaster", () => {
  it("sends a key touched after a quiet spell after 0 ms, not synchronously", () => {
    const { clock, emitted, b } = setup();
    b.touch("/");
    expect(emitted).toEqual([]);
    expect(clock.nextDue()).toBe(0);
    clock.advance(0);
    expect(emitted).toEqual([[0, "/"]]);
  });

  it("coalesces many touches within an interval into one emit per key", () => {
    const { clock, emitted, b } = setup(25);
    b.touch("/a");
    clock.advance(0); // t=0, first one out at once
    emitted.length = 0;

    clock.advance(1);
    for (let i = 0; i < 100; i++) b.touch("/a");
    clock.advance(4);
    b.touch("/b");
    clock.advance(10);
    b.touch("/a");
    b.touch("/b");
    expect(clock.pendingTimers).toBe(1);
    clock.advance(9); // t=24
    expect(emitted).toEqual([]);
    clock.advance(1); // t=25: one interval after the last emit
    expect(emitted).toEqual([
      [25, "/a"],
      [25, "/b"],
    ]);
    clock.advance(1000);
    expect(emitted).toHaveLength(2);
  });

  it("emits at most once per interval under a steady stream of touches", () => {
    const { clock, emitted, b } = setup(25);
    for (let t = 0; t < 1000; t++) {
      b.touch("/");
      clock.advance(1);
    }
    clock.advance(25);
    const times = emitted.map(([t]) => t);
    expect(times[0]).toBe(0);
    for (let i = 1; i < times.length; i++) expect(times[i]! - times[i - 1]!).toBe(25);
    expect(times).toHaveLength(41); // 0, 25, ..., 1000 (the touch at 999)
    expect(times.at(-1)).toBe(1000);
    expect(emitted.every(([, k]) => k === "/")).toBe(true);
  });

  it("goes out at once again after a quiet spell longer than the interval", () => {
    const { clock, emitted, b } = setup(25);
    b.touch("/");
    clock.advance(0);
    clock.advance(100);
    b.touch("/");
    clock.advance(0);
    expect(emitted).toEqual([
      [0, "/"],
      [100, "/"],
    ]);
  });

  it("waits only for the rest of the interval after the last emit", () => {
    const { clock, emitted, b } = setup(25);
    b.touch("/");
    clock.advance(0);
    clock.advance(10);
    b.touch("/");
    expect(clock.nextDue()).toBe(25);
    clock.advance(15);
    expect(emitted.map(([t]) => t)).toEqual([0, 25]);
  });

  it("flush() emits dirty keys now and cancels the timer", () => {
    const { clock, emitted, b } = setup(25);
    b.touch("/a");
    b.touch("/b");
    b.flush();
    expect(emitted).toEqual([
      [0, "/a"],
      [0, "/b"],
    ]);
    expect(clock.pendingTimers).toBe(0);
    b.flush();
    expect(emitted).toHaveLength(2);
  });

  it("stop() drops dirty keys and the timer", () => {
    const { clock, emitted, b } = setup(25);
    b.touch("/a");
    b.stop();
    expect(clock.pendingTimers).toBe(0);
    clock.advance(100);
    expect(emitted).toEqual([]);
  });
});
