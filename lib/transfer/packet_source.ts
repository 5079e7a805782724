/**
 * Where the datagrams come from: signed on the fly from a firmware image (with a cache
 * that signs ahead of the sender), or taken as they are from a canned `.ota` file.
 */
import { type CannedFile } from "../format/canned.ts";
import { openingPackets } from "./sign_schedule.ts";
import {
  datagramSize,
  makeEndPacket,
  parseRequestHeader,
  signBody,
  type Signer,
  withSeq,
} from "../format/packet.ts";

export interface PacketSource {
  readonly size: number;
  /** Block sizes the sender may use, largest first. */
  readonly blocks: number[];
  /** Length of the offset-0 packet used for recovery. */
  readonly recoveryLen: number;
  /** The datagram for a transmission; `seq` is the sender's number for it. */
  datagram(seq: number, offset: number, len: number): Uint8Array;
  endPacket(seq: number): Uint8Array;
  /** The sender's seq for a reply's seq (a canned file carries its own numbers). */
  senderSeq(replySeq: number): number;
  /** Asks for packets that will soon be needed to be signed in the background. */
  signAhead(items: [offset: number, len: number][]): void;
  /** What one signature costs, ms (measured; 0 when nothing is signed here). */
  readonly signMs: number;
  /** Stops background signing. */
  close(): void;
}

/** The largest unfragmented UDP payload on a 1500-byte Ethernet MTU. */
export const MAX_UNFRAGMENTED = 1472;
export const AUTO_BLOCKS = [1024, 512, 256];

/**
 * Signs `firmware` on the fly. With `background`, a worker signs ahead of the sender; a
 * body that is not ready when needed is signed on the spot.
 */
export function liveSource(
  firmware: Uint8Array,
  signer: Signer & { pem?: string },
  blocks: number[],
  background = true,
): PacketSource {
  const cache = new Map<string, Uint8Array>();
  const requested = new Set<string>();
  const usable = blocks.filter((b) => datagramSize(b, signer.signatureLength) <= MAX_UNFRAGMENTED);
  if (usable.length === 0) {
    throw new RangeError(
      `no block size fits one unfragmented datagram with a ${signer.signatureLength * 8}-bit key`,
    );
  }
  let worker: Worker | undefined;
  /** Until the signer has timed one: a 2048-bit signature on a slow core. */
  let signMs = 2;
  if (background && signer.pem) {
    worker = new Worker(new URL("./_sign_worker.ts", import.meta.url), { type: "module" });
    worker.postMessage({
      type: "init",
      firmware,
      pem: signer.pem,
      signatureLength: signer.signatureLength,
    });
    worker.onmessage = (e: MessageEvent) => {
      const { offset, len, body, ms } = e.data as {
        offset: number;
        len: number;
        body: Uint8Array;
        ms: number;
      };
      cache.set(`${offset}:${len}`, body);
      signMs += (ms - signMs) / 4;
    };
  }
  const body = (offset: number, len: number) => {
    const key = `${offset}:${len}`;
    let b = cache.get(key);
    if (!b) {
      b = signBody(offset, firmware.subarray(offset, offset + len), signer);
      cache.set(key, b);
    }
    return b;
  };
  let end: Uint8Array | undefined;
  const source: PacketSource = {
    size: firmware.length,
    blocks: usable,
    recoveryLen: Math.min(256, usable[usable.length - 1]!),
    datagram: (seq, offset, len) => withSeq(seq, body(offset, len)),
    endPacket: (seq) => {
      end ??= makeEndPacket(0, signer).subarray(4);
      return withSeq(seq, end);
    },
    senderSeq: (s) => s,
    get signMs() {
      return signMs;
    },
    signAhead(items) {
      if (!worker) return;
      const fresh = items.filter(([o, l]) => {
        const key = `${o}:${l}`;
        if (o >= firmware.length || requested.has(key) || cache.has(key)) return false;
        requested.add(key);
        return true;
      });
      if (fresh.length) worker.postMessage({ type: "sign", items: fresh });
    },
    close() {
      worker?.terminate();
      worker = undefined;
    },
  };
  source.signAhead(openingPackets(firmware.length, usable));
  return source;
}

export function cannedSource(file: CannedFile): PacketSource {
  const byKey = new Map<string, Uint8Array>();
  for (const p of file.packets) {
    const h = parseRequestHeader(p)!;
    byKey.set(`${h.offset}:${h.len}`, p);
  }
  const storedToSender = new Map<number, number>();
  let endIndex = 0;
  return {
    size: file.payload.length,
    blocks: [file.block],
    recoveryLen: file.block,
    datagram(seq, offset, len) {
      const p = byKey.get(`${offset}:${len}`);
      if (!p) {
        throw new RangeError(`the canned file has no packet at offset ${offset} of length ${len}`);
      }
      storedToSender.set(parseRequestHeader(p)!.seq, seq);
      return p;
    },
    endPacket(seq) {
      const p = file.endPackets[endIndex++ % file.endPackets.length]!;
      storedToSender.set(parseRequestHeader(p)!.seq, seq);
      return p;
    },
    senderSeq: (s) => storedToSender.get(s) ?? -1,
    signMs: 0,
    signAhead() {},
    close() {},
  };
}
