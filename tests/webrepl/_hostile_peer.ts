/**
 * A hostile WebREPL peer on 127.0.0.1 (port from the OS) for the tests: it speaks just enough
 * WebSocket (the handshake, unmasked server frames, the login with any password) and then
 * hands each connection to a script that can send whatever it likes. It records every text
 * character and binary byte the client sent, so a test can assert what reached the "board".
 */
import {
  acceptFor,
  encodeFrame,
  encodeHandshakeResponse,
  exactHeader,
  FrameDecoder,
  HttpHeadReader,
  KEY_HEADER,
  OPCODE,
} from "../../lib/webrepl/websocket.ts";
import { CONNECTED_BANNER, PASSWORD_PROMPT } from "../../lib/webrepl/protocol.ts";

const encoder = new TextEncoder();

/** One logged-in client, as the script sees it. */
export class PeerSession {
  /** All text the client sent after the login, in order. */
  textIn = "";
  /** All binary bytes the client sent, in order (length only: they may be many). */
  binaryIn: Uint8Array[] = [];
  /** Whether the client sent a close frame. */
  closeFrame = false;
  /** The client closed its side. */
  ended = false;
  readonly #conn: Deno.Conn;
  #waiters = new Set<() => void>();

  constructor(conn: Deno.Conn) {
    this.#conn = conn;
  }

  async sendText(text: string): Promise<void> {
    const bytes = encoder.encode(text);
    for (let at = 0; at < bytes.length || at === 0; at += 0xffff) {
      await this.write(encodeFrame(OPCODE.text, bytes.subarray(at, at + 0xffff)));
      if (bytes.length === 0) break;
    }
  }

  async sendBinary(bytes: Uint8Array): Promise<void> {
    await this.write(encodeFrame(OPCODE.binary, bytes));
  }

  async write(bytes: Uint8Array): Promise<void> {
    for (let at = 0; at < bytes.length;) at += await this.#conn.write(bytes.subarray(at));
  }

  /** Bytes of binary frames received so far. */
  get binaryBytes(): number {
    return this.binaryIn.reduce((n, b) => n + b.length, 0);
  }

  /** Waits until `check` holds (re-checked on every frame from the client). */
  async until(check: () => boolean, ms = 10000): Promise<void> {
    const deadline = Date.now() + ms;
    while (!check()) {
      if (Date.now() > deadline) throw new Error("the peer's wait timed out");
      await new Promise<void>((resolve) => {
        const wake = () => {
          clearTimeout(timer);
          this.#waiters.delete(wake);
          resolve();
        };
        const timer = setTimeout(wake, 50);
        this.#waiters.add(wake);
      });
    }
  }

  /** Waits for `text` to have been typed since `from` characters. */
  async typed(text: string, from = 0): Promise<number> {
    await this.until(() => this.textIn.indexOf(text, from) >= 0 || this.ended);
    const at = this.textIn.indexOf(text, from);
    if (at < 0) throw new Error(`the client left before typing ${JSON.stringify(text)}`);
    return at + text.length;
  }

  close(): void {
    try {
      this.#conn.close();
    } catch { /* closed */ }
  }

  /** @internal */
  received(opcode: number, payload: Uint8Array, decoder: TextDecoder): void {
    if (opcode === OPCODE.close) this.closeFrame = true;
    else if (opcode === OPCODE.binary) this.binaryIn.push(payload);
    else if (opcode <= OPCODE.text) this.textIn += decoder.decode(payload, { stream: true });
    this.notify();
  }

  /** @internal */
  notify(): void {
    for (const wake of [...this.#waiters]) wake();
  }
}

export interface HostilePeer extends AsyncDisposable {
  port: number;
  target: { host: string; port: number; password: string; timeoutMs: number };
  /** The sessions so far, in order of connection. */
  sessions: PeerSession[];
}

/**
 * Listens on 127.0.0.1; each client is logged in (any password) and handed to `script`,
 * which runs while the peer keeps reading the client's frames into the session.
 */
export function startHostilePeer(
  script: (session: PeerSession, index: number) => Promise<void>,
): HostilePeer {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0, transport: "tcp" });
  const sessions: PeerSession[] = [];
  const conns = new Set<Deno.Conn>();
  const handlers = new Set<Promise<void>>();
  const serve = async (conn: Deno.Conn) => {
    const head = new HttpHeadReader();
    const frames = new FrameDecoder();
    const decoder = new TextDecoder();
    const buffer = new Uint8Array(65536);
    let session: PeerSession | undefined;
    let typed = "";
    let scripted: Promise<void> | undefined;
    try {
      while (true) {
        const n = await conn.read(buffer).catch(() => null);
        if (n === null) break;
        let bytes: Uint8Array = buffer.slice(0, n);
        if (!session) {
          const done = head.push(bytes);
          if (!done) continue;
          session = new PeerSession(conn);
          await session.write(
            encodeHandshakeResponse(acceptFor(exactHeader(done.head, KEY_HEADER) ?? "")),
          );
          await session.sendText(PASSWORD_PROMPT);
          bytes = done.rest;
        }
        for (const frame of frames.push(bytes)) {
          if (scripted) {
            session.received(frame.opcode, frame.payload, decoder);
            continue;
          }
          typed += decoder.decode(frame.payload, { stream: true });
          const end = typed.indexOf("\r");
          if (end < 0) continue;
          await session.sendText(`\r\n${CONNECTED_BANNER}`);
          sessions.push(session);
          const s = session;
          scripted = script(s, sessions.length - 1).catch(() => {}).finally(() => s.close());
          const rest = typed.slice(end + 1);
          if (rest) s.textIn += rest;
        }
      }
    } finally {
      if (session) {
        session.ended = true;
        session.notify();
      }
      await scripted;
    }
  };
  const accepting = (async () => {
    try {
      for await (const conn of listener) {
        conns.add(conn);
        const h = serve(conn).catch(() => {}).finally(() => {
          conns.delete(conn);
          try {
            conn.close();
          } catch { /* closed */ }
          handlers.delete(h);
        });
        handlers.add(h);
      }
    } catch { /* closed */ }
  })();
  const port = (listener.addr as Deno.NetAddr).port;
  return {
    port,
    target: { host: "127.0.0.1", port, password: "pass1234", timeoutMs: 5000 },
    sessions,
    [Symbol.asyncDispose]: async () => {
      try {
        listener.close();
      } catch { /* closed */ }
      for (const c of conns) {
        try {
          c.close();
        } catch { /* closed */ }
      }
      await accepting;
      await Promise.all([...handlers]);
    },
  };
}

/** Waits for Ctrl-A and answers the raw REPL's banner. Returns where the next input starts. */
export async function enterRaw(session: PeerSession, from = 0): Promise<number> {
  const next = await session.typed("\x01", from);
  await session.sendText("raw REPL; CTRL-B to exit\r\n>");
  return next;
}

/** Waits for a program ended by Ctrl-D and answers `OK`. */
export async function nextProgram(
  session: PeerSession,
  from: number,
): Promise<{ code: string; next: number }> {
  const end = await session.typed("\x04", from);
  await session.sendText("OK");
  return { code: session.textIn.slice(from, end - 1), next: end };
}
