/**
 * The packets in flight and the sender's prediction of the device's timeline for them:
 * when each arrives, starts and ends (in the reply-arrival frame: device time plus the
 * one-way delay). The pacing aims the next packet from it; the retransmission timers
 * follow it; each reply re-anchors it on what really happened.
 */
import type { PacingModel } from "./pacing.ts";

const SECTOR = 4096;
/**
 * The closest a packet follows the previous one, as a share of a service time: past the
 * moment the device last looks at its queue during the previous one's check, had that
 * begun on arrival (the middle of the check: halfway into a quiet board's service, 42 %
 * into a logging one's; docs/device.md, "Re-entrancy").
 */
const MIN_SPACING = 0.75;

export interface Flight {
  offset: number;
  len: number;
  seq: number;
  sentAt: number;
  /** Predicted arrival at the device. */
  arrival: number;
  start: number;
  end: number;
  /** It fills a 4 KiB sector: the device writes flash before replying. */
  sector: boolean;
  /** The device was predicted idle when it arrived: its round trip is an idle round trip. */
  idle: boolean;
}

export class FlightPlan {
  readonly pacing: PacingModel;
  flights: Flight[] = [];
  /**
   * When the device is free for the first packet in flight: when it finished the last
   * confirmed packet (as far as replies tell), or the predicted end of a packet given up
   * that may still be on it.
   */
  deviceFreeAt = 0;
  /**
   * The last datagram sent, kept when the flights are given up or confirmed past: it may
   * still reach the device, and the next one must not arrive before its check began.
   */
  #tail: Flight | undefined;

  constructor(pacing: PacingModel) {
    this.pacing = pacing;
  }

  get oldest(): Flight | undefined {
    return this.flights[0];
  }

  get last(): Flight | undefined {
    return this.flights[this.flights.length - 1];
  }

  /** Forget every packet in flight; the device is taken as free from `now`. */
  reset(now: number): void {
    this.flights = [];
    this.deviceFreeAt = now;
    this.#tail = undefined;
  }

  /** What the next packet is paced behind: the last in flight, else the last one sent. */
  get pacedBehind(): Flight | undefined {
    return this.last ?? this.#tail;
  }

  /** A packet sent at `now`: predicts its arrival, start and end behind the others. */
  add(offset: number, len: number, seq: number, now: number): Flight {
    const last = this.last;
    const arrival = now + this.pacing.twoWayMs;
    if (!last) this.deviceFreeAt = Math.max(this.deviceFreeAt, this.#tail?.end ?? -Infinity);
    const prevEnd = last ? last.end : this.deviceFreeAt;
    const start = Math.max(arrival, prevEnd);
    const sector = (offset + len) % SECTOR === 0;
    const flight: Flight = {
      offset,
      len,
      seq,
      sentAt: now,
      arrival,
      start,
      end: start + this.pacing.serviceMs(sector),
      sector,
      idle: !last && prevEnd <= arrival,
    };
    this.flights.push(flight);
    this.#tail = flight;
    return flight;
  }

  /** A packet that only keeps a retransmission timer running (a probe). */
  placeholder(offset: number, len: number, seq: number, now: number): void {
    this.flights.push({
      offset,
      len,
      seq,
      sentAt: now,
      arrival: now,
      start: now,
      end: now,
      sector: false,
      idle: false,
    });
  }

  /** The datagram really left at `at` (after signing it): shift it and those behind it. */
  sentLate(seq: number, at: number): void {
    const i = this.flights.findIndex((f) => f.seq === seq);
    const f = this.flights[i];
    if (!f || at <= f.sentAt) return;
    f.arrival += at - f.sentAt;
    f.sentAt = at;
    this.#replan(i, this.flights[i - 1]?.end ?? this.deviceFreeAt);
  }

  /**
   * A reply at `now` confirmed every byte before `upTo`: re-anchor on it. `answered`: the
   * datagram it answers, if known (the last one sent, answered, is off the device; a
   * reply to an earlier copy of the same packet says nothing of it).
   */
  confirm(upTo: number, now: number, answered?: number): void {
    this.flights = this.flights.filter((f) => f.offset >= upTo);
    this.deviceFreeAt = now;
    const tail = this.#tail;
    if (tail?.seq === answered) this.#tail = undefined;
    this.#replan(0, now);
    if (tail && this.#tail && tail.offset + tail.len <= upTo) {
      // A copy of a packet the device is past: a duplicate or an unexpected offset to it,
      // checked and dropped, no sector written (docs/device.md, "What the server does with
      // a datagram"). Planned as a write, it put the next packet 50 ms behind a resend.
      tail.sector = false;
      tail.start = Math.max(tail.arrival, this.last?.end ?? now);
      tail.end = tail.start + this.pacing.serviceMs(false);
    }
  }

  #replan(from: number, prevEnd: number): void {
    for (const g of this.flights.slice(from)) {
      g.start = Math.max(g.arrival, prevEnd);
      g.end = g.start + this.pacing.serviceMs(g.sector);
      prevEnd = g.end;
    }
  }

  /**
   * How far into `pacedBehind`'s predicted service the next packet is aimed. Behind a
   * packet that fills a sector and was given up, into its check, not its write: if a loss
   * before it made the device drop it, the device is idle once that check is over (a quiet
   * board waited 25-30 ms more, every such loss); if the device took it, the packet waits
   * out the write, the only one waiting, and the plan still puts the next ones behind it.
   */
  get aimMs(): number {
    const behind = this.pacedBehind;
    return this.pacing.aimBehind(behind !== undefined && behind.sector && this.last !== undefined);
  }

  /** When the next packet should leave: its arrival aimed just after the last one's check. */
  nextSendAt(): number | undefined {
    const behind = this.pacedBehind;
    if (!behind) return undefined;
    // Never right behind it: a model that just moved (a service estimate that fell, and
    // the network's share of the round trip that rose with it) must not put two datagrams
    // on the wire closer than the device takes them.
    return Math.max(
      behind.start + this.aimMs - this.pacing.twoWayMs,
      behind.sentAt + MIN_SPACING * this.pacing.serviceMs(false),
    );
  }

  /** When `f` counts as lost. */
  retransmitAt(f: Flight, backoff: number, initialRtoMs: number): number {
    const base = this.pacing.measured
      ? f.end + this.pacing.guardMs * backoff
      : f.sentAt + initialRtoMs * backoff;
    return Math.min(base, f.sentAt + 1000);
  }

  /** When the last packet in flight counts as lost. */
  lastDeadline(backoff: number, initialRtoMs: number): number {
    return Math.max(...this.flights.map((f) => this.retransmitAt(f, backoff, initialRtoMs)));
  }
}
