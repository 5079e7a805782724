/**
 * A send call that returns late (the sender preempted right after the system call, as on a
 * busy machine) must not shorten the round trip the pacing plans from. Seen under load: a
 * calibration packet's call returned 3.4 ms after its datagram left, its round trip read
 * 10.7 ms on a link whose least is 14, and every packet after it was planned 3.4 ms later
 * than it could have been: the quiet board waited for each one (lib/transfer/pacing.ts).
 */
import { assert, assertEquals } from "../_assert.ts";
import { quietBoardHarness } from "../_harness.ts";
import { parsePrivateKey } from "../../lib/format/keys.ts";
import { makeSampleFirmware } from "../../lib/sim/sample_firmware.ts";
import { equalBytes } from "../../lib/_bytes.ts";
import { vectorText } from "../_helpers.ts";
import type { TransferTrace } from "../../lib/transfer/engine.ts";
import { describeTransferTrace } from "../../lib/transfer/transfer_trace.ts";

const APP = 0x3c000;
const key = parsePrivateKey(vectorText("test-key-2048.pem"));
const image = makeSampleFirmware({ size: 24 * 1024, seed: 4 });

/** Quiet board, 5 ms each way, 256-byte blocks; the packet at `slowAt` has a slow send. */
function run(slowAt: number | undefined, sendMs: number) {
  const h = quietBoardHarness(image, key, { blocks: [256] });
  h.slowSend = { when: (offset) => offset === slowAt, ms: sendMs };
  h.start(h.options());
  let sentBeforeCalibrated: number | undefined;
  h.afterActions = (e) => {
    if (sentBeforeCalibrated === undefined && e.pacing.calibrated) {
      sentBeforeCalibrated = h.sent.length;
    }
  };
  const r = h.run();
  assertEquals(r.outcome?.type, "done");
  assert(equalBytes(h.device.flash.subarray(APP, APP + image.length), image), "flash");
  return { sentBeforeCalibrated, twoWayAtEnd: h.engine!.pacing.twoWayMs };
}

Deno.test("A calibration packet whose send returned 3.4 ms late does not set the network's share of the round trip", () => {
  const clean = run(undefined, 0);
  // Offset 512: the first stop-and-wait data packet, an idle round trip (after the probe at
  // 0 and the resolving packet at 256).
  const slow = run(512, 3.4);
  assert(clean.twoWayAtEnd >= 9.5 && clean.twoWayAtEnd <= 10, `clean: ${clean.twoWayAtEnd}`);
  // Taken from that round trip, it would be 3.4 ms short.
  assert(
    Math.abs(slow.twoWayAtEnd - clean.twoWayAtEnd) < 0.1,
    `slow: ${slow.twoWayAtEnd}, clean: ${clean.twoWayAtEnd}`,
  );
});

Deno.test("A round trip from a slow send still counts for calibration: no extra stop-and-wait packet", () => {
  const clean = run(undefined, 0);
  const slow = run(512, 3.4);
  assertEquals(slow.sentBeforeCalibrated, clean.sentBeforeCalibrated);
});

Deno.test("With only slow sends timed, their round trips are used: short, so packets arrive later, never earlier", () => {
  const slow = run(512, 3.4);
  const h = quietBoardHarness(image, key, { blocks: [256] });
  h.slowSend = { when: (offset) => offset < 1024, ms: 1 };
  h.start(h.options());
  const r = h.run(600_000, () => h.engine!.pacing.calibrated);
  assertEquals(r.outcome, undefined);
  // Every idle round trip so far came from a 1 ms send: 1 ms short of the link's.
  assert(h.engine!.pacing.twoWayMs < slow.twoWayAtEnd - 0.9, `${h.engine!.pacing.twoWayMs}`);
});

Deno.test("Sends preempted for longer than a round trip: the replies' times make no negative service, and no packet meets another in a check", () => {
  // A busy machine: each send call of the opening packets returns 20 ms after its datagram
  // left, and the reply (14 ms later) is timed from when the system received it, 6 ms
  // before the call ended. Those round trips read -6 ms; taken as the service until gaps
  // time it, every packet after them left at once.
  const h = quietBoardHarness(image, key, { blocks: [256] });
  h.stampReplies = true;
  h.slowSend = { when: (offset) => offset < 1024, ms: 20 };
  const records: TransferTrace[] = [];
  h.start({ ...h.options(), trace: (t) => records.push(t) });
  const r = h.run();
  assertEquals(r.outcome?.type, "done");
  assert(equalBytes(h.device.flash.subarray(APP, APP + image.length), image), "flash");
  const nested = r.deviceEvents.filter((e) =>
    e.type === "packet" && (e.nested || e.outcome === "lost-in-nested-check")
  );
  assertEquals(nested.length, 0, "packets met inside a signature check");
  const calibrated = records.find((t) => t.type === "pacing" && t.pacing.calibrated);
  assert(calibrated?.type === "pacing", "calibrated");
  assertEquals(calibrated.pacing.serviceMs, undefined);
  assert(calibrated.pacing.aimMs > 0, `aimed ${calibrated.pacing.aimMs} ms into the service`);
  // The trace says what the user sees: a round trip of 0 and the call that took 20 ms.
  const first = records.find((t) => t.type === "reply" && t.answers === "probe");
  assertEquals(
    first?.type === "reply" && describeTransferTrace(first).split(": ")[0],
    "reply #1 offset 0 len 256 (to probe, round trip 0.0 ms; its send call took 20.0 ms)",
  );
});
