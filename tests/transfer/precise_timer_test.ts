/** A timer that fires a little early waits out the rest; one far too early is armed again. */
import { assert, assertEquals } from "../_assert.ts";
import { spinUntil } from "../../lib/transfer/precise_timer.ts";

/** A clock that moves 0.1 ms each time it is read. */
function ticking(from: number): { now: () => number; reads: () => number } {
  let t = from;
  let n = 0;
  return {
    now: () => {
      n++;
      return (t += 0.1) - 0.1;
    },
    reads: () => n,
  };
}

Deno.test("spinUntil: a timer 0.6 ms early waits until its deadline, not a timer round more", () => {
  const clock = ticking(2);
  assertEquals(spinUntil(2.6, clock.now, 1.5), true);
  const after = clock.now();
  assert(after >= 2.6 && after < 2.8, `returned at ${after}`);
});

Deno.test("spinUntil: a deadline already past returns at once", () => {
  const clock = ticking(5);
  assertEquals(spinUntil(4, clock.now, 1.5), true);
  assertEquals(clock.reads(), 1);
});

Deno.test("spinUntil: a timer far too early does not spin (the caller arms it again)", () => {
  const clock = ticking(0);
  assertEquals(spinUntil(10, clock.now, 1.5), false);
  assertEquals(clock.reads(), 1);
});
