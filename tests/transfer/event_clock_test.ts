import { assertEquals } from "../_assert.ts";
import { EventClock } from "../../lib/transfer/event_clock.ts";

Deno.test("EventClock: a reply keeps the time the system received it, though read after a send", () => {
  // Replies the device sends 17 ms apart; the first is read 7 ms late, after a packet was
  // signed on the spot and sent. Its gap to the next reply is the device's 17 ms, not 10.
  const clock = new EventClock();
  clock.at(100); // a timer: a packet is due
  const first = clock.reply(118, 111); // received at 111 while signing; read at 118, after the send
  const second = clock.reply(128.2, 128);
  assertEquals([first, second], [111, 128]);
  assertEquals(second - first, 17);
});

Deno.test("EventClock: never before an event the engine has handled; without a receive time, the read time", () => {
  const clock = new EventClock();
  assertEquals(clock.at(50), 50);
  assertEquals(clock.reply(60, 45), 50); // received before a timer handled at 50: after it
  assertEquals(clock.reply(70), 70);
  assertEquals(clock.reply(80, 95), 80); // a receive time ahead of this clock: the read time
  assertEquals(clock.at(75), 80);
});
