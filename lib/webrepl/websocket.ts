/**
 * The WebSocket pieces WebREPL needs (RFC 6455, the subset MicroPython speaks), pure:
 * the handshake head, its `Sec-WebSocket-Accept` value, a frame encoder and an
 * incremental frame decoder. Deno's built-in `WebSocket` sends lower-case header
 * names, which the device ignores (docs/device.md, "WebREPL"), so the client
 * and the virtual device's server both build on these instead.
 */
import { createHash } from "node:crypto";
import { concat, indexOfBytes } from "../_bytes.ts";
import { WebReplError } from "../errors.ts";

/** RFC 6455 §1.3: appended to the key before hashing. */
export const WEBSOCKET_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

/** The one spelling the device recognises (`websocket_helper.py` compares names exactly). */
export const KEY_HEADER = "Sec-WebSocket-Key";

export const OPCODE = {
  continuation: 0x0,
  text: 0x1,
  binary: 0x2,
  close: 0x8,
  ping: 0x9,
  pong: 0xa,
} as const;

/** Largest payload one frame may carry here: the device has no 64-bit lengths. */
export const MAX_FRAME_PAYLOAD = 0xffff;

const FIN_BIT = 0x80;
const MASK_BIT = 0x80;
const LENGTH_16 = 126;
const LENGTH_64 = 127;
const HEAD_END = new Uint8Array([13, 10, 13, 10]);

const encoder = new TextEncoder();

/** A fresh random `Sec-WebSocket-Key` (16 random bytes, base64). */
export function makeWebSocketKey(): string {
  return btoa(String.fromCharCode(...crypto.getRandomValues(new Uint8Array(16))));
}

/** `Sec-WebSocket-Accept` for `key`: base64(SHA-1(key + GUID)), as the device computes it. */
export function acceptFor(key: string): string {
  return createHash("sha1").update(key + WEBSOCKET_GUID).digest("base64");
}

/**
 * The client's upgrade request. Every header line has a colon and the key header
 * is spelled exactly `Sec-WebSocket-Key`, because the device splits each line at
 * the first `:` and compares names byte for byte.
 */
export function encodeHandshakeRequest(
  options: { host: string; key: string; path?: string },
): Uint8Array {
  return encoder.encode(
    `GET ${options.path ?? "/"} HTTP/1.1\r\n` +
      `Host: ${options.host}\r\n` +
      "Connection: Upgrade\r\n" +
      "Upgrade: websocket\r\n" +
      `${KEY_HEADER}: ${options.key}\r\n` +
      "Sec-WebSocket-Version: 13\r\n" +
      "\r\n",
  );
}

/** The server's `101` reply, as MicroPython's `websocket_helper.server_handshake` sends it. */
export function encodeHandshakeResponse(accept: string): Uint8Array {
  return encoder.encode(
    "HTTP/1.1 101 Switching Protocols\r\n" +
      "Upgrade: websocket\r\n" +
      "Connection: Upgrade\r\n" +
      `Sec-WebSocket-Accept: ${accept}\r\n` +
      "\r\n",
  );
}

export interface HttpHead {
  /** `GET / HTTP/1.1` or `HTTP/1.1 101 Switching Protocols`. */
  startLine: string;
  /** Header lines in order, names exactly as sent (no case folding). */
  headers: [name: string, value: string][];
}

/** The value of the header spelled exactly `name`, as the device looks it up. */
export function exactHeader(head: HttpHead, name: string): string | undefined {
  return head.headers.find(([n]) => n === name)?.[1];
}

/**
 * Collects an HTTP head that may arrive in pieces. `push` returns the head and the
 * bytes after it (the first frames may share a read with the end of the head) once
 * the blank line has come; until then, undefined.
 */
export class HttpHeadReader {
  #buffer: Uint8Array = new Uint8Array(0);

