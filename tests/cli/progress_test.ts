/** The transfer progress line, by string (the display around it writes to a terminal). */
import { assertEquals } from "../_assert.ts";
import { formatProgress } from "../../lib/cli/progress.ts";

Deno.test("formatProgress() shows percent, bytes, rate, time left and retransmissions", () => {
  assertEquals(
    formatProgress({ confirmed: 24576, size: 49152, retransmits: 2, elapsedMs: 4000 }),
    " 50% 24.0 KiB/48.0 KiB 6.0 KiB/s ETA 4.0 s retx 2",
  );
});

Deno.test("formatProgress() before the first byte: no rate, unknown time left", () => {
  assertEquals(
    formatProgress({ confirmed: 0, size: 49152, retransmits: 0, elapsedMs: 0 }),
    "  0% 0 B/48.0 KiB 0.0 KiB/s ETA -- retx 0",
  );
});

Deno.test("formatProgress() rounds the percentage down and shows minutes past 60 s", () => {
  // 1 KiB of 1 MiB in 1 s: 0 %, 1,023 s left.
  assertEquals(
    formatProgress({ confirmed: 1024, size: 1024 * 1024, retransmits: 7, elapsedMs: 1000 }),
    "  0% 1.0 KiB/1.00 MiB 1.0 KiB/s ETA 17m03s retx 7",
  );
  assertEquals(
    formatProgress({ confirmed: 49152, size: 49152, retransmits: 0, elapsedMs: 2000 }),
    "100% 48.0 KiB/48.0 KiB 24.0 KiB/s ETA 0.0 s retx 0",
  );
  assertEquals(
    formatProgress({ confirmed: 0, size: 0, retransmits: 0, elapsedMs: 10 }),
    "  0% 0 B/0 B 0.0 KiB/s ETA -- retx 0",
  );
});
