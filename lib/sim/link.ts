/**
 * The network between a client and the virtual device: seeded loss, duplication,
 * reordering, one-way delay, a timed outage, and targeted reply loss for tests. Pure:
 * a datagram and the time go in, its deliveries (time, bytes) come out.
 */
import { type Random, seededRandom } from "../_random.ts";
import { parseReply, parseRequestHeader } from "../format/packet.ts";

export interface LinkOptions {
  loss?: number;
  dup?: number;
  reorder?: number;
  /** One-way delay, ms, each direction. */
  delayMs?: number;
  /**
   * Mean extra delay, ms, each direction: exponentially distributed, first in first out (a
   * datagram held up holds up those behind it, as a busy receiver's socket does).
   */
  jitterMs?: number;
  seed?: number;
  /** A link outage of `ms` that starts when the device confirms `afterBytes` bytes; that reply is lost with it. */
  outage?: { afterBytes: number; ms: number };
  /** Replies to these requests are lost (test hook: "offset:len"). */
  loseReplies?: string[];
  /**
   * Replies to these requests are held up by this many ms more (test hook: "offset:len" to
   * ms), as a busy sender reads them late.
   */
  holdReplies?: Record<string, number>;
  /**
   * The first datagram to the device with each of these "offset:len" is lost; one listed
   * twice, its first two copies (test hook).
   */
  losePackets?: string[];
}

export interface Delivery {
  at: number;
  data: Uint8Array;
}

export class Link {
  readonly options: LinkOptions;
  #random: Random;
  #outageFrom = Infinity;
  #outageUntil = -Infinity;
  #outageDone = false;
  /** Datagrams dropped by the link, per direction (for reports). */
  dropped = { toDevice: 0, toClient: 0 };

  constructor(options: LinkOptions = {}) {
    this.options = options;
    this.#random = seededRandom(options.seed ?? 1);
  }

  inOutage(now: number): boolean {
    return now >= this.#outageFrom && now < this.#outageUntil;
  }

  /** The outage window, once it has started. */
  get outage(): { from: number; until: number } | undefined {
    return this.#outageDone ? { from: this.#outageFrom, until: this.#outageUntil } : undefined;
  }

  /** How many copies of each "offset:len" of `losePackets` were lost so far. */
  #lostPackets = new Map<string, number>();
  /** The last delivery in each direction (with jitter, none overtakes another). */
  #lastAt = { toDevice: -Infinity, toClient: -Infinity };

  toDevice(now: number, data: Uint8Array): Delivery[] {
    if (this.inOutage(now)) {
      this.dropped.toDevice++;
      return [];
    }
    if (this.options.losePackets && this.#losesCopy(data)) {
      this.dropped.toDevice++;
      return [];
    }
    return this.#impair(now, data, "toDevice");
  }

  /** Is this copy of a request one of the `losePackets` copies still to lose? Counts it. */
  #losesCopy(data: Uint8Array): boolean {
    const h = parseRequestHeader(data);
    if (!h) return false;
    const key = `${h.offset}:${h.len}`;
    const lost = this.#lostPackets.get(key) ?? 0;
    if (lost >= this.options.losePackets!.filter((k) => k === key).length) return false;
    this.#lostPackets.set(key, lost + 1);
    return true;
  }

  toClient(now: number, data: Uint8Array): Delivery[] {
    const reply = parseReply(data);
    const outage = this.options.outage;
    if (
      outage && !this.#outageDone && reply && reply.len > 0 &&
      reply.offset + reply.len >= outage.afterBytes
    ) {
      this.#outageDone = true;
      this.#outageFrom = now;
      this.#outageUntil = now + outage.ms;
    }
    if (this.inOutage(now)) {
      this.dropped.toClient++;
      return [];
    }
    if (reply && this.options.loseReplies?.includes(`${reply.offset}:${reply.len}`)) {
      this.dropped.toClient++;
      return [];
    }
    const out = this.#impair(now, data, "toClient");
    const held = reply && this.options.holdReplies?.[`${reply.offset}:${reply.len}`];
    return held ? out.map((d) => ({ ...d, at: d.at + held })) : out;
  }

  #impair(now: number, data: Uint8Array, direction: "toDevice" | "toClient"): Delivery[] {
    const o = this.options;
    const r = this.#random;
    if (o.loss && r() < o.loss) {
      this.dropped[direction]++;
      return [];
    }
    const delay = o.delayMs ?? 0;
    let at = now + delay;
    if (o.jitterMs) {
      at = Math.max(at - o.jitterMs * Math.log(1 - r()), this.#lastAt[direction]);
      this.#lastAt[direction] = at;
    }
    if (o.reorder && r() < o.reorder) at += 2 + r() * (delay + 8);
    const out: Delivery[] = [{ at, data }];
    if (o.dup && r() < o.dup) out.push({ at: at + r() * 2, data });
    return out;
  }
}
