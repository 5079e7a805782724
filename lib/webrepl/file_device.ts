/**
 * The board's side of WebREPL file transfer, step for step as `extmod/modwebrepl.c`
 * does it (docs/device.md, "WebREPL", "File transfer"). The bytes of binary frames form
 * one stream; the machine collects an 82-byte request, then acts on it:
 *
 * 1. version (op 3): three bytes, then the next request;
 * 2. anything else opens the named file (`wb` for a put, `rb` otherwise). If that fails
 *    the board raises inside its terminal's read, and MicroPython drops the client
 *    (`dupterm: Exception in read() method, deactivating`): the socket closes with no
 *    reply. Otherwise it replies "WB" status 0;
 * 3. put: `size` bytes go to the file, then "WB" 0 (at once for size 0: two replies);
 * 4. get: each byte from the client (any value) asks for the next chunk, u16 length then
 *    up to 256 bytes; the empty chunk is followed by "WB" 0;
 * 5. another op number: the file is opened, "WB" 0 sent, and the file channel then
 *    ignores everything until the client leaves (the board waits for data it never asks for).
 *
 * The files and the way out are injected, so this runs on the virtual device's VM and in
 * tests alike.
 */
import { concat } from "../_bytes.ts";
import {
  decodeRequest,
  encodeGetChunk,
  encodeReply,
  encodeVersion,
  FILE_OP,
  GET_CHUNK_BYTES,
  REQUEST_BYTES,
  STATUS_OK,
} from "./file_records.ts";

/** The board's file system, as the file-transfer code reaches it. */
export interface DeviceFiles {
  /** `open(name, "wb")`: creates or empties the file. Throws (the OSError's text) if it cannot. */
  create(name: string): Promise<void>;
  /** Appends to a file `create` made. */
  append(name: string, data: Uint8Array): Promise<void>;
  /** `open(name, "rb").read()`. Throws (the OSError's text) if it cannot. */
  read(name: string): Promise<Uint8Array>;
  /** A put is complete (the file is closed). */
  closed?(name: string): Promise<void>;
}

/** What `push` asks of the connection. */
export type FileChannelOutcome =
  | { kind: "ok" }
  /** The board dropped the client: close the socket, no reply. `console` is its UART line. */
  | { kind: "drop"; console: string };

type State =
  | { kind: "request" }
  | { kind: "put"; name: string; left: number; pending: Uint8Array[] }
  | { kind: "get"; data: Uint8Array; at: number }
  | { kind: "stuck" };

export class FileChannel {
  readonly #files: DeviceFiles;
  readonly #send: (bytes: Uint8Array) => Promise<void>;
  readonly #release: string;
  readonly #record = new Uint8Array(REQUEST_BYTES);
  #have = 0;
  #state: State = { kind: "request" };

  /**
   * @param release The firmware's release, e.g. "1.19.1", for the version op.
   * @param send Writes one binary frame to the client.
   */
  constructor(files: DeviceFiles, send: (bytes: Uint8Array) => Promise<void>, release: string) {
    this.#files = files;
    this.#send = send;
    this.#release = release;
  }

  /** Feeds the payload of one binary frame. */
  async push(bytes: Uint8Array): Promise<FileChannelOutcome> {
    let at = 0;
    while (at < bytes.length) {
      const state = this.#state;
      if (state.kind === "stuck") return { kind: "ok" };
      if (state.kind === "request") {
        const take = Math.min(REQUEST_BYTES - this.#have, bytes.length - at);
        this.#record.set(bytes.subarray(at, at + take), this.#have);
        this.#have += take;
        at += take;
        if (this.#have < REQUEST_BYTES) break;
        this.#have = 0;
        const outcome = await this.#request();
        if (outcome.kind === "drop") return outcome;
      } else if (state.kind === "put") {
        const take = Math.min(state.left, bytes.length - at);
        state.pending.push(bytes.slice(at, at + take));
        state.left -= take;
        at += take;
        if (state.left === 0) await this.#finishPut(state.name, state.pending);
      } else {
        // One byte asks for the next chunk, whatever its value (the board's check is an assert).
        at += 1;
        const chunk = state.data.subarray(state.at, state.at + GET_CHUNK_BYTES);
        state.at += chunk.length;
        await this.#send(encodeGetChunk(chunk));
        if (chunk.length === 0) {
          this.#state = { kind: "request" };
          await this.#send(encodeReply(STATUS_OK));
        }
      }
    }
    await this.flush();
    return { kind: "ok" };
  }

  /**
   * Writes the put data received so far: the board writes as the bytes come, so a client
   * that leaves mid-put leaves a partial file. Called after each read and at the end.
   */
  async flush(): Promise<void> {
    const state = this.#state;
    if (state.kind !== "put" || state.pending.length === 0) return;
    const data = state.pending.splice(0);
    await this.#files.append(state.name, data.length === 1 ? data[0]! : concat(data));
  }

  async #request(): Promise<FileChannelOutcome> {
    const request = decodeRequest(this.#record);
    if (request.op === FILE_OP.version) {
      await this.#send(encodeVersion(this.#release));
      return { kind: "ok" };
    }
    let data: Uint8Array | undefined;
    try {
      if (request.op === FILE_OP.put) await this.#files.create(request.name);
      else data = await this.#files.read(request.name);
    } catch (e) {
      return {
        kind: "drop",
        console: `dupterm: Exception in read() method, deactivating: ${(e as Error).message}`,
      };
    }
    await this.#send(encodeReply(STATUS_OK));
    if (request.op === FILE_OP.put) {
      this.#state = { kind: "put", name: request.name, left: request.size, pending: [] };
      if (request.size === 0) await this.#finishPut(request.name, []);
    } else if (request.op === FILE_OP.get) {
      this.#state = { kind: "get", data: data!, at: 0 };
    } else {
      this.#state = { kind: "stuck" };
    }
    return { kind: "ok" };
  }

  async #finishPut(name: string, pending: Uint8Array[]): Promise<void> {
    if (pending.length) await this.#files.append(name, concat(pending));
    this.#state = { kind: "request" };
    await this.#files.closed?.(name);
    await this.#send(encodeReply(STATUS_OK));
  }
}
