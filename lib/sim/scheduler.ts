/**
 * Runs timed callbacks in time order on the real clock: the virtual device's network
 * deliveries and the device model's own wake-ups. Times are `performance.now()` ms. A
 * board replies the moment it is done: the timer is a precise one (a reply a millisecond
 * late would read as network jitter the model does not have).
 */
import { type PreciseAlarm, preciseAlarm } from "../transfer/precise_timer.ts";

interface Item {
  at: number;
  run: (at: number) => void;
}

export class Scheduler {
  #items: Item[] = [];
  #alarm: PreciseAlarm | undefined;
  #closed = false;
  /** Extra wake-up source (the device model's `nextWakeup`). */
  #wakeup: () => number | undefined;
  #onWake: (now: number) => void;
  /** Called as the timer fires, before anything due runs (it may add items). */
  #beforeFire: () => void;

  constructor(
    wakeup: () => number | undefined = () => undefined,
    onWake: (now: number) => void = () => {},
    beforeFire: () => void = () => {},
  ) {
    this.#wakeup = wakeup;
    this.#onWake = onWake;
    this.#beforeFire = beforeFire;
  }

  now(): number {
    return performance.now();
  }

  at(time: number, run: (at: number) => void): void {
    if (this.#closed) return;
    let i = this.#items.length;
    while (i > 0 && this.#items[i - 1]!.at > time) i--;
    this.#items.splice(i, 0, { at: time, run });
    this.arm();
  }

  /** Re-plans the timer after state changed outside `at`. */
  arm(): void {
    if (this.#closed) return;
    const next = Math.min(this.#items[0]?.at ?? Infinity, this.#wakeup() ?? Infinity);
    if (next === Infinity) {
      this.#alarm?.clear();
      return;
    }
    (this.#alarm ??= preciseAlarm(() => this.#fire())).set(next);
  }

  #fire(): void {
    this.#beforeFire();
    const now = this.now();
    while (!this.#closed && this.#items.length > 0 && this.#items[0]!.at <= now) {
      const item = this.#items.shift()!;
      this.#onWake(item.at);
      item.run(item.at);
    }
    if (!this.#closed) this.#onWake(now);
    this.arm();
  }

  close(): void {
    this.#closed = true;
    this.#alarm?.close();
    this.#items = [];
  }
}
