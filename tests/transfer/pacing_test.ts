/**
 * The pacing model on its own: what it concludes from idle round trips, service gaps and
 * losses (docs/device.md, "Re-entrancy"). Every figure below is worked out by hand.
 */
import { assert, assertEquals } from "../_assert.ts";
import { PacingModel } from "../../lib/transfer/pacing.ts";

/** Three idle round trips of 20 ms and two service gaps of 15 ms: calibrated. */
function calibrated(): PacingModel {
  const p = new PacingModel();
  for (let i = 0; i < 3; i++) p.addIdleRtt(20, false);
  p.addServiceSample(15, false);
  p.addServiceSample(15, false);
  return p;
}

Deno.test("PacingModel knows nothing before a reply: no service time, stop-and-wait timers, 6 ms guard", () => {
  const p = new PacingModel();
  assertEquals(p.measured, false);
  assertEquals(p.calibrated, false);
  assertEquals(p.serviceMs(false), 0);
  // An unmeasured sector write is taken as slow (70 ms): a late packet is safe, an early one collides.
  assertEquals(p.serviceMs(true), 70);
  assertEquals(p.twoWayMs, 0);
  assertEquals(p.guardMs, 6);
  assertEquals(p.snapshot().serviceMs, undefined);
});

Deno.test("PacingModel calibrates after three idle round trips and takes the smallest as the service time until gaps are measured", () => {
  const p = new PacingModel();
  p.addIdleRtt(22, false);
  p.addIdleRtt(20, false);
  assertEquals(p.measured, true);
  assertEquals(p.calibrated, false);
  // A round trip with a sector write does not count towards calibration.
  p.addIdleRtt(90, true);
  assertEquals(p.calibrated, false);
  p.addIdleRtt(21, false);
  assertEquals(p.calibrated, true);
  assertEquals(p.serviceMs(false), 20);
  // Without a service gap the network share is unknown: taken as 0 (later, never earlier).
  assertEquals(p.twoWayMs, 0);
  // The sector write is known from its idle round trip.
  assertEquals(p.sectorServiceMs, 90);
  assertEquals(p.serviceMs(true), 90);
});

Deno.test("PacingModel: a slow send's round trip is as long as it may have been for the service, never below 0", () => {
  const p = new PacingModel();
  // Timed from the end of a send call that took 8 ms, its reply came "-4 ms" later: the
  // datagram left within the call, so the round trip is 0 to 4 ms.
  p.addIdleRtt(-4, false, 8);
  assertEquals(p.serviceMs(false), 4);
  p.addIdleRtt(14, false);
  p.addIdleRtt(14, false);
  assertEquals([p.calibrated, p.serviceMs(false), p.twoWayMs], [true, 4, 0]);
  // Once gaps time the device, the network's share comes from the precise round trips.
  p.addServiceSample(4, false);
  p.addServiceSample(4, false);
  assertEquals([p.serviceMs(false), p.twoWayMs], [4, 10]);
});

Deno.test("PacingModel splits a round trip into service and network, and aims the next packet into the service", () => {
  const p = calibrated();
  assertEquals(p.normalServiceMs, 15);
  assertEquals(p.twoWayMs, 5); // smallest idle round trip 20 − service 15
  assertEquals(p.aimMs, 12); // phase 0.8 × 15
  assertEquals(p.guardMs, 8); // 0.25 × 15 + 0.25 × 5 + 3
  assertEquals(p.serviceMs(true), 85); // no sector write timed yet: 15 + 70
  p.addServiceSample(60, true);
  assertEquals(p.serviceMs(true), 60);
  assertEquals(p.snapshot(), {
    serviceMs: 15,
    sectorServiceMs: 60,
    twoWayMs: 5,
    aimMs: 12,
    phase: 0.8,
    guardMs: 8,
    idleSamples: 3,
    calibrationSamples: 3,
    calibrated: true,
    recentLosses: 0,
    stopAndWait: false,
    depth: 3,
    steady: false,
  });
});

Deno.test("PacingModel follows a falling pace by the second smallest of the last six gaps", () => {
  const p = calibrated(); // 15 ms, from two gaps
  // Packets sent at 0.8 of the estimate that did not wait: each gap is the send interval.
  p.addServiceSample(12, false);
  assertEquals(
    p.normalServiceMs,
    15,
    "one gap may be short by a reply's delay: the second smallest",
  );
  p.addServiceSample(12, false);
  assertEquals(p.normalServiceMs, 12);
  for (const ms of [9.6, 7.7, 6.1, 4.9, 4]) p.addServiceSample(ms, false);
  // Last six: 12, 9.6, 7.7, 6.1, 4.9, 4 → the second smallest.
  assertEquals(p.normalServiceMs, 4.9);
  // The device's pace reached: gaps of 4, one short by a reply's jitter.
  for (const ms of [4, 3.2, 4, 4]) p.addServiceSample(ms, false);
  assertEquals(p.normalServiceMs, 4);
});

