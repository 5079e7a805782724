/**
 * `repl`: the board's REPL in the terminal, as mpremote and webrepl_cli.py give it.
 * What is typed goes to the board as text frames; what the board prints comes back
 * unchanged. Ctrl-] leaves. From a terminal (raw mode) every key is passed on, Ctrl-C
 * included; from a pipe, line ends become `\r` (the board ends a line only on `\r`),
 * and at the end of the input the session waits for the board to finish and show a
 * prompt before leaving.
 */
import { WebReplError } from "../errors.ts";
import { REPL_PROMPT } from "../webrepl/protocol.ts";

/** Ctrl-]: leaves the session (telnet's and mpremote's escape). */
export const LEAVE_KEY = 0x1d;
/** What the board sends after the password: login consumes it, the terminal shows the prompt. */
export const LOGIN_PROMPT = REPL_PROMPT;
/** How long the board must stay quiet at a prompt, after the input ends, before leaving. */
export const SETTLE_MS = 150;
/**
 * The board waits for input: friendly (`>>> `; `... ` and the spaces it types to
 * auto-indent), paste (`=== `) or raw (`>`) prompt.
 */
// deno-lint-ignore no-control-regex
const PROMPT_AT_END = /(?:>>> |\.\.\. +|=== |(?:\x04|\n)>)$/;

/** A logged-in session (a `WebReplClient`). */
export interface TerminalPeer {
  readonly address: string;
  type(text: string): Promise<void>;
  readText(waitMs: number): Promise<string | undefined>;
}

export interface TerminalIO {
  /** What the user types, in chunks (stdin). */
  input: AsyncIterable<Uint8Array>;
  /** Shows the board's output (stdout). */
  write(text: string): Promise<void>;
  /** Whether the input is a terminal in raw mode (else a pipe or a file). */
  interactive: boolean;
}

/** How the session ended. */
export type TerminalEnd = "leave-key" | "end-of-input";

/**
 * The text to send for one chunk of input, and whether Ctrl-] was in it (what follows
 * it is dropped). From a pipe, `\r\n` and `\n` become `\r`. Pure.
 */
export function translateInput(
  chunk: string,
  interactive: boolean,
): { text: string; leave: boolean } {
  const cut = chunk.indexOf(String.fromCharCode(LEAVE_KEY));
  let text = cut < 0 ? chunk : chunk.slice(0, cut);
  if (!interactive) text = text.replace(/\r?\n/g, "\r");
  return { text, leave: cut >= 0 };
}

/**
 * Runs the session until Ctrl-] or the end of the input; at the end of the input, it
 * waits (up to `timeoutMs`) until the board shows a prompt and stays quiet.
 * @throws {WebReplError} If the board closes the connection, or is still busy `timeoutMs`
 *   after the input ended.
 */
export async function runTerminal(
  peer: TerminalPeer,
  io: TerminalIO,
  options: { timeoutMs: number; settleMs?: number },
): Promise<TerminalEnd> {
  const settleMs = options.settleMs ?? SETTLE_MS;
  let tail = LOGIN_PROMPT;
  let lastOutputAt = Date.now();
  let closed = false;
  let stop = false;
  let wake: () => void = () => {};
  const closedByBoard = new Promise<never>((_, reject) => {
    wake = () =>
      reject(
        new WebReplError(
          `${peer.address} closed the connection (did the board reset, or another client take over?)`,
        ),
      );
  });
  closedByBoard.catch(() => {});

  await io.write(LOGIN_PROMPT);
  const pump = (async () => {
    while (!stop) {
      const text = await peer.readText(50);
      if (text === undefined) {
        closed = true;
        wake();
        return;
      }
      if (text === "") continue;
      lastOutputAt = Date.now();
      tail = (tail + text).slice(-64);
      await io.write(text);
    }
  })();

  const typing = (async (): Promise<TerminalEnd> => {
    const decoder = new TextDecoder();
    for await (const chunk of io.input) {
      const { text, leave } = translateInput(
        decoder.decode(chunk, { stream: true }),
        io.interactive,
      );
      if (text) await peer.type(text);
      if (leave) return "leave-key";
    }
    return "end-of-input";
  })();

  try {
    const end = await Promise.race([typing, closedByBoard]);
    if (end === "end-of-input") {
      const deadline = Date.now() + options.timeoutMs;
      // The board may not have echoed the last line yet: wait for a prompt and quiet.
      while (!(PROMPT_AT_END.test(tail) && Date.now() - lastOutputAt >= settleMs)) {
        if (closed) await closedByBoard;
        if (Date.now() > deadline) {
          throw new WebReplError(
            `${peer.address} was still busy ${
              options.timeoutMs / 1000
            } s after the end of the input (no prompt came back): raise --timeout, or end with Ctrl-]`,
          );
        }
        await new Promise((r) => setTimeout(r, Math.min(settleMs, 50)));
      }
    }
    return end;
  } finally {
    stop = true;
    await pump;
  }
}
