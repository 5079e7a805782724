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
  GET_CHUNK_BYTES,
  REPLY_BYTES,
  STATUS_OK,
  VERSION_REPLY_BYTES,
} from "./file_records.ts";
import { BINARY_FRAME_BYTES } from "./client.ts";

/** The file-transfer channel of a logged-in session (a `WebReplClient`). */
export interface BinaryChannel {
  readonly address: string;
  /** Time allowed for each step, if known. */
  readonly timeoutMs?: number;
  sendBinary(bytes: Uint8Array, frameBytes?: number): Promise<void>;
  readBinary(
    n: number,
    step: string,
    options?: { timeoutMs?: number; deadline?: number; onClose?: () => Error | undefined },
  ): Promise<Uint8Array>;
}

export interface TransferOptions {
  /** Bytes sent (put) or received (get) so far, out of `size` (get: undefined when unknown). */
  onProgress?: (done: number, size: number | undefined) => void;
  /**
   * The size `stat` reported: get's progress, and its bound: a board that sends more is
   * stopped at once. Without it, a get stops at `MAX_FILE_BYTES`.
   */
  expectedSize?: number;
  /** When (`Date.now()`) the whole transfer must be done; after it, it stops. */
  deadline?: number;
}

/** No ESP8266 file system holds more: a put sends at most this, a get without a known size stops there. */
export const MAX_FILE_BYTES = 4 * 1024 * 1024;
/** The slowest rate a working board transfers at: a transfer's time allowed counts on it. */
export const SLOWEST_BYTES_PER_S = 1024;

/**
 * The time allowed for a whole transfer of `size` bytes: two steps' time plus `size` at
 * the slowest believable rate, so `--timeout` bounds it too. Pure.
 */
export function transferAllowanceMs(size: number, stepMs: number): number {
  return 2 * stepMs + Math.ceil((size * 1000) / SLOWEST_BYTES_PER_S);
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
  const limit = options.expectedSize ?? MAX_FILE_BYTES;
  const announced = options.expectedSize === undefined
    ? `the ${MAX_FILE_BYTES} bytes a get may bring`
    : `the ${limit} bytes it announced`;
  const read = (n: number, step: string) => readBefore(channel, n, step, options.deadline);
  const chunks: Uint8Array[] = [];
  let received = 0;
  while (true) {
    await channel.sendBinary(GET_ACK);
    const length = decodeChunkLength(
      await read(2, `the length of the chunk at byte ${received} of '${remote}'`),
    );
    if (length === 0) break;
    if (length > GET_CHUNK_BYTES || received + length > limit) {
      throw new WebReplError(
        `${channel.address} sent more of '${remote}' than ${announced} ` +
          (length > GET_CHUNK_BYTES
            ? `(a chunk of ${length} bytes; the board's are at most ${GET_CHUNK_BYTES})`
            : `(${received + length} bytes so far)`) +
          ": stopped reading; nothing was written. Is this MicroPython's WebREPL?",
      );
    }
    chunks.push(await read(length, `${length} bytes at byte ${received} of '${remote}'`));
    received += length;
    options.onProgress?.(received, options.expectedSize);
  }
  await expectDone(channel, `the reply after the last chunk of '${remote}'`);
  return concat(chunks);
}

/**
 * `readBinary` that gives up at `deadline` too.
 * @throws {WebReplError} Once the deadline has passed, naming it.
 */
async function readBefore(
  channel: BinaryChannel,
  n: number,
  step: string,
  deadline: number | undefined,
): Promise<Uint8Array> {
  if (deadline === undefined) return await channel.readBinary(n, step);
  const overdue = () =>
    new WebReplError(
      `${channel.address}: the transfer was not done in the time allowed for it (waiting for ` +
        `${step}): stopped; nothing was written. Raise --timeout if the board is that slow`,
    );
  const left = deadline - Date.now();
  if (left <= 0) throw overdue();
  try {
    return await channel.readBinary(n, step, { deadline });
  } catch (e) {
    if (Date.now() >= deadline && e instanceof WebReplError) throw overdue();
    throw e;
  }
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
