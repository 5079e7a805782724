/**
 * WebREPL's file-transfer records, pure: what travels in binary frames beside the
 * REPL's text frames (docs/device.md, "WebREPL", "File transfer"). The board's side is
 * `extmod/modwebrepl.c`; every multi-byte field is little-endian, as on the ESP8266.
 *
 * ```
 * request, client → board, 82 bytes:
 *   0  "WA"           signature (the board does not check it)
 *   2  u8  op         1 put, 2 get, 3 version
 *   3  u8  flags      0 (unused)
 *   4  u64 offset     0 (unused: the board's seek is compiled out)
 *  12  u32 size       put: the file's length; otherwise 0
 *  16  u16 nameLength bytes of the name (informative: the board reads the name up to its NUL)
 *  18  64 bytes name  UTF-8, NUL-padded; at most 63 bytes so that a NUL ends it
 * reply, board → client, 4 bytes: "WB", u16 status (0 = done)
 * version reply: 3 bytes, major, minor, micro (no "WB")
 * get chunk, board → client: u16 length, then that many bytes (at most 256); length 0 ends
 * ```
 */
import { concat, readU16, writeU16, writeU32 } from "../_bytes.ts";

export const FILE_OP = { put: 1, get: 2, version: 3 } as const;
export type FileOp = typeof FILE_OP[keyof typeof FILE_OP];

/** `struct webrepl_file`, packed: 2 + 1 + 1 + 8 + 4 + 2 + 64. */
export const REQUEST_BYTES = 82;
export const REQUEST_SIGNATURE = [0x57, 0x41] as const; // "WA"
export const REPLY_SIGNATURE = [0x57, 0x42] as const; // "WB"
export const REPLY_BYTES = 4;
export const VERSION_REPLY_BYTES = 3;
/** The name field; the board copies it up to the first NUL, so one byte must stay 0. */
export const NAME_FIELD_BYTES = 64;
export const MAX_NAME_BYTES = NAME_FIELD_BYTES - 1;
/** The board reads at most this much of a file per get chunk (`write_file_chunk`). */
export const GET_CHUNK_BYTES = 256;
/** The client's ack before each get chunk: one byte, 0 by convention (the board ignores its value). */
export const GET_ACK = new Uint8Array([0]);
/** The status a board sends for "done": the only one MicroPython's board ever sends. */
export const STATUS_OK = 0;

const OFFSET_AT = 4;
const SIZE_AT = 12;
const NAME_LENGTH_AT = 16;
const NAME_AT = 18;

const encoder = new TextEncoder();

export interface FileRequest {
  op: number;
  /** Raw flags byte (0 from every client). */
  flags: number;
  /** The u64 offset field (0 from every client; the board ignores it). */
  offset: bigint;
  /** Put: bytes that follow. */
  size: number;
  /** The name length field, as sent (the board does not use it). */
  nameLength: number;
  /** The name up to its first NUL, decoded as UTF-8 (how the board reads it). */
  name: string;
}

/**
 * Why `name` cannot be sent, or undefined: empty, over 63 UTF-8 bytes, a control
 * character (a NUL ends the board's name; a line break or ESC only confuses), or not
 * valid UTF-8 (U+FFFD, as a byte that is not UTF-8 reaches us from the command line).
 */
export function checkRemoteName(name: string): string | undefined {
  const bytes = encoder.encode(name).length;
  if (bytes === 0) return "the remote file name is empty";
  const chars = nameCharsProblem(name);
  if (chars) return chars;
  const shown = JSON.stringify(name);
  if (bytes > MAX_NAME_BYTES) {
    return `the remote file name ${shown} is ${bytes} bytes in UTF-8: WebREPL's record ` +
      `holds at most ${MAX_NAME_BYTES} (a ${NAME_FIELD_BYTES}-byte field ending in a NUL)`;
  }
  return undefined;
}

/**
 * Why the characters of `name` cannot go to the board, or undefined: a control character
 * (a NUL ends the board's name; a line break or ESC only confuses), or U+FFFD (a byte
 * that was not UTF-8 on the command line). Pure.
 */
