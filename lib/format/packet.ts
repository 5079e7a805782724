/**
 * The yaota8266 wire format (docs/device.md, "Wire protocol"). Request:
 * `seq u32 | op u16 | len u16 | offset u32 | data | zero pad | signature`, the part
 * from `op` to the pad is signed; reply: `seq u32 | op,len,offset (8 bytes) | 8 bytes`.
 */
import { createHash } from "node:crypto";
import { concat, readU16, readU32, writeU16, writeU32 } from "../_bytes.ts";

export const SEQ_LENGTH = 4;
export const HEADER_LENGTH = 8;
/** seq + header: the device drops anything shorter than this. */
export const MIN_DATAGRAM = SEQ_LENGTH + HEADER_LENGTH;
export const REPLY_LENGTH = 20;
export const OP_WRITE = 0;
/** The vestigial AES key that precedes the SHA1 in the signed block. */
export const KEY16 = new Uint8Array(16).fill(0x01);
/** key16 + SHA1: what the signature must recover to. */
export const DIGEST_BLOCK_LENGTH = 36;
/** The device's flash buffer: one sector. A block size must divide it. */
export const SECTOR_SIZE = 4096;
/** Times the end packet is sent (the device does not answer it). */
export const END_PACKET_COPIES = 3;
export const END_PACKET_SPACING_MS = 100;

/** Signs a 36-byte digest block: RSA PKCS#1 v1.5 type-1 private-key operation. */
export interface Signer {
  /** Signature length in bytes = modulus length. */
  readonly signatureLength: number;
  sign(block: Uint8Array): Uint8Array;
}

/**
 * The length of the packet at `offset` in an image of `size` bytes sent in `block`-byte
 * blocks: it ends at the next block boundary (so none crosses a 4 KiB sector) or at the
 * image's end.
 */
export function packetLength(offset: number, block: number, size: number): number {
  return Math.min(block - offset % block, size - offset);
}

export function padLength(dataLength: number): number {
  return (16 - (HEADER_LENGTH + dataLength) % 16) % 16;
}

/** The signed region: header, data, zero pad. */
export function signedRegion(offset: number, data: Uint8Array, op = OP_WRITE): Uint8Array {
  const region = new Uint8Array(HEADER_LENGTH + data.length + padLength(data.length));
  writeU16(region, 0, op);
  writeU16(region, 2, data.length);
  writeU32(region, 4, offset);
  region.set(data, HEADER_LENGTH);
  return region;
}

export function digestBlock(region: Uint8Array): Uint8Array {
  return concat([KEY16, new Uint8Array(createHash("sha1").update(region).digest())]);
}

/** Size on the wire of a request carrying `dataLength` bytes. */
export function datagramSize(dataLength: number, signatureLength: number): number {
  return SEQ_LENGTH + HEADER_LENGTH + dataLength + padLength(dataLength) + signatureLength;
}

/** The signed part of a request, without seq: reusable across retransmissions and seqs. */
export function signBody(offset: number, data: Uint8Array, signer: Signer): Uint8Array {
  const region = signedRegion(offset, data);
  return concat([region, signer.sign(digestBlock(region))]);
}

/** A complete request datagram. */
export function withSeq(seq: number, body: Uint8Array): Uint8Array {
  const out = new Uint8Array(SEQ_LENGTH + body.length);
  writeU32(out, 0, seq >>> 0);
  out.set(body, SEQ_LENGTH);
  return out;
}

export function makePacket(
  seq: number,
  offset: number,
  data: Uint8Array,
  signer: Signer,
): Uint8Array {
  return withSeq(seq, signBody(offset, data, signer));
}

/** The end packet: `len = 0, offset = 0`. */
export function makeEndPacket(seq: number, signer: Signer): Uint8Array {
  return makePacket(seq, 0, new Uint8Array(0), signer);
}

export interface RequestHeader {
  seq: number;
  op: number;
  len: number;
  offset: number;
}

/** Reads a request's header fields; undefined for a datagram under 12 bytes. */
export function parseRequestHeader(datagram: Uint8Array): RequestHeader | undefined {
  if (datagram.length < MIN_DATAGRAM) return undefined;
  return {
    seq: readU32(datagram, 0),
    op: readU16(datagram, 4),
    len: readU16(datagram, 6),
    offset: readU32(datagram, 8),
  };
}

export function isEndPacket(h: RequestHeader): boolean {
  return h.len === 0 && h.offset === 0;
}

/** The device's reply: seq and the request's 8 header bytes, then 8 undefined bytes. */
export function makeReply(request: Uint8Array): Uint8Array {
  const reply = new Uint8Array(REPLY_LENGTH);
  reply.set(request.subarray(0, MIN_DATAGRAM));
  return reply;
}

export type Reply = RequestHeader;

/** Parses a reply; undefined if it is not one. */
export function parseReply(datagram: Uint8Array): Reply | undefined {
  if (datagram.length !== REPLY_LENGTH) return undefined;
  return parseRequestHeader(datagram);
}