  push(chunk: Uint8Array): { head: HttpHead; rest: Uint8Array } | undefined {
    this.#buffer = concat([this.#buffer, chunk]);
    const end = indexOfBytes(this.#buffer, HEAD_END);
    if (end < 0) return undefined;
    const text = new TextDecoder("latin1").decode(this.#buffer.subarray(0, end));
    const rest = this.#buffer.slice(end + HEAD_END.length);
    this.#buffer = new Uint8Array(0);
    const [startLine = "", ...lines] = text.split("\r\n");
    const headers: [string, string][] = [];
    for (const line of lines) {
      const colon = line.indexOf(":");
      if (colon < 0) continue;
      headers.push([line.slice(0, colon).trim(), line.slice(colon + 1).trim()]);
    }
    return { head: { startLine, headers }, rest };
  }

  /** Bytes received so far without the end of the head. */
  get pending(): number {
    return this.#buffer.length;
  }
}

export interface Frame {
  fin: boolean;
  opcode: number;
  /** Unmasked payload. */
  payload: Uint8Array;
  /** Whether the sender masked it (clients do; the device does not). */
  masked: boolean;
}

/**
 * One frame. A `mask` (4 bytes) makes a client frame; without one it is a server
 * frame, unmasked like the device's.
 * @throws {RangeError} If the payload is over 65535 bytes (the device has no 64-bit lengths).
 */
export function encodeFrame(
  opcode: number,
  payload: Uint8Array,
  mask?: Uint8Array,
  fin = true,
): Uint8Array {
  if (payload.length > MAX_FRAME_PAYLOAD) {
    throw new RangeError(
      `a WebREPL frame carries at most ${MAX_FRAME_PAYLOAD} bytes, got ${payload.length}: split it`,
    );
  }
  if (mask && mask.length !== 4) throw new RangeError("a WebSocket mask is 4 bytes");
  const lengthBytes = payload.length < LENGTH_16 ? 0 : 2;
  const head = 2 + lengthBytes + (mask ? 4 : 0);
  const out = new Uint8Array(head + payload.length);
  out[0] = (fin ? FIN_BIT : 0) | (opcode & 0x0f);
  const maskBit = mask ? MASK_BIT : 0;
  if (lengthBytes === 0) {
    out[1] = maskBit | payload.length;
  } else {
    out[1] = maskBit | LENGTH_16;
    out[2] = payload.length >> 8;
    out[3] = payload.length & 0xff;
  }
  if (mask) {
    out.set(mask, 2 + lengthBytes);
    for (let i = 0; i < payload.length; i++) out[head + i] = payload[i]! ^ mask[i % 4]!;
  } else {
    out.set(payload, head);
  }
  return out;
}

/** A masked client frame with a fresh random mask. */
export function encodeClientFrame(opcode: number, payload: Uint8Array): Uint8Array {
  return encodeFrame(opcode, payload, crypto.getRandomValues(new Uint8Array(4)));
}

/**
 * Turns a byte stream into frames: a frame may be split across reads, and one read
 * may hold several frames. Bytes of an unfinished frame stay buffered.
 */
export class FrameDecoder {
  #buffer: Uint8Array = new Uint8Array(0);

  /**
   * @throws {WebReplError} If a frame uses a 64-bit length (neither side of WebREPL does).
   */
  push(chunk: Uint8Array): Frame[] {
    this.#buffer = this.#buffer.length ? concat([this.#buffer, chunk]) : chunk.slice();
    const frames: Frame[] = [];
    let at = 0;
    while (true) {
      const frame = this.#decodeAt(at);
      if (!frame) break;
      frames.push(frame.frame);
      at = frame.next;
    }
    this.#buffer = this.#buffer.slice(at);
    return frames;
  }

  /** Bytes of an incomplete frame still waiting for the rest. */
  get pending(): number {
    return this.#buffer.length;
  }

  #decodeAt(at: number): { frame: Frame; next: number } | undefined {
    const b = this.#buffer;
    const first = b[at];
    const second = b[at + 1];
    if (first === undefined || second === undefined) return undefined;
    const masked = (second & MASK_BIT) !== 0;
    let length = second & 0x7f;
    let pos = at + 2;
    if (length === LENGTH_64) {
      throw new WebReplError("the peer sent a WebSocket frame with a 64-bit length: not WebREPL");
    }
    if (length === LENGTH_16) {
      const hi = b[pos];
      const lo = b[pos + 1];
      if (hi === undefined || lo === undefined) return undefined;
      length = (hi << 8) | lo;
      pos += 2;
    }
    const mask = masked ? b.subarray(pos, pos + 4) : undefined;
    if (masked) pos += 4;
    if (b.length < pos + length) return undefined;
    const payload = b.slice(pos, pos + length);
    if (mask) { for (let i = 0; i < payload.length; i++) payload[i] = payload[i]! ^ mask[i % 4]!; }
    return {
      frame: { fin: (first & FIN_BIT) !== 0, opcode: first & 0x0f, payload, masked },
      next: pos + length,
    };
  }
}
