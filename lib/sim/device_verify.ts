/**
 * The ota-server's signature check (docs/device.md, "Wire protocol", rule 1): RSA public
 * operation with e=3 over the last `modulus length` bytes, PKCS#1 v1.5 type-1 unpadding,
 * a 36-byte payload whose last 20 bytes are SHA1(header + data + pad) (the ota-server
 * does not look at the vestigial key16 before it).
 */
import { createHash } from "node:crypto";
import { toHex } from "../_bytes.ts";
import { DIGEST_BLOCK_LENGTH, HEADER_LENGTH, padLength, SEQ_LENGTH } from "../format/packet.ts";

export interface PublicKeyOp {
  n: bigint;
  /** Modulus length in bytes: the signature length. */
  length: number;
}

export function publicKeyOp(modulus: Uint8Array): PublicKeyOp {
  return { n: BigInt("0x" + toHex(modulus)), length: modulus.length };
}

function rsaPublic(key: PublicKeyOp, signature: Uint8Array): Uint8Array | undefined {
  const s = BigInt("0x" + (toHex(signature) || "0"));
  if (s >= key.n) return undefined;
  const m = (s * s % key.n) * s % key.n;
  const hex = m.toString(16).padStart(key.length * 2, "0");
  return Uint8Array.from(hex.match(/../g) ?? [], (h: string) => parseInt(h, 16));
}

/** Recovers the payload of a type-1 block, or undefined if the padding is wrong. */
function unpadType1(block: Uint8Array): Uint8Array | undefined {
  if (block[0] !== 0x00 || block[1] !== 0x01) return undefined;
  let i = 2;
  while (i < block.length && block[i] === 0xff) i++;
  if (i < 10 || block[i] !== 0x00) return undefined;
  return block.subarray(i + 1);
}

/**
 * True if the datagram's signature is valid for `key` and covers its header, data and
 * pad exactly as its `len` field says.
 */
export function verifyDatagram(datagram: Uint8Array, key: PublicKeyOp): boolean {
  const signedLength = datagram.length - SEQ_LENGTH - key.length;
  if (signedLength < HEADER_LENGTH) return false;
  const region = datagram.subarray(SEQ_LENGTH, SEQ_LENGTH + signedLength);
  const len = region[2]! | (region[3]! << 8);
  if (HEADER_LENGTH + len + padLength(len) !== signedLength) return false;
  const block = rsaPublic(key, datagram.subarray(SEQ_LENGTH + signedLength));
  const payload = block && unpadType1(block);
  if (!payload || payload.length !== DIGEST_BLOCK_LENGTH) return false;
  const digest = createHash("sha1").update(region).digest();
  return digest.every((b, i) => payload[16 + i] === b);
}
