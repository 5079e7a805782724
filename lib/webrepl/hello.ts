/**
 * "Is this WebREPL?" without logging in: a TCP connect, the WebSocket handshake and the
 * board's `Password: ` prompt (docs/device.md, "WebREPL"), then we leave. Nothing is
 * typed, so nothing runs on the board: `status` without a password and `scan` use it to
 * tell a running app from a port that only accepts TCP (any other server, or a board
 * whose WebREPL hangs).
 */
import {
  acceptFor,
  encodeHandshakeRequest,
  FrameDecoder,
  type HttpHead,
  HttpHeadReader,
  makeWebSocketKey,
  OPCODE,
} from "./websocket.ts";
import { PASSWORD_PROMPT } from "./protocol.ts";

/** What the port said. */
export type HelloAnswer =
  /** The handshake and the password prompt came: a running app with WebREPL. */
  | "webrepl"
  /** Accepted, then closed before a byte: the board's one client slot is taken. */
  | "busy"
  /** Accepted TCP, but no handshake and prompt within the time: not an answering WebREPL. */
  | "silent"
  /** Answered with something that is not MicroPython's handshake. */
  | "not-webrepl"
  /** Nothing listens there (connection refused). */
  | "refused"
  /** No TCP answer within the time: absent, or a firewall. */
  | "no-answer";

/** How long we wait for the board to close its side after we leave (see `tcp_probe.ts`). */
const LET_GO_MS = 200;

/** Classifies what arrived so far. Pure. */
export function helloVerdict(
  received: { head?: HttpHead; text: string; closed: boolean; bytes: number },
  key: string,
): HelloAnswer | undefined {
  if (received.head) {
    const accept = received.head.headers.find(([n]) => n.toLowerCase() === "sec-websocket-accept");
    if (!/^HTTP\/1\.[01] 101\b/.test(received.head.startLine) || accept?.[1] !== acceptFor(key)) {
      return "not-webrepl";
    }
    if (received.text.includes(PASSWORD_PROMPT)) return "webrepl";
  }
  if (received.closed) return received.bytes === 0 ? "busy" : "not-webrepl";
  return undefined;
}

/**
 * Connects to `host:port`, does the handshake and waits for the prompt, all within
 * `timeoutMs`; then closes without typing anything. Needs `--allow-net`.
 */
export async function webReplHello(
  host: string,
  port: number,
  timeoutMs: number,
): Promise<HelloAnswer> {
  const deadline = AbortSignal.timeout(timeoutMs);
  let conn: Deno.TcpConn;
  try {
    conn = await Deno.connect({ hostname: host, port, transport: "tcp", signal: deadline });
  } catch (e) {
    return e instanceof Deno.errors.ConnectionRefused ? "refused" : "no-answer";
  }
  const key = makeWebSocketKey();
  const head = new HttpHeadReader();
  const frames = new FrameDecoder();
  const received: { head?: HttpHead; text: string; closed: boolean; bytes: number } = {
    text: "",
    closed: false,
    bytes: 0,
  };
  const stop = new Promise<"silent">((resolve) => {
    if (deadline.aborted) resolve("silent");
    deadline.addEventListener("abort", () => resolve("silent"), { once: true });
  });
  const listen = async (): Promise<HelloAnswer> => {
    const buffer = new Uint8Array(1024);
    try {
      const hostHeader = host.includes(":") ? `[${host}]:${port}` : `${host}:${port}`;
      await conn.write(encodeHandshakeRequest({ host: hostHeader, key }));
      while (true) {
        const n = await conn.read(buffer);
        if (n === null) break;
        received.bytes += n;
        let bytes: Uint8Array = buffer.slice(0, n);
        if (!received.head) {
          const done = head.push(bytes);
          if (!done) continue;
          received.head = done.head;
          bytes = done.rest;
        }
        for (const frame of frames.push(bytes)) {
          if (frame.opcode <= OPCODE.text) received.text += new TextDecoder().decode(frame.payload);
        }
        const verdict = helloVerdict(received, key);
        if (verdict) return verdict;
        // A peer that floods us is not a board waiting at its prompt.
        if (received.bytes > 4096) return "not-webrepl";
      }
    } catch {
      // Reset by the peer: taken as closed.
    }
    received.closed = true;
    return helloVerdict(received, key) ?? "not-webrepl";
  };
  const answer = await Promise.race([listen(), stop]);
  if (answer === "silent") closeQuietly(conn); // its read is still pending: no half-close
  else await leave(conn);
  return answer;
}

/** Half-closes, lets the board close first (so the port pair's TIME_WAIT is its), closes. */
async function leave(conn: Deno.TcpConn): Promise<void> {
  let wait: ReturnType<typeof setTimeout> | undefined;
  try {
    await conn.closeWrite();
    await Promise.race([
      conn.read(new Uint8Array(64)).catch(() => null),
      new Promise((resolve) => (wait = setTimeout(resolve, LET_GO_MS))),
    ]);
  } catch {
    // The board let go first.
  } finally {
    clearTimeout(wait);
  }
  closeQuietly(conn);
}

function closeQuietly(conn: Deno.TcpConn): void {
  try {
    conn.close();
  } catch {
    // Already closed.
  }
}
