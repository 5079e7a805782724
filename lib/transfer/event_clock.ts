/**
 * The transfer engine's clock, as the driver (`send_firmware.ts`) keeps it: the engine sees
 * its events in the order they happened, and a reply at the moment the system received it
 * (`kernel_udp.ts`), not when this thread got round to reading it. Pure.
 *
 * The engine times the device from the gaps between replies. A reply that came while this
 * thread was busy sending (signing a packet on the spot can take 7 ms on a busy machine)
 * is read after that send; timed from the send, its gap to the next reply came out short
 * by as much, and a service estimate taken from such gaps puts packets into each other's
 * checks (docs/device.md, "Re-entrancy"). So a send is not an event of this clock: only
 * timers, replies and the start are.
 */
export class EventClock {
  #last = 0;

  /** A timer, the start, or a check of the app, at `now`. */
  at(now: number): number {
    this.#last = Math.max(this.#last, now);
    return this.#last;
  }

  /**
   * A reply read at `now`, which the system received at `receivedAt` (when the socket
   * says): never before an event the engine has already handled.
   * @example
   * ```ts
   * import { EventClock } from "./event_clock.ts";
   * const clock = new EventClock();
   * clock.at(10); // a timer
   * // a packet sent at 25; a reply that came at 20 is read at 30:
   * clock.reply(30, 20); // 20
   * ```
   */
  reply(now: number, receivedAt?: number): number {
    return this.at(receivedAt === undefined ? now : Math.min(now, receivedAt));
  }
}
