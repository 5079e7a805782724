/**
 * A hostile WebREPL board on 127.0.0.1 (port from the OS) for the tests. It speaks just
 * enough of the protocol (the WebSocket handshake and frames of lib/sim/websocket_server.ts,
 * the login with any password) and then either hands each connection to a script that can
 * send whatever it likes (`startHostilePeer`), or answers each program of the raw REPL as
 * `answer(code)` scripts (`hostileWebRepl`). It records every text character and binary
 * byte the client sent, so a test can assert what reached the "board". Test code only.
 */
import { encodeFrame, FrameDecoder, OPCODE } from "../lib/webrepl/websocket.ts";
import {
  CONNECTED_BANNER,
  CTRL_A,
  CTRL_D,
  PASSWORD_PROMPT,
  RAW_BANNER,
} from "../lib/webrepl/protocol.ts";
import * as wire from "../lib/sim/websocket_server.ts";

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

  sendText(text: string): Promise<void> {
    return wire.sendText(this.#conn, text);
  }

  async sendBinary(bytes: Uint8Array): Promise<void> {
    await this.write(encodeFrame(OPCODE.binary, bytes));
  }

  write(bytes: Uint8Array): Promise<void> {
    return wire.writeAll(this.#conn, bytes);
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
    wire.closeQuietly(this.#conn);
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
 * Listens on 127.0.0.1; each client is logged in (any password, ended by CR or LF) and
 * handed to `script`, which runs while the peer keeps reading the client's frames into the
 * session. The connection closes when the script ends.
 */
export function startHostilePeer(
  script: (session: PeerSession, index: number) => Promise<void>,
): HostilePeer {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0, transport: "tcp" });
  const sessions: PeerSession[] = [];
  const conns = new Set<Deno.Conn>();
  const handlers = new Set<Promise<void>>();
  const serve = async (conn: Deno.Conn) => {
    const upgrade = await wire.readUpgrade(conn);
    if (!upgrade) return;
    const session = new PeerSession(conn);
    await wire.acceptUpgrade(conn, upgrade.key ?? "");
    await session.sendText(PASSWORD_PROMPT);
    const frames = new FrameDecoder();
    const decoder = new TextDecoder();
    let typed = "";
    let scripted: Promise<void> | undefined;
    const receive = async (bytes: Uint8Array) => {
      for (const frame of frames.push(bytes)) {
        if (scripted) {
          session.received(frame.opcode, frame.payload, decoder);
          continue;
        }
        typed += decoder.decode(frame.payload, { stream: true });
        const end = typed.search(/[\r\n]/);
        if (end < 0) continue;
        await session.sendText(`\r\n${CONNECTED_BANNER}`);
        sessions.push(session);
        scripted = script(session, sessions.length - 1).catch(() => {}).finally(() =>
          session.close()
        );
        const rest = typed.slice(end + 1);
        if (rest) session.textIn += rest;
      }
    };
    try {
      await receive(upgrade.rest);
      for await (const chunk of wire.reads(conn)) await receive(chunk);
    } finally {
      session.ended = true;
      session.notify();
      await scripted;
    }
  };
  const accepting = (async () => {
    try {
      for await (const conn of listener) {
        conns.add(conn);
        const h = serve(conn).catch(() => {}).finally(() => {
          conns.delete(conn);
          wire.closeQuietly(conn);
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
      for (const c of conns) wire.closeQuietly(c);
      await accepting;
      await Promise.all([...handlers]);
    },
  };
}

/** Waits for Ctrl-A and answers the raw REPL's banner. Returns where the next input starts. */
export async function enterRaw(session: PeerSession, from = 0): Promise<number> {
  const next = await session.typed(CTRL_A, from);
  await session.sendText(RAW_BANNER);
  return next;
}

/** Waits for a program ended by Ctrl-D and answers `OK`. */
export async function nextProgram(
  session: PeerSession,
  from: number,
): Promise<{ code: string; next: number }> {
  const end = await session.typed(CTRL_D, from);
  await session.sendText("OK");
  return { code: session.textIn.slice(from, end - 1), next: end };
}

/** What the board prints for a program: its output, and a traceback if it "raised". */
export interface HostileAnswer {
  output: string;
  error?: string;
}

export interface HostileBoard extends HostilePeer {
  /** Every program the client ran, in order. */
  programs: string[];
}

/**
 * A board whose raw REPL (entered with Ctrl-A, any number of times) answers each program
 * the client sends as `answer(code)` says; a close frame is answered with one.
 */
export function hostileWebRepl(answer: (code: string) => HostileAnswer): HostileBoard {
  const programs: string[] = [];
  const peer = startHostilePeer(async (session) => {
    let seen = 0;
    let pending = "";
    while (true) {
      await session.until(
        () => session.textIn.length > seen || session.closeFrame || session.ended,
        Infinity,
      );
      pending += session.textIn.slice(seen);
      seen = session.textIn.length;
      if (pending.includes(CTRL_A)) {
        pending = pending.slice(pending.lastIndexOf(CTRL_A) + 1);
        await session.sendText(RAW_BANNER);
      }
      for (let end = pending.indexOf(CTRL_D); end >= 0; end = pending.indexOf(CTRL_D)) {
        const code = pending.slice(0, end);
        pending = pending.slice(end + 1);
        programs.push(code);
        const { output, error = "" } = answer(code);
        await session.sendText("OK" + output + CTRL_D + error + CTRL_D + ">");
      }
      if (session.closeFrame) {
        await session.write(encodeFrame(OPCODE.close, new Uint8Array(0)));
        return;
      }
      if (session.ended) return;
    }
  });
  return Object.assign(peer, { programs });
}
