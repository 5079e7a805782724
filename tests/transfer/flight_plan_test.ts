/**
 * The flight plan on its own: the predicted timeline of packets in flight, how replies
 * and late departures move it, and when a packet counts as lost. Pacing is calibrated to
 * round figures: service 15 ms (85 ms with a sector write), network 5 ms both ways,
 * aim 12 ms, guard 8 ms.
 */
import { assertEquals } from "../_assert.ts";
import { FlightPlan } from "../../lib/transfer/flight_plan.ts";
import { PacingModel } from "../../lib/transfer/pacing.ts";

function pacing(): PacingModel {
  const p = new PacingModel();
  for (let i = 0; i < 3; i++) p.addIdleRtt(20, false);
  p.addServiceSample(15, false);
  p.addServiceSample(15, false);
  return p;
}

Deno.test("FlightPlan.add() queues each packet behind the previous one's service", () => {
  const plan = new FlightPlan(pacing());
  plan.reset(100);
  const a = plan.add(0, 1024, 1, 100);
  assertEquals(
    [a.arrival, a.start, a.end, a.sector, a.idle],
    [105, 105, 120, false, true],
  );
  // Arrives at 115 while the device is busy until 120: it waits, so it is not idle.
  const b = plan.add(1024, 1024, 2, 110);
  assertEquals([b.arrival, b.start, b.end, b.idle], [115, 120, 135, false]);
  // The last block of a sector is written to flash before the reply.
  const c = plan.add(3072, 1024, 3, 111);
  assertEquals([c.start, c.end, c.sector], [135, 220, true]);
  assertEquals([plan.oldest?.seq, plan.last?.seq, plan.flights.length], [1, 3, 3]);
});

Deno.test("FlightPlan.nextSendAt() aims the next arrival 12 ms into the last packet's service", () => {
  const plan = new FlightPlan(pacing());
  assertEquals(plan.nextSendAt(), undefined);
  plan.reset(0);
  plan.add(0, 1024, 1, 0); // starts at 5
  assertEquals(plan.nextSendAt(), 12); // 5 + 12 − 5: it arrives at 17
});

Deno.test("FlightPlan.confirm() drops what a reply confirmed and re-anchors the rest on it", () => {
  const plan = new FlightPlan(pacing());
  plan.reset(100);
  plan.add(0, 1024, 1, 100);
  plan.add(1024, 1024, 2, 110); // predicted 120…135
  plan.confirm(1024, 125); // the first reply came 5 ms later than predicted
  assertEquals(plan.flights.map((f) => [f.seq, f.start, f.end]), [[2, 125, 140]]);
  assertEquals(plan.deviceFreeAt, 125);
  plan.confirm(2048, 140);
  assertEquals(plan.flights, []);
});

Deno.test("FlightPlan.sentLate() shifts a packet that left after signing, and those behind it", () => {
  const plan = new FlightPlan(pacing());
  plan.reset(100);
  plan.add(0, 1024, 1, 100); // 105…120
  plan.add(1024, 1024, 2, 110); // 120…135
  plan.sentLate(1, 130); // left 30 ms late: arrives 135
  const timeline = plan.flights.map((f) => [f.sentAt, f.start, f.end]);
  assertEquals(timeline, [[130, 135, 150], [110, 150, 165]]);
  // An earlier time, or a packet no longer in flight, changes nothing.
  plan.sentLate(2, 100);
  plan.sentLate(9, 500);
  assertEquals(plan.flights.map((f) => f.end), [150, 165]);
});

Deno.test("FlightPlan.retransmitAt() follows the device once measured, backs off, and never waits past 1 s", () => {
  const measured = new FlightPlan(pacing());
  measured.reset(0);
  const f = measured.add(0, 1024, 1, 0); // ends at 20
  assertEquals(measured.retransmitAt(f, 1, 300), 28); // end + guard 8
  assertEquals(measured.retransmitAt(f, 16, 300), 148); // end + 16 × 8
  measured.add(1024, 1024, 2, 0); // ends at 35
  assertEquals(measured.lastDeadline(2, 300), 51); // 35 + 2 × 8
  // Nothing measured: the initial timeout, doubled per backoff, capped 1 s after sending.
  const blind = new FlightPlan(new PacingModel());
  blind.reset(0);
  const h = blind.add(0, 256, 1, 40);
  assertEquals(blind.retransmitAt(h, 1, 300), 340);
  assertEquals(blind.retransmitAt(h, 4, 300), 1040);
});

Deno.test("FlightPlan.placeholder() keeps a retransmission timer for a probe without predicting a service", () => {
  const plan = new FlightPlan(pacing());
  plan.reset(0);
  plan.placeholder(0, 256, 7, 50);
  assertEquals(plan.oldest, {
    offset: 0,
    len: 256,
    seq: 7,
    sentAt: 50,
    arrival: 50,
    start: 50,
    end: 50,
    sector: false,
    idle: false,
  });
  assertEquals(plan.retransmitAt(plan.oldest!, 1, 300), 58);
});