Deno.test("PacingModel: a gap under half the service measured (replies bunched after a stall) is no sample", () => {
  const p = quiet([4, 4, 4, 4, 4, 4]);
  assertEquals(p.normalServiceMs, 4);
  p.addServiceSample(0.5, false);
  p.addServiceSample(0.6, false);
  p.addServiceSample(1.9, false);
  assertEquals(p.normalServiceMs, 4);
  p.addServiceSample(2.1, false);
  p.addServiceSample(2.2, false);
  assertEquals(p.normalServiceMs, 2.2, "a plausible gap is one");
});

Deno.test("PacingModel times the device by the gaps of packets that surely waited, once three are known", () => {
  const p = quiet([]);
  // Packets paced into a check that landed a little after it ended: their gaps run long.
  for (let i = 0; i < 12; i++) p.addServiceSample(4.6, false, 0.8);
  assertEquals(p.normalServiceMs, 4.6);
  // Packets due on the device 20 ms before the previous reply (behind a sector write).
  p.addServiceSample(4.1, false, 20);
  p.addServiceSample(3.9, false, 20);
  // Two are not enough: the last six gaps still say (4.6 ×4, 4.1, 3.9: the second smallest).
  assertEquals(p.normalServiceMs, 4.1);
  p.addServiceSample(4.0, false, 20);
  assertEquals(p.normalServiceMs, 4.0);
  // A margin under 5 ms is not sure enough; the median of all the gaps moves, the estimate does not.
  for (let i = 0; i < 20; i++) p.addServiceSample(5.5, false, 4.9);
  assertEquals(p.normalServiceMs, 4.0);
  // Sector writes are timed apart whatever their margin.
  p.addServiceSample(55, true, 30);
  assertEquals(p.normalServiceMs, 4.0);
  assertEquals(p.sectorServiceMs, 55);
});

Deno.test("PacingModel aims later after losses close together and stops pipelining after 4 in 16 packets", () => {
  const p = calibrated();
  p.onLoss();
  assertEquals(p.phase, 0.8); // one loss in a while is the network
  p.onLoss();
  assertEquals(p.phase, 0.9);
  p.onLoss();
  assertEquals(p.stopAndWait, false);
  p.onLoss();
  assertEquals(p.phase, PacingModel.MAX_PHASE);
  assertEquals(p.stopAndWait, true);
  assertEquals(p.snapshot().recentLosses, 4);
  // 12 clean acks push the first losses out of the last 16: pipelining again.
  for (let i = 0; i < 12; i++) p.onAck();
  assertEquals(p.stopAndWait, true);
  p.onAck();
  assertEquals(p.stopAndWait, false);
  assertEquals(p.phase, PacingModel.MAX_PHASE);
  // 16 clean acks in a row: aim a little earlier, never below MIN_PHASE.
  for (let i = 0; i < 3; i++) p.onAck();
  assertEquals(p.phase, 0.98);
  for (let i = 0; i < 16 * 20; i++) p.onAck();
  assertEquals(p.phase, PacingModel.MIN_PHASE);
  assert(p.guardMs >= 6);
});

Deno.test("PacingModel: losses close together while the estimate still comes down drop the two smallest gaps it follows", () => {
  // Two replies held up at the ramp's start: gaps of 11 ms for a 17 ms service.
  const p = new PacingModel();
  for (let i = 0; i < 3; i++) p.addIdleRtt(27, false);
  for (const g of [21.6, 11, 17.3, 11]) p.addServiceSample(g, false);
  assertEquals(p.normalServiceMs, 11);
  assertEquals(p.twoWayMs, 16); // 27 - 11: every packet planned 6 ms early
  p.onLoss();
  assertEquals(p.normalServiceMs, 11); // one loss in a while is the network
  p.onLoss();
  // Left: 17.3 and 21.6, and the estimate takes the second smallest (one may be short).
  assertEquals(p.normalServiceMs, 21.6);
  assertEquals(p.twoWayMs, 27 - 21.6);
  // Once more: nothing left, the estimate is the idle round trip, as at the start.
  p.onLoss();
  assertEquals(p.normalServiceMs, undefined);
  assertEquals(p.serviceMs(false), 27);
  assertEquals(p.twoWayMs, 0);
});