export function nameCharsProblem(name: string): string | undefined {
  // JSON's quoting shows a control character as an escape, never raw.
  const shown = JSON.stringify(name);
  // deno-lint-ignore no-control-regex
  const control = /[\x00-\x1f\x7f]/.exec(name);
  if (control) {
    return `the remote file name ${shown} holds a control character ` +
      `(U+${control[0].charCodeAt(0).toString(16).padStart(4, "0").toUpperCase()}): ` +
      "a board's file name cannot carry it safely; choose another name";
  }
  if (name.includes("\ufffd") || /\p{Cs}/u.test(name)) {
    return `the remote file name ${shown} is not valid UTF-8 (a byte that is not UTF-8 arrives ` +
      "as U+FFFD): the board would store another name than the one typed; choose a UTF-8 name";
  }
  return undefined;
}

/**
 * An 82-byte request record.
 * @throws {RangeError} If the name does not fit (see `checkRemoteName`) or `size` is not a u32.
 */
export function encodeRequest(
  request: { op: FileOp; name?: string; size?: number },
): Uint8Array {
  const name = encoder.encode(request.name ?? "");
  const size = request.size ?? 0;
  if (request.name !== undefined) {
    const problem = checkRemoteName(request.name);
    if (problem) throw new RangeError(problem);
  }
  if (!Number.isInteger(size) || size < 0 || size > 0xffffffff) {
    throw new RangeError(`a WebREPL put carries at most 4 GiB (a u32 size), got ${size}`);
  }
  const out = new Uint8Array(REQUEST_BYTES);
  out.set(REQUEST_SIGNATURE, 0);
  out[2] = request.op;
  out[3] = 0; // flags
  new DataView(out.buffer).setBigUint64(OFFSET_AT, 0n, true);
  writeU32(out, SIZE_AT, size);
  writeU16(out, NAME_LENGTH_AT, name.length);
  out.set(name, NAME_AT);
  return out;
}

/**
 * Reads a request record as the board does: no signature check, the name up to its
 * first NUL (or all 64 bytes if there is none).
 * @throws {RangeError} If `bytes` is not 82 bytes long.
 */
export function decodeRequest(bytes: Uint8Array): FileRequest {
  if (bytes.length !== REQUEST_BYTES) {
    throw new RangeError(`a WebREPL request record is ${REQUEST_BYTES} bytes, got ${bytes.length}`);
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const field = bytes.subarray(NAME_AT, NAME_AT + NAME_FIELD_BYTES);
  const nul = field.indexOf(0);
  return {
    op: bytes[2]!,
    flags: bytes[3]!,
    offset: view.getBigUint64(OFFSET_AT, true),
    size: view.getUint32(SIZE_AT, true),
    nameLength: view.getUint16(NAME_LENGTH_AT, true),
    name: new TextDecoder().decode(nul < 0 ? field : field.subarray(0, nul)),
  };
}

/** The board's 4-byte reply: "WB", u16 status. */
export function encodeReply(status: number): Uint8Array {
  const out = new Uint8Array(REPLY_BYTES);
  out.set(REPLY_SIGNATURE, 0);
  writeU16(out, 2, status);
  return out;
}

/** The status in a 4-byte reply, or undefined if it does not start with "WB". */
export function decodeReply(bytes: Uint8Array): number | undefined {
  if (
    bytes.length !== REPLY_BYTES || bytes[0] !== REPLY_SIGNATURE[0] ||
    bytes[1] !== REPLY_SIGNATURE[1]
  ) {
    return undefined;
  }
  return readU16(bytes, 2);
}

/** One get chunk as the board frames it: u16 length, then the bytes. */
export function encodeGetChunk(data: Uint8Array): Uint8Array {
  if (data.length > 0xffff) throw new RangeError("a get chunk carries at most 65535 bytes");
  const head = new Uint8Array(2);
  writeU16(head, 0, data.length);
  return concat([head, data]);
}

/** The length prefix of a get chunk. */
export function decodeChunkLength(bytes: Uint8Array): number {
  return readU16(bytes, 0);
}

/** The version reply's three bytes as "1.19.1". */
export function decodeVersion(bytes: Uint8Array): string {
  return Array.from(bytes.subarray(0, VERSION_REPLY_BYTES)).join(".");
}

/** The version reply for "1.19.1" (missing parts are 0). */
export function encodeVersion(release: string): Uint8Array {
  const [major = 0, minor = 0, micro = 0] = release.split(".").map((p) => Number(p) || 0);
  return new Uint8Array([major & 0xff, minor & 0xff, micro & 0xff]);
}
