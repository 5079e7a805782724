/**
 * Canned `.ota` files (docs/device.md, "Canned .ota files"): `yaota8266\x01`, then each packet
 * (end packets included) as `u16 length + bytes`, then `u16 0`, then SHA1 of all before it.
 */
import { createHash } from "node:crypto";
import { concat, equalBytes, readU16, toHex, writeU16 } from "../_bytes.ts";
import { CannedFileError } from "../errors.ts";
import {
  END_PACKET_COPIES,
  isEndPacket,
  makeEndPacket,
  makePacket,
  parseRequestHeader,
  type Signer,
} from "./packet.ts";

export const CANNED_MAGIC = new TextEncoder().encode("yaota8266\x01");

export function isCanned(bytes: Uint8Array): boolean {
  return bytes.length >= CANNED_MAGIC.length &&
    equalBytes(bytes.subarray(0, CANNED_MAGIC.length), CANNED_MAGIC);
}

/** Signs `firmware` in `block`-byte packets, seq from 1, then the end packets. */
export function firmwarePackets(firmware: Uint8Array, block: number, signer: Signer): Uint8Array[] {
  const packets: Uint8Array[] = [];
  let seq = 1;
  for (let offset = 0; offset < firmware.length; offset += block) {
    packets.push(makePacket(seq++, offset, firmware.subarray(offset, offset + block), signer));
  }
  for (let i = 0; i < END_PACKET_COPIES; i++) packets.push(makeEndPacket(seq++, signer));
  return packets;
}

export function encodeCanned(packets: readonly Uint8Array[]): Uint8Array {
  const parts: Uint8Array[] = [CANNED_MAGIC];
  for (const p of packets) {
    const len = new Uint8Array(2);
    writeU16(len, 0, p.length);
    parts.push(len, p);
  }
  const body = concat(parts);
  const digest = new Uint8Array(createHash("sha1").update(body).digest());
  return concat([body, new Uint8Array(2), digest]);
}

export interface CannedFile {
  /** Data packets in file order. */
  packets: Uint8Array[];
  /** The end packets, as stored. */
  endPackets: Uint8Array[];
  /** The firmware the packets carry, reassembled by offset. */
  payload: Uint8Array;
  /** Largest data length: the block size it was made with. */
  block: number;
}

/**
 * Parses and checks a canned file: magic, framing, SHA1 trailer, contiguous offsets.
 * @throws {CannedFileError} With what is wrong, before anything is sent.
 */
export function decodeCanned(bytes: Uint8Array, where = "canned file"): CannedFile {
  if (!isCanned(bytes)) throw new CannedFileError(`${where}: not a canned .ota file (bad magic)`);
  const all: Uint8Array[] = [];
  let at = CANNED_MAGIC.length;
  for (;;) {
    if (at + 2 > bytes.length) {
      throw new CannedFileError(`${where}: truncated at byte ${at} (no end marker)`);
    }
    const len = readU16(bytes, at);
    if (len === 0) break;
    if (at + 2 + len > bytes.length) {
      throw new CannedFileError(
        `${where}: truncated: a ${len}-byte packet at byte ${at} runs past the end`,
      );
    }
    all.push(bytes.subarray(at + 2, at + 2 + len));
    at += 2 + len;
  }
  const stored = bytes.subarray(at + 2);
  const digest = new Uint8Array(createHash("sha1").update(bytes.subarray(0, at)).digest());
  if (stored.length !== 20 || !equalBytes(stored, digest)) {
    throw new CannedFileError(
      `${where}: SHA1 trailer ${
        stored.length === 20 ? toHex(stored) : `(${stored.length} bytes)`
      } does not match ` +
        `the contents (${
          toHex(digest)
        }): the file is corrupted. Make it again with 'deno task sign'.`,
    );
  }
  const packets: Uint8Array[] = [];
  const endPackets: Uint8Array[] = [];
  const chunks: Uint8Array[] = [];
  let expected = 0;
  let block = 0;
  for (const p of all) {
    const h = parseRequestHeader(p);
    if (!h) throw new CannedFileError(`${where}: a packet of ${p.length} bytes is too short`);
    if (isEndPacket(h)) {
      endPackets.push(p);
      continue;
    }
    if (endPackets.length > 0) throw new CannedFileError(`${where}: data after the end packet`);
    if (h.offset !== expected) {
      throw new CannedFileError(`${where}: packet at offset ${h.offset}, expected ${expected}`);
    }
    packets.push(p);
    chunks.push(p.subarray(12, 12 + h.len));
    expected += h.len;
    block = Math.max(block, h.len);
  }
  if (packets.length === 0) throw new CannedFileError(`${where}: holds no data packets`);
  if (endPackets.length === 0) throw new CannedFileError(`${where}: has no end packet`);
  return { packets, endPackets, payload: concat(chunks), block };
}