Deno.test("PacingModel: once the estimate is settled, losses close together keep it; stop-and-wait measures it again", () => {
  const p = new PacingModel();
  for (let i = 0; i < 3; i++) p.addIdleRtt(14, false);
  // The first gap sets no estimate (nor the network's share) alone: three after it surely waited.
  for (let i = 0; i < 4; i++) p.addServiceSample(4, false, 12);
  assertEquals(p.normalServiceMs, 4);
  p.onLoss();
  p.onLoss();
  p.onLoss();
  assertEquals(p.normalServiceMs, 4);
  assertEquals(p.stopAndWait, false);
  p.onLoss();
  assertEquals(p.stopAndWait, true);
  assertEquals(p.normalServiceMs, undefined);
  assertEquals(p.serviceMs(false), 14);
});

/** A quiet board's figures: idle round trips of 14 ms, service gaps around 4 ms. */
function quiet(gaps: number[]): PacingModel {
  const p = new PacingModel();
  for (const rtt of [14, 14.2, 14.1]) p.addIdleRtt(rtt, false);
  for (const g of gaps) p.addServiceSample(g, false);
  return p;
}

Deno.test("PacingModel keeps 3 packets in flight until 8 service gaps show the replies time the device steadily", () => {
  const few = quiet([4, 4, 4]);
  assertEquals([few.serviceSpreadMs, few.steady, few.depth], [undefined, false, 3]);
  // Eight gaps scattered by 0.1 ms: steady. The round trip (10 ms of network, 0.1 ms of
  // jitter, 8 ms for the packet on the device and the one waiting) takes 5, plus one.
  const steady = quiet([4, 3.9, 4.1, 4, 4.1, 4, 4, 4]);
  assertEquals(steady.twoWayMs, 10);
  assertEquals(steady.jitterMs, 0.5); // at least half a millisecond
  assertEquals(steady.steady, true);
  assertEquals(steady.depth, 6); // ceil((10 + 0.5 + 2 × 4) / 4) + 1
  assertEquals(steady.snapshot().depth, 6);
});

Deno.test("PacingModel: service gaps scattered by more than 15 % of a service keep the pipeline at 3", () => {
  // Median 4, deviations 0, 1, 1, 2, 2, 1, 1, 0 → median absolute deviation 1 ms (25 %).
  const p = quiet([4, 3, 5, 2, 6, 5, 3, 4]);
  assertEquals(p.serviceSpreadMs, 1);
  assertEquals([p.steady, p.depth], [false, 3]);
});

Deno.test("PacingModel: while the gaps still hold the ramp's, idle round trips that scatter little show the replies steady; scattered, or once 24 gaps are known, they do not", () => {
  // The ramp's gaps (send intervals, from a whole round trip down to the 4 ms service):
  // median 8.1, median absolute deviation 3.1 ms. Not steady by the gaps.
  const ramp = [12.5, 10.2, 9, 8.1, 6.2, 5, 4, 4.1];
  const p = quiet(ramp);
  const tenth = (x: number | undefined) => Math.round(x! * 10) / 10;
  assertEquals([tenth(p.serviceSpreadMs), p.steady, p.depth], [3.1, false, 3]);
  // Eight idle round trips of pipelined packets that reached the device idle, three in
  // four within 0.3 ms of the quickest: steady (0.3 ≤ 0.15 × 4.1, the estimate). The
  // network is 14 − 4.1 ms.
  const tight = [14.3, 14.1, 14.4, 14.2, 14.2, 14.5, 14.1, 14.3];
  for (const rtt of tight) p.addIdleRtt(rtt, false);
  assertEquals(p.steady, true);
  assertEquals(p.depth, 6); // ceil((9.9 + 0.5 + 2 × 4.1) / 4.1) + 1
  // Round trips three in four of which come up to 3 ms after the quickest (a jittery
  // link) say nothing of the kind.
  const jittery = quiet(ramp);
  for (const rtt of [14, 16, 14.5, 17, 15, 18, 14.2, 16.5]) jittery.addIdleRtt(rtt, false);
  assertEquals([jittery.steady, jittery.depth], [false, 3]);
  // Nor do tight ones once two losses came close together.
  const collided = quiet(ramp);
  collided.onLoss();
  collided.onLoss();
  for (const rtt of tight) collided.addIdleRtt(rtt, false);
  assertEquals([collided.steady, collided.depth], [false, 3]);
  // Once the window holds 24 gaps, they decide: scattered by 2.5 ms here.
  for (let i = 0; i < 8; i++) [3, 5.5].forEach((g) => p.addServiceSample(g, false));
  assertEquals([tenth(p.serviceSpreadMs), p.steady, p.depth], [2.5, false, 3]);
});

