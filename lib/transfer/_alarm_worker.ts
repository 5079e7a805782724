/// <reference lib="deno.worker" />
/**
 * The clock behind `PreciseAlarm` (precise_timer.ts): waits on a shared generation word
 * with a fractional-millisecond timeout (a futex: no busy loop) until the deadline in the
 * shared array, then posts the generation it fired for. A new deadline bumps the
 * generation, which wakes it.
 */
self.onmessage = (e: MessageEvent<SharedArrayBuffer>) => {
  const gen = new Int32Array(e.data, 0, 1);
  const due = new Float64Array(e.data, 8, 1);
  const now = () => performance.timeOrigin + performance.now();
  let fired = NaN;
  for (;;) {
    const g = Atomics.load(gen, 0);
    if (g < 0) return;
    const wait = g === fired ? Infinity : due[0]! - now();
    if (wait <= 0) {
      fired = g;
      self.postMessage(g);
    } else {
      Atomics.wait(gen, 0, g, Number.isFinite(wait) ? wait : undefined);
    }
  }
};
