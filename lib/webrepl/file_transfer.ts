/**
 * The client's side of WebREPL file transfer (records in `webrepl_files.ts`;
 * docs/device.md, "WebREPL", "File transfer"), one step at a time:
 *
 * - put: request (op 1, size, name) → "WB" 0 → the bytes → "WB" 0;
 * - get: request (op 2, name) → "WB" 0 → { ack byte → u16 length, bytes } until length 0 → "WB" 0;
 * - version: request (op 3) → three bytes.
 *
 * A board that cannot open the file sends no reply at all: it drops the connection
 * (its serial console shows the OSError). The status is 0 on every reply MicroPython sends.
 */
import { WebReplError } from "../errors.ts";
import { concat } from "../_bytes.ts";
import { RemoteFileError } from "./remote_fs.ts";
import {
  decodeChunkLength,
  decodeReply,
  decodeVersion,
  encodeRequest,
  FILE_OP,
  GET_ACK,
  REPLY_BYTES,
  STATUS_OK,
  VERSION_REPLY_BYTES,
} from "./file_records.ts";
import { BINARY_FRAME_BYTES } from "./client.ts";

/** The file-transfer channel of a logged-in session (a `WebReplClient`). */
export interface BinaryChannel {
  readonly address: string;
  sendBinary(bytes: Uint8Array, frameBytes?: number): Promise<void>;
  readBinary(
    n: number,
    step: string,
    options?: { timeoutMs?: number; onClose?: () => Error | undefined },
  ): Promise<Uint8Array>;
}

export interface TransferOptions {
  /** Bytes sent (put) or received (get) so far, out of `size` (get: undefined when unknown). */
  onProgress?: (done: number, size: number | undefined) => void;
  /** The size `stat` reported, for get's progress. */
  expectedSize?: number;
}

/** Why a status is not 0; MicroPython's boards only ever send 0. */
function statusMessage(status: number): string {
  return `status ${status} (MicroPython's WebREPL only sends 0: is this another server?)`;
}

async function expectDone(
  channel: BinaryChannel,
  step: string,
  onClose?: () => Error | undefined,
): Promise<void> {
  const reply = await channel.readBinary(REPLY_BYTES, step, onClose ? { onClose } : {});
  const status = decodeReply(reply);
  if (status === undefined) {
    throw new WebReplError(
      `${channel.address} answered ${step.replace(/^the /, "")} with bytes ${hex(reply)}, ` +
        'not a "WB" reply: is this MicroPython\'s WebREPL?',
    );
  }
  if (status !== STATUS_OK) {
    throw new RemoteFileError(
      `${channel.address} answered ${step.replace(/^the /, "")} with ${statusMessage(status)}`,
    );
  }
}

/** The error for a board that dropped us instead of replying to a request. */
function dropped(channel: BinaryChannel, op: "put" | "get", remote: string): () => Error {
  return () =>
    new RemoteFileError(
      `${channel.address} could not open '${remote}' for the ${op} and dropped the connection ` +
        (op === "get"
          ? "(no such file on the board, or a folder?)"
          : "(a missing folder in the path, or a full file system?)") +
        "; the board's serial console shows the OSError",
    );
}

/**
 * Writes `data` to the board's file `remote` (created or replaced).
 * @throws {RemoteFileError} If the board cannot open the file (it drops the connection).
 * @throws {WebReplError} On a timeout, a closed connection, or a reply that is not WebREPL's.
 */
export async function putFile(
  channel: BinaryChannel,
  remote: string,
  data: Uint8Array,
  options: TransferOptions = {},
): Promise<void> {
  await channel.sendBinary(encodeRequest({ op: FILE_OP.put, name: remote, size: data.length }));
  await expectDone(
    channel,
    `the reply to the put request for '${remote}'`,
    dropped(channel, "put", remote),
  );
  for (let at = 0; at < data.length; at += BINARY_FRAME_BYTES) {
    const end = Math.min(at + BINARY_FRAME_BYTES, data.length);
    await channel.sendBinary(data.subarray(at, end));
    options.onProgress?.(end, data.length);
  }
  await expectDone(channel, `the reply after the ${data.length} bytes of '${remote}'`);
}

/**
 * Reads the board's file `remote`, chunk by chunk (each asked for with one byte).
 * @throws {RemoteFileError} If the board cannot open it (it drops the connection).
 * @throws {WebReplError} On a timeout, a closed connection, or a reply that is not WebREPL's.
 */
export async function getFile(
  channel: BinaryChannel,
  remote: string,
  options: TransferOptions = {},
): Promise<Uint8Array> {
  await channel.sendBinary(encodeRequest({ op: FILE_OP.get, name: remote }));
  await expectDone(
    channel,
    `the reply to the get request for '${remote}'`,
    dropped(channel, "get", remote),
  );
  const chunks: Uint8Array[] = [];
  let received = 0;
  while (true) {
    await channel.sendBinary(GET_ACK);
    const length = decodeChunkLength(
      await channel.readBinary(2, `the length of the chunk at byte ${received} of '${remote}'`),
    );
    if (length === 0) break;
    chunks.push(
      await channel.readBinary(length, `${length} bytes at byte ${received} of '${remote}'`),
    );
    received += length;
    options.onProgress?.(received, options.expectedSize);
  }
  await expectDone(channel, `the reply after the last chunk of '${remote}'`);
  return concat(chunks);
}

/**
 * The MicroPython release the board's WebREPL reports ("1.19.1").
 * @throws {WebReplError} On a timeout or a closed connection.
 */
export async function getVersion(channel: BinaryChannel): Promise<string> {
  await channel.sendBinary(encodeRequest({ op: FILE_OP.version }));
  return decodeVersion(await channel.readBinary(VERSION_REPLY_BYTES, "the version reply"));
}

function hex(bytes: Uint8Array): string {
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join(" ");
}
