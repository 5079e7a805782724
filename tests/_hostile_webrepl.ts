/**
 * A hostile WebREPL board on 127.0.0.1 (port from the OS) that speaks just enough of the
 * protocol: the WebSocket handshake, the password prompt (any password is taken), the raw
 * REPL (Ctrl-A), and for each program the answer `answer(code)` scripts. Test code only.
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
} from "../lib/webrepl/websocket.ts";
import {
  CONNECTED_BANNER,
  CTRL_A,
  CTRL_D,
  PASSWORD_PROMPT,
  RAW_BANNER,
} from "../lib/webrepl/protocol.ts";

/** What the board prints for a program: its output, and a traceback if it "raised". */
export interface HostileAnswer {
  output: string;
  error?: string;
}

export interface HostileBoard extends AsyncDisposable {
  port: number;
  /** Every program the client ran, in order. */
  programs: string[];
}

/** Starts the board; `answer` sees each program the client sends in the raw REPL. */
export function hostileWebRepl(answer: (code: string) => HostileAnswer): HostileBoard {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const programs: string[] = [];
  const conns = new Set<Deno.Conn>();
  const serve = async (conn: Deno.Conn) => {
    conns.add(conn);
    const send = async (text: string) => {
      const bytes = new TextEncoder().encode(text);
      for (let at = 0; at < bytes.length || at === 0; at += 65535) {
        const frame = encodeFrame(OPCODE.text, bytes.subarray(at, at + 65535));
        for (let done = 0; done < frame.length;) done += await conn.write(frame.subarray(done));
        if (bytes.length === 0) break;
      }
    };
    const head = new HttpHeadReader();
    const frames = new FrameDecoder();
    let upgraded = false;
    let loggedIn = false;
    let typed = "";
    const buffer = new Uint8Array(65536);
    try {
      while (true) {
        const n = await conn.read(buffer);
        if (n === null) break;
        let chunk: Uint8Array = buffer.slice(0, n);
        if (!upgraded) {
          const got = head.push(chunk);
          if (!got) continue;
          await conn.write(encodeHandshakeResponse(acceptFor(exactHeader(got.head, KEY_HEADER)!)));
          await send(PASSWORD_PROMPT);
          upgraded = true;
          chunk = got.rest;
        }
        for (const frame of frames.push(chunk)) {
          if (frame.opcode === OPCODE.close) {
            await conn.write(encodeFrame(OPCODE.close, new Uint8Array(0)));
            conn.close();
            return;
          }
          typed += new TextDecoder().decode(frame.payload);
          if (!loggedIn) {
            if (!typed.includes("\r") && !typed.includes("\n")) continue;
            loggedIn = true;
            typed = "";
            await send("\r\n" + CONNECTED_BANNER);
            continue;
          }
          if (typed.includes(CTRL_A)) {
            typed = typed.slice(typed.lastIndexOf(CTRL_A) + 1);
            await send(RAW_BANNER);
          }
          const end = typed.indexOf(CTRL_D);
          if (end < 0) continue;
          const code = typed.slice(0, end);
          typed = typed.slice(end + 1);
          programs.push(code);
          const { output, error = "" } = answer(code);
          await send("OK" + output + CTRL_D + error + CTRL_D + ">");
        }
      }
    } catch {
      // The client went away: nothing to answer.
    } finally {
      conns.delete(conn);
      try {
        conn.close();
      } catch {
        // Already closed.
      }
    }
  };
  const accepting = (async () => {
    for await (const conn of listener) serve(conn);
  })().catch(() => {});
  return {
    port: (listener.addr as Deno.NetAddr).port,
    programs,
    [Symbol.asyncDispose]: async () => {
      listener.close();
      for (const conn of conns) {
        try {
          conn.close();
        } catch {
          // Already closed.
        }
      }
      await accepting;
    },
  };
}