Deno.test("FlightPlan: a packet given up still paces the next one (it may yet reach the device)", () => {
  const plan = new FlightPlan(pacing());
  plan.reset(0);
  plan.add(0, 1024, 1, 0); // 5…20
  plan.add(1024, 1024, 2, 7); // arrives 12, waits: 20…35
  // A loss: the engine gives up every packet in flight and resends from offset 0.
  plan.flights = [];
  assertEquals(plan.pacedBehind?.seq, 2);
  // Aimed 12 ms into #2's predicted service (from 20): it leaves at 27, arrives at 32.
  assertEquals(plan.nextSendAt(), 27);
  const resent = plan.add(0, 1024, 3, 27);
  assertEquals([resent.start, resent.idle], [35, false]);
});

Deno.test("FlightPlan.confirm(): a reply to the last datagram sent frees the device; a reply to an earlier copy does not", () => {
  const plan = new FlightPlan(pacing());
  plan.reset(0);
  plan.add(0, 1024, 1, 0);
  plan.flights = []; // given up
  plan.add(0, 1024, 2, 30); // the same packet again, #2
  // The first copy's reply comes late: #2 is still on its way to the device.
  plan.confirm(1024, 31, 1);
  assertEquals(plan.pacedBehind?.seq, 2);
  // #2's own reply: nothing is left on the device.
  plan.confirm(1024, 50, 2);
  assertEquals(plan.pacedBehind, undefined);
  assertEquals(plan.nextSendAt(), undefined);
});

Deno.test("FlightPlan.confirm(): a copy of a sector's last packet that the device is past is planned as a check, not another sector write", () => {
  const plan = new FlightPlan(pacing());
  plan.reset(0);
  plan.add(3072, 1024, 1, 0); // fills the sector: 5…90
  plan.flights = []; // given up (its reply is late)
  const copy = plan.add(3072, 1024, 2, 30); // resent: planned behind the first one's write
  assertEquals([copy.start, copy.end], [90, 175]);
  // The first copy's reply: the device wrote the sector. The second copy is a duplicate to
  // it (answered again, nothing written): 15 ms of check from when it is free.
  plan.confirm(4096, 90, 1);
  assertEquals(plan.pacedBehind?.seq, 2);
  assertEquals([plan.pacedBehind?.start, plan.pacedBehind?.end, plan.pacedBehind?.sector], [
    90,
    105,
    false,
  ]);
  // The next packet is planned behind that check, not 70 ms later behind a write.
  const next = plan.add(4096, 1024, 3, 91);
  assertEquals([next.start, next.end], [105, 120]);
});

Deno.test("FlightPlan.nextSendAt(): never less than three quarters of a service behind the previous departure, however the model moved", () => {
  const p = pacing();
  const plan = new FlightPlan(p);
  plan.reset(0);
  plan.add(0, 1024, 1, 0); // predicted to start at 5
  // The network estimate jumps from 5 to 15 ms (round trips of 30): aimed by the model
  // alone, the next packet would leave at 5 + 12 − 15 = 2, right behind the first.
  for (let i = 0; i < 24; i++) p.addIdleRtt(30, false);
  assertEquals(p.twoWayMs, 15);
  assertEquals(plan.nextSendAt(), 11.25); // 0 + 0.75 × 15
});

Deno.test("FlightPlan.nextSendAt(): behind a packet that fills a sector, aimed halfway into its write", () => {
  const p = pacing();
  p.addServiceSample(85, true);
  const plan = new FlightPlan(p);
  plan.reset(0);
  plan.add(3072, 1024, 1, 0); // fills the sector: 5…90
  // 15 + (85 − 15) / 2 = 50 into its service: it arrives at 55, waits until 90.
  assertEquals(plan.nextSendAt(), 50);
});

/**
 * #1 (5…20) and #2, which fills a sector (20…105), both given up: #1 is overdue, and the
 * engine resends it behind #2.
 */
function sectorPacketGivenUp(): FlightPlan {
  const p = pacing();
  p.addServiceSample(85, true);
  const plan = new FlightPlan(p);
  plan.reset(0);
  plan.add(2048, 1024, 1, 0);
  plan.add(3072, 1024, 2, 7);
  plan.flights = [];
  return plan;
}

Deno.test("FlightPlan.nextSendAt(): behind a packet that fills a sector and was given up, into its check", () => {
  const plan = sectorPacketGivenUp();
  // Had #1 been lost, the device dropped #2 after its check and is idle; had only #1's
  // reply been lost, the resend waits out #2's write. Either way it goes 12 ms into #2's
  // check, not 50.
  assertEquals(plan.aimMs, 12);
  assertEquals(plan.nextSendAt(), 27); // 20 + 12 − 5
  // The packets behind the resend are still planned behind #2's write.
  const resent = plan.add(2048, 1024, 3, 27);
  assertEquals([resent.start, resent.end], [105, 120]);
  assertEquals(plan.nextSendAt(), 112); // 105 + 12 − 5
});

Deno.test("FlightPlan.sentLate(): a resend that left late is still planned behind the packet given up before it", () => {
  const plan = sectorPacketGivenUp();
  plan.add(2048, 1024, 3, 27); // behind #2's write: 105…120
  // It left 0.5 ms after it was due (a send is stamped once it is out). Replanned from the
  // last reply instead, it would start on arrival (32.5) and count as lost at 55.5, while
  // it waits out #2's write on the device; its resend would then wait there beside it.
  plan.sentLate(3, 27.5);
  assertEquals(plan.flights.map((f) => [f.start, f.end]), [[105, 120]]);
  assertEquals(plan.retransmitAt(plan.oldest!, 1, 300), 128);
});
