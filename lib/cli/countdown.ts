/**
 * A countdown on the terminal while a task waits a known time (the boot check, trigger's
 * watch): the line says how long is left, once a second. `show` writes it; the clock and
 * the timer are injected for tests.
 */

/** "LABEL: 5 s left". Pure. */
export function countdownLine(label: string, remainingMs: number): string {
  return `${label}: ${Math.max(0, Math.ceil(remainingMs / 1000))} s left`;
}

export interface CountdownClock {
  now(): number;
  every(ms: number, tick: () => void): () => void;
}

const realClock: CountdownClock = {
  now: () => performance.now(),
  every: (ms, tick) => {
    const id = setInterval(tick, ms);
    return () => clearInterval(id);
  },
};

export class Countdown {
  #show: (line: string) => void;
  #clock: CountdownClock;
  #cancel: (() => void) | undefined;

  constructor(show: (line: string) => void, clock: CountdownClock = realClock) {
    this.#show = show;
    this.#clock = clock;
  }

  /** Shows `label` with the time left now and every second, until `ms` pass or `stop`. */
  start(label: string, ms: number): void {
    this.stop();
    const end = this.#clock.now() + ms;
    const tick = () => {
      const left = end - this.#clock.now();
      this.#show(countdownLine(label, left));
      if (left <= 0) this.stop();
    };
    tick();
    if (this.#cancel === undefined && end > this.#clock.now()) {
      this.#cancel = this.#clock.every(1000, tick);
    }
  }

  /** True while the countdown runs. */
  get running(): boolean {
    return this.#cancel !== undefined;
  }

  stop(): void {
    this.#cancel?.();
    this.#cancel = undefined;
  }
}
