/**
 * Several observers of one event, none able to replace another's: a
 * single-slot `onX = fn` callback lets later wiring silently drop earlier
 * wiring. A throwing listener does not stop the others.
 */
export class Listeners<T> {
  readonly #fns: Array<(value: T) => void> = [];
  #onError: (err: unknown) => void = () => {};

  /** Adds `fn`; returns the function that removes it again. */
  add(fn: (value: T) => void): () => void {
    this.#fns.push(fn);
    return () => {
      const i = this.#fns.indexOf(fn);
      if (i >= 0) this.#fns.splice(i, 1);
    };
  }

  /** Where a throwing listener's error goes (a logger); by default nowhere. */
  onError(fn: (err: unknown) => void): void {
    this.#onError = fn;
  }

  emit(value: T): void {
    for (const fn of this.#fns) {
      try {
        fn(value);
      } catch (err) {
        this.#onError(err);
      }
    }
  }
}
