/**
 * What a WebREPL board sent and no step has read yet, decoded: the HTTP head of its
 * handshake answer, then its frames, split into the REPL's text and the file-transfer
 * channel's bytes (docs/device.md, "WebREPL"). Pure: `connection.ts` feeds it the socket's
 * bytes and pauses reading while it is `full`, so a board that floods costs at most
 * `MAX_UNREAD` of memory per kind.
 */
import { FrameDecoder, type HttpHead, HttpHeadReader, OPCODE } from "./websocket.ts";
import { concat } from "../_bytes.ts";
import { WebReplError } from "../errors.ts";

/**
 * Received and not yet read: past this much text (characters) or binary (bytes), the
 * connection stops reading from the socket until a step consumes some (TCP then holds
 * the rest back).
 */
export const MAX_UNREAD = 256 * 1024;
/** An HTTP head longer than this is not MicroPython's (its `101` answer is some 130 bytes). */
const MAX_HEAD_BYTES = 16 * 1024;

export class Inbox {
  /** Bytes received in all, the head included. */
  bytesSeen = 0;
  /** The handshake answer's head, once it has come. */
  handshake: HttpHead | undefined;
  /** Text received and not yet consumed by a step. */
  text = "";
  readonly #address: string;
  readonly #head = new HttpHeadReader();
  readonly #frames = new FrameDecoder();
  readonly #decoder = new TextDecoder();
  #binary: Uint8Array[] = [];
  #binaryLength = 0;

  /** @param address "host:port", for messages. */
  constructor(address: string) {
    this.#address = address;
  }

  /** Bytes of binary frames (the file-transfer channel) not yet read. */
  get binaryLength(): number {
    return this.#binaryLength;
  }

  /** Over `MAX_UNREAD` of text or of binary: stop reading until some is taken. */
  get full(): boolean {
    return this.text.length > MAX_UNREAD || this.#binaryLength > MAX_UNREAD;
  }

  /**
   * Takes the bytes of one socket read.
   * @throws {WebReplError} If the HTTP head does not end within 16 KiB, or a frame uses a
   *   64-bit length: not MicroPython's WebREPL.
   */
  push(bytes: Uint8Array): void {
    this.bytesSeen += bytes.length;
    if (!this.handshake) {
      const done = this.#head.push(bytes);
      if (!done && this.#head.pending > MAX_HEAD_BYTES) {
        throw new WebReplError(
          `${this.#address} sent over ${MAX_HEAD_BYTES} bytes without ending its HTTP answer: ` +
            "it is not MicroPython's WebREPL",
        );
      }
      if (!done) return;
      this.handshake = done.head;
      bytes = done.rest;
    }
    for (const frame of this.#frames.push(bytes)) {
      if (frame.opcode <= OPCODE.text) {
        this.text += this.#decoder.decode(frame.payload, { stream: true });
      } else if (frame.opcode === OPCODE.binary) {
        this.#binary.push(frame.payload);
        this.#binaryLength += frame.payload.length;
      }
      // A close frame is followed by the close.
    }
  }

  /** All the unread text ("" if none). */
  takeText(): string {
    const text = this.text;
    this.text = "";
    return text;
  }

  /** Consumes the text up to the end of the first match of `pattern`. */
  take(pattern: RegExp): RegExpExecArray | undefined {
    const m = pattern.exec(this.text);
    if (!m) return undefined;
    this.text = this.text.slice(m.index + m[0].length);
    return m;
  }

  /**
   * The first `n` unread binary bytes, touching only the chunks that hold them; undefined
   * until that many have come.
   */
  takeBinary(n: number): Uint8Array | undefined {
    if (this.#binaryLength < n) return undefined;
    const parts: Uint8Array[] = [];
    let left = n;
    while (left > 0) {
      const head = this.#binary[0]!;
      if (head.length <= left) {
        parts.push(head);
        this.#binary.shift();
        left -= head.length;
      } else {
        parts.push(head.subarray(0, left));
        this.#binary[0] = head.subarray(left);
        left = 0;
      }
    }
    this.#binaryLength -= n;
    return parts.length === 1 ? parts[0]!.slice() : concat(parts);
  }
}
