/**
 * When the background signer gets work. A 2048-bit signature holds a core for about 1.6 ms
 * on a small machine. Signed one at a time as replies come in (every 4 ms from a quiet
 * board), the signer keeps a core busy a third of the time, and the moments a paced
 * packet must leave, or the device (a process on the same machine, in tests and benches)
 * must read it, often find both cores taken: a packet a few milliseconds late, the next
 * one on time, and the two meet in the device's signature check (docs/device.md,
 * "Re-entrancy"). So the work goes out in the sender's quiet moments, as much as fits
 * before its next send can come (while the device writes a sector there are tens of
 * milliseconds); only when fewer than `MIN_AHEAD` packets are ready is it asked at once.
 * Before the block size is known, the packets a transfer opens with (`openingPackets`).
 */
import { packetLength } from "../format/packet.ts";

/** Packets signed ahead of the confirmed offset: the least, and the most worth keeping. */
const MIN_AHEAD = 12;
const MAX_AHEAD = 48;
/** The shortest quiet gap worth starting a batch in, ms. */
const QUIET_MS = 5;
/** What is kept clear before the next send, ms. */
const CLEARANCE_MS = 1;
/** Packets of each block size a transfer may need before it knows its block size. */
const OPENING_PER_BLOCK = 6;

export class SignSchedule {
  readonly #size: number;
  #block = 0;
  /** Every packet below this offset (in `#block`-byte packets) has been asked for. */
  #upTo = 0;

  constructor(size: number) {
    this.#size = size;
  }

  /**
   * The packets to sign now. `quietMs`: how long until the sender may next send (0 when it
   * may at any moment); `signMs`: what one signature costs.
   */
  next(confirmed: number, block: number, quietMs: number, signMs: number): [number, number][] {
    const from = confirmed - confirmed % block;
    if (block !== this.#block || this.#upTo < from) {
      this.#block = block;
      this.#upTo = from;
    }
    const ahead = (this.#upTo - from) / block;
    const fits = quietMs >= QUIET_MS ? Math.floor((quietMs - CLEARANCE_MS) / signMs) : 0;
    const wanted = Math.min(MAX_AHEAD - ahead, Math.max(MIN_AHEAD - ahead, fits));
    const items: [number, number][] = [];
    for (let i = 0; i < wanted && this.#upTo < this.#size; i++) {
      const o = this.#upTo;
      const len = packetLength(o, block, this.#size);
      items.push([o, len]);
      this.#upTo = o + len;
    }
    return items;
  }
}

/**
 * What a transfer sends first, whichever block size the link passes: at each size, the
 * probe at offset 0, the resolving packet and the first data packets. Ordered by when they
 * are needed (every size's probe first), to be signed while the sender sets up and probes
 * (on the spot, the first five datagrams of a quiet board at MTU 548 left 2-6 ms late each).
 */
export function openingPackets(size: number, blocks: number[]): [number, number][] {
  const items = new Map<string, [number, number]>();
  for (let rank = 0; rank < OPENING_PER_BLOCK; rank++) {
    for (const block of blocks) {
      const offset = rank * block;
      if (offset >= size) continue;
      const len = packetLength(offset, block, size);
      items.set(`${offset}:${len}`, [offset, len]);
    }
  }
  return [...items.values()];
}
