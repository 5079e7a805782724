/**
 * Deno's `setTimeout` takes whole milliseconds: a timer armed for 2.6 ms may fire after 2,
 * before the engine's deadline. The engine then has nothing to do, arms again, and the
 * packet leaves a timer round late (a millisecond or more: a quarter of a quiet board's
 * 4 ms service). A timer that fires less than `maxSpinMs` early waits out the rest here.
 */

/**
 * Waits (busily) until `now() >= due` if that is at most `maxSpinMs` away; returns whether
 * `due` was reached (if not, the caller arms a timer again).
 */
export function spinUntil(due: number, now: () => number, maxSpinMs: number): boolean {
  let t = now();
  if (due - t > maxSpinMs) return false;
  while (t < due) t = now();
  return true;
}
