/**
 * Timers with sub-millisecond precision that keep the event loop free. Deno's
 * `setTimeout` takes whole milliseconds and fires up to a millisecond or more late: a
 * quarter of a quiet board's 4 ms service, half the window a packet must arrive in
 * (docs/device.md, "Re-entrancy"). One worker thread per process waits on a shared word
 * with a fractional timeout (a futex, no busy loop) for the earliest deadline and posts
 * when it passes; callbacks run on this thread, which reads its sockets meanwhile. The
 * worker runs while an alarm is open and never keeps the process alive by itself (an
 * ordinary timer backs each deadline up: while the worker starts, should it be starved of
 * a core, and to keep the process alive until the deadline).
 */
import { Worker } from "node:worker_threads";

/**
 * The worker's program: wait until the deadline in the shared array (absolute ms), post the
 * generation it fired for, and wait for the next one; a new deadline bumps the generation,
 * which wakes it; a negative generation ends it.
 */
const CLOCK = `
const { parentPort, workerData } = require("node:worker_threads");
const gen = new Int32Array(workerData, 0, 1);
const due = new Float64Array(workerData, 8, 1);
const now = () => performance.timeOrigin + performance.now();
let fired = NaN;
for (;;) {
  const g = Atomics.load(gen, 0);
  if (g < 0) break;
  const wait = g === fired ? Infinity : due[0] - now();
  if (wait <= 0) {
    fired = g;
    parentPort.postMessage(g);
  } else {
    Atomics.wait(gen, 0, g, Number.isFinite(wait) ? wait : undefined);
  }
}
`;

/** One deadline at a time; setting a new one replaces the old. */
export interface PreciseAlarm {
  /** Fires once at `at` (ms, this thread's `performance.now()`). */
  set(at: number): void;
  clear(): void;
  close(): void;
}

interface Entry {
  due: number | undefined;
  fire: () => void;
}

let hub: Hub | undefined;

/** An alarm calling `onFire`; close it when done (the last close stops the worker). */
export function preciseAlarm(onFire: () => void): PreciseAlarm {
  const h = hub ??= new Hub();
  const entry: Entry = { due: undefined, fire: onFire };
  h.entries.add(entry);
  let closed = false;
  return {
    set(at) {
      if (closed) return;
      entry.due = at;
      h.update();
    },
    clear() {
      if (closed) return;
      entry.due = undefined;
      h.update();
    },
    close() {
      if (closed) return;
      closed = true;
      h.entries.delete(entry);
      if (h.entries.size === 0) {
        h.stop();
        hub = undefined;
      } else h.update();
    },
  };
}

class Hub {
  readonly entries = new Set<Entry>();
  readonly #worker: Worker;
  readonly #gen: Int32Array;
  readonly #due: Float64Array;
  #armed = Infinity;
  #backup: ReturnType<typeof setTimeout> | undefined;

  constructor() {
    const shared = new SharedArrayBuffer(16);
    this.#gen = new Int32Array(shared, 0, 1);
    this.#due = new Float64Array(shared, 8, 1);
    this.#due[0] = Infinity;
    this.#worker = new Worker(CLOCK, { eval: true, workerData: shared });
    this.#worker.on("message", () => this.#fire());
    this.#worker.unref();
  }

  /** Points the worker at the earliest deadline (if it changed). */
  update(): void {
    let earliest = Infinity;
    for (const e of this.entries) if (e.due !== undefined && e.due < earliest) earliest = e.due;
    if (earliest === this.#armed) return;
    this.#armed = earliest;
    this.#due[0] = performance.timeOrigin + earliest;
    Atomics.add(this.#gen, 0, 1);
    Atomics.notify(this.#gen, 0);
    clearTimeout(this.#backup);
    this.#backup = earliest === Infinity
      ? undefined
      : setTimeout(() => this.#fire(), Math.max(0, earliest - performance.now()));
  }

  #fire(): void {
    this.#armed = NaN;
    const now = performance.now();
    for (const e of [...this.entries]) {
      if (e.due !== undefined && e.due <= now) {
        e.due = undefined;
        e.fire();
      }
    }
    if (this === hub) this.update();
  }

  stop(): void {
    clearTimeout(this.#backup);
    Atomics.store(this.#gen, 0, -1);
    Atomics.notify(this.#gen, 0);
    this.#worker.terminate();
  }
}