Deno.test("PacingModel: the logging board (17 ms a packet) needs one more in flight than 3", () => {
  const p = new PacingModel();
  for (let i = 0; i < 3; i++) p.addIdleRtt(27, false);
  for (let i = 0; i < 8; i++) p.addServiceSample(17, false);
  assertEquals([p.twoWayMs, p.steady], [10, true]);
  assertEquals(p.depth, 4); // ceil((10 + 0.5 + 2 × 17) / 17) + 1
});

Deno.test("PacingModel takes a sector write as long as most measured ones, and aims the next packet halfway into it", () => {
  const p = quiet([4, 4, 4]);
  for (const gap of [52, 56, 54, 50, 53]) p.addServiceSample(gap, true);
  // Sorted 50 52 53 54 56: the 0.8 quantile. A write taken as shorter than it is would put
  // the packets behind it on the device early, into each other's checks.
  assertEquals(p.sectorServiceMs, 56);
  assertEquals(p.aimBehind(false), p.aimMs);
  assertEquals(p.aimBehind(true), 30); // 4 + (56 − 4) / 2
});

Deno.test("PacingModel: while the service estimate still comes down, packets are aimed at most 0.8 into it, however late losses pushed the phase", () => {
  const p = calibrated(); // 15 ms, from two gaps of packets that did not surely wait
  p.onLoss();
  p.onLoss();
  p.onLoss();
  assertEquals(p.phase, 1.0);
  // Losses this close while ramping forgot the gap: the estimate is the idle round trip again.
  // Aimed at 1.0, a packet that does not wait makes a gap of 20: the estimate would stay.
  assertEquals(p.aimMs, 16);
  // Each gap is the send interval, 0.8 of the estimate: it falls towards the device's 4 ms,
  // a step every two gaps (the second smallest).
  let estimate = p.serviceMs(false);
  for (let i = 0; i < 16 && estimate > 4; i++) {
    p.addServiceSample(Math.max(4, p.aimMs), false);
    estimate = p.serviceMs(false);
  }
  assertEquals(estimate, 4);
  // Once three packets that surely waited time the device, the phase counts again.
  for (let i = 0; i < 3; i++) p.addServiceSample(4, false, 20);
  assertEquals(p.aimMs, 4);
});

Deno.test("PacingModel: a packet surely waited only if it did with the network taking the whole idle round trip", () => {
  const p = quiet([]); // idle round trips of 14: the service taken as 14, the network as none
  assertEquals(p.twoWayMs, 0);
  // Packets that did not wait, sent 11.2 ms apart: each gap is the send interval, and with
  // no network share they look due 6 ms before the previous reply. Taken as the device's
  // own, the estimate would stay near 11 (as a quiet board did under a CPU hog, for
  // seconds); the ramp goes on instead.
  for (const g of [11.2, 11.2, 11.2, 9, 7.2, 5.8, 4.6, 4]) p.addServiceSample(g, false, 6);
  assertEquals(p.normalServiceMs, 4.6);
  // Behind a sector write a packet is due 20 ms before the previous reply: surely waited.
  for (const g of [4.1, 4, 4]) p.addServiceSample(g, false, 20);
  assertEquals(p.normalServiceMs, 4);
});

Deno.test("PacingModel: the gap of a packet that surely waited is kept under half the estimate; another such gap is not", () => {
  // Coming down from the round trip: six gaps of 8 ms, the estimate 8 ms, the network's
  // share 6 ms of the 14 ms idle round trip.
  const ramp = () => quiet([8, 8, 8, 8, 8, 8]);
  const sure = ramp();
  assertEquals([sure.normalServiceMs, sure.twoWayMs], [8, 6]);
  // Due on the device 20 ms before the previous reply (behind a sector write): 3.9 ms is
  // its service, though under half of 8. Three such gaps and the estimate is theirs.
  for (let i = 0; i < 3; i++) sure.addServiceSample(3.9, false, 20);
  assertEquals(sure.normalServiceMs, 3.9);
  // Due 1 ms before the previous reply: such a gap may time a stall (replies bunched).
  const unsure = ramp();
  for (let i = 0; i < 3; i++) unsure.addServiceSample(3.9, false, 1);
  assertEquals(unsure.normalServiceMs, 8);
});
