/**
 * The board's side of WebREPL's WebSocket on one TCP connection (docs/device.md,
 * "WebREPL"): reading the client's upgrade request, answering it, and sending text in
 * unmasked frames. The virtual device's server (`webrepl_server.ts`) and the tests'
 * scripted boards both speak it through these.
 */
import {
  acceptFor,
  encodeFrame,
  encodeHandshakeResponse,
  exactHeader,
  HttpHeadReader,
  KEY_HEADER,
  MAX_FRAME_PAYLOAD,
  OPCODE,
} from "../webrepl/websocket.ts";

const encoder = new TextEncoder();

/** The client's upgrade request: its key (absent: not a WebSocket request), and what came after it. */
export interface Upgrade {
  key?: string;
  rest: Uint8Array;
}

/** Reads up to the end of the client's HTTP head; undefined if the client left before it. */
export async function readUpgrade(conn: Deno.Conn): Promise<Upgrade | undefined> {
  const head = new HttpHeadReader();
  for await (const chunk of reads(conn)) {
    const done = head.push(chunk);
    if (done) return { key: exactHeader(done.head, KEY_HEADER), rest: done.rest };
  }
  return undefined;
}

/** Answers the upgrade request of `key`: the 101 response. */
export async function acceptUpgrade(conn: Deno.Conn, key: string): Promise<void> {
  await writeAll(conn, encodeHandshakeResponse(acceptFor(key)));
}

/** Sends `text` in text frames of at most MAX_FRAME_PAYLOAD bytes (one empty frame for ""). */
export async function sendText(conn: Deno.Conn, text: string): Promise<void> {
  const bytes = encoder.encode(text);
  let at = 0;
  do {
    await writeAll(conn, encodeFrame(OPCODE.text, bytes.subarray(at, at + MAX_FRAME_PAYLOAD)));
    at += MAX_FRAME_PAYLOAD;
  } while (at < bytes.length);
}

/** The bytes the client sends, chunk by chunk, until it closes (or the socket fails). */
export async function* reads(conn: Deno.Conn): AsyncGenerator<Uint8Array> {
  const buffer = new Uint8Array(4096);
  while (true) {
    let n: number | null;
    try {
      n = await conn.read(buffer);
    } catch {
      return;
    }
    if (n === null) return;
    yield buffer.slice(0, n);
  }
}

export async function writeAll(conn: Deno.Conn, bytes: Uint8Array): Promise<void> {
  for (let at = 0; at < bytes.length;) at += await conn.write(bytes.subarray(at));
}

export function closeQuietly(conn: Deno.Conn): void {
  try {
    conn.close();
  } catch { /* already closed */ }
}
